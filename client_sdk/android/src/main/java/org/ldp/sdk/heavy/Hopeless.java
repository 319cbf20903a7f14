package org.ldp.sdk.heavy;

import java.math.BigInteger;
import com.google.gson.JsonElement;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.mechanisms.Olh;

/**
 * Creation-time refusal of heavy-hitter configurations whose {@code expected_reports} cannot make
 * even an item held by 1/k of the users significant (_common.py's required_reports and
 * check_hopeless): n >= groups * Var* * (z_{1 - alpha/C} * k)^2 with Holm/Bonferroni over C
 * candidates. Public arithmetic on the configuration only; no device data.
 */
final class Hopeless {
  private Hopeless() {}

  /** Python's statistics.NormalDist().inv_cdf (Wichura's AS241, the same coefficients and steps). */
  static double invCdf(double p) {
    if (!(p > 0.0 && p < 1.0)) throw new IllegalArgumentException("p must be in the range 0.0 < p < 1.0");
    double q = p - 0.5;
    double num;
    double den;
    if (Math.abs(q) <= 0.425) {
      double r = 0.180625 - q * q;
      num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r
          + 4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
          + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q;
      den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r
          + 2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
          + 4.2313330701600911252e+1) * r + 1.0);
      return num / den;
    }
    double r = q <= 0.0 ? p : 1.0 - p;
    r = Math.sqrt(-Math.log(r));
    if (r <= 5.0) {
      r = r - 1.6;
      num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r
          + 1.27045825245236838258e+0) * r + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
          + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0);
      den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r
          + 1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
          + 2.05319162663775882187e+0) * r + 1.0);
    } else {
      r = r - 5.0;
      num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r
          + 2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
          + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0);
      den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r
          + 7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
          + 5.99832206555887937690e-1) * r + 1.0);
    }
    double x = num / den;
    return q < 0.0 ? -x : x;
  }

  /** Python's format(x, ".3g") for 1e-4 <= x < 1e3 (the epsilons of the message). */
  static String threeSignificant(double x) {
    return new java.math.BigDecimal(x).round(new java.math.MathContext(3)).stripTrailingZeros().toPlainString();
  }

  /** Smallest n at which an item with 1/k of the users clears Holm's threshold over {@code candidates} tests. */
  static long requiredReports(double groups, int k, long candidates, double alpha, double olhEpsilon, Integer g) {
    Olh olh = HeavyHitters.makeOlh(Json.of(olhEpsilon), g == null ? null : Json.of(g));
    double z = invCdf(1 - alpha / Math.max(1, candidates));
    return (long) Math.ceil(groups * olh.varianceApproxPerUser() * (z * k) * (z * k));
  }

  /** null (no expectation) or the expected count; ConfigException for a hopeless configuration. */
  static BigInteger check(String name, double epsilon, BigInteger expected, JsonElement groupsValue, int k, long candidates, double alpha,
      double perReportEpsilon, Integer g) {
    if (expected == null) return null;
    double groups = groupsValue.getAsDouble();
    long need = requiredReports(groups, k, candidates, alpha, epsilon * perReportEpsilon, g);
    if (expected.compareTo(BigInteger.valueOf(need)) >= 0) return expected;
    double n = expected.doubleValue();
    double lo = epsilon;
    double hi = 20.0;
    String epsMsg;
    if (requiredReports(groups, k, candidates, alpha, hi * perReportEpsilon, null) > n) {
      epsMsg = "no ε up to 20 would do";
    } else {
      for (int i = 0; i < 60; i++) {
        double mid = (lo + hi) / 2;
        if (requiredReports(groups, k, candidates, alpha, mid * perReportEpsilon, null) <= n) hi = mid;
        else lo = mid;
      }
      epsMsg = "or ε ≥ " + threeSignificant(hi) + " for n = " + expected;
    }
    throw new ConfigException("hopeless " + name + " configuration: with n = " + expected + " reports split over "
        + PyRepr.repr(groupsValue) + " groups at ε = " + PyRepr.repr(Json.of(epsilon))
        + ", even an item held by 1/k of the users would not be significant among " + candidates + " candidates (α = "
        + PyRepr.repr(Json.of(alpha)) + ", Holm); it needs n ≥ " + need + " at this ε, " + epsMsg
        + "; or fewer levels (shorter items, a smaller alphabet) or a smaller k");
  }
}
