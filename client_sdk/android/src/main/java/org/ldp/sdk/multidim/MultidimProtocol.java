package org.ldp.sdk.multidim;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;

/** A multidimensional protocol on the device: RS+FD ({@link Rsfd}), SPL or SMP ({@link OracleBased}). */
public interface MultidimProtocol {
  List<String> NAMES = Collections.unmodifiableList(Arrays.asList("rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp", "spl", "smp"));

  String name();

  int d();

  long[] domainSizes();

  JsonObject config();

  /** What the ledger charges per report under the promised neighbouring notion. */
  double epsilonCharged();

  double epsilonTuple();

  double epsilonAttribute();

  JsonObject perturb(int[] value, RandomSource source);

  /** Parse one payload as the Python server does (ReportDecodeException with its reason). */
  Object decode(JsonElement payload, int index);

  /** Build by name (client_sdk.multidim.create_multidim). */
  static MultidimProtocol create(JsonElement name, JsonElement epsilon, JsonElement domainSizes, JsonElement neighbouring, JsonObject options) {
    if (!Json.isString(name)) throw new ConfigException("protocol name must be a string, got " + PyRepr.repr(name));
    String key = name.getAsString().toLowerCase(java.util.Locale.ROOT);
    if (!NAMES.contains(key)) throw new ConfigException("unknown multidimensional protocol " + PyRepr.repr(name) + "; available: " + Compat.join(", ", NAMES));
    if (key.equals("spl") || key.equals("smp")) return OracleBased.create(key, epsilon, domainSizes, neighbouring, options);
    return Rsfd.create(name, epsilon, domainSizes, neighbouring, options);
  }

  /** Rebuild from the canonical config. */
  static MultidimProtocol fromConfig(JsonElement element) {
    if (element == null || !element.isJsonObject()) throw new ConfigException("config must be a mapping, got " + PyRepr.repr(element));
    JsonObject config = element.getAsJsonObject();
    JsonElement kind = config.has("kind") ? config.get("kind") : Json.of(Rsfd.KIND);
    if (!(Json.isString(kind) && kind.getAsString().equals(Rsfd.KIND))) throw new ConfigException("not a multidimensional config (kind=" + PyRepr.repr(kind) + ")");
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
