package org.ldp.sdk.multidim;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.Base64Codec;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.SecureRandomSource;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Grr;
import org.ldp.sdk.mechanisms.UnaryEncoding;

/**
 * RS+FD, random sampling plus fake data (Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021); the
 * device side of client_sdk/multidim/rsfd.py, byte-compatible on the wire.
 *
 * <p>Each user samples one attribute j uniformly (never sent), perturbs v_j at the amplified
 * budget eps' = ln(d(e^eps - 1) + 1) and sends fake data for every other attribute: rsfd-grr
 * (GRR / uniform values), rsfd-oue-z (OUE / OUE of the zero vector), rsfd-oue-r (OUE / OUE of a
 * random one-hot vector), rsfd-adp (per attribute GRR or OUE-z, whichever has the lower
 * variance).
 *
 * <p>Privacy: for whole tuples (the standard notion, {@code neighbouring: "tuple"}, default)
 * the loss is exactly eps'; for tuples differing in one attribute it is
 * {@link #epsilonAttribute()}. {@code privacy.epsilon} is what the ledger charges (docs/multidim.md).
 *
 * <p>The sampled attribute must not leak through the draws: {@link #perturb} makes the same
 * draws in the same order whatever attribute is sampled (Python's order, so the shared vectors
 * replay the same bytes) and merges real and fake parts by arithmetic selection.
 */
public final class Rsfd implements MultidimProtocol {
  public static final String KIND = "multidim";
  public static final int MAX_ATTRIBUTES = 256;
  public static final String FAKE_UNIFORM = "uniform";
  public static final String FAKE_ZERO = "zero";
  public static final String FAKE_ONE_HOT = "one-hot";
  public static final List<String> RSFD_NAMES = Collections.unmodifiableList(Arrays.asList("rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp"));

  public final String name;
  public final double epsilon;
  public final long[] domainSizes;
  public final String neighbouring;
  public final double epsilonAmplified;
  public final List<AttributeParameters> attributes;
  private final int[] bitOffsets;
  private final int totalBits;
  private final Sampling.Threshold[] keep;
  private final Sampling.Threshold[] base;
  private final Sampling.Threshold[] hot;
  private final Sampling.Threshold[] fakeHot;

  private Rsfd(String name, JsonElement epsilon, JsonElement domainSizes, JsonElement neighbouring) {
    this.name = name;
    this.epsilon = FrequencyOracle.validateEpsilon(epsilon, "epsilon");
    long max = name.equals("rsfd-grr") ? Grr.MAX_DOMAIN_SIZE : UnaryEncoding.MAX_DOMAIN_SIZE;
    this.domainSizes = validateDomainSizes(domainSizes, max, name);
    if (!(Json.isString(neighbouring) && (neighbouring.getAsString().equals("tuple") || neighbouring.getAsString().equals("attribute")))) {
      throw new ConfigException("neighbouring must be one of ('tuple', 'attribute'), got " + PyRepr.repr(neighbouring));
    }
    this.neighbouring = neighbouring.getAsString();
    int d = this.domainSizes.length;
    this.epsilonAmplified = amplifiedEpsilon(this.epsilon, d);
    if (epsilonAmplified > FrequencyOracle.EPSILON_MAX) {
      throw new ConfigException(String.format(java.util.Locale.ROOT,
          "the amplified budget ε' = ln(d(e^ε − 1) + 1) = %.3f exceeds %s; lower epsilon", epsilonAmplified, PyRepr.floatRepr(FrequencyOracle.EPSILON_MAX)));
    }
    List<AttributeParameters> list = new ArrayList<>();
    for (long k : this.domainSizes) list.add(attribute(k, epsilonAmplified, d));
    this.attributes = Collections.unmodifiableList(list);
    for (AttributeParameters a : attributes) {
      if (!(0 < a.q && a.q < a.p && a.p < 1)) {
        throw new ConfigException("derived probabilities p=" + PyRepr.floatRepr(a.p) + ", q=" + PyRepr.floatRepr(a.q) + " are unusable (need 0 < q < p < 1)");
      }
    }
    bitOffsets = new int[d];
    int offset = 0;
    keep = new Sampling.Threshold[d];
    base = new Sampling.Threshold[d];
    hot = new Sampling.Threshold[d];
    fakeHot = new Sampling.Threshold[d];
    for (int i = 0; i < d; i++) {
      AttributeParameters a = attributes.get(i);
      bitOffsets[i] = a.oracle.equals("oue") ? offset : -1;
      if (a.oracle.equals("oue")) offset += (int) a.k;
      keep[i] = Sampling.Threshold.of(a.p);
      base[i] = Sampling.Threshold.ofVector(a.q);
      hot[i] = Sampling.Threshold.ofVector(a.p);
      fakeHot[i] = Sampling.Threshold.ofVector(a.fake.equals(FAKE_ONE_HOT) ? a.p : a.q);
    }
    totalBits = offset;
  }

  private AttributeParameters attribute(long k, double epsAmp, int d) {
    switch (name) {
      case "rsfd-grr": return grrAttribute(k, epsAmp);
      case "rsfd-oue-z": return oueAttribute(k, epsAmp, FAKE_ZERO);
      case "rsfd-oue-r": return oueAttribute(k, epsAmp, FAKE_ONE_HOT);
      default: {
        AttributeParameters grr = grrAttribute(k, epsAmp);
        AttributeParameters oue = oueAttribute(k, epsAmp, FAKE_ZERO);
        return varianceAtZero(grr, d) <= varianceAtZero(oue, d) ? grr : oue;
      }
    }
  }

  /** eps' = ln(d(e^eps - 1) + 1): the budget of the sampled attribute. */
  public static double amplifiedEpsilon(double epsilon, int d) {
    return StrictMath.log1p(d * StrictMath.expm1(epsilon));
  }

  private static AttributeParameters grrAttribute(long k, double epsAmp) {
    double[] pq = Grr.probabilities(epsAmp, k);
    return new AttributeParameters(k, "grr", FAKE_UNIFORM, epsAmp, pq[0], pq[1], 1.0 / k);
  }

  private static AttributeParameters oueAttribute(long k, double epsAmp, String fake) {
    double p = 0.5;
    double q = 1.0 / (ExactMath.exp(epsAmp) + 1.0);
    double b = fake.equals(FAKE_ZERO) ? q : (p + (k - 1) * q) / k;
    return new AttributeParameters(k, "oue", fake, epsAmp, p, q, b);
  }

  private static double varianceAtZero(AttributeParameters a, int d) {
    double delta = a.delta(0.0, d);
    double gap = a.p - a.q;
    return d * d * delta * (1 - delta) / (gap * gap);
  }

  static long[] validateDomainSizes(JsonElement domainSizes, long maximum, String mechanism) {
    if (domainSizes == null || !domainSizes.isJsonArray()) {
      throw new ConfigException("domain_sizes must be a list of integers, got " + PyRepr.repr(domainSizes));
    }
    JsonArray a = domainSizes.getAsJsonArray();
    if (a.size() < 1 || a.size() > MAX_ATTRIBUTES) {
      throw new ConfigException("domain_sizes must list 1 to " + MAX_ATTRIBUTES + " attributes, got " + a.size());
    }
    long[] out = new long[a.size()];
    for (int j = 0; j < out.length; j++) {
      try {
        out[j] = FrequencyOracle.validateDomainSize(a.get(j), maximum, mechanism);
      } catch (ConfigException e) {
        throw new ConfigException("attribute " + j + ": " + e.getMessage());
      }
    }
    return out;
  }

  @Override
  public int d() {
    return domainSizes.length;
  }

  @Override
  public JsonObject config() {
    JsonArray sizes = new JsonArray();
    for (long k : domainSizes) sizes.add(k);
    return Json.obj("kind", KIND, "mechanism", name, "epsilon", epsilon, "domain_sizes", sizes, "neighbouring", neighbouring);
  }

  public String configHash() {
    return Json.configHash(config());
  }

  /** Exact worst-case loss over any two tuples: eps'. */
  @Override
  public double epsilonTuple() {
    return epsilonAmplified;
  }

  /** Exact worst-case loss over tuples differing in one attribute. */
  @Override
  public double epsilonAttribute() {
    double[] minima = new double[d()];
    BigDecimal exact = BigDecimal.ZERO;
    for (int i = 0; i < minima.length; i++) {
      minima[i] = attributes.get(i).ratioMin();
      exact = exact.add(new BigDecimal(minima[i]));
    }
    double total = exact.doubleValue(); // math.fsum: the correctly rounded sum
    double worst = 0.0;
    for (int i = 0; i < minima.length; i++) {
      double rest = total - minima[i];
      double[] pair = attributes.get(i).ratioPair();
      worst = Math.max(worst, Math.log((rest + pair[0]) / (rest + pair[1])));
    }
    return worst;
  }

  /** What the ledger charges per report under the promised notion. */
  @Override
  public double epsilonCharged() {
    return neighbouring.equals("tuple") ? epsilonTuple() : Math.max(epsilon, epsilonAttribute());
  }

  /** n Var* per attribute at f = 0. */
  public double[] varianceApproxPerUser() {
    double[] out = new double[d()];
    for (int i = 0; i < out.length; i++) out[i] = varianceAtZero(attributes.get(i), d());
    return out;
  }

  private int[] checkTuple(int[] value) {
    if (value.length != d()) {
      throw new IllegalArgumentException("a report needs a tuple of " + d() + " values (one per attribute), got " + value.length);
    }
    for (int j = 0; j < value.length; j++) {
      if (value[j] < 0 || value[j] >= domainSizes[j]) {
        throw new IllegalArgumentException("attribute " + j + ": value " + value[j] + " is outside the domain [0, " + domainSizes[j] + ")");
      }
    }
    return value;
  }

  public JsonObject perturb(int[] value) {
    return perturb(value, SecureRandomSource.INSTANCE);
  }

  /**
   * One report's wire payload. Draws, in Python's order: the sampled attribute; per
   * attribute, GRR: keep bit, other value, fake value; OUE: fake hot position; then every OUE
   * bit (8 bytes each).
   */
  @Override
  public JsonObject perturb(int[] value, RandomSource source) {
    int[] v = checkTuple(value);
    int d = d();
    int j = Sampling.uniformInt(d, source);
    long[] y = new long[d];
    final int[] hotPosition = new int[d];
    final Sampling.Threshold[] hotThreshold = new Sampling.Threshold[d];
    Arrays.fill(hotPosition, -1);
    for (int i = 0; i < d; i++) {
      AttributeParameters a = attributes.get(i);
      int s = i == j ? 1 : 0;
      if (a.oracle.equals("grr")) {
        int kept = Sampling.bernoulli(keep[i], source) ? 1 : 0;
        long other = Sampling.uniformInt(a.k - 1, source);
        other += other >= v[i] ? 1 : 0;
        long real = kept * (long) v[i] + (1 - kept) * other;
        long fake = Sampling.uniformInt(a.k, source);
        y[i] = s * real + (1 - s) * fake;
      } else {
        int fakePosition = (int) Sampling.uniformInt(a.k, source);
        hotPosition[i] = s * v[i] + (1 - s) * fakePosition;
        hotThreshold[i] = s == 1 ? hot[i] : fakeHot[i];
      }
    }
    JsonArray out = new JsonArray();
    byte[] bits = null;
    if (totalBits > 0) {
      final int[] owner = new int[totalBits];
      for (int i = 0; i < d; i++) {
        if (bitOffsets[i] >= 0) Arrays.fill(owner, bitOffsets[i], bitOffsets[i] + (int) attributes.get(i).k, i);
      }
      bits = Sampling.bernoulliBits(totalBits, b -> {
        int i = owner[b];
        return b - bitOffsets[i] == hotPosition[i] ? hotThreshold[i] : base[i];
      }, source);
    }
    for (int i = 0; i < d; i++) {
      if (bitOffsets[i] >= 0) out.add(Base64Codec.encode(UnaryEncoding.packBits(bits, bitOffsets[i], (int) attributes.get(i).k)));
      else out.add(y[i]);
    }
    JsonObject payload = Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", name);
    payload.add("y", out);
    return payload;
  }

  /** The wire payload of a report given per attribute: Long (GRR) or byte[] of k bits (OUE). */
  public JsonObject encode(List<Object> report) {
    if (report.size() != d()) throw new IllegalArgumentException("a report has " + d() + " entries");
    JsonArray y = new JsonArray();
    for (int i = 0; i < d(); i++) {
      AttributeParameters a = attributes.get(i);
      Object entry = report.get(i);
      if (a.oracle.equals("grr")) {
        long v = ((Number) entry).longValue();
        if (v < 0 || v >= a.k) throw new IllegalArgumentException("attribute " + i + ": value must be an integer in [0, " + a.k + ")");
        y.add(v);
      } else {
        byte[] b = (byte[]) entry;
        if (b.length != a.k) throw new IllegalArgumentException("attribute " + i + ": expected " + a.k + " bits");
        y.add(Base64Codec.encode(UnaryEncoding.packBits(b, 0, (int) a.k)));
      }
    }
    JsonObject payload = Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", name);
    payload.add("y", y);
    return payload;
  }

  /** Parse one payload as the Python server does: per attribute a Long (GRR) or byte[] bits (OUE). */
  @Override
  public List<Object> decode(JsonElement payload, int index) {
    if (payload == null || !payload.isJsonObject()) throw new ReportDecodeException("not_an_object", "payload must be a JSON object", index);
    JsonObject p = payload.getAsJsonObject();
    JsonElement v = Json.get(p, "v");
    if (!Json.isVersion(v, FrequencyOracle.WIRE_VERSION)) {
      throw new ReportDecodeException("bad_version", "wire version must be the integer 1, got " + PyRepr.repr(v), index);
    }
    JsonElement m = Json.get(p, "m");
    if (!(Json.isString(m) && m.getAsString().equals(name))) {
      throw new ReportDecodeException("wrong_mechanism", "payload is for mechanism " + PyRepr.repr(m) + ", expected " + PyRepr.strRepr(name), index);
    }
    Json.refuseUnknownFields(p, java.util.Arrays.asList("v", "m", "y"), index);
    JsonElement y = Json.get(p, "y");
    if (y == null || !y.isJsonArray()) throw new ReportDecodeException("bad_type", "field 'y' must be a list of " + d() + " entries", index);
    JsonArray a = y.getAsJsonArray();
    if (a.size() != d()) {
      throw new ReportDecodeException("bad_length", "field 'y' has " + a.size() + " entries, expected " + d() + " (one per attribute)", index);
    }
    List<Object> out = new ArrayList<>();
    for (int i = 0; i < d(); i++) {
      AttributeParameters at = attributes.get(i);
      String field = "y[" + i + "]";
      if (at.oracle.equals("grr")) out.add(FrequencyOracle.decodeIndex(a.get(i), at.k, field, index));
      else out.add(UnaryEncoding.decodeBits(a.get(i), (int) at.k, field, " of " + at.k + " packed bits", index));
    }
    return out;
  }

  /** Exact probability of every report for one tuple (small domains), keyed "y0,y1,..." (OUE as bit patterns). */
  public Map<String, Double> outputDistribution(int[] value) {
    int[] v = checkTuple(value);
    int d = d();
    double[][] real = new double[d][];
    double[][] fake = new double[d][];
    for (int i = 0; i < d; i++) {
      AttributeParameters a = attributes.get(i);
      if (a.oracle.equals("grr")) {
        real[i] = new double[(int) a.k];
        fake[i] = new double[(int) a.k];
        for (int y = 0; y < a.k; y++) {
          real[i][y] = y == v[i] ? a.p : a.q;
          fake[i][y] = 1.0 / a.k;
        }
      } else {
        if (a.k > 12) throw new UnsupportedOperationException("output distribution enumerated for k <= 12 only");
        int n = 1 << (int) a.k;
        real[i] = new double[n];
        fake[i] = new double[n];
        for (int y = 0; y < n; y++) {
          real[i][y] = pattern(a, y, v[i]);
          if (a.fake.equals(FAKE_ZERO)) {
            fake[i][y] = pattern(a, y, -1);
          } else {
            double s = 0;
            for (int u = 0; u < a.k; u++) s += pattern(a, y, u);
            fake[i][y] = s / a.k;
          }
        }
      }
    }
    Map<String, Double> out = new LinkedHashMap<>();
    int[] combo = new int[d];
    while (true) {
      double total = 0.0;
      for (int j = 0; j < d; j++) {
        double term = real[j][combo[j]];
        for (int i = 0; i < d; i++) if (i != j) term *= fake[i][combo[i]];
        total += term;
      }
      StringBuilder key = new StringBuilder();
      for (int i = 0; i < d; i++) key.append(i > 0 ? "," : "").append(combo[i]);
      out.put(key.toString(), total / d);
      int i = d - 1;
      while (i >= 0 && ++combo[i] == real[i].length) combo[i--] = 0;
      if (i < 0) break;
    }
    return out;
  }

  private static double pattern(AttributeParameters a, int y, int hotBit) {
    double out = 1.0;
    for (int i = 0; i < a.k; i++) {
      double pr = i == hotBit ? a.p : a.q;
      out *= ((y >> i) & 1) != 0 ? pr : 1.0 - pr;
    }
    return out;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public long[] domainSizes() {
    return domainSizes.clone();
  }

  /** Build an RS+FD protocol by name ({@link MultidimProtocol#create} also builds SPL and SMP). */
  public static Rsfd create(JsonElement name, JsonElement epsilon, JsonElement domainSizes, JsonElement neighbouring, JsonObject options) {
    if (!Json.isString(name)) throw new ConfigException("protocol name must be a string, got " + PyRepr.repr(name));
    String key = name.getAsString().toLowerCase(java.util.Locale.ROOT);
    if (!RSFD_NAMES.contains(key) || key.equals("spl") || key.equals("smp")) {
      throw new ConfigException("unknown multidimensional protocol " + PyRepr.repr(name) + "; available: " + Compat.join(", ", MultidimProtocol.NAMES));
    }
    if (options.size() > 0) {
      List<String> unknown = new ArrayList<>(options.keySet());
      Collections.sort(unknown);
      StringBuilder s = new StringBuilder();
      for (String u : unknown) s.append(s.length() > 0 ? ", " : "").append(PyRepr.strRepr(u));
      throw new ConfigException("bad options for " + key + ": [" + s + "] (allowed: none)");
    }
    return new Rsfd(key, epsilon, domainSizes, neighbouring == null ? Json.of("tuple") : neighbouring);
  }

  public static Rsfd create(String name, double epsilon, int[] domainSizes) {
    return create(Json.of(name), Json.of(epsilon), Json.of(domainSizes), Json.of("tuple"), new JsonObject());
  }

  /** Rebuild from the canonical config (the inverse of {@link #config()}). */
  public static Rsfd fromConfig(JsonElement element) {
    if (element == null || !element.isJsonObject()) throw new ConfigException("config must be a mapping, got " + PyRepr.repr(element));
    JsonObject config = element.getAsJsonObject();
    JsonElement kind = config.has("kind") ? config.get("kind") : Json.of(KIND);
    if (!(Json.isString(kind) && kind.getAsString().equals(KIND))) throw new ConfigException("not a multidimensional config (kind=" + PyRepr.repr(kind) + ")");
    for (String field : new String[] {"mechanism", "epsilon", "domain_sizes"}) {
      if (!config.has(field)) throw new ConfigException("config lacks required field '" + field + "'");
    }
    JsonObject options = new JsonObject();
    for (Map.Entry<String, JsonElement> e : config.entrySet()) {
      if (!Arrays.asList("kind", "mechanism", "epsilon", "domain_sizes", "neighbouring").contains(e.getKey())) options.add(e.getKey(), e.getValue());
    }
    return create(config.get("mechanism"), config.get("epsilon"), config.get("domain_sizes"),
        config.has("neighbouring") ? config.get("neighbouring") : Json.of("tuple"), options);
  }
}
