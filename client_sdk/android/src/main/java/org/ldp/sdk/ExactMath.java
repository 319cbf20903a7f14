package org.ldp.sdk;

import java.math.BigInteger;

/**
 * Floating-point helpers that reproduce the Python SDK's numbers. Python computes its
 * probabilities with glibc's exp and log, correctly rounded in all but rare cases; Java's
 * Math/StrictMath (fdlibm) differ from them by one ulp for a few percent of arguments.
 * {@link #exp} and {@link #log} here are correctly rounded (256-bit fixed point, then
 * rounded to the nearest double), so p, q and g agree with Python's bit for bit (the shared
 * vectors check it) and so do the Bernoulli thresholds derived from them.
 */
public final class ExactMath {
  private ExactMath() {}

  private static final int P = 256;
  private static final BigInteger ONE = BigInteger.ONE.shiftLeft(P);
  private static final BigInteger LN2 = ln2();

  private static BigInteger ln2() {
    int guard = P + 32;
    BigInteger power = BigInteger.ONE.shiftLeft(guard).divide(BigInteger.valueOf(3));
    BigInteger sum = BigInteger.ZERO;
    BigInteger nine = BigInteger.valueOf(9);
    for (long n = 0; power.signum() > 0; n++) {
      sum = sum.add(power.divide(BigInteger.valueOf(2 * n + 1)));
      power = power.divide(nine);
    }
    return sum.shiftLeft(1).shiftRight(32);
  }

  /** The double nearest to v / 2^scale for a positive v (ties to even). */
  private static double fixedToDouble(BigInteger v, int scale) {
    int length = v.bitLength();
    if (length <= 53) return Math.scalb(v.doubleValue(), -scale);
    int shift = length - 53;
    BigInteger m = v.shiftRight(shift);
    BigInteger rest = v.subtract(m.shiftLeft(shift));
    BigInteger half = BigInteger.ONE.shiftLeft(shift - 1);
    int c = rest.compareTo(half);
    if (c > 0 || (c == 0 && m.testBit(0))) m = m.add(BigInteger.ONE);
    // m < 2^54 is exact in a double; one scalb keeps it exact unless subnormal
    return Math.scalb(m.doubleValue(), shift - scale);
  }

  /** x as an exact fixed-point integer x * 2^P. */
  private static BigInteger toFixed(double x) {
    long bits = Double.doubleToRawLongBits(Math.abs(x));
    int biased = (int) ((bits >>> 52) & 0x7ff);
    long mantissa = bits & 0xfffffffffffffL;
    int exponent = -1074;
    if (biased != 0) {
      mantissa |= 1L << 52;
      exponent = biased - 1075;
    }
    BigInteger m = BigInteger.valueOf(mantissa);
    int shift = exponent + P;
    BigInteger out = shift >= 0 ? m.shiftLeft(shift) : m.shiftRight(-shift);
    return x < 0 ? out.negate() : out;
  }

  /** Correctly rounded e^x for |x| <= 700 (outside: Math.exp). */
  public static double exp(double x) {
    if (!(Math.abs(x) <= 700)) return Math.exp(x);
    if (Math.abs(x) < 0x1p-60) return 1.0;
    BigInteger X = toFixed(x);
    BigInteger halfL = LN2.shiftRight(1);
    BigInteger k = X.signum() >= 0 ? X.add(halfL).divide(LN2) : X.negate().add(halfL).divide(LN2).negate();
    BigInteger r = X.subtract(k.multiply(LN2));
    BigInteger sum = ONE;
    BigInteger term = ONE;
    for (long n = 1; term.signum() != 0; n++) {
      term = term.multiply(r).shiftRight(P).divide(BigInteger.valueOf(n));
      sum = sum.add(term);
    }
    return fixedToDouble(sum, P - k.intValue());
  }

  /** Correctly rounded natural logarithm of a positive finite double (else Math.log). */
  public static double log(double y) {
    if (!(y > 0) || Double.isInfinite(y)) return Math.log(y);
    if (y == 1) return 0.0;
    long bits = Double.doubleToRawLongBits(y);
    int biased = (int) ((bits >>> 52) & 0x7ff);
    long mantissa = bits & 0xfffffffffffffL;
    int exponent = -1074;
    if (biased != 0) {
      mantissa |= 1L << 52;
      exponent = biased - 1075;
    }
    BigInteger m = BigInteger.valueOf(mantissa);
    int length = m.bitLength();
    BigInteger f = m.shiftLeft(P - length);
    int n = exponent + length;
    if (f.compareTo(ONE.multiply(BigInteger.valueOf(3)).shiftRight(2)) < 0) {
      f = f.shiftLeft(1);
      n -= 1;
    }
    boolean zNegative = f.compareTo(ONE) < 0;
    BigInteger z = (zNegative ? ONE.subtract(f) : f.subtract(ONE)).shiftLeft(P).divide(f.add(ONE));
    BigInteger z2 = z.multiply(z).shiftRight(P);
    BigInteger sum = BigInteger.ZERO;
    BigInteger power = z;
    for (long j = 1; power.signum() != 0; j += 2) {
      sum = sum.add(power.divide(BigInteger.valueOf(j)));
      power = power.multiply(z2).shiftRight(P);
    }
    BigInteger two = sum.shiftLeft(1);
    BigInteger total = (zNegative ? two.negate() : two).add(BigInteger.valueOf(n).multiply(LN2));
    return total.signum() < 0 ? -fixedToDouble(total.negate(), P) : fixedToDouble(total, P);
  }

  /** numpy's logaddexp(x, y) = log(e^x + e^y), by numpy's own branches. */
  public static double logaddexp(double x, double y) {
    if (x == y) return x + Math.log(2.0);
    double t = x - y;
    if (t > 0) return x + Math.log1p(exp(-t));
    if (t <= 0) return y + Math.log1p(exp(t));
    return t;
  }

  /** Python's round(x): to the nearest integer, ties to even. */
  public static long roundHalfEven(double x) {
    return (long) Math.rint(x);
  }

  /** Python's int.bit_length of a non-negative long. */
  public static int bitLength(long n) {
    return 64 - Long.numberOfLeadingZeros(n);
  }
}
