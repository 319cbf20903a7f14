package org.ldp.sdk.longitudinal;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Jcs;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;

/**
 * Longitudinal (memoized) protocols by name, as client_sdk/longitudinal/__init__.py:
 * {@link #create} ({@code create_longitudinal}) and {@link #fromConfig} ({@code from_config}),
 * with the Python SDK's error messages.
 *
 * <pre>
 * name        protocol                                memo key     lifetime bound
 * l-grr       GRR then GRR                            the value    k epsilon_perm
 * l-osue      OUE then SUE                            the value    k epsilon_perm
 * l-sue       SUE then SUE (basic RAPPOR)             the value    k epsilon_perm
 * l-oue       OUE then OUE                            the value    k epsilon_perm
 * rappor      Google's (f, p, q), one-hot             the value    k epsilon_perm
 * loloha      OLOLOHA, optimal g                      hash value   min(g, k) epsilon_perm
 * biloloha    LOLOHA with g = 2                       hash value   2 epsilon_perm
 * dbitflip    dBitFlipPM                              pattern      min(d + 1, b) epsilon
 * </pre>
 */
public final class Longitudinal {
  private Longitudinal() {}

  public static final List<String> AVAILABLE =
      Collections.unmodifiableList(Arrays.asList("l-grr", "l-osue", "l-sue", "l-oue", "rappor", "loloha", "biloloha", "dbitflip"));

  private static List<String> allowedOptions(String key) {
    switch (key) {
      case "l-grr": return Collections.singletonList("tight");
      case "loloha":
      case "biloloha": return Arrays.asList("g", "tight");
      case "dbitflip": return Arrays.asList("buckets", "d");
      case "rappor": return Arrays.asList("f", "p", "q");
      default: return Collections.emptyList();
    }
  }

  /** Build by name with plain Java values ({@code create("l-osue", 2.0, 1.0, 16)}). */
  public static LongitudinalProtocol create(String name, double epsilonPerm, double epsilonFirst, long domainSize) {
    return create(Json.of(name), Json.of(epsilonPerm), Json.of(epsilonFirst), Json.of(domainSize), new JsonObject());
  }

  /**
   * Build by name with JSON-typed arguments (null: not given) and Python's keyword options
   * ({@code tight}; {@code g}; {@code buckets}, {@code d}; {@code f}, {@code p}, {@code q}).
   */
  public static LongitudinalProtocol create(JsonElement name, JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize, JsonObject options) {
    if (!Json.isString(name)) throw new ConfigException("protocol name must be a string, got " + PyRepr.repr(name));
    String key = name.getAsString().toLowerCase(Locale.ROOT);
    if (!AVAILABLE.contains(key)) throw new ConfigException("unknown longitudinal protocol " + PyRepr.repr(name) + "; available: " + Compat.join(", ", AVAILABLE));
    List<String> allowed = allowedOptions(key);
    TreeSet<String> unknown = new TreeSet<>(options.keySet());
    unknown.removeAll(allowed);
    if (!unknown.isEmpty()) {
      List<String> sortedAllowed = new ArrayList<>(allowed);
      Collections.sort(sortedAllowed);
      throw new ConfigException("bad options for " + key + ": " + list(new ArrayList<>(unknown)) + " (allowed: "
          + (sortedAllowed.isEmpty() ? "none" : list(sortedAllowed)) + ")");
    }
    boolean permGiven = epsilonPerm != null && !epsilonPerm.isJsonNull();
    boolean firstGiven = epsilonFirst != null && !epsilonFirst.isJsonNull();
    if (key.equals("rappor")) {
      if (permGiven || firstGiven) throw new ConfigException("rappor derives epsilon_perm and epsilon_first from f, p, q; do not give them");
      TreeSet<String> missing = new TreeSet<>(Arrays.asList("f", "p", "q"));
      missing.removeAll(options.keySet());
      if (!missing.isEmpty()) throw new ConfigException("rappor needs " + list(new ArrayList<>(missing)));
      return UnaryLongitudinal.rappor(domainSize, options.get("f"), options.get("p"), options.get("q"));
    }
    if (!permGiven) throw new ConfigException(key + " needs epsilon_perm");
    if (key.equals("dbitflip")) {
      if (firstGiven && !sameNumber(epsilonFirst, epsilonPerm)) {
        throw new ConfigException("dbitflip has one epsilon per response (epsilon_perm); epsilon_first does not apply");
      }
      return new DBitFlip(epsilonPerm, domainSize, options.get("buckets"), options.get("d"));
    }
    if (!firstGiven) throw new ConfigException(key + " needs epsilon_first (< epsilon_perm)");
    switch (key) {
      case "l-grr": return new Lgrr(epsilonPerm, epsilonFirst, domainSize, options.get("tight"));
      case "l-osue": return UnaryLongitudinal.losue(epsilonPerm, epsilonFirst, domainSize);
      case "l-sue": return UnaryLongitudinal.lsue(epsilonPerm, epsilonFirst, domainSize);
      case "l-oue": return UnaryLongitudinal.loue(epsilonPerm, epsilonFirst, domainSize);
      case "loloha": return new Loloha("loloha", epsilonPerm, epsilonFirst, domainSize, options.get("g"), options.get("tight"));
      default: return biloloha(epsilonPerm, epsilonFirst, domainSize, options.has("g") ? options.get("g") : Json.of(2), options.get("tight"));
    }
  }

  private static LongitudinalProtocol biloloha(JsonElement epsilonPerm, JsonElement epsilonFirst, JsonElement domainSize, JsonElement g, JsonElement tight) {
    boolean ok = g == null || g.isJsonNull() || (Json.isNumber(g) && g.getAsDouble() == 2.0);
    if (!ok) throw new ConfigException("biloloha has g = 2, got g = " + PyRepr.repr(g));
    return new Loloha("biloloha", epsilonPerm, epsilonFirst, domainSize, Json.of(2), tight);
  }

  private static boolean sameNumber(JsonElement a, JsonElement b) {
    return Json.isNumber(a) && Json.isNumber(b) && a.getAsDouble() == b.getAsDouble();
  }

  private static String list(List<String> keys) {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < keys.size(); i++) out.append(i > 0 ? ", " : "").append(PyRepr.strRepr(keys.get(i)));
    return out.append(']').toString();
  }

  /** Rebuild a protocol from its canonical config (the inverse of {@code m.config()}). */
  public static LongitudinalProtocol fromConfig(JsonElement configElement) {
    if (configElement == null || !configElement.isJsonObject()) throw new ConfigException("config must be a mapping, got " + PyRepr.repr(configElement));
    JsonObject config = configElement.getAsJsonObject();
    JsonElement kind = config.get("kind");
    if (kind != null && !(Json.isString(kind) && kind.getAsString().equals(LongitudinalProtocol.KIND))) {
      throw new ConfigException("not a longitudinal config (kind=" + PyRepr.repr(kind) + ")");
    }
    JsonElement name = config.get("mechanism");
    if (!(Json.isString(name) && AVAILABLE.contains(name.getAsString()))) {
      throw new ConfigException("unknown longitudinal protocol " + (name == null ? "None" : PyRepr.repr(name)) + "; available: " + Compat.join(", ", AVAILABLE));
    }
    String key = name.getAsString();
    LongitudinalProtocol m;
    switch (key) {
      case "l-grr": m = new Lgrr(req(config, "epsilon_perm"), req(config, "epsilon_first"), req(config, "domain_size"), config.get("tight")); break;
      case "l-osue": m = UnaryLongitudinal.losue(req(config, "epsilon_perm"), req(config, "epsilon_first"), req(config, "domain_size")); break;
      case "l-sue": m = UnaryLongitudinal.lsue(req(config, "epsilon_perm"), req(config, "epsilon_first"), req(config, "domain_size")); break;
      case "l-oue": m = UnaryLongitudinal.loue(req(config, "epsilon_perm"), req(config, "epsilon_first"), req(config, "domain_size")); break;
      case "rappor": m = UnaryLongitudinal.rappor(req(config, "domain_size"), req(config, "f"), req(config, "p"), req(config, "q")); break;
      case "loloha":
      case "biloloha": {
        JsonElement hash = config.get("hash");
        if (hash != null && !(Json.isString(hash) && hash.getAsString().equals(org.ldp.sdk.mechanisms.Olh.HASH_FAMILY))) {
          throw new ConfigException("unknown hash family " + PyRepr.repr(hash));
        }
        JsonElement perm = req(config, "epsilon_perm");
        JsonElement first = req(config, "epsilon_first");
        JsonElement k = req(config, "domain_size");
        m = key.equals("loloha") ? new Loloha("loloha", perm, first, k, config.get("g"), config.get("tight"))
            : biloloha(perm, first, k, config.has("g") ? config.get("g") : Json.of(2), config.get("tight"));
        break;
      }
      default: m = new DBitFlip(req(config, "epsilon"), req(config, "domain_size"), req(config, "buckets"), req(config, "d"));
    }
    TreeSet<String> extra = new TreeSet<>(config.keySet());
    extra.removeAll(m.config().keySet());
    if (!extra.isEmpty()) throw new ConfigException("unexpected fields for " + key + ": " + list(new ArrayList<>(extra)));
    return m;
  }

  private static JsonElement req(JsonObject config, String field) {
    if (!config.has(field)) throw new ConfigException("config lacks required field '" + field + "'");
    return config.get(field);
  }

  /** The canonical JSON of a protocol's config (RFC 8785, as hashed). */
  public static String canonical(LongitudinalProtocol m) {
    return Jcs.canonical(m.config());
  }

  /** A protocol's privacy summary as Python's privacy.to_dict() keys (charge, lifetime bound, ...). */
  public static Map<String, Object> privacy(LongitudinalProtocol m) {
    Map<String, Object> out = new java.util.LinkedHashMap<>();
    out.put("mechanism", m.name);
    out.put("epsilon_first", m.epsilonFirst());
    out.put("epsilon_first_actual", m.epsilonFirstActual());
    out.put("epsilon_perm", m.epsilonPerm());
    out.put("charge_per_new_memo", m.chargePerNewMemo());
    out.put("max_memos", m.maxMemos());
    out.put("lifetime_bound", m.lifetimeBound());
    return out;
  }
}
