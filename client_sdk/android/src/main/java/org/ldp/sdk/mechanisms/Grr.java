package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.Sampling;

/**
 * GRR, generalised randomised response (k-RR; Kairouz, Bonawitz, Ramage, ICML 2016; Wang et
 * al., USENIX Security 2017); client_sdk/mechanisms/grr.py.
 *
 * <p>Privacy: epsilon-LDP, P[y | v] / P[y | v'] <= p/q = e^epsilon. p = e^eps/(e^eps + k - 1),
 * q = 1/(e^eps + k - 1); the report is the value with probability p, otherwise uniform among
 * the k - 1 other values.
 */
public final class Grr extends FrequencyOracle {
  public static final long MAX_DOMAIN_SIZE = 1L << 31;
  private final double p;
  private final double q;
  private final Sampling.Threshold keep;

  public Grr(JsonElement epsilon, JsonElement domainSize) {
    super("grr", epsilon, domainSize, MAX_DOMAIN_SIZE);
    double[] pq = probabilities(this.epsilon, this.domainSize);
    p = pq[0];
    q = pq[1];
    keep = Sampling.Threshold.of(p);
  }

  /** (p, q) of GRR over k values: q = exp(-logaddexp(eps, log(k - 1))), without overflow. */
  public static double[] probabilities(double epsilon, long k) {
    double logDenominator = ExactMath.logaddexp(epsilon, ExactMath.log(k - 1));
    return new double[] {ExactMath.exp(epsilon - logDenominator), ExactMath.exp(-logDenominator)};
  }

  @Override
  protected java.util.List<String> wireFields() {
    return java.util.Arrays.asList("v", "m", "y");
  }

  @Override
  public double pStar() {
    return p;
  }

  @Override
  public double qStar() {
    return q;
  }

  @Override
  public int reportBits() {
    return Math.max(1, ExactMath.bitLength(domainSize - 1));
  }

  @Override
  public JsonObject perturb(long value, RandomSource source) {
    long v = checkValue(value);
    long y = v;
    if (!Sampling.bernoulli(keep, source)) {
      long u = Sampling.uniformInt(domainSize - 1, source);
      y = u + (u >= v ? 1 : 0);
    }
    JsonObject out = header(name);
    out.addProperty("y", y);
    return out;
  }

  @Override
  public JsonObject encode(DecodedReport report) {
    JsonObject out = header(name);
    out.addProperty("y", checkIndex(report.y, domainSize));
    return out;
  }

  @Override
  public DecodedReport decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    return DecodedReport.ofIndex(decodeIndex(p.get("y"), domainSize, "y", index));
  }

  @Override
  public Map<Long, Double> outputDistribution(long value) {
    long v = checkValue(value);
    Map<Long, Double> out = new LinkedHashMap<>();
    for (long y = 0; y < domainSize; y++) out.put(y, y == v ? p : q);
    return out;
  }
}
