package org.ldp.sdk.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.security.MessageDigest;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Jcs;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.heavy.HeavyHitterProtocol;
import org.ldp.sdk.heavy.HeavyHitterProtocols;
import org.ldp.sdk.longitudinal.Longitudinal;
import org.ldp.sdk.longitudinal.LongitudinalProtocol;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Mechanisms;
import org.ldp.sdk.multidim.MultidimProtocol;

/**
 * A collection's public config on the device: hash check, epochs, budget units and the
 * protocol that perturbs, by the rules of client_sdk/client/config.py (and so of the server's
 * ldpserver/services/ingest.py):
 *
 * <ul>
 *   <li>the config is hashed from the served JSON text with Python's int/float typing kept, and
 *       a hash that differs from {@code config_hash} is refused;
 *   <li>the mechanism config must be read by this SDK exactly as the server wrote it (its
 *       canonical JSON rebuilt from the protocol equals the served one);
 *   <li>{@code epoch = floor((now - epoch.start) / epoch.seconds)} in whole microseconds;
 *   <li>a charge is counted in integer units: the per-report epsilon, or for a memoized
 *       (longitudinal) collection {@code budget.epsilon_per_memo} (else {@code epsilon}) per
 *       <b>new memo</b>, a report that reuses a memo costing nothing; a cap allows
 *       {@code floor(cap / unit (1 + 1e-9))} units; the window of an epoch is
 *       {@code epoch // budget.window_epochs};
 *   <li>the unit may never be below the protocol's own loss ({@code privacy.epsilon}; for a
 *       longitudinal protocol its charge per new memo, epsilon_perm);
 *   <li>{@code budget.memoized} is required by, and only allowed for, the longitudinal kind.
 * </ul>
 */
public final class CollectionConfig {
  public static final double UNIT_SLACK = 1e-9;
  public static final double PRIVACY_TOLERANCE = 1e-9;
  /** the config version this SDK reads: 2, hashed as RFC 8785 (JCS) canonical JSON; version 1 (Python json.dumps text) is refused */
  public static final int CONFIG_VERSION = 2;

  public final String collectionId;
  /** "frequency", "multidim", "heavy_hitters" or "longitudinal" */
  public final String kind;
  public final JsonObject config;
  public final String canonical;
  public final String configHash;
  public final long epochSeconds;
  public final long epochStartMicros;
  public final long grace;
  public final double epsilon;
  public final double capLifetime;
  public final Double capWindow;
  public final long windowEpochs;
  /** budget.memoized: charged per new memo (longitudinal collections only) */
  public final boolean memoized;
  /** budget.epsilon_per_memo, or null */
  public final Double epsilonPerMemo;
  /** epsilon of one charge unit: per report, or per new memo when memoized */
  public final double unitEpsilon;
  public final long maxUnitsLifetime;
  public final Long maxUnitsWindow;
  private final FrequencyOracle oracle;
  private final MultidimProtocol multidim;
  private final HeavyHitterProtocol heavy;
  private final LongitudinalProtocol longitudinal;

  private CollectionConfig(String collectionId, JsonObject config, String canonical, String digest) {
    this.collectionId = collectionId;
    this.config = config;
    this.canonical = canonical;
    this.configHash = digest;
    JsonElement kindElement = config.get("kind");
    String k = Json.isString(kindElement) ? kindElement.getAsString() : String.valueOf(kindElement);
    if (!(k.equals("frequency") || k.equals("multidim") || k.equals("heavy_hitters") || k.equals("longitudinal"))) {
      throw fail("collection kind " + kindElement + " is not supported; known: frequency, multidim, heavy_hitters, longitudinal");
    }
    this.kind = k;
    JsonObject epoch = object(config, "epoch");
    JsonObject budget = object(config, "budget");
    JsonObject mechanism = object(config, "mechanism");
    epochSeconds = integer(epoch, "seconds", null);
    epochStartMicros = parseTimestampMicros(epoch.get("start"));
    grace = integer(epoch, "grace", 1L);
    epsilon = number(config, "epsilon", null);
    memoized = Json.isBoolean(budget.get("memoized")) && budget.get("memoized").getAsBoolean();
    epsilonPerMemo = budget.has("epsilon_per_memo") && !budget.get("epsilon_per_memo").isJsonNull() ? number(budget, "epsilon_per_memo", null) : null;
    capLifetime = number(budget, "cap_lifetime", null);
    capWindow = budget.has("cap_per_window") && !budget.get("cap_per_window").isJsonNull() ? number(budget, "cap_per_window", null) : null;
    windowEpochs = integer(budget, "window_epochs", 1L);
    if (epochSeconds < 1 || windowEpochs < 1 || !(epsilon > 0)) throw fail("epoch.seconds, budget.window_epochs and epsilon must be positive");
    unitEpsilon = memoized && epsilonPerMemo != null ? epsilonPerMemo : epsilon;
    maxUnitsLifetime = maxUnits(capLifetime, unitEpsilon);
    maxUnitsWindow = capWindow == null ? null : maxUnits(capWindow, unitEpsilon);
    String built;
    double charge;
    try {
      if (kind.equals("frequency")) {
        oracle = Mechanisms.fromConfig(mechanism);
        multidim = null;
        heavy = null;
        longitudinal = null;
        built = Jcs.canonical(oracle.config());
        charge = oracle.epsilon;
      } else if (kind.equals("multidim")) {
        oracle = null;
        multidim = MultidimProtocol.fromConfig(mechanism);
        heavy = null;
        longitudinal = null;
        built = Jcs.canonical(multidim.config());
        charge = multidim.epsilonCharged();
      } else if (kind.equals("heavy_hitters")) {
        oracle = null;
        multidim = null;
        heavy = HeavyHitterProtocols.fromConfig(mechanism);
        longitudinal = null;
        built = Jcs.canonical(heavy.config());
        charge = heavy.epsilonCharged();
      } else {
        oracle = null;
        multidim = null;
        heavy = null;
        longitudinal = Longitudinal.fromConfig(mechanism);
        built = Jcs.canonical(longitudinal.config());
        charge = longitudinal.chargePerNewMemo();
      }
    } catch (ConfigException e) {
      throw fail("the SDK refuses the mechanism config: " + e.getMessage());
    }
    String served = Jcs.canonical(mechanism); // RFC 8785 cannot tell 1.0 from 1: both sides in that form
    if (!built.equals(served)) {
      throw fail("the Android SDK reads the mechanism config as " + built + ", but the server wrote " + served
          + "; refusing to report under a config this SDK would interpret differently");
    }
    // the rules of client_sdk/client/perturb.py's perturber_for
    if (longitudinal != null && !memoized) {
      throw fail("a longitudinal protocol needs budget.memoized = true (its memos must be kept and charged)");
    }
    if (longitudinal == null && memoized) {
      throw fail("budget.memoized applies to longitudinal collections only (a second randomisation round); a memoized '" + kind
          + "' collection would re-send its first report verbatim");
    }
    // The device is the real guard: never charge less than the mechanism's own loss.
    if (unitEpsilon < charge * (1 - PRIVACY_TOLERANCE)) {
      throw fail("the config charges " + (memoized ? "epsilon_per_memo" : "epsilon") + " = " + formatG(unitEpsilon) + " per " + (memoized ? "memo" : "report")
          + ", below the mechanism's own loss " + PyRepr.floatRepr(charge) + "; this device refuses to under-count its budget");
    }
  }

  /** Python's format(x, "g"): 6 significant digits, trailing zeros dropped. */
  static String formatG(double x) {
    String t = String.format(java.util.Locale.ROOT, "%.6g", x);
    int e = t.indexOf('e');
    String mantissa = e < 0 ? t : t.substring(0, e);
    if (mantissa.indexOf('.') >= 0) mantissa = mantissa.replaceAll("0+$", "").replaceAll("\\.$", "");
    return e < 0 ? mantissa : mantissa + t.substring(e);
  }

  private UnsupportedCollectionException fail(String detail) {
    return new UnsupportedCollectionException("collection '" + collectionId + "': " + detail);
  }

  private JsonObject object(JsonObject o, String key) {
    JsonElement e = o.get(key);
    if (e == null || !e.isJsonObject()) throw fail("config is missing or has a bad field (" + key + ")");
    return e.getAsJsonObject();
  }

  private long integer(JsonObject o, String key, Long fallback) {
    JsonElement e = o.get(key);
    if ((e == null || e.isJsonNull()) && fallback != null) return fallback;
    Long v = Json.longValue(e);
    if (v == null) throw fail("config has a bad field " + key + ": " + e);
    return v;
  }

  private double number(JsonObject o, String key, Double fallback) {
    JsonElement e = o.get(key);
    if ((e == null || e.isJsonNull()) && fallback != null) return fallback;
    if (!Json.isNumber(e) || Double.isInfinite(e.getAsDouble()) || Double.isNaN(e.getAsDouble())) throw fail("config has a bad field " + key + ": " + e);
    return e.getAsDouble();
  }

  /** How many charges of {@code unit} fit under {@code cap}: the server's rule. */
  public static long maxUnits(double cap, double unit) {
    return (long) Math.floor(cap / unit * (1 + UNIT_SLACK));
  }

  private static final Pattern TIMESTAMP =
      Pattern.compile("^(\\d{4})-(\\d{2})-(\\d{2})[T ](\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,6}))?(Z|[+-]\\d{2}:\\d{2})$");

  /** Microseconds since the Unix epoch of an ISO 8601 timestamp with a zone (no java.time: API 26+). */
  public static long parseTimestampMicros(JsonElement text) {
    if (!Json.isString(text)) throw new UnsupportedCollectionException("epoch.start must be a timestamp string, got " + text);
    Matcher m = TIMESTAMP.matcher(text.getAsString());
    if (!m.matches()) throw new UnsupportedCollectionException("epoch.start '" + text.getAsString() + "' is not an ISO 8601 timestamp with a time zone");
    long y = Long.parseLong(m.group(1));
    long mo = Long.parseLong(m.group(2));
    long d = Long.parseLong(m.group(3));
    // days from civil (H. Hinnant's algorithm)
    y -= mo <= 2 ? 1 : 0;
    long era = Math.floorDiv(y, 400);
    long yoe = y - era * 400;
    long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long days = era * 146097 + doe - 719468;
    long seconds = days * 86400 + Long.parseLong(m.group(4)) * 3600 + Long.parseLong(m.group(5)) * 60 + Long.parseLong(m.group(6));
    String frac = m.group(7) == null ? "" : m.group(7);
    while (frac.length() < 6) frac += "0";
    long micros = seconds * 1_000_000L + Long.parseLong(frac);
    String zone = m.group(8);
    if (!zone.equals("Z")) {
      long offset = (Long.parseLong(zone.substring(1, 3)) * 3600 + Long.parseLong(zone.substring(4, 6)) * 60) * 1_000_000L;
      micros -= zone.charAt(0) == '-' ? -offset : offset;
    }
    return micros;
  }

  /** From the JSON text of {@code GET /v1/collections/{id}}: refuses a hash that does not match. */
  public static CollectionConfig fromServerText(String collectionId, String text) {
    JsonElement body;
    try {
      body = Json.parse(text);
    } catch (RuntimeException e) {
      throw new UnsupportedCollectionException("collection '" + collectionId + "': the server's answer is not JSON (" + e.getMessage() + ")");
    }
    if (!body.isJsonObject()) throw new UnsupportedCollectionException("collection '" + collectionId + "': the server's answer is not an object");
    JsonObject o = body.getAsJsonObject();
    JsonElement id = o.get("id");
    if (id != null && !id.isJsonNull() && !(Json.isString(id) && id.getAsString().equals(collectionId))) {
      throw new UnsupportedCollectionException("asked for collection '" + collectionId + "', the server answered for " + id);
    }
    JsonElement config = o.get("config");
    JsonElement claimed = o.get("config_hash");
    if (config == null || !config.isJsonObject() || !Json.isString(claimed)) {
      throw new UnsupportedCollectionException("collection '" + collectionId + "': the answer lacks config / config_hash");
    }
    return build(collectionId, config.getAsJsonObject(), claimed.getAsString());
  }

  /**
   * Refuses a config of another version, naming it (the message of client_sdk/client/config.py):
   * the version says how the hash is computed, so it is checked before the hash.
   */
  static void checkVersion(String collectionId, JsonObject config) {
    JsonElement version = config.get("version");
    if (Json.isInt(version) && Json.numberEquals(version, CONFIG_VERSION)) return;
    // Python's version == 1 (also 1.0 and True)
    boolean one = (version != null && version.isJsonPrimitive() && version.getAsJsonPrimitive().isNumber() && version.getAsDouble() == 1.0)
        || (Json.isBoolean(version) && version.getAsBoolean());
    String hint = one ? "; version 1 configs were hashed as Python json.dumps text, version 2 as RFC 8785 canonical JSON: "
        + "recreate the collection on a current server" : "";
    throw new UnsupportedCollectionException("collection " + PyRepr.strRepr(collectionId) + ": config version "
        + (version == null ? "None" : PyRepr.repr(version)) + " is not supported (this SDK reads " + CONFIG_VERSION + ")" + hint);
  }

  /** From a typed config and the hash it must have. */
  public static CollectionConfig build(String collectionId, JsonObject config, String claimedHash) {
    // the version decides how the hash is computed, so it is checked first
    checkVersion(collectionId, config);
    String canonical;
    String actual;
    try {
      canonical = Jcs.canonical(config); // kept in the store and re-verified: the hashed text itself
      actual = Jcs.hash(config);
    } catch (RuntimeException e) {
      throw new ConfigHashMismatchException("collection '" + collectionId + "': config is not canonical JSON (" + e.getMessage() + ")");
    }
    if (!MessageDigest.isEqual(actual.getBytes(StandardCharsets.UTF_8), claimedHash.getBytes(StandardCharsets.UTF_8))) {
      throw new ConfigHashMismatchException("collection '" + collectionId + "': the config hashes to " + actual + ", but the server claims "
          + claimedHash + "; refusing to report under a config whose hash does not match");
    }
    return new CollectionConfig(collectionId, config, canonical, actual);
  }

  /** From canonical JSON cached on the device (re-verified). */
  public static CollectionConfig fromCache(String collectionId, String canonical, String hash) {
    return build(collectionId, Json.parse(canonical).getAsJsonObject(), hash);
  }

  public long epochAt(long nowMicros) {
    return Math.floorDiv(nowMicros - epochStartMicros, epochSeconds * 1_000_000L);
  }

  public long windowOf(long epoch) {
    return Math.floorDiv(epoch, windowEpochs);
  }

  /**
   * One wire payload of {@code value}: an integer (frequency), an int[] tuple (multidim), an
   * item String/Long/BigInteger (heavy hitters: PEM, TreeHist, TAP/TAPS, known; {@code party}
   * for TAP/TAPS).
   */
  public JsonObject perturb(Object value, Object party, RandomSource source) {
    if (longitudinal != null) throw new IllegalStateException("a memoized collection reports through its memos (Client.report)");
    if (heavy != null) return heavy.perturb(value, party, source);
    if (party != null) throw new IllegalArgumentException("party applies to heavy_hitters collections only, not '" + kind + "'");
    if (multidim != null) {
      if (!(value instanceof int[])) throw new IllegalArgumentException("a multidim report needs an int[] tuple, got " + value);
      return multidim.perturb((int[]) value, source);
    }
    if (!(value instanceof Integer || value instanceof Long || value instanceof Short || value instanceof Byte)) {
      throw new IllegalArgumentException("a frequency report needs an integer value, got " + value);
    }
    return oracle.perturb(((Number) value).longValue(), source);
  }

  /** The longitudinal protocol of a memoized collection (null for the other kinds). */
  public LongitudinalProtocol longitudinal() {
    return longitudinal;
  }

  /** Check a value before anything is charged (so a bad value never costs budget). */
  void validate(Object value, Object party) {
    if (longitudinal != null) {
      if (party != null) throw new IllegalArgumentException("party applies to heavy_hitters collections only, not 'longitudinal'");
      if (!(value instanceof Integer || value instanceof Long)) throw new IllegalArgumentException("a longitudinal report needs an integer value, got " + value);
      long v = ((Number) value).longValue();
      if (v < 0 || v >= longitudinal.domainSize()) throw new IllegalArgumentException("value " + v + " is outside the domain [0, " + longitudinal.domainSize() + ")");
      return;
    }
    if (heavy != null) {
      heavy.validate(value, party);
      return;
    }
    if (multidim != null) {
      if (!(value instanceof int[]) || ((int[]) value).length != multidim.d()) throw new IllegalArgumentException("a report needs a tuple of " + multidim.d() + " integers");
      int[] v = (int[]) value;
      for (int j = 0; j < v.length; j++) {
        if (v[j] < 0 || v[j] >= multidim.domainSizes()[j]) throw new IllegalArgumentException("attribute " + j + ": value " + v[j] + " is outside the domain [0, " + multidim.domainSizes()[j] + ")");
      }
      return;
    }
    if (!(value instanceof Integer || value instanceof Long)) throw new IllegalArgumentException("a frequency report needs an integer value, got " + value);
    long v = ((Number) value).longValue();
    if (v < 0 || v >= oracle.domainSize) throw new IllegalArgumentException("value " + v + " is outside the domain [0, " + oracle.domainSize + ")");
  }
}
