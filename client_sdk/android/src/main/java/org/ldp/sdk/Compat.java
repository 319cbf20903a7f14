package org.ldp.sdk;

/**
 * Java 8 library methods Android added only at API 26, for API 24+: {@code String.join},
 * {@code Long.compareUnsigned}, {@code Long.parseUnsignedLong}, {@code Long.remainderUnsigned}
 * (AndroidApiTest keeps them out of the SDK's sources).
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

  /**
   * {@code Long.remainderUnsigned(dividend, divisor)}: the remainder of the unsigned 64-bit
   * division, in [0, divisor) as unsigned; ArithmeticException for a zero divisor.
   */
  public static long remainderUnsigned(long dividend, long divisor) {
    if (divisor < 0) { // divisor >= 2^63: the quotient is 0 or 1
      return compareUnsigned(dividend, divisor) < 0 ? dividend : dividend - divisor;
    }
    if (dividend >= 0) return dividend % divisor;
    // dividend >= 2^63: halve, divide, double; the remainder is then below 2 divisor
    long quotient = ((dividend >>> 1) / divisor) << 1;
    long rest = dividend - quotient * divisor;
    return compareUnsigned(rest, divisor) >= 0 ? rest - divisor : rest;
  }
}
