package org.ldp.sdk.longitudinal;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Grr;

/**
 * L-GRR (client_sdk/longitudinal/lgrr.py): GRR at epsilon_perm memoized per value, then GRR at
 * epsilon_IRR every report (or, with {@code tight}, the p2 whose exact k-ary one-report ratio is
 * e^epsilon_first). Memo key: the value; memo {@code "prr"}: the permanent GRR output; wire
 * payload {@code {"v":1,"m":"l-grr","y":y2}}. Ledger: epsilon_perm per memo, at most k memos.
 */
public final class Lgrr extends LongitudinalProtocol {
  public static final long MAX_DOMAIN_SIZE = 1L << 31;
  public final double epsilonPerm;
  public final double epsilonFirst;
  public final boolean tight;
  public final double p1;
  public final double q1;
  public final double p2;
  public final double q2;
  private final Sampling.Threshold keep1;
  private final Sampling.Threshold keep2;

  Lgrr(JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize, JsonElement tight) {
    super("l-grr");
    double[] budgets = validateBudgets(epsilonPerm, epsilonFirst);
    this.epsilonPerm = budgets[0];
    this.epsilonFirst = budgets[1];
    long k = FrequencyOracle.validateDomainSize(domainSize, MAX_DOMAIN_SIZE, name);
    this.domainSize = k;
    this.tight = parseTight(tight);
    double[] p = parameters(this.epsilonPerm, this.epsilonFirst, k, this.tight);
    p1 = p[0];
    q1 = p[1];
    p2 = p[2];
    q2 = p[3];
    checkProbabilities(name, new String[] {"p1", "q1", "p2", "q2"}, p);
    checkOrder(name, p1, q1, p2, q2);
    keep1 = Sampling.Threshold.of(p1);
    keep2 = Sampling.Threshold.of(p2);
  }

  static boolean parseTight(JsonElement tight) {
    if (tight == null) return false; // absent (JSON null is refused, as Python's None)
    if (!Json.isBoolean(tight)) throw new ConfigException("tight must be true or false, got " + PyRepr.repr(tight));
    return tight.getAsBoolean();
  }

  /** Exact worst one-report output ratio of the GRR-GRR chain over k values. */
  public static double oneReportRatio(double p1, double q1, double p2, double q2, long k) {
    return (p1 * p2 + (k - 1) * q1 * q2) / (q1 * p2 + p1 * q2 + (k - 2) * q1 * q2);
  }

  /** (p1, q1, p2, q2) of L-GRR over k values. */
  public static double[] parameters(double epsilonPerm, double epsilonFirst, long k, boolean tight) {
    double[] pq1 = Grr.probabilities(epsilonPerm, k);
    double p1 = pq1[0];
    double q1 = pq1[1];
    double p2;
    double q2;
    if (tight) {
      p2 = bisectIncreasing(x -> ExactMath.log(oneReportRatio(p1, q1, x, (1 - x) / (k - 1), k)), epsilonFirst, 1.0 / k, 1.0);
      q2 = (1 - p2) / (k - 1);
    } else {
      double[] pq2 = Grr.probabilities(irrEpsilon(epsilonPerm, epsilonFirst), k);
      p2 = pq2[0];
      q2 = pq2[1];
    }
    return new double[] {p1, q1, p2, q2};
  }

  /** GRR over [k] on x with keep-threshold t (Python's grr_one: a Bernoulli, then uniform_int(k - 1)). */
  static long grrOne(long x, Sampling.Threshold keep, long k, RandomSource source) {
    if (Sampling.bernoulli(keep, source)) return x;
    long u = Sampling.uniformInt(k - 1, source);
    return u + (u >= x ? 1 : 0);
  }

  @Override
  public JsonObject config() {
    return Json.obj("kind", KIND, "mechanism", name, "epsilon_perm", epsilonPerm, "epsilon_first", epsilonFirst, "domain_size", domainSize, "tight", tight);
  }

  @Override
  public double epsilonPerm() {
    return epsilonPerm;
  }

  @Override
  public double epsilonFirst() {
    return epsilonFirst;
  }

  @Override
  public double epsilonFirstActual() {
    return ExactMath.log(oneReportRatio(p1, q1, p2, q2, domainSize));
  }

  /** Round 2's own GRR parameter ln(p2/q2). */
  public double epsilonIrr() {
    return ExactMath.log(p2 / q2);
  }

  @Override
  public long maxMemos() {
    return domainSize;
  }

  @Override
  public Map<String, Number> parameters() {
    double[] star = chainProbabilities(p1, q1, p2, q2);
    Map<String, Number> out = baseParameters(p1, q1, p2, q2, star[0], star[1]);
    out.put("epsilon_irr", epsilonIrr());
    return out;
  }

  @Override
  public long keySpace() {
    return domainSize;
  }

  @Override
  protected List<String> wireFields() {
    return Arrays.asList("v", "m", "y");
  }

  @Override
  protected long memoKeyOne(long value, Object state) {
    return value;
  }

  @Override
  protected JsonElement drawMemo(long key, RandomSource source) {
    return Json.of(grrOne(key, keep1, domainSize, source));
  }

  @Override
  protected Object parsePrr(JsonElement prr) {
    Long y = Json.longValue(prr);
    if (y == null || y < 0 || y >= domainSize) throw new MemoException("memo 'prr' must be an integer in [0, " + domainSize + "), got " + PyRepr.repr(prr));
    return y;
  }

  @Override
  protected JsonObject round2(Object prr, Object state, RandomSource source) {
    JsonObject out = header();
    out.addProperty("y", grrOne((Long) prr, keep2, domainSize, source));
    return out;
  }

  @Override
  public void decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    FrequencyOracle.decodeIndex(p.get("y"), domainSize, "y", index);
  }

  @Override
  public long payloadOutcome(JsonObject payload) {
    return payload.get("y").getAsLong();
  }

  @Override
  public Map<Long, Double> memoDistribution(long key) {
    return grrDistribution(domainSize, key, p1, q1);
  }

  @Override
  public Map<Long, Double> reportDistribution(long memo) {
    return grrDistribution(domainSize, memo, p2, q2);
  }
}
