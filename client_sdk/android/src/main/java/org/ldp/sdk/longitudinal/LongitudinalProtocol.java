package org.ldp.sdk.longitudinal;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Jcs;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.SecureRandomSource;
import org.ldp.sdk.mechanisms.FrequencyOracle;

/**
 * The contract of every longitudinal (memoized) protocol, as client_sdk/longitudinal/_base.py.
 *
 * <p>Round 1 (the permanent randomized response): the device randomizes the memo key of its
 * value once, at budget epsilon_perm, and <b>stores</b> the result (the memo). Round 2: every
 * report re-randomizes the stored memo with fresh randomness (epsilon_first per report). Any
 * number of reports of one memo leak at most epsilon_perm; a new memo costs another
 * epsilon_perm, so the device ledger charges {@link #chargePerNewMemo()} per new memo, at most
 * {@link #maxMemos()} of them ({@link #lifetimeBound()}).
 *
 * <p>Device-side API (the runtime persists the two JSON records, never the value):
 *
 * <pre>
 * JsonObject state = m.newDeviceState(random);   // once per (device, collection); keep it
 * long key = m.memoKey(value, state);            // which memo this value uses
 * JsonObject memo = store.get(collection, key);  // null: a new memo, charged chargePerNewMemo()
 * memo = m.newMemo(value, state, random);        //   persist it BEFORE sending anything
 * JsonObject payload = m.perturbWithMemo(memo, state, random);  // round 2, every report
 * </pre>
 *
 * {@link #report} does all of that against a {@link MemoStore}. Every random draw comes from the
 * given {@link RandomSource} with the byte layout of the Python SDK (client_sdk/_random.py).
 */
public abstract class LongitudinalProtocol {
  public static final String KIND = "longitudinal";
  public static final int MEMO_VERSION = 1;
  public static final int WIRE_VERSION = FrequencyOracle.WIRE_VERSION;

  public final String name;
  /** k, set once by the protocol's constructor after its budgets are validated (Python's order of checks) */
  protected long domainSize;
  private String configHash;

  protected LongitudinalProtocol(String name) {
    this.name = name;
  }

  /** The number of values k (values lie in [0, k)). */
  public final long domainSize() {
    return domainSize;
  }

  // --- configuration and privacy ------------------------------------------------------------

  /** The canonical configuration (with {@code "kind": "longitudinal"}). */
  public abstract JsonObject config();

  public final String configHash() {
    if (configHash == null) configHash = Jcs.hash(config());
    return configHash;
  }

  /** epsilon_perm: what a memo costs (dBitFlipPM: its epsilon). */
  public abstract double epsilonPerm();

  /** epsilon_first: the most one report leaks as configured. */
  public abstract double epsilonFirst();

  /** The exact one-report leakage (at most {@link #epsilonFirst()}). */
  public abstract double epsilonFirstActual();

  /** The ledger charge of one new memo. */
  public double chargePerNewMemo() {
    return epsilonPerm();
  }

  /** The most memos a device can hold. */
  public abstract long maxMemos();

  public double lifetimeBound() {
    return maxMemos() * chargePerNewMemo();
  }

  /** Total charge of a device holding {@code memoCount} memos. */
  public double ledgerCharge(long memoCount) {
    if (memoCount < 0 || memoCount > maxMemos()) {
      throw new IllegalArgumentException("memo_count must lie in [0, " + maxMemos() + "] for " + name + ", got " + memoCount);
    }
    return memoCount * chargePerNewMemo();
  }

  /** Python's privacy.parameters (p1, q1, p2, q2, p_star, q_star, ...). */
  public abstract Map<String, Number> parameters();

  /** Number of distinct memo keys (keys lie in [0, keySpace)). */
  public abstract long keySpace();

  /** Does the device state carry data (a hash key, sampled buckets)? */
  public boolean needsState() {
    return false;
  }

  /** The wire payload's fields ("v", "m" and the protocol's own). */
  protected abstract List<String> wireFields();

  // --- values and records -------------------------------------------------------------------

  protected long checkValue(long value) {
    if (value < 0 || value >= domainSize) throw new IllegalArgumentException("value " + value + " is outside the domain [0, " + domainSize + ")");
    return value;
  }

  protected JsonObject recordHeader() {
    return Json.obj("v", MEMO_VERSION, "m", name, "h", configHash());
  }

  protected JsonObject checkRecord(JsonElement record, String what) {
    if (record == null || !record.isJsonObject()) throw new MemoException(what + " must be a JSON object");
    JsonObject o = record.getAsJsonObject();
    if (!Json.isVersion(o.get("v"), MEMO_VERSION)) throw new MemoException(what + " version must be " + MEMO_VERSION + ", got " + PyRepr.repr(o.get("v")));
    if (!(Json.isString(o.get("m")) && o.get("m").getAsString().equals(name))) {
      throw new MemoException(what + " is for mechanism " + PyRepr.repr(o.get("m")) + ", expected '" + name + "'");
    }
    if (!(Json.isString(o.get("h")) && o.get("h").getAsString().equals(configHash()))) {
      throw new MemoException(what + " belongs to another configuration (" + PyRepr.repr(o.get("h")) + ", expected " + configHash() + ")");
    }
    return o;
  }

  /** The device's state for this collection, drawn once and kept for the whole horizon. */
  public JsonObject newDeviceState(RandomSource source) {
    JsonObject out = recordHeader();
    drawStateFields(out, source);
    return out;
  }

  public JsonObject newDeviceState() {
    return newDeviceState(SecureRandomSource.INSTANCE);
  }

  protected void drawStateFields(JsonObject into, RandomSource source) {}

  /** The validated state in internal form (null for stateless protocols). */
  protected Object parseState(JsonElement state) {
    if (state == null || state.isJsonNull()) {
      if (needsState()) throw new MemoException(name + " needs the device state (newDeviceState(), kept for the horizon)");
      return null;
    }
    return parseStateFields(checkRecord(state, "device state"));
  }

  protected Object parseStateFields(JsonObject record) {
    return null;
  }

  /** The key of the memo {@code value} uses: a new key means a new memo and a new charge. */
  public long memoKey(long value, JsonObject state) {
    return memoKeyOne(checkValue(value), parseState(state));
  }

  /** Round 1 for {@code value}: a JSON record to persist and reuse for every later report of its key. */
  public JsonObject newMemo(long value, JsonObject state, RandomSource source) {
    long key = memoKey(value, state);
    JsonObject out = recordHeader();
    out.addProperty("key", key);
    out.add("prr", drawMemo(key, source));
    return out;
  }

  /** Round 2: one wire payload from a stored memo, fresh randomness every call. */
  public JsonObject perturbWithMemo(JsonObject memo, JsonObject state, RandomSource source) {
    Object parsedState = parseState(state);
    JsonObject record = checkRecord(memo, "memo");
    JsonElement key = record.get("key");
    Long k = Json.longValue(key);
    if (k == null || k < 0 || k >= keySpace()) throw new MemoException("memo key must be an integer in [0, " + keySpace() + "), got " + PyRepr.repr(key));
    return round2(parsePrr(record.get("prr")), parsedState, source);
  }

  /** One memoized report against a {@link MemoStore} (Python's {@code m.report(value, store, collection)}). */
  public ReportOutcome report(long value, MemoStore store, String collection, RandomSource source) {
    return report(value, store, collection, source, null);
  }

  /**
   * As {@link #report(long, MemoStore, String, RandomSource)}; a new memo is charged
   * {@link #chargePerNewMemo()} and, if {@code canSpend} refuses that charge, refused with
   * {@link MemoBudgetException} before anything of the memo is drawn (Python's {@code can_spend}).
   */
  public ReportOutcome report(long value, MemoStore store, String collection, RandomSource source, java.util.function.DoublePredicate canSpend) {
    checkValue(value);
    JsonObject state = store.getState(collection);
    if (state == null) {
      state = newDeviceState(source);
      store.putState(collection, state);
    }
    long key = memoKey(value, state);
    JsonObject memo = store.get(collection, key);
    boolean created = memo == null;
    double charge = 0.0;
    if (created) {
      charge = chargePerNewMemo();
      if (canSpend != null && !canSpend.test(charge)) {
        throw new MemoBudgetException("a new memo for collection " + PyRepr.strRepr(collection) + " costs " + PyRepr.floatRepr(charge)
            + "; the device budget refuses it");
      }
      memo = newMemo(value, state, source);
      store.put(collection, key, memo);
    }
    return new ReportOutcome(perturbWithMemo(memo, state, source), key, created, charge);
  }

  // protocol hooks
  protected abstract long memoKeyOne(long value, Object state);

  protected abstract JsonElement drawMemo(long key, RandomSource source);

  protected abstract Object parsePrr(JsonElement prr);

  protected abstract JsonObject round2(Object prr, Object state, RandomSource source);

  // --- wire form ----------------------------------------------------------------------------

  protected JsonObject header() {
    return Json.obj("v", WIRE_VERSION, "m", name);
  }

  protected JsonObject checkHeader(JsonElement payload, int index) {
    if (payload == null || !payload.isJsonObject()) throw new ReportDecodeException("not_an_object", "payload must be a JSON object", index);
    JsonObject p = payload.getAsJsonObject();
    JsonElement v = Json.get(p, "v");
    if (!Json.isVersion(v, WIRE_VERSION)) {
      throw new ReportDecodeException("bad_version", "wire version must be the integer " + WIRE_VERSION + ", got " + PyRepr.repr(v), index);
    }
    JsonElement m = Json.get(p, "m");
    if (!(Json.isString(m) && m.getAsString().equals(name))) {
      throw new ReportDecodeException("wrong_mechanism", "payload is for mechanism " + PyRepr.repr(m) + ", expected '" + name + "'", index);
    }
    Json.refuseUnknownFields(p, wireFields(), index);
    return p;
  }

  /** Validate one wire payload as the server does (ReportDecodeException with its reason). */
  public abstract void decode(JsonElement payload, int index);

  /** The outcome of a payload as keyed in {@link #outputDistribution} (an index or a bit pattern). */
  public abstract long payloadOutcome(JsonObject payload);

  // --- exact laws (small domains) -------------------------------------------------------------

  /** Exact law of the permanent response for a memo key (keys: outcome codes). */
  public abstract Map<Long, Double> memoDistribution(long key);

  /** Exact law of one round-2 output given a permanent response code. */
  public abstract Map<Long, Double> reportDistribution(long memo);

  /** Exact law of one report of {@code value} (a fresh memo, then round 2). */
  public Map<Long, Double> outputDistribution(long value, JsonObject state) {
    long key = memoKey(value, state);
    Map<Long, Double> out = new LinkedHashMap<>();
    for (Map.Entry<Long, Double> m : memoDistribution(key).entrySet()) {
      for (Map.Entry<Long, Double> r : reportDistribution(m.getKey()).entrySet()) out.merge(r.getKey(), m.getValue() * r.getValue(), Double::sum);
    }
    return out;
  }

  /** Law of independent bits (bit j is 1 w.p. probabilities[j]) over patterns sum bit_j 2^j; at most 12 bits. */
  /** The law of GRR over {@code [0, size)}: {@code p} on {@code hit}, {@code q} on every other value. */
  protected static Map<Long, Double> grrDistribution(long size, long hit, double p, double q) {
    Map<Long, Double> out = new LinkedHashMap<>();
    for (long y = 0; y < size; y++) out.put(y, y == hit ? p : q);
    return out;
  }

  protected static Map<Long, Double> bitPatternDistribution(double[] probabilities) {
    if (probabilities.length > 12) throw new UnsupportedOperationException("exact output laws are enumerated for at most 12 bits");
    Map<Long, Double> out = new LinkedHashMap<>();
    for (long pattern = 0; pattern < (1L << probabilities.length); pattern++) {
      double w = 1;
      for (int j = 0; j < probabilities.length; j++) w *= ((pattern >> j) & 1) != 0 ? probabilities[j] : 1 - probabilities[j];
      out.put(pattern, w);
    }
    return out;
  }

  // --- shared math (the Python SDK's formulas, its libm functions) ----------------------------

  /** epsilon_IRR = ln[(e^{perm+first} - 1)/(e^perm - e^first)], as log(expm1(a+b)) - b - log(expm1(a-b)). */
  public static double irrEpsilon(double epsilonPerm, double epsilonFirst) {
    if (!(0 < epsilonFirst && epsilonFirst < epsilonPerm)) {
      throw new ConfigException("need 0 < epsilon_first < epsilon_perm, got " + PyRepr.floatRepr(epsilonFirst) + " and " + PyRepr.floatRepr(epsilonPerm));
    }
    return ExactMath.log(StrictMath.expm1(epsilonPerm + epsilonFirst)) - epsilonFirst - ExactMath.log(StrictMath.expm1(epsilonPerm - epsilonFirst));
  }

  /** (p*, q*) of the two-round chain. */
  public static double[] chainProbabilities(double p1, double q1, double p2, double q2) {
    return new double[] {p1 * p2 + (1 - p1) * q2, q1 * p2 + (1 - q1) * q2};
  }

  /** An increasing function of x. */
  public interface Increasing {
    double at(double x);
  }

  /** The x in [low, high] with fn(x) = target, for fn increasing (bisection to float precision). */
  public static double bisectIncreasing(Increasing fn, double target, double low, double high) {
    for (int i = 0; i < 200; i++) {
      double mid = (low + high) / 2;
      if (mid == low || mid == high) break;
      if (fn.at(mid) < target) low = mid;
      else high = mid;
    }
    return (low + high) / 2;
  }

  /** Refuse derived probabilities outside (0, 1). */
  protected static void checkProbabilities(String mechanism, String[] names, double[] values) {
    for (int i = 0; i < names.length; i++) {
      double p = values[i];
      if (!(!Double.isNaN(p) && !Double.isInfinite(p) && 0.0 < p && p < 1.0)) {
        throw new ConfigException(mechanism + ": derived probability " + names[i] + " = " + PyRepr.floatRepr(p) + " is outside (0, 1)");
      }
    }
  }

  /** Refuse p1 <= q1 or p2 <= q2. */
  protected static void checkOrder(String mechanism, double p1, double q1, double p2, double q2) {
    if (!(p1 > q1)) throw new ConfigException(mechanism + ": round 1 needs p1 > q1, got p1=" + PyRepr.floatRepr(p1) + " q1=" + PyRepr.floatRepr(q1));
    if (!(p2 > q2)) throw new ConfigException(mechanism + ": round 2 needs p2 > q2, got p2=" + PyRepr.floatRepr(p2) + " q2=" + PyRepr.floatRepr(q2));
  }

  /** (epsilon_perm, epsilon_first), each a valid epsilon, with first < perm. */
  static double[] validateBudgets(JsonElement epsilonPerm, JsonElement epsilonFirst) {
    double perm = FrequencyOracle.validateEpsilon(epsilonPerm, "epsilon_perm");
    double first = FrequencyOracle.validateEpsilon(epsilonFirst, "epsilon_first");
    if (!(first < perm)) {
      throw new ConfigException("epsilon_first (" + PyRepr.floatRepr(first) + ") must be smaller than epsilon_perm (" + PyRepr.floatRepr(perm) + ")");
    }
    return new double[] {perm, first};
  }

  /** numpy's logaddexp(x, y) with the libm log1p Python uses (fdlibm's, as StrictMath's). */
  static double logaddexp(double x, double y) {
    if (x == y) return x + Math.log(2.0);
    double t = x - y;
    if (t > 0) return x + StrictMath.log1p(ExactMath.exp(-t));
    if (t <= 0) return y + StrictMath.log1p(ExactMath.exp(t));
    return t;
  }

  protected static Map<String, Number> baseParameters(double p1, double q1, double p2, double q2, double pStar, double qStar) {
    Map<String, Number> out = new LinkedHashMap<>();
    out.put("p1", p1);
    out.put("q1", q1);
    out.put("p2", p2);
    out.put("q2", q2);
    out.put("p_star", pStar);
    out.put("q_star", qStar);
    return out;
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + Json.write(config());
  }
}
