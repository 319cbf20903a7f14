package org.ldp.sdk.heavy;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.mechanisms.Olh;

/**
 * Every heavy-hitter protocol by name, and rebuilt from its canonical config, by the rules of
 * client_sdk/heavy_hitters/__init__.py (create, from_config): the prefix-tree protocols (PEM,
 * TreeHist, TAP/TAPS: {@link HeavyHitters}) and known candidates ({@link KnownCandidates}).
 */
public final class HeavyHitterProtocols {
  private HeavyHitterProtocols() {}

  /** the protocols, in the Python SDK's order */
  public static final List<String> PROTOCOLS = Collections.unmodifiableList(Arrays.asList("pem", "treehist", "tap", "taps", "known"));
  /** config fields derived from the options (dropped before the options are read; some checked after) */
  private static final List<String> DERIVED = Arrays.asList("protocol", "version", "fo", "key", "levels", "item_fo");

  /** Build by name (case-insensitive) with the Python SDK's options (snake_case). */
  public static HeavyHitterProtocol create(JsonElement protocol, JsonObject options) {
    String key = Json.isString(protocol) ? protocol.getAsString().toLowerCase(Locale.ROOT) : "";
    if (!PROTOCOLS.contains(key)) {
      throw new ConfigException("unknown heavy-hitter protocol " + PyRepr.repr(protocol) + "; available: " + Compat.join(", ", PROTOCOLS));
    }
    return key.equals(KnownCandidates.NAME) ? KnownCandidates.create(options) : HeavyHitters.prefixTree(key, options);
  }

  /**
   * Rebuild from the canonical config: version 1 (or absent), the frequency oracle OLH with
   * {@code olh-mas-v1} (its g an option), a PEM/TAP config without {@code final_round} read as
   * written before the final round existed; the derived fields given (levels, key, fo) must
   * equal the rebuilt protocol's.
   */
  public static HeavyHitterProtocol fromConfig(JsonElement element) {
    if (element == null || !element.isJsonObject()) throw new ConfigException("config must be a mapping");
    JsonObject config = element.getAsJsonObject();
    JsonElement version = config.has("version") ? config.get("version") : Json.of(1);
    if (!Json.isVersion(version, 1)) throw new ConfigException("unknown heavy-hitter config version " + PyRepr.repr(version));
    JsonObject options = new JsonObject();
    for (Map.Entry<String, JsonElement> e : config.entrySet()) if (!DERIVED.contains(e.getKey())) options.add(e.getKey(), e.getValue());
    JsonElement fo = Json.get(config, "fo");
    if (fo != null && fo.isJsonObject()) {
      JsonObject f = fo.getAsJsonObject();
      TreeSet<String> unknown = new TreeSet<>(f.keySet());
      unknown.removeAll(Arrays.asList("mechanism", "hash", "g"));
      if (!unknown.isEmpty()) {
        throw new ConfigException("unknown frequency-oracle fields " + PayloadFields.quoted(unknown) + "; allowed: ['g', 'hash', 'mechanism']");
      }
      JsonElement m = f.has("mechanism") ? f.get("mechanism") : Json.of("olh");
      JsonElement hash = f.has("hash") ? f.get("hash") : Json.of(Olh.HASH_FAMILY);
      if (!(Json.isString(m) && m.getAsString().equals("olh") && Json.isString(hash) && hash.getAsString().equals(Olh.HASH_FAMILY))) {
        throw new ConfigException("unsupported frequency oracle " + Json.canonical(f));
      }
      if (f.has("g")) options.add("g", f.get("g"));
    }
    if (!config.has("protocol")) throw new ConfigException("config lacks required field 'protocol'");
    JsonElement protocol = config.get("protocol");
    if (Json.isString(protocol) && Arrays.asList("pem", "tap", "taps").contains(protocol.getAsString().toLowerCase(Locale.ROOT))
        && !config.has("final_round")) {
      options.addProperty("final_round", false); // a config written before the final estimation round existed
    }
    HeavyHitterProtocol built = create(protocol, options);
    JsonObject mine = built.config();
    for (String key : new String[] {"levels", "key", "fo"}) {
      if (!config.has(key)) continue;
      JsonElement derived = mine.get(key);
      if (derived == null) throw new ConfigException("config field '" + key + "' does not apply to protocol " + PyRepr.strRepr(built.protocol()));
      if (!Json.canonical(config.get(key)).equals(Json.canonical(derived))) {
        throw new ConfigException("config field '" + key + "' is " + Json.canonical(config.get(key)) + " but the parameters give " + Json.canonical(derived));
      }
    }
    return built;
  }
}
