package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;

/**
 * Frequency oracles by name: {@code create}, {@code fromConfig}, {@code choose} ("auto") as
 * client_sdk/mechanisms/__init__.py and auto.py. The "auto" choice depends only on public
 * parameters (GRR, OUE, OLH, HR compared by Var*, ties to the earlier candidate, a relative
 * 1e-12 needed to displace it), so device and server make it identically.
 */
public final class Mechanisms {
  private Mechanisms() {}

  public static final List<String> AVAILABLE = Collections.unmodifiableList(Arrays.asList("grr", "sue", "oue", "olh", "blh", "hr", "auto"));

  /** Build by name with plain Java values ({@code create("oue", 1.0, 128)}). */
  public static FrequencyOracle create(String name, double epsilon, long domainSize) {
    return create(Json.of(name), Json.of(epsilon), Json.of(domainSize), new JsonObject());
  }

  /** Build by name with JSON-typed arguments and Python's keyword options. */
  public static FrequencyOracle create(JsonElement name, JsonElement epsilon, JsonElement domainSize, JsonObject options) {
    if (!Json.isString(name)) throw new ConfigException("mechanism name must be a string, got " + PyRepr.repr(name));
    String key = name.getAsString().toLowerCase(java.util.Locale.ROOT);
    if (key.equals("auto")) {
      List<String> unknown = new ArrayList<>();
      for (String k : options.keySet()) if (!k.equals("max_report_bits")) unknown.add(k);
      Collections.sort(unknown);
      if (!unknown.isEmpty()) throw new ConfigException("bad options for auto: " + quoted(unknown));
      JsonElement max = Json.get(options, "max_report_bits");
      return choose(epsilon, domainSize, max == null || max.isJsonNull() ? null : max);
    }
    switch (key) {
      case "grr": noOptions(key, options); return new Grr(epsilon, domainSize);
      case "sue": noOptions(key, options); return UnaryEncoding.sue(epsilon, domainSize);
      case "oue": noOptions(key, options); return UnaryEncoding.oue(epsilon, domainSize);
      case "olh": return Olh.olh(epsilon, domainSize, gOnly(key, options));
      case "blh": return Olh.blh(epsilon, domainSize, gOnly(key, options));
      case "hr": noOptions(key, options); return new Hadamard(epsilon, domainSize);
      default:
        throw new ConfigException("unknown mechanism " + PyRepr.repr(name) + "; available: " + Compat.join(", ", AVAILABLE));
    }
  }

  static String quoted(List<String> keys) {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < keys.size(); i++) out.append(i > 0 ? ", " : "").append(PyRepr.strRepr(keys.get(i)));
    return out.append(']').toString();
  }

  private static void noOptions(String name, JsonObject options) {
    for (String k : options.keySet()) throw new ConfigException("bad options for " + name + ": unexpected option " + PyRepr.strRepr(k));
  }

  private static JsonElement gOnly(String name, JsonObject options) {
    for (String k : options.keySet()) {
      if (!k.equals("g")) throw new ConfigException("bad options for " + name + ": unexpected option " + PyRepr.strRepr(k));
    }
    return Json.get(options, "g");
  }

  /** The candidate with the smallest Var* that fits the report-size limit (null: none). */
  public static FrequencyOracle choose(JsonElement epsilon, JsonElement domainSize, JsonElement maxReportBits) {
    FrequencyOracle best = null;
    long[] limits = {Grr.MAX_DOMAIN_SIZE, UnaryEncoding.MAX_DOMAIN_SIZE, Olh.MAX_KEY, Hadamard.MAX_DOMAIN_SIZE};
    for (int c = 0; c < 4; c++) {
      if (Json.isNumber(domainSize) && domainSize.getAsDouble() > limits[c]) continue;
      FrequencyOracle m;
      switch (c) {
        case 0: m = new Grr(epsilon, domainSize); break;
        case 1: m = UnaryEncoding.oue(epsilon, domainSize); break;
        case 2: m = Olh.olh(epsilon, domainSize, null); break;
        default: m = new Hadamard(epsilon, domainSize);
      }
      if (maxReportBits != null && m.reportBits() > maxReportBits.getAsDouble()) continue;
      if (best == null || m.varianceApproxPerUser() < best.varianceApproxPerUser() * (1 - 1e-12)) best = m;
    }
    if (best == null) {
      throw new ConfigException("no frequency oracle fits a report of at most " + PyRepr.repr(maxReportBits) + " bits for k=" + PyRepr.repr(domainSize));
    }
    return best;
  }

  /** Rebuild a mechanism from its canonical config (the inverse of {@code m.config()}). */
  public static FrequencyOracle fromConfig(JsonElement configElement) {
    if (configElement == null || !configElement.isJsonObject()) {
      throw new ConfigException("config must be an object, got " + PyRepr.repr(configElement));
    }
    JsonObject config = configElement.getAsJsonObject();
    JsonObject options = new JsonObject();
    for (Map.Entry<String, JsonElement> e : config.entrySet()) {
      if (!Arrays.asList("mechanism", "epsilon", "domain_size", "hash").contains(e.getKey())) options.add(e.getKey(), e.getValue());
    }
    if (config.has("hash") && !(Json.isString(config.get("hash")) && config.get("hash").getAsString().equals(Olh.HASH_FAMILY))) {
      throw new ConfigException("unknown hash family " + PyRepr.repr(config.get("hash")));
    }
    for (String field : new String[] {"mechanism", "epsilon", "domain_size"}) {
      if (!config.has(field)) throw new ConfigException("config lacks required field '" + field + "'");
    }
    return create(config.get("mechanism"), config.get("epsilon"), config.get("domain_size"), options);
  }
}
