package org.ldp.sdk;

/**
 * Java 8 library methods Android added only at API 26, for API 24+: {@code String.join},
 * {@code Long.compareUnsigned}, {@code Long.parseUnsignedLong} (AndroidApiTest keeps them out
 * of the SDK's sources).
 */
public final class Compat {
  private Compat() {}

  /** {@code String.join(separator, parts)}. */
  public static String join(String separator, Iterable<? extends CharSequence> parts) {
    StringBuilder out = new StringBuilder();
    boolean first = true;
    for (CharSequence p : parts) {
      if (!first) out.append(separator);
      out.append(p);
      first = false;
    }
    return out.toString();
  }

  /** {@code Long.compareUnsigned(a, b)}. */
  public static int compareUnsigned(long a, long b) {
    return Long.compare(a ^ Long.MIN_VALUE, b ^ Long.MIN_VALUE);
  }

  /** The unsigned 64-bit value of exactly 16 hexadecimal digits ({@code Long.parseUnsignedLong(s, 16)}). */
  public static long parseHex64(String s) {
    if (s.length() != 16) throw new NumberFormatException("expected 16 hexadecimal digits, got " + s);
    return (Long.parseLong(s.substring(0, 8), 16) << 32) | Long.parseLong(s.substring(8), 16);
  }
}
