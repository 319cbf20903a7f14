package org.ldp.sdk.mechanisms;

/** A decoded frequency-oracle report: {@code y} (GRR, HR), {@code bits} (SUE, OUE), or {@code seed} and {@code y} (OLH, BLH). */
public final class DecodedReport {
  public final long y;
  public final byte[] bits;
  public final long seed;
  public final boolean hasSeed;

  private DecodedReport(long y, byte[] bits, long seed, boolean hasSeed) {
    this.y = y;
    this.bits = bits;
    this.seed = seed;
    this.hasSeed = hasSeed;
  }

  public static DecodedReport ofIndex(long y) {
    return new DecodedReport(y, null, 0, false);
  }

  public static DecodedReport ofBits(byte[] bits) {
    return new DecodedReport(-1, bits, 0, false);
  }

  public static DecodedReport ofSeed(long seed, long y) {
    return new DecodedReport(y, null, seed, true);
  }
}
