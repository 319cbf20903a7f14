package org.ldp.sdk.heavy;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Olh;

/**
 * The device side of the open-domain heavy-hitter protocols (client_sdk/heavy_hitters: pem.py,
 * tap.py, treehist.py, _common.py): the configuration (validated as the Python SDK, so the
 * config hash matches), one report per user, and the server's strict decoder.
 *
 * <p>Privacy: epsilon-LDP per user with one report per user. PEM (Wang, Li, Jha, "Locally
 * differentially private heavy hitter identification", TDSC 2019) and TAP/TAPS (federated
 * PEM): the user joins level group l at random (CSPRNG, independent of the item; uniformly, or
 * with the final estimation round's "final-2x" split the last prefix level and the final group,
 * which reports the whole item, get twice the users of the others) and sends one OLH report (full epsilon, {@code olh-mas-v1}) of the 32-bit key of its item's
 * length-l_l prefix; TAP/TAPS add the public party index {@code p}. TreeHist (Bassily, Nissim,
 * Stemmer, Thakurta, NeurIPS 2017): two eps/2 OLH reports, a random level's prefix and the
 * whole item. Ledger charge: epsilon per report.
 *
 * <p>Wire form, keys in this order: {@code {"v":1,"m":"pem","l":2,"s":"<16 hex>","y":5}}
 * (+ {@code "p"} for TAP/TAPS, whose {@code m} is "tap"; TreeHist adds {@code "s2"}, {@code "y2"}).
 *
 * <p>Known candidates (protocol "known") are {@link KnownCandidates}; {@link HeavyHitterProtocols}
 * builds every protocol by name or from its config.
 */
public final class HeavyHitters implements HeavyHitterProtocol {
  public static final int G_MAX = 1 << 16;
  public static final int MAX_FIRST_LEVEL_BITS = 16;
  /** the prefix-tree protocols this class builds (every protocol: {@link HeavyHitterProtocols#PROTOCOLS}) */
  public static final List<String> PROTOCOLS = Collections.unmodifiableList(Arrays.asList("pem", "treehist", "tap", "taps"));
  private static final List<String> PREFIX_OPTIONS = Arrays.asList("epsilon", "k", "domain", "eta", "g", "prune_infeasible", "split", "alpha", "final_round",
      "expected_reports");
  private static final List<String> TAP_OPTIONS = Arrays.asList("parties", "shared_levels", "k_max", "k_local", "k_global", "z", "z0",
      "width_rule", "floor", "pruning", "mode", "order");

  /** "pem", "tap", "taps" or "treehist" */
  public final String name;
  /** the wire name: "pem", "tap" or "treehist" */
  public final String mechanism;
  public final double epsilon;
  public final int k;
  public final ItemDomain domain;
  public final int eta;
  public final Olh olh;
  public final boolean pruneInfeasible;
  /** the user split: "uniform", or "final-2x" (PEM/TAP with the final estimation round) */
  public final String split;
  /** PEM/TAP: one more level group reports the full item for the final estimation round */
  public final boolean finalRound;
  public final int[] lengths;
  private final JsonObject extra = new JsonObject();
  private final List<String> parties;

  private HeavyHitters(String name, JsonObject options) {
    this.name = name;
    this.mechanism = name.equals("taps") ? "tap" : name;
    boolean treehist = name.equals("treehist");
    List<String> allowed = new ArrayList<>(PREFIX_OPTIONS);
    if (name.equals("pem")) allowed.addAll(Arrays.asList("keep", "width", "max_width"));
    else if (treehist) {
      allowed.addAll(Arrays.asList("width", "threshold", "fragment_estimator"));
      allowed.remove("final_round");
    }
    else allowed.addAll(TAP_OPTIONS);
    for (String key : options.keySet()) {
      if (!allowed.contains(key)) throw new ConfigException("bad options for " + name + ": unexpected option " + PyRepr.strRepr(key));
    }
    List<String> required = new ArrayList<>(Arrays.asList("epsilon", "k", "domain"));
    if (!treehist && !name.equals("pem")) required.add("parties");
    for (String key : required) {
      if (!options.has(key)) throw new ConfigException("bad options for " + name + ": missing required option " + PyRepr.strRepr(key));
    }
    this.epsilon = FrequencyOracle.validateEpsilon(opt(options, "epsilon"), "epsilon");
    this.olh = makeOlh(treehist ? Json.of(epsilon / 2) : Json.of(epsilon), opt(options, "g"));
    this.k = checkInt(opt(options, "k"), "k", 1, 4096);
    this.domain = ItemDomain.fromConfig(opt(options, "domain"));
    this.eta = checkEta(opt(options, "eta"), domain, treehist ? MAX_FIRST_LEVEL_BITS : 10);
    boolean withFinal = false;
    if (!treehist) {
      JsonElement fr = opt(options, "final_round", Json.of(true));
      if (!Json.isBoolean(fr)) throw new ConfigException("final_round must be true or false");
      withFinal = fr.getAsBoolean();
    }
    this.finalRound = withFinal;
    JsonElement prune = opt(options, "prune_infeasible", Json.of(true));
    if (!Json.isBoolean(prune)) throw new ConfigException("prune_infeasible must be true or false");
    this.pruneInfeasible = prune.getAsBoolean();
    JsonElement split = opt(options, "split", Json.of(withFinal ? "final-2x" : "uniform"));
    List<String> splits = withFinal ? Arrays.asList("final-2x", "uniform") : Collections.singletonList("uniform");
    if (!(Json.isString(split) && splits.contains(split.getAsString()))) {
      throw new ConfigException("unknown user split " + PyRepr.repr(split) + "; available: " + quoted(splits));
    }
    this.split = split.getAsString();
    double alpha = checkFloat(opt(options, "alpha", Json.of(0.05)), "alpha");
    if (!(alpha > 0 && alpha < 1)) throw new ConfigException("alpha must lie in (0, 1), got " + PyRepr.repr(opt(options, "alpha")));
    this.lengths = treehist ? treehistLengths(domain.bits, eta) : layoutLengths(domain, k, eta, withFinal);
    if (!treehist && lengths[0] > MAX_FIRST_LEVEL_BITS) {
      throw new ConfigException("the first level would enumerate 2^" + lengths[0] + " prefixes; at most 2^" + MAX_FIRST_LEVEL_BITS
          + " (lower k or eta, or use a shorter item encoding)");
    }
    List<String> partyNames = null;
    if (name.equals("pem")) {
      JsonElement keep = opt(options, "keep", Json.of("top"));
      if (!(Json.isString(keep) && (keep.getAsString().equals("top") || keep.getAsString().equals("threshold")))) {
        throw new ConfigException("keep must be 'top' or 'threshold', got " + PyRepr.repr(keep));
      }
      extra.add("keep", keep);
      extra.addProperty("width", checkInt(opt(options, "width", Json.of(2 * k)), "width", k, 1 << 14));
      extra.addProperty("alpha", alpha);
      extra.addProperty("max_width", checkInt(opt(options, "max_width", Json.of(4 * k)), "max_width", k, 1 << 14));
      extra.addProperty("final_round", finalRound);
      // the widest a level can keep (pem.py): top-2k, up to max_width on crowded levels (final round), or the threshold cap
      int width = extra.get("width").getAsInt();
      int widest = extra.get("max_width").getAsInt();
      int tested = extra.get("keep").getAsString().equals("top") && !finalRound ? width : Math.max(width, widest);
      extra.add("expected_reports", hopeless(checkExpected(opt(options, "expected_reports")), name, tested, 1));
    } else if (treehist) {
      extra.addProperty("width", checkInt(opt(options, "width", Json.of(k)), "width", 1, 1 << 14));
      JsonElement threshold = opt(options, "threshold");
      extra.add("threshold", threshold == null || threshold.isJsonNull() ? com.google.gson.JsonNull.INSTANCE : Json.of(checkFloat(threshold, "threshold")));
      JsonElement fragment = opt(options, "fragment_estimator", Json.of("pooled"));
      if (!(Json.isString(fragment) && (fragment.getAsString().equals("pooled") || fragment.getAsString().equals("level")))) {
        throw new ConfigException("fragment_estimator must be 'pooled' or 'level', got " + PyRepr.repr(fragment));
      }
      extra.add("fragment_estimator", fragment);
      extra.addProperty("alpha", alpha);
      extra.add("expected_reports", hopeless(checkExpected(opt(options, "expected_reports")), name, extra.get("width").getAsInt(), 1));
    } else {
      JsonElement ps = opt(options, "parties");
      if (ps == null || !ps.isJsonArray() || ps.getAsJsonArray().size() == 0) throw new ConfigException("parties must be a non-empty list of party names");
      partyNames = new ArrayList<>();
      JsonArray names = new JsonArray();
      for (JsonElement p : ps.getAsJsonArray()) {
        String n = Json.isString(p) ? p.getAsString() : p.toString();
        partyNames.add(n);
        names.add(n);
      }
      if (new HashSet<>(partyNames).size() != partyNames.size()) throw new ConfigException("party names must be distinct");
      extra.add("parties", names);
      extra.addProperty("shared_levels", checkInt(opt(options, "shared_levels", Json.of(2)), "shared_levels", 1, lengths.length - (finalRound ? 1 : 0)));
      int kMax = checkInt(opt(options, "k_max", Json.of(4 * k)), "k_max", k, 1 << 14);
      int kLocal = checkInt(opt(options, "k_local", Json.of(2 * k)), "k_local", k, 1 << 14);
      int kGlobal = checkInt(opt(options, "k_global", Json.of(2 * k)), "k_global", k, 1 << 14);
      extra.addProperty("k_max", kMax);
      extra.addProperty("k_local", kLocal);
      extra.addProperty("k_global", kGlobal);
      extra.addProperty("z", checkFloat(opt(options, "z", Json.of(2.0)), "z"));
      extra.addProperty("z0", checkFloat(opt(options, "z0", Json.of(1.0)), "z0"));
      extra.add("width_rule", oneOf(opt(options, "width_rule", Json.of("aw")), "width_rule", "must be 'aw' or 'fixed'", "aw", "fixed"));
      extra.addProperty("floor", checkInt(opt(options, "floor", Json.of(k)), "floor", k, Math.min(kMax, Math.min(kLocal, kGlobal))));
      extra.add("pruning", oneOf(opt(options, "pruning", Json.of(name.equals("taps") ? "consensus" : "none")), "pruning",
          "must be one of ['consensus', 'none']", "none", "consensus"));
      extra.add("mode", oneOf(opt(options, "mode", Json.of("Z")), "mode", "must be 'Z' or 'R'", "Z", "R"));
      extra.add("order", oneOf(opt(options, "order", Json.of("size-desc")), "order", "must be one of ['size-desc']", "size-desc"));
      extra.addProperty("alpha", alpha);
      extra.addProperty("final_round", finalRound);
      // Phase II runs per party: the check uses a party of average size (n / parties)
      extra.add("expected_reports", hopeless(checkExpected(opt(options, "expected_reports")), name + " (per party of average size)", kMax,
          partyNames.size()));
    }
    this.parties = partyNames == null ? null : Collections.unmodifiableList(partyNames);
  }

  private static JsonElement oneOf(JsonElement value, String name, String rule, String... allowed) {
    if (Json.isString(value) && Arrays.asList(allowed).contains(value.getAsString())) return value;
    throw new ConfigException(name + " " + rule + ", got " + PyRepr.repr(value));
  }

  private static JsonElement opt(JsonObject options, String key) {
    return opt(options, key, null);
  }

  private static JsonElement opt(JsonObject options, String key, JsonElement fallback) {
    JsonElement v = Json.get(options, key);
    return v == null || v.isJsonNull() ? fallback : v;
  }

  static int checkInt(JsonElement value, String name, int low, int high) {
    if (!Json.isInt(value)) throw new ConfigException(name + " must be an integer, got " + PyRepr.repr(value));
    BigInteger v = Json.bigInt(value);
    if (v.compareTo(BigInteger.valueOf(low)) < 0 || v.compareTo(BigInteger.valueOf(high)) > 0) {
      throw new ConfigException(name + " must lie in [" + low + ", " + high + "], got " + v);
    }
    return v.intValue();
  }

  static double checkFloat(JsonElement value, String name) {
    if (!Json.isNumber(value) || Double.isInfinite(value.getAsDouble()) || Double.isNaN(value.getAsDouble()) || value.getAsDouble() < 0.0) {
      throw new ConfigException(name + " must be a finite number >= 0.0, got " + PyRepr.repr(value));
    }
    return value.getAsDouble();
  }

  /** OLH over 32-bit keys with g = min(round(e^eps) + 1, 2^16) unless g is given. */
  static Olh makeOlh(JsonElement epsilon, JsonElement g) {
    double eps = FrequencyOracle.validateEpsilon(epsilon, "epsilon");
    long range = g == null || g.isJsonNull() ? Math.min(Olh.optimalG(eps), G_MAX) : checkInt(g, "g", 2, G_MAX);
    return Olh.olh(Json.of(eps), Json.of(Olh.MAX_KEY), Json.of(range));
  }

  /**
   * eta: the domain's default (one whole symbol for an alphabet, 4 otherwise) unless given; for an
   * alphabet with whole-symbol levels, a multiple of the symbol width (_common.py's check_eta).
   */
  static int checkEta(JsonElement eta, ItemDomain domain, int high) {
    if (eta == null || eta.isJsonNull()) return domain.levelStep();
    if (domain.isAlphabet()) {
      int e = checkInt(eta, "eta", 1, MAX_FIRST_LEVEL_BITS);
      if (domain.hasExplicitChars() && e % domain.symbolBits != 0) {
        throw new ConfigException("eta must be a multiple of the alphabet's " + domain.symbolBits + "-bit symbols (whole characters), got " + e);
      }
      return e;
    }
    return checkInt(eta, "eta", 1, high);
  }

  /** expected_reports: null, or a positive integer. */
  static JsonElement checkExpected(JsonElement value) {
    if (value == null || value.isJsonNull()) return com.google.gson.JsonNull.INSTANCE;
    if (!Json.isInt(value)) throw new ConfigException("expected_reports must be an integer, got " + PyRepr.repr(value));
    if (Json.bigInt(value).signum() <= 0) throw new ConfigException("expected_reports must be >= 1, got " + Json.bigInt(value));
    return Json.of(Json.bigInt(value));
  }

  /**
   * The creation-time hopelessness check of pem.py's _check_hopeless (PEM, TAP/TAPS: the test
   * group's share of the users under the split; candidates = width x 2^(last step)) and
   * treehist.py (L^2 groups pooled or L by level, half of epsilon per report). Returns the
   * expected count as configured (TAP: checked per party of average size, n / parties).
   */
  private JsonElement hopeless(JsonElement expected, String label, int width, int parties) {
    if (expected.isJsonNull()) return expected;
    boolean treehist = name.equals("treehist");
    int[] prefix = finalRound ? Arrays.copyOf(lengths, lengths.length - 1) : lengths;
    int last = prefix.length > 1 ? prefix[prefix.length - 1] - prefix[prefix.length - 2] : prefix[0];
    long candidates = Math.min((long) width << last, 1L << Math.min(domain.bits, 62));
    JsonElement groups;
    if (treehist) groups = Json.of(extra.get("fragment_estimator").getAsString().equals("pooled") ? lengths.length * lengths.length : lengths.length);
    else if (split.equals("final-2x")) groups = Json.of(1 / (lengths.length >= 2 ? 2.0 / (lengths.length + 2) : 1.0));
    else groups = Json.of(lengths.length);
    BigInteger perParty = Json.bigInt(expected).divide(BigInteger.valueOf(parties));
    if (perParty.signum() <= 0) throw new ConfigException("expected_reports must lie in [1, inf), got " + perParty);
    Hopeless.check(label, epsilon, perParty, groups, k, candidates, extra.get("alpha").getAsDouble(), treehist ? 0.5 : 1.0, olh.g);
    return expected;
  }

  /**
   * PEM/TAP level lengths: alphabet domains step by whole symbols (l_i = min(i eta, m)), others as
   * PEM; with the final round one more group reports the full item (length m).
   */
  public static int[] layoutLengths(ItemDomain domain, int k, int eta, boolean finalRound) {
    int[] base = domain.isAlphabet() ? treehistLengths(domain.bits, eta) : pemLengths(domain.bits, k, eta);
    if (!finalRound) return base;
    int[] out = Arrays.copyOf(base, base.length + 1);
    out[base.length] = domain.bits;
    return out;
  }

  /** PEM/TAP prefix lengths l_i = min(gamma + i eta, m), i = 1..G, G = ceil((m - gamma)/eta), gamma = ceil(log2 k). */
  public static int[] pemLengths(int bits, int k, int eta) {
    int gamma = ExactMath.bitLength(k - 1);
    if (gamma + eta >= bits) return new int[] {bits};
    int levels = (bits - gamma + eta - 1) / eta;
    int[] out = new int[levels];
    for (int i = 0; i < levels; i++) out[i] = Math.min(gamma + (i + 1) * eta, bits);
    return out;
  }

  static int[] treehistLengths(int bits, int eta) {
    int levels = (bits + eta - 1) / eta;
    int[] out = new int[levels];
    for (int j = 0; j < levels; j++) out[j] = Math.min((j + 1) * eta, bits);
    return out;
  }

  public int groups() {
    return lengths.length;
  }

  @Override
  public String protocol() {
    return name;
  }

  @Override
  public ItemDomain domain() {
    return domain;
  }

  @Override
  public void validate(Object item, Object party) {
    partyIndex(party);
    domain.encode(item);
  }

  public int g() {
    return olh.g;
  }

  /** The party names of a federated protocol, or null. */
  public List<String> parties() {
    return parties;
  }

  @Override
  public JsonObject config() {
    JsonObject c = Json.obj("protocol", name, "version", FrequencyOracle.WIRE_VERSION, "epsilon", epsilon, "k", k, "eta", eta,
        "domain", domain.config(), "fo", Json.obj("mechanism", "olh", "g", olh.g, "hash", Olh.HASH_FAMILY), "key", ItemDomain.KEY_FAMILY,
        "split", split, "levels", lengths, "prune_infeasible", pruneInfeasible);
    for (Map.Entry<String, JsonElement> e : extra.entrySet()) c.add(e.getKey(), e.getValue());
    return c;
  }

  @Override
  public String configHash() {
    return Json.configHash(config());
  }

  /** What the ledger charges per report. */
  @Override
  public double epsilonCharged() {
    return epsilon;
  }

  long prefixKeyOf(BigInteger code, int length) {
    return ItemDomain.prefixKey(code.shiftRight(domain.bits - length), length);
  }

  private Integer partyIndex(Object party) {
    if (parties == null) {
      if (party != null) throw new IllegalArgumentException(name + " is not federated; do not pass a party");
      return null;
    }
    if (party instanceof String && parties.contains(party)) return parties.indexOf(party);
    if (party instanceof Integer && (Integer) party >= 0 && (Integer) party < parties.size()) return (Integer) party;
    throw new IllegalArgumentException("party must be one of " + parties + " (or its index), got " + party);
  }

  /**
   * The user's level group, at random and independent of the item. "final-2x": the last two groups
   * (last prefix level, final estimation) get twice the users of the others: u uniform in 0..G+1;
   * u < G-2 joins group u+1, otherwise G-1 + (u-(G-2))/2 (_common.py's FinalHeavySplit).
   */
  int drawLevel(RandomSource source) {
    int groups = groups();
    if (!split.equals("final-2x")) return 1 + Sampling.uniformInt(groups, source);
    if (groups < 2) return 1;
    int u = Sampling.uniformInt(groups + 2, source);
    return u < groups - 2 ? u + 1 : groups - 1 + (u - (groups - 2)) / 2;
  }

  /** One report of {@code item} (the level group is drawn uniformly at random). */
  @Override
  public JsonObject perturb(Object item, Object party, RandomSource source) {
    Integer p = partyIndex(party);
    BigInteger code = domain.encode(item); // refuse a bad item before drawing anything
    int level = drawLevel(source);
    JsonObject inner = olh.perturbKey(prefixKeyOf(code, lengths[level - 1]), source);
    JsonObject out = Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", mechanism, "l", level, "s", inner.get("s"), "y", inner.get("y"));
    if (name.equals("treehist")) {
      JsonObject second = olh.perturbKey(ItemDomain.prefixKey(code, domain.bits), source);
      out.add("s2", second.get("s"));
      out.add("y2", second.get("y"));
    }
    if (p != null) out.addProperty("p", p);
    return out;
  }

  private List<String> expectedFields() {
    List<String> out = new ArrayList<>(Arrays.asList("v", "m", "l", "s", "y"));
    if (parties != null) out.add("p");
    if (name.equals("treehist")) out.addAll(Arrays.asList("s2", "y2"));
    return out;
  }

  /** Parse one payload as the Python server does; returns l, s, y (and p, s2, y2) as longs. */
  @Override
  public JsonObject decode(JsonElement payload, int index) {
    JsonObject p = PayloadFields.header(payload, expectedFields(), mechanism, index);
    JsonObject out = new JsonObject();
    out.addProperty("l", PayloadFields.intField(p, "l", 1, groups() + 1, index));
    out.addProperty("s", PayloadFields.seedField(p, "s", index));
    out.addProperty("y", PayloadFields.intField(p, "y", 0, g(), index));
    if (parties != null) out.addProperty("p", PayloadFields.intField(p, "p", 0, parties.size(), index));
    if (name.equals("treehist")) {
      out.addProperty("s2", PayloadFields.seedField(p, "s2", index));
      out.addProperty("y2", PayloadFields.intField(p, "y2", 0, g(), index));
    }
    return out;
  }

  private static String quoted(java.util.Collection<String> keys) {
    return PayloadFields.quoted(keys);
  }

  /** A prefix-tree protocol by its lower-case name (HeavyHitterProtocols checks the name). */
  static HeavyHitters prefixTree(String name, JsonObject options) {
    return new HeavyHitters(name, options);
  }

  /** Build a prefix-tree protocol (pem, treehist, tap, taps) by name with the Python SDK's options (snake_case). */
  public static HeavyHitters create(JsonElement protocol, JsonObject options) {
    return prefixTreeOnly(HeavyHitterProtocols.create(protocol, options));
  }

  /** Rebuild a prefix-tree protocol from its canonical config; derived fields (levels, key, fo) must agree. */
  public static HeavyHitters fromConfig(JsonElement element) {
    return prefixTreeOnly(HeavyHitterProtocols.fromConfig(element));
  }

  private static HeavyHitters prefixTreeOnly(HeavyHitterProtocol built) {
    if (built instanceof HeavyHitters) return (HeavyHitters) built;
    throw new ConfigException("heavy-hitter protocol " + PyRepr.strRepr(built.protocol()) + " is not a prefix-tree protocol ("
        + Compat.join(", ", PROTOCOLS) + "); HeavyHitterProtocols builds every protocol");
  }
}
