package org.ldp.sdk.longitudinal;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Olh;

/**
 * LOLOHA (client_sdk/longitudinal/loloha.py; OLOLOHA with the optimal g, BiLOLOHA with g = 2).
 * Each device draws one hash key for the whole horizon (its device state {@code "s"}, 16 hex
 * digits, hash family olh-mas-v1) and maps its value to x = H_s(v) in [g]: the memo key. Round
 * 1 is GRR over [g] at epsilon_perm, stored; round 2 GRR over [g] with L-GRR's round-2
 * parameters for k := g. Wire payload {@code {"v":1,"m":"loloha","s":"<hex>","y":y2}}. Ledger:
 * epsilon_perm per memoized hash value, at most min(g, k) memos.
 */
public final class Loloha extends LongitudinalProtocol {
  public static final long MAX_G = 1L << 20;
  public final double epsilonPerm;
  public final double epsilonFirst;
  public final long g;
  public final boolean tight;
  public final double p1;
  public final double q1;
  public final double p2;
  public final double q2;
  private final Sampling.Threshold keep1;
  private final Sampling.Threshold keep2;

  Loloha(String name, JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize, JsonElement g, JsonElement tight) {
    super(name);
    double[] b = validateBudgets(epsilonPerm, epsilonFirst);
    this.epsilonPerm = b[0];
    this.epsilonFirst = b[1];
    this.domainSize = FrequencyOracle.validateDomainSize(domainSize, Olh.MAX_KEY, name);
    long gg;
    if (g == null || g.isJsonNull()) {
      gg = ololohaG(b[0], b[1]);
    } else {
      Long v = Json.longValue(g);
      if (v == null || v < 2 || v > MAX_G) throw new ConfigException(name + ": hash range g must be an integer in [2, " + MAX_G + "], got " + PyRepr.repr(g));
      gg = v;
    }
    this.g = gg;
    this.tight = Lgrr.parseTight(tight);
    double[] p = Lgrr.parameters(b[0], b[1], gg, this.tight);
    p1 = p[0];
    q1 = p[1];
    p2 = p[2];
    q2 = p[3];
    checkProbabilities(name, new String[] {"p1", "q1", "p2", "q2"}, p);
    checkOrder(name, p1, q1Server(), p2, q2);
    keep1 = Sampling.Threshold.of(p1);
    keep2 = Sampling.Threshold.of(p2);
  }

  /** The real-valued optimum of OLOLOHA's hash range (before rounding). */
  public static double ololohaGReal(double epsilonPerm, double epsilonFirst) {
    double eps = epsilonPerm;
    double alpha = epsilonFirst / epsilonPerm;
    double root = Math.sqrt(ExactMath.exp(4 * eps) - 14 * ExactMath.exp(2 * eps) - 12 * ExactMath.exp(2 * eps * (alpha + 1))
        + 12 * ExactMath.exp(eps * (alpha + 1)) + 12 * ExactMath.exp(eps * (alpha + 3)) + 1);
    return (root - ExactMath.exp(2 * eps) + 6 * ExactMath.exp(eps) - 6 * ExactMath.exp(alpha * eps) + 1)
        / (6 * (ExactMath.exp(eps) - ExactMath.exp(alpha * eps)));
  }

  /** OLOLOHA's g = max(2, round(real optimum)), capped at 2^20. */
  public static long ololohaG(double epsilonPerm, double epsilonFirst) {
    double real = ololohaGReal(epsilonPerm, epsilonFirst);
    if (Double.isNaN(real)) throw new ConfigException("loloha: no optimal hash range for epsilon_perm = " + PyRepr.floatRepr(epsilonPerm));
    return Math.min(Math.max(2, ExactMath.roundHalfEven(real)), MAX_G);
  }

  /** The estimator's q1: a non-holder's hash collides with the report w.p. 1/g. */
  public double q1Server() {
    return 1.0 / g;
  }

  @Override
  public JsonObject config() {
    return Json.obj("kind", KIND, "mechanism", name, "epsilon_perm", epsilonPerm, "epsilon_first", epsilonFirst, "domain_size", domainSize, "g", g,
        "hash", Olh.HASH_FAMILY, "tight", tight);
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
    return ExactMath.log(Lgrr.oneReportRatio(p1, q1, p2, q2, g));
  }

  @Override
  public long maxMemos() {
    return Math.min(g, domainSize);
  }

  @Override
  public Map<String, Number> parameters() {
    double qs = q1Server();
    Map<String, Number> out = baseParameters(p1, q1, p2, q2, p1 * p2 + (1 - p1) * q2, qs * p2 + (1 - qs) * q2);
    out.put("g", g);
    out.put("q1_server", qs);
    return out;
  }

  @Override
  public long keySpace() {
    return g;
  }

  @Override
  public boolean needsState() {
    return true;
  }

  @Override
  protected List<String> wireFields() {
    return Arrays.asList("v", "m", "s", "y");
  }

  @Override
  protected void drawStateFields(JsonObject into, RandomSource source) {
    into.addProperty("s", hex16(Sampling.randomU64(source)));
  }

  static String hex16(long seed) {
    String h = Long.toHexString(seed);
    StringBuilder out = new StringBuilder();
    for (int i = h.length(); i < 16; i++) out.append('0');
    return out.append(h).toString();
  }

  /** The seed of a 16-hex-digit string, or null. */
  static Long parseSeed(JsonElement raw) {
    if (!Json.isString(raw)) return null;
    String s = raw.getAsString();
    if (s.length() != 16) return null;
    for (int i = 0; i < 16; i++) if (Character.digit(s.charAt(i), 16) < 0 || s.charAt(i) > 'f') return null;
    return Compat.parseHex64(s);
  }

  @Override
  protected Object parseStateFields(JsonObject record) {
    Long seed = parseSeed(record.get("s"));
    if (seed == null) throw new MemoException("device state 's' must be a 16-digit hexadecimal hash key, got " + PyRepr.repr(record.get("s")));
    return seed;
  }

  @Override
  protected long memoKeyOne(long value, Object state) {
    return Olh.hashValue((Long) state, value, g);
  }

  @Override
  protected JsonElement drawMemo(long key, RandomSource source) {
    return Json.of(Lgrr.grrOne(key, keep1, g, source));
  }

  @Override
  protected Object parsePrr(JsonElement prr) {
    Long y = Json.longValue(prr);
    if (y == null || y < 0 || y >= g) throw new MemoException("memo 'prr' must be an integer in [0, " + g + "), got " + PyRepr.repr(prr));
    return y;
  }

  @Override
  protected JsonObject round2(Object prr, Object state, RandomSource source) {
    JsonObject out = header();
    out.addProperty("s", hex16((Long) state));
    out.addProperty("y", Lgrr.grrOne((Long) prr, keep2, g, source));
    return out;
  }

  @Override
  public void decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    if (parseSeed(p.get("s")) == null) throw new ReportDecodeException("bad_type", "field 's' must be a 16-digit hexadecimal hash key", index);
    FrequencyOracle.decodeIndex(p.get("y"), g, "y", index);
  }

  @Override
  public long payloadOutcome(JsonObject payload) {
    return payload.get("y").getAsLong();
  }

  @Override
  public Map<Long, Double> memoDistribution(long key) {
    return grrDistribution(g, key, p1, q1);
  }

  @Override
  public Map<Long, Double> reportDistribution(long memo) {
    return grrDistribution(g, memo, p2, q2);
  }
}
