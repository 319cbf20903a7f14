package org.ldp.sdk.multidim;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.SecureRandomSource;
import org.ldp.sdk.mechanisms.DecodedReport;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Grr;
import org.ldp.sdk.mechanisms.Mechanisms;

/**
 * SPL and SMP, the baselines of Arcolezi, Couchot, Al Bouna, Xiao (CIKM 2021); the device side
 * of client_sdk/multidim/spl.py and smp.py. One frequency oracle per attribute ({@code oracle}:
 * a mechanism name for all attributes, default "grr", or a list of d names; "auto" picks per
 * attribute from public parameters).
 *
 * <ul>
 *   <li>SPL: every attribute reported at eps/d: {@code {"v":1,"m":"spl","y":[o_1, ..., o_d]}}.
 *       Privacy: eps-LDP for tuples (sequential composition), eps/d for tuples differing in
 *       one attribute; the ledger charges eps.
 *   <li>SMP: one attribute j drawn uniformly (independent of the data), reported at the full
 *       eps: {@code {"v":1,"m":"smp","j":j,"y":o}}. Privacy: eps-LDP for tuples and
 *       attributes (the index carries no information about the data; the server learns j).
 * </ul>
 * {@code o} is the oracle's payload without its "v" field.
 */
public final class OracleBased implements MultidimProtocol {
  public final String name;
  public final double epsilon;
  public final long[] domainSizes;
  public final String neighbouring;
  /** the oracle option as configured: a lower-case name, or a list of names */
  public final JsonElement oracle;
  public final List<FrequencyOracle> oracles;

  private OracleBased(String name, JsonElement epsilon, JsonElement domainSizes, JsonElement neighbouring, JsonElement oracle) {
    this.name = name;
    this.epsilon = FrequencyOracle.validateEpsilon(epsilon, "epsilon");
    this.domainSizes = Rsfd.validateDomainSizes(domainSizes, Grr.MAX_DOMAIN_SIZE, name);
    if (!(Json.isString(neighbouring) && (neighbouring.getAsString().equals("tuple") || neighbouring.getAsString().equals("attribute")))) {
      throw new ConfigException("neighbouring must be one of ('tuple', 'attribute'), got " + PyRepr.repr(neighbouring));
    }
    this.neighbouring = neighbouring.getAsString();
    int d = this.domainSizes.length;
    List<String> names = new ArrayList<>();
    if (Json.isString(oracle)) {
      String o = oracle.getAsString().toLowerCase(Locale.ROOT);
      this.oracle = Json.of(o);
      for (int j = 0; j < d; j++) names.add(o);
    } else if (oracle != null && oracle.isJsonArray() && allStrings(oracle.getAsJsonArray())) {
      if (oracle.getAsJsonArray().size() != d) {
        throw new ConfigException("oracle lists " + oracle.getAsJsonArray().size() + " mechanisms for " + d + " attributes");
      }
      JsonArray lower = new JsonArray();
      for (JsonElement e : oracle.getAsJsonArray()) {
        String o = e.getAsString().toLowerCase(Locale.ROOT);
        lower.add(o);
        names.add(o);
      }
      this.oracle = lower;
    } else {
      throw new ConfigException("oracle must be a mechanism name or a list of " + d + " names, got " + PyRepr.repr(oracle));
    }
    double oracleEpsilon = name.equals("spl") ? this.epsilon / d : this.epsilon;
    List<FrequencyOracle> built = new ArrayList<>();
    for (int j = 0; j < d; j++) {
      try {
        built.add(Mechanisms.create(Json.of(names.get(j)), Json.of(oracleEpsilon), Json.of(this.domainSizes[j]), new JsonObject()));
      } catch (ConfigException e) {
        throw new ConfigException("attribute " + j + ": " + e.getMessage());
      }
    }
    this.oracles = Collections.unmodifiableList(built);
  }

  private static boolean allStrings(JsonArray a) {
    for (JsonElement e : a) if (!Json.isString(e)) return false;
    return true;
  }

  static OracleBased create(String name, JsonElement epsilon, JsonElement domainSizes, JsonElement neighbouring, JsonObject options) {
    for (String k : options.keySet()) {
      if (!k.equals("oracle")) {
        List<String> unknown = new ArrayList<>(options.keySet());
        unknown.remove("oracle");
        Collections.sort(unknown);
        StringBuilder s = new StringBuilder();
        for (String u : unknown) s.append(s.length() > 0 ? ", " : "").append(PyRepr.strRepr(u));
        throw new ConfigException("bad options for " + name + ": [" + s + "] (allowed: ['oracle'])");
      }
    }
    JsonElement oracle = options.has("oracle") ? options.get("oracle") : Json.of("grr");
    return new OracleBased(name, epsilon, domainSizes, neighbouring == null ? Json.of("tuple") : neighbouring, oracle);
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public int d() {
    return domainSizes.length;
  }

  @Override
  public long[] domainSizes() {
    return domainSizes.clone();
  }

  @Override
  public JsonObject config() {
    JsonArray sizes = new JsonArray();
    for (long k : domainSizes) sizes.add(k);
    return Json.obj("kind", Rsfd.KIND, "mechanism", name, "epsilon", epsilon, "domain_sizes", sizes, "neighbouring", neighbouring, "oracle", oracle);
  }

  public String configHash() {
    return Json.configHash(config());
  }

  @Override
  public double epsilonTuple() {
    return epsilon;
  }

  @Override
  public double epsilonAttribute() {
    if (name.equals("smp")) return epsilon;
    double worst = 0;
    for (FrequencyOracle o : oracles) worst = Math.max(worst, o.epsilon);
    return worst;
  }

  @Override
  public double epsilonCharged() {
    return neighbouring.equals("tuple") ? epsilonTuple() : Math.max(epsilon, epsilonAttribute());
  }

  /** n Var* per attribute (SMP: d times the oracle's, as each attribute gets n/d reports). */
  public double[] varianceApproxPerUser() {
    double[] out = new double[d()];
    for (int j = 0; j < out.length; j++) out[j] = (name.equals("smp") ? d() : 1) * oracles.get(j).varianceApproxPerUser();
    return out;
  }

  private int[] checkTuple(int[] value) {
    if (value.length != d()) throw new IllegalArgumentException("a report needs a tuple of " + d() + " values (one per attribute), got " + value.length);
    for (int j = 0; j < value.length; j++) {
      if (value[j] < 0 || value[j] >= domainSizes[j]) {
        throw new IllegalArgumentException("attribute " + j + ": value " + value[j] + " is outside the domain [0, " + domainSizes[j] + ")");
      }
    }
    return value;
  }

  private static JsonObject inner(JsonObject payload) {
    JsonObject out = new JsonObject();
    for (Map.Entry<String, JsonElement> e : payload.entrySet()) if (!e.getKey().equals("v")) out.add(e.getKey(), e.getValue());
    return out;
  }

  public JsonObject perturb(int[] value) {
    return perturb(value, SecureRandomSource.INSTANCE);
  }

  @Override
  public JsonObject perturb(int[] value, RandomSource source) {
    int[] v = checkTuple(value); // the whole tuple is validated, whichever attribute SMP draws
    JsonObject out = Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", name);
    if (name.equals("smp")) {
      int j = Sampling.uniformInt(d(), source);
      out.addProperty("j", j);
      out.add("y", inner(oracles.get(j).perturb(v[j], source)));
      return out;
    }
    JsonArray y = new JsonArray();
    for (int j = 0; j < d(); j++) y.add(inner(oracles.get(j).perturb(v[j], source)));
    out.add("y", y);
    return out;
  }

  /** One attribute's inner payload decoded by its oracle (errors name the attribute). */
  private DecodedReport decodeInner(int j, JsonElement raw, int index) {
    if (raw == null || !raw.isJsonObject() || raw.getAsJsonObject().has("v")) {
      throw new ReportDecodeException("bad_type", "attribute " + j + ": entry must be an oracle payload object without 'v'", index);
    }
    JsonObject full = Json.obj("v", FrequencyOracle.WIRE_VERSION);
    for (Map.Entry<String, JsonElement> e : raw.getAsJsonObject().entrySet()) full.add(e.getKey(), e.getValue());
    try {
      return oracles.get(j).decode(full, index);
    } catch (ReportDecodeException e) {
      throw new ReportDecodeException(e.reason, "attribute " + j + ": " + e.detail, index);
    }
  }

  /** Exact probability of every report (small domains): SPL keyed by the per-attribute outputs, SMP by [j, output]. */
  public Map<List<Long>, Double> outputDistribution(int[] value) {
    int[] v = checkTuple(value);
    Map<List<Long>, Double> out = new LinkedHashMap<>();
    if (name.equals("smp")) {
      for (int j = 0; j < d(); j++) {
        for (Map.Entry<Long, Double> e : oracles.get(j).outputDistribution(v[j]).entrySet()) {
          out.put(java.util.Arrays.asList((long) j, e.getKey()), e.getValue() / d());
        }
      }
      return out;
    }
    out.put(new ArrayList<>(), 1.0);
    for (int j = 0; j < d(); j++) {
      Map<List<Long>, Double> next = new LinkedHashMap<>();
      for (Map.Entry<List<Long>, Double> prefix : out.entrySet()) {
        for (Map.Entry<Long, Double> e : oracles.get(j).outputDistribution(v[j]).entrySet()) {
          List<Long> key = new ArrayList<>(prefix.getKey());
          key.add(e.getKey());
          next.put(key, prefix.getValue() * e.getValue());
        }
      }
      out = next;
    }
    return out;
  }

  /** SPL: a List of d DecodedReports; SMP: a Map {"j": attribute, "y": DecodedReport}. */
  @Override
  public Object decode(JsonElement payload, int index) {
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
    Json.refuseUnknownFields(p, name.equals("smp") ? java.util.Arrays.asList("v", "m", "j", "y") : java.util.Arrays.asList("v", "m", "y"), index);
    JsonElement y = Json.get(p, "y");
    if (name.equals("smp")) {
      int j = (int) FrequencyOracle.decodeIndex(Json.get(p, "j"), d(), "j", index);
      if (y == null || y.isJsonNull()) throw new ReportDecodeException("bad_type", "field 'y' (the oracle payload) is missing", index);
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("j", j);
      out.put("y", decodeInner(j, y, index));
      return out;
    }
    if (y == null || !y.isJsonArray()) throw new ReportDecodeException("bad_type", "field 'y' must be a list of " + d() + " entries", index);
    JsonArray a = y.getAsJsonArray();
    if (a.size() != d()) throw new ReportDecodeException("bad_length", "field 'y' has " + a.size() + " entries, expected " + d() + " (one per attribute)", index);
    List<DecodedReport> out = new ArrayList<>();
    for (int j = 0; j < d(); j++) out.add(decodeInner(j, a.get(j), index));
    return out;
  }
}
