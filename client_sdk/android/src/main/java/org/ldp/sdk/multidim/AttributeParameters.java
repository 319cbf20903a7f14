package org.ldp.sdk.multidim;

/** One attribute's randomiser in RS+FD (all numbers derived from the public config). */
public final class AttributeParameters {
  public final long k;
  /** "grr" or "oue" */
  public final String oracle;
  /** "uniform", "zero" or "one-hot" */
  public final String fake;
  public final double epsilon;
  /** P[report supports v | sampled attribute holds v] */
  public final double p;
  /** P[report supports v | sampled attribute holds u != v] */
  public final double q;
  /** P[fake report supports a given value] */
  public final double fakeSupport;

  AttributeParameters(long k, String oracle, String fake, double epsilon, double p, double q, double fakeSupport) {
    this.k = k;
    this.oracle = oracle;
    this.fake = fake;
    this.epsilon = epsilon;
    this.p = p;
    this.q = q;
    this.fakeSupport = fakeSupport;
  }

  /** P[report supports v] for a population with frequency f of v (Arcolezi et al. 2021, delta). */
  double delta(double f, int d) {
    return (q + f * (p - q) + (d - 1) * fakeSupport) / d;
  }

  /** Smallest P_real(y | x)/P_fake(y) over outputs and inputs. */
  double ratioMin() {
    if (oracle.equals("grr")) return k * q;
    double b = p / q;
    double a = (1 - p) / (1 - q);
    if (fake.equals(Rsfd.FAKE_ZERO)) return a;
    return a * k / ((k - 1) * b + a);
  }

  /** (r(y | x), r(y | x')) for the y maximising the one-attribute loss. */
  double[] ratioPair() {
    if (oracle.equals("grr")) return new double[] {k * p, k * q};
    double b = p / q;
    double a = (1 - p) / (1 - q);
    if (fake.equals(Rsfd.FAKE_ZERO)) return new double[] {b, a};
    double denominator = b + (k - 1) * a;
    return new double[] {b * k / denominator, a * k / denominator};
  }
}
