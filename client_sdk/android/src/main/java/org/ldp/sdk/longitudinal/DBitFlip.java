package org.ldp.sdk.longitudinal;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.mechanisms.FrequencyOracle;

/**
 * dBitFlipPM (client_sdk/longitudinal/dbitflip.py; Ding, Kulkarni, Yekhanin, NeurIPS 2017).
 * The domain is cut into b buckets ({@code bucket(v) = floor(v b / k)}); each device samples d
 * distinct buckets once (its device state {@code "j"}, ascending) and sends one bit per sampled
 * bucket: 1 w.p. e^{eps/2}/(e^{eps/2}+1) for the value's bucket, else w.p. 1/(e^{eps/2}+1). The
 * response depends only on the pattern (which sampled index holds the bucket, d if none: the
 * memo key) and is memoized per pattern; there is no second round. Wire payload
 * {@code {"v":1,"m":"dbitflip","j":[...],"bits":"<base64>"}}. Ledger: epsilon per memo, at
 * most min(d + 1, b) memos.
 */
public final class DBitFlip extends LongitudinalProtocol {
  public static final long MAX_BUCKETS = 1L << 16;
  public static final long MAX_DOMAIN_SIZE = 1L << 31;
  public final double epsilon;
  public final int buckets;
  public final int d;
  public final double p;
  public final double q;
  private final Sampling.Threshold[] bit;

  DBitFlip(JsonElement epsilon, JsonElement domainSize, JsonElement buckets, JsonElement d) {
    super("dbitflip");
    this.epsilon = FrequencyOracle.validateEpsilon(epsilon, "epsilon");
    this.domainSize = FrequencyOracle.validateDomainSize(domainSize, MAX_DOMAIN_SIZE, name);
    if (buckets == null || buckets.isJsonNull() || d == null || d.isJsonNull()) {
      throw new ConfigException("dbitflip needs the number of buckets b and the number d of sampled buckets");
    }
    this.buckets = (int) checkInt(buckets, "buckets", 2, Math.min(this.domainSize, MAX_BUCKETS));
    this.d = (int) checkInt(d, "d", 1, this.buckets);
    double half = ExactMath.exp(this.epsilon / 2);
    p = half / (half + 1.0);
    q = 1.0 / (half + 1.0);
    bit = new Sampling.Threshold[] {Sampling.Threshold.ofVector(q), Sampling.Threshold.ofVector(p)};
  }

  private static long checkInt(JsonElement x, String what, long low, long high) {
    Long v = Json.longValue(x);
    if (v == null || v < low || v > high) throw new ConfigException("dbitflip: " + what + " must be an integer in [" + low + ", " + high + "], got " + PyRepr.repr(x));
    return v;
  }

  @Override
  public JsonObject config() {
    return Json.obj("kind", KIND, "mechanism", name, "epsilon", epsilon, "domain_size", domainSize, "buckets", buckets, "d", d);
  }

  @Override
  public double epsilonPerm() {
    return epsilon;
  }

  @Override
  public double epsilonFirst() {
    return epsilon;
  }

  @Override
  public double epsilonFirstActual() {
    return d >= 2 ? epsilon : epsilon / 2;
  }

  @Override
  public long maxMemos() {
    return Math.min(d + 1, buckets);
  }

  @Override
  public Map<String, Number> parameters() {
    Map<String, Number> out = new LinkedHashMap<>();
    out.put("p", p);
    out.put("q", q);
    out.put("buckets", buckets);
    out.put("d", d);
    return out;
  }

  @Override
  public long keySpace() {
    return d + 1;
  }

  @Override
  public boolean needsState() {
    return true;
  }

  @Override
  protected List<String> wireFields() {
    return Arrays.asList("v", "m", "j", "bits");
  }

  /** Bucket of a value: floor(v b / k). */
  public long bucketOf(long value) {
    return Math.multiplyExact(value, (long) buckets) / domainSize;
  }

  @Override
  protected void drawStateFields(JsonObject into, RandomSource source) {
    int[] pool = new int[buckets];
    for (int i = 0; i < buckets; i++) pool[i] = i;
    for (int i = 0; i < d; i++) { // partial Fisher-Yates
      int j = i + (int) Sampling.uniformInt((long) (buckets - i), source);
      int t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    int[] chosen = Arrays.copyOf(pool, d);
    Arrays.sort(chosen);
    into.add("j", Json.of(chosen));
  }

  /** d distinct ascending buckets in [0, b), or null. */
  private int[] parseIndices(JsonElement raw) {
    if (raw == null || !raw.isJsonArray() || raw.getAsJsonArray().size() != d) return null;
    JsonArray a = raw.getAsJsonArray();
    int[] out = new int[d];
    for (int i = 0; i < d; i++) {
      Long v = Json.longValue(a.get(i));
      if (v == null || v < 0 || v >= buckets || (i > 0 && v <= out[i - 1])) return null;
      out[i] = (int) (long) v;
    }
    return out;
  }

  @Override
  protected Object parseStateFields(JsonObject record) {
    int[] j = parseIndices(record.get("j"));
    if (j == null) {
      throw new MemoException("device state 'j' must list " + d + " distinct ascending buckets in [0, " + buckets + "), got " + PyRepr.repr(record.get("j")));
    }
    return j;
  }

  @Override
  protected long memoKeyOne(long value, Object state) {
    int[] sampled = (int[]) state;
    long b = bucketOf(value);
    for (int i = 0; i < sampled.length; i++) if (sampled[i] == b) return i;
    return d;
  }

  @Override
  protected JsonElement drawMemo(long key, RandomSource source) {
    return Json.of(Bits.pack(Sampling.bernoulliBits(d, i -> bit[i == key ? 1 : 0], source)));
  }

  @Override
  protected Object parsePrr(JsonElement prr) {
    return Bits.unpack(prr, d, "prr", 0, true);
  }

  @Override
  protected JsonObject round2(Object prr, Object state, RandomSource source) {
    // no second round: the memoized response itself is resent
    JsonObject out = header();
    out.add("j", Json.of((int[]) state));
    out.addProperty("bits", Bits.pack((byte[]) prr));
    return out;
  }

  @Override
  public void decode(JsonElement payload, int index) {
    JsonObject o = checkHeader(payload, index);
    if (parseIndices(o.get("j")) == null) {
      throw new ReportDecodeException("bad_indices", "field 'j' must list " + d + " distinct ascending buckets in [0, " + buckets + ")", index);
    }
    Bits.unpack(o.get("bits"), d, "bits", index, false);
  }

  @Override
  public long payloadOutcome(JsonObject payload) {
    return Bits.pattern(Bits.unpack(payload.get("bits"), d, "bits", 0, false));
  }

  @Override
  public Map<Long, Double> memoDistribution(long key) {
    double[] probs = new double[d];
    for (int i = 0; i < d; i++) probs[i] = i == key ? p : q;
    return bitPatternDistribution(probs);
  }

  @Override
  public Map<Long, Double> reportDistribution(long memo) {
    Map<Long, Double> out = new LinkedHashMap<>();
    out.put(memo, 1.0);
    return out;
  }
}
