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

/**
 * The L-UE family (client_sdk/longitudinal/lue.py): the value one-hot encoded in k bits; round 1
 * (memoized per value) sets bit i w.p. p1 if the value's bit is 1, else q1; round 2 (every report)
 * sets bit i w.p. p2 if the memo bit is 1, else q2. Memo {@code "prr"} and wire {@code "bits"}:
 * k bits packed little-endian, base64. Variants: {@code l-osue} (OUE then SUE), {@code l-sue}
 * (SUE twice, basic RAPPOR), {@code l-oue} (OUE twice), {@code rappor} (Google's f, p, q).
 */
public final class UnaryLongitudinal extends LongitudinalProtocol {
  public static final long MAX_DOMAIN_SIZE = 1L << 16;
  public final double epsilonPerm;
  public final double epsilonFirst;
  public final double p1;
  public final double q1;
  public final double p2;
  public final double q2;
  /** RAPPOR's (f, p, q); NaN for the other variants */
  public final double f;
  public final double p;
  public final double q;
  private final Sampling.Threshold[] round1;
  private final Sampling.Threshold[] round2;

  private UnaryLongitudinal(String name, double epsilonPerm, double epsilonFirst, JsonElement domainSize, double p1, double q1, double p2, double q2,
      double f, double p, double q) {
    super(name);
    this.epsilonPerm = epsilonPerm;
    this.epsilonFirst = epsilonFirst;
    this.domainSize = FrequencyOracle.validateDomainSize(domainSize, MAX_DOMAIN_SIZE, name);
    checkProbabilities(name, new String[] {"p1", "q1", "p2", "q2"}, new double[] {p1, q1, p2, q2});
    checkOrder(name, p1, q1, p2, q2);
    this.p1 = p1;
    this.q1 = q1;
    this.p2 = p2;
    this.q2 = q2;
    this.f = f;
    this.p = p;
    this.q = q;
    round1 = new Sampling.Threshold[] {Sampling.Threshold.ofVector(q1), Sampling.Threshold.ofVector(p1)};
    round2 = new Sampling.Threshold[] {Sampling.Threshold.ofVector(q2), Sampling.Threshold.ofVector(p2)};
  }

  /** ln[p(1-q)/((1-p)q)]: the exact epsilon of a per-bit channel over one-hot encodings. */
  public static double ueEpsilon(double p, double q) {
    return ExactMath.log(p) + StrictMath.log1p(-q) - StrictMath.log1p(-p) - ExactMath.log(q);
  }

  /** L-OSUE: OUE (round 1) then SUE (round 2). */
  static UnaryLongitudinal losue(JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize) {
    double[] b = validateBudgets(epsilonPerm, epsilonFirst);
    double irr = irrEpsilon(b[0], b[1]);
    double lae = logaddexp(0.0, irr);
    double p2 = ExactMath.exp(irr - lae);
    double q2 = ExactMath.exp(-lae);
    return new UnaryLongitudinal("l-osue", b[0], b[1], domainSize, 0.5, 1.0 / (ExactMath.exp(b[0]) + 1.0), p2, q2, Double.NaN, Double.NaN, Double.NaN);
  }

  /** L-SUE: SUE in both rounds (p2 in closed form). */
  static UnaryLongitudinal lsue(JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize) {
    double[] b = validateBudgets(epsilonPerm, epsilonFirst);
    double half = ExactMath.exp(b[0] / 2);
    double p1 = half / (half + 1.0);
    double pStar = 1.0 / (1.0 + ExactMath.exp(-b[1] / 2));
    double p2 = (pStar + p1 - 1.0) / (2 * p1 - 1.0);
    return new UnaryLongitudinal("l-sue", b[0], b[1], domainSize, p1, 1.0 / (half + 1.0), p2, 1.0 - p2, Double.NaN, Double.NaN, Double.NaN);
  }

  /** L-OUE: OUE in both rounds (p2 = 1/2, q2 by bisection). */
  static UnaryLongitudinal loue(JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize) {
    double[] b = validateBudgets(epsilonPerm, epsilonFirst);
    double p1 = 0.5;
    double q1 = 1.0 / (ExactMath.exp(b[0]) + 1.0);
    Increasing leak = shift -> {
      double[] c = chainProbabilities(p1, q1, 0.5, 0.5 - shift);
      return ueEpsilon(c[0], c[1]);
    };
    double largest = leak.at(0.5 - 1e-15);
    if (!(b[1] < largest)) {
      throw new ConfigException("l-oue cannot reach epsilon_first = " + PyRepr.floatRepr(b[1]) + " with epsilon_perm = " + PyRepr.floatRepr(b[0])
          + " (at most " + String.format(java.util.Locale.ROOT, "%.6f", largest) + "); use l-osue");
    }
    double q2 = 0.5 - bisectIncreasing(leak, b[1], 0.0, 0.5 - 1e-15);
    return new UnaryLongitudinal("l-oue", b[0], b[1], domainSize, p1, q1, 0.5, q2, Double.NaN, Double.NaN, Double.NaN);
  }

  /** RAPPOR in Google's (f, p, q) on a one-hot encoding (h = 1); both epsilons derived. */
  static UnaryLongitudinal rappor(JsonElement domainSize, JsonElement f, JsonElement p, JsonElement q) {
    String[] labels = {"f", "p", "q"};
    JsonElement[] xs = {f, p, q};
    for (int i = 0; i < 3; i++) {
      if (!Json.isNumber(xs[i]) || !(0 < xs[i].getAsDouble() && xs[i].getAsDouble() < 1)) {
        throw new ConfigException("rappor: " + labels[i] + " must be a number in (0, 1), got " + PyRepr.repr(xs[i]));
      }
    }
    double ff = f.getAsDouble();
    double pp = p.getAsDouble();
    double qq = q.getAsDouble();
    if (!(qq > pp)) {
      throw new ConfigException("rappor: the IRR needs q > p (P[1 | PRR bit 1] > P[1 | PRR bit 0]), got p=" + PyRepr.repr(p) + " q=" + PyRepr.repr(q));
    }
    double[] g = rapporPrivacy(ff, pp, qq, 1);
    return new UnaryLongitudinal("rappor", g[3], g[2], domainSize, 1 - ff / 2, ff / 2, qq, pp, ff, pp, qq);
  }

  /** Google RAPPOR's {q*, p*, epsilon_first, epsilon_perm} for h hash functions (lue.py's rappor_privacy). */
  public static double[] rapporPrivacy(double f, double p, double q, int h) {
    double qStar = f * (p + q) / 2 + (1 - f) * q;
    double pStar = f * (p + q) / 2 + (1 - f) * p;
    return new double[] {qStar, pStar, h * ExactMath.log(qStar * (1 - pStar) / (pStar * (1 - qStar))), 2 * h * ExactMath.log((1 - f / 2) / (f / 2))};
  }

  @Override
  public JsonObject config() {
    if (name.equals("rappor")) return Json.obj("kind", KIND, "mechanism", name, "domain_size", domainSize, "f", f, "p", p, "q", q);
    return Json.obj("kind", KIND, "mechanism", name, "epsilon_perm", epsilonPerm, "epsilon_first", epsilonFirst, "domain_size", domainSize);
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
    double[] c = chainProbabilities(p1, q1, p2, q2);
    return ueEpsilon(c[0], c[1]);
  }

  @Override
  public long maxMemos() {
    return domainSize;
  }

  @Override
  public Map<String, Number> parameters() {
    double[] c = chainProbabilities(p1, q1, p2, q2);
    return baseParameters(p1, q1, p2, q2, c[0], c[1]);
  }

  @Override
  public long keySpace() {
    return domainSize;
  }

  @Override
  protected List<String> wireFields() {
    return Arrays.asList("v", "m", "bits");
  }

  @Override
  protected long memoKeyOne(long value, Object state) {
    return value;
  }

  @Override
  protected JsonElement drawMemo(long key, RandomSource source) {
    int k = (int) domainSize;
    return Json.of(Bits.pack(Sampling.bernoulliBits(k, j -> round1[j == key ? 1 : 0], source)));
  }

  @Override
  protected Object parsePrr(JsonElement prr) {
    return Bits.unpack(prr, (int) domainSize, "prr", 0, true);
  }

  @Override
  protected JsonObject round2(Object prr, Object state, RandomSource source) {
    byte[] memo = (byte[]) prr;
    JsonObject out = header();
    out.addProperty("bits", Bits.pack(Sampling.bernoulliBits(memo.length, j -> round2[memo[j]], source)));
    return out;
  }

  @Override
  public void decode(JsonElement payload, int index) {
    JsonObject o = checkHeader(payload, index);
    Bits.unpack(o.get("bits"), (int) domainSize, "bits", index, false);
  }

  @Override
  public long payloadOutcome(JsonObject payload) {
    return Bits.pattern(Bits.unpack(payload.get("bits"), (int) domainSize, "bits", 0, false));
  }

  private double[] oneHot(long key, double one, double zero) {
    double[] probs = new double[(int) domainSize];
    for (int j = 0; j < probs.length; j++) probs[j] = j == key ? one : zero;
    return probs;
  }

  @Override
  public Map<Long, Double> memoDistribution(long key) {
    return bitPatternDistribution(oneHot(key, p1, q1));
  }

  @Override
  public Map<Long, Double> reportDistribution(long memo) {
    double[] probs = new double[(int) domainSize];
    for (int j = 0; j < probs.length; j++) probs[j] = ((memo >> j) & 1) != 0 ? p2 : q2;
    return bitPatternDistribution(probs);
  }
}
