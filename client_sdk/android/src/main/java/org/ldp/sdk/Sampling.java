package org.ldp.sdk;

import java.math.BigInteger;

/**
 * Exact sampling from a {@link RandomSource}, byte for byte as the Python SDK consumes
 * {@code os.urandom} (client_sdk/_random.py) and the web SDK its CSPRNG (random.ts):
 *
 * <ul>
 *   <li>a uniform 64-bit integer is 8 bytes, big-endian ({@code secrets.randbits(64)});
 *   <li>Bernoulli(p) is {@code U < round(p * 2^64)} for such a U, with the threshold computed
 *       exactly, so each probability is realised to within 2^-64;
 *   <li>a uniform integer in [0, n) takes the top bitLength(n) bits of ceil(bitLength(n)/8)
 *       big-endian bytes and rejects values >= n ({@code secrets.randbelow}): no modulo bias;
 *   <li>a vector of Bernoulli bits is 8 bytes per bit, little-endian (numpy's
 *       {@code frombuffer(os.urandom(8k), uint64)}), thresholds capped at 2^64 - 2048.
 * </ul>
 */
public final class Sampling {
  private Sampling() {}

  public static final BigInteger TWO64 = BigInteger.ONE.shiftLeft(64);
  private static final BigInteger VECTOR_CAP = TWO64.subtract(BigInteger.valueOf(2048));

  /** min(max(round(p * 2^64), 0), 2^64) exactly as Python computes it (ties to even). */
  public static BigInteger probabilityThreshold(double p) {
    if (Double.isNaN(p)) throw new IllegalArgumentException("probability is NaN");
    if (p == Double.POSITIVE_INFINITY) throw new IllegalArgumentException("probability is infinite");
    if (p <= 0) return BigInteger.ZERO;
    if (p >= 1) return TWO64;
    long bits = Double.doubleToRawLongBits(p);
    int biased = (int) ((bits >>> 52) & 0x7ff);
    long mantissa = bits & 0xfffffffffffffL;
    int exponent = -1074;
    if (biased != 0) {
      mantissa |= 1L << 52;
      exponent = biased - 1075;
    }
    BigInteger m = BigInteger.valueOf(mantissa);
    int shift = exponent + 64;
    if (shift >= 0) return m.shiftLeft(shift);
    int s = -shift;
    BigInteger whole = m.shiftRight(s);
    BigInteger rest = m.subtract(whole.shiftLeft(s));
    int c = rest.compareTo(BigInteger.ONE.shiftLeft(s - 1));
    return c > 0 || (c == 0 && whole.testBit(0)) ? whole.add(BigInteger.ONE) : whole;
  }

  /** A Bernoulli threshold t in [0, 2^64]: a draw U succeeds when U < t (unsigned). */
  public static final class Threshold {
    public final BigInteger value;
    private final boolean always;
    private final long unsigned;

    public Threshold(BigInteger value) {
      this.value = value;
      this.always = value.compareTo(TWO64) >= 0;
      this.unsigned = always ? 0 : value.longValue();
    }

    public static Threshold of(double p) {
      return new Threshold(probabilityThreshold(p));
    }

    /** numpy's vectorised threshold: the same rounding, capped at 2^64 - 2048. */
    public static Threshold ofVector(double p) {
      BigInteger t = probabilityThreshold(p);
      return new Threshold(t.compareTo(VECTOR_CAP) < 0 ? t : VECTOR_CAP);
    }

    public boolean below(long u) {
      return always || Compat.compareUnsigned(u, unsigned) < 0;
    }
  }

  /** A uniform 64-bit integer (8 bytes, big-endian), as an unsigned long. */
  public static long randomU64(RandomSource source) {
    byte[] b = new byte[8];
    source.fill(b);
    return bigEndian(b, 0);
  }

  /** One Bernoulli draw. */
  public static boolean bernoulli(Threshold threshold, RandomSource source) {
    return threshold.below(randomU64(source));
  }

  /** A uniform integer in [0, n) for 1 <= n <= 2^62, by rejection (no modulo bias). */
  public static long uniformInt(long n, RandomSource source) {
    if (n < 1 || n > (1L << 62)) throw new IllegalArgumentException("upper bound must lie in [1, 2^62], got " + n);
    int bits = ExactMath.bitLength(n);
    int size = (bits + 7) >> 3;
    int drop = size * 8 - bits;
    byte[] buffer = new byte[size];
    while (true) {
      source.fill(buffer);
      long x = 0;
      for (int i = 0; i < size; i++) x = (x << 8) | (buffer[i] & 0xff);
      long r = x >>> drop;
      if (r < n) return r;
    }
  }

  /** A uniform int in [0, n). */
  public static int uniformInt(int n, RandomSource source) {
    return (int) uniformInt((long) n, source);
  }

  /** Threshold of bit i. */
  public interface ThresholdOf {
    Threshold at(int i);
  }

  /** Independent Bernoulli bits: 8 bytes per bit, each a little-endian 64-bit integer. */
  public static byte[] bernoulliBits(int count, ThresholdOf thresholdOf, RandomSource source) {
    byte[] bytes = new byte[8 * count];
    source.fill(bytes);
    byte[] bits = new byte[count];
    for (int i = 0; i < count; i++) {
      long u = 0;
      for (int j = 7; j >= 0; j--) u = (u << 8) | (bytes[8 * i + j] & 0xff);
      bits[i] = (byte) (thresholdOf.at(i).below(u) ? 1 : 0);
    }
    return bits;
  }

  static long bigEndian(byte[] b, int offset) {
    long x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | (b[offset + i] & 0xff);
    return x;
  }
}
