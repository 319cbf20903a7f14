package org.ldp.sdk.heavy;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Hex;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;
import org.ldp.sdk.mechanisms.FrequencyOracle;
import org.ldp.sdk.mechanisms.Grr;
import org.ldp.sdk.mechanisms.Olh;

/**
 * Known-candidate heavy hitters, protocol "known" (client_sdk/heavy_hitters/known.py), device
 * side: the frequencies of an analyst-supplied dictionary are estimated by the server; the
 * device reports its item once.
 *
 * <p>Privacy: epsilon-LDP per user, one report per user, charged epsilon. The user joins one of
 * two groups uniformly at random (CSPRNG, independently of the item; the group is public):
 * <b>screen</b> ({@code l} = 1): OLH with the linear hash {@code lin-zp-v1} over Z_p^d
 * ({@link LinearHash}): a seed s uniform in [0, p^d) and y = GRR_p(&lt;s, b(key)&gt; mod p), kept
 * with p* = e^eps/(e^eps + p - 1), else one of the p - 1 other values uniformly; s does not
 * depend on the item and GRR_p is epsilon-LDP (Wang, Blocki, Li, Jha, USENIX Security 2017, OLH
 * with g = p). <b>test</b> ({@code l} = 2): OLH ({@code olh-mas-v1}, the config's g) of the
 * item's full 32-bit key ({@code hh-key-v1} over all of the domain's bits), as PEM's final group.
 *
 * <p>Random bytes are drawn in the Python SDK's order (the shared vectors replay them): the
 * group (uniform in [0, 2)), then the screen's seed, keep bit and other value, or the test's OLH
 * report. Wire form, keys in this order: {@code {"v":1,"m":"known","l":1,"s":"<16 hex>","y":3}}.
 * The decoder is PEM's strict one with two groups and y below max(p, g), then per group: a
 * screen report needs s &lt; p^d and y &lt; p, a test report y &lt; g (reason "out_of_range").
 */
public final class KnownCandidates implements HeavyHitterProtocol {
  public static final String NAME = "known";
  public static final int SCREEN = 1;
  public static final int TEST = 2;
  public static final int MAX_K = 4096;
  static final List<String> OPTIONS = Arrays.asList("epsilon", "k", "domain", "g", "screen", "alpha");
  private static final List<String> REQUIRED = Arrays.asList("epsilon", "k", "domain");
  private static final List<String> FIELDS = Arrays.asList("v", "m", "l", "s", "y");
  private static final List<String> SCREEN_FIELDS = Arrays.asList("d", "hash", "p");

  public final double epsilon;
  public final int k;
  public final ItemDomain domain;
  /** the test group's OLH */
  public final Olh olh;
  public final double alpha;
  /** the screen's prime p and dimension d: p^d buckets */
  public final int p;
  public final int d;
  public final long buckets;
  /** the screen's GRR_p probability of keeping the hash value */
  public final double screenPStar;
  private final Sampling.Threshold screenKeep;

  private KnownCandidates(JsonObject options) {
    for (String key : options.keySet()) {
      if (!OPTIONS.contains(key)) throw new ConfigException("bad options for known: unexpected option " + PyRepr.strRepr(key));
    }
    for (String key : REQUIRED) {
      if (!options.has(key)) throw new ConfigException("bad options for known: missing required option " + PyRepr.strRepr(key));
    }
    this.olh = HeavyHitters.makeOlh(options.get("epsilon"), options.get("g"));
    this.epsilon = olh.epsilon;
    this.k = HeavyHitters.checkInt(options.get("k"), "k", 1, MAX_K);
    this.domain = ItemDomain.fromConfig(options.get("domain"));
    JsonElement a = options.has("alpha") ? options.get("alpha") : Json.of(0.05);
    this.alpha = HeavyHitters.checkFloat(a, "alpha");
    if (!(alpha > 0 && alpha < 1)) throw new ConfigException("alpha must lie in (0, 1), got " + PyRepr.repr(a));
    int[] screen = checkScreen(options.get("screen"), epsilon);
    this.p = screen[0];
    this.d = screen[1];
    this.buckets = LinearHash.buckets(p, d);
    this.screenPStar = Grr.probabilities(epsilon, p)[0];
    this.screenKeep = Sampling.Threshold.of(screenPStar);
  }

  /**
   * The screen's (p, d): the default at epsilon when absent or null ({@link LinearHash#defaultScreen});
   * else an object of {@code hash} ("lin-zp-v1"), {@code p} (a listed prime, default the default
   * screen's) and {@code d} (integer in [2, the largest d with p^d at most 2^22], default the
   * largest with p^d at most 2^21), nothing else; integers are JSON integers (never 7.0 or true).
   */
  static int[] checkScreen(JsonElement screen, double epsilon) {
    if (screen == null || screen.isJsonNull()) return LinearHash.defaultScreen(epsilon);
    if (!screen.isJsonObject()) throw new ConfigException("screen must be an object {'hash', 'p', 'd'}");
    JsonObject s = screen.getAsJsonObject();
    TreeSet<String> unknown = new TreeSet<>(s.keySet());
    unknown.removeAll(SCREEN_FIELDS);
    if (!unknown.isEmpty()) throw new ConfigException("unknown screen fields " + PayloadFields.quoted(unknown) + "; allowed: ['d', 'hash', 'p']");
    if (s.has("hash") && !(Json.isString(s.get("hash")) && s.get("hash").getAsString().equals(LinearHash.FAMILY))) {
      throw new ConfigException("screen.hash must be " + PyRepr.strRepr(LinearHash.FAMILY) + ", got " + PyRepr.repr(s.get("hash")));
    }
    int p = s.has("p") ? HeavyHitters.checkInt(s.get("p"), "screen.p", 2, 13) : LinearHash.defaultScreen(epsilon)[0];
    if (!LinearHash.PRIMES.contains(p)) throw new ConfigException("screen.p must be one of " + LinearHash.PRIMES + ", got " + p);
    int dMax = LinearHash.maxDigits(p, LinearHash.MAX_BUCKETS);
    JsonElement d = s.has("d") ? s.get("d") : Json.of(LinearHash.maxDigits(p, LinearHash.DEFAULT_BUCKETS));
    return new int[] {p, HeavyHitters.checkInt(d, "screen.d", 2, dMax)};
  }

  /** Build from the Python SDK's options (snake_case): epsilon, k, domain, and optionally g, screen, alpha. */
  public static KnownCandidates create(JsonObject options) {
    return new KnownCandidates(options);
  }

  @Override
  public String protocol() {
    return NAME;
  }

  @Override
  public ItemDomain domain() {
    return domain;
  }

  public int g() {
    return olh.g;
  }

  /** Values y lie below this in either group (the strict decoder's first bound; then per group). */
  public int yBound() {
    return Math.max(p, olh.g);
  }

  @Override
  public JsonObject config() {
    return Json.obj("protocol", NAME, "version", FrequencyOracle.WIRE_VERSION, "epsilon", epsilon, "k", k, "domain", domain.config(),
        "fo", Json.obj("mechanism", "olh", "g", olh.g, "hash", Olh.HASH_FAMILY), "key", ItemDomain.KEY_FAMILY,
        "screen", Json.obj("hash", LinearHash.FAMILY, "p", p, "d", d), "alpha", alpha);
  }

  @Override
  public String configHash() {
    return Json.configHash(config());
  }

  @Override
  public double epsilonCharged() {
    return epsilon;
  }

  @Override
  public void validate(Object item, Object party) {
    if (party != null) throw new IllegalArgumentException("known is not federated; do not pass a party");
    domain.encode(item);
  }

  /** The item's full-item 32-bit key ({@code hh-key-v1} over the domain's bits, as PEM's final group). */
  long keyOf(Object item) {
    BigInteger code = domain.encode(item);
    return ItemDomain.prefixKey(code, domain.bits);
  }

  /** One report of {@code item}: the group (uniform), then the group's report (see the class comment). */
  @Override
  public JsonObject perturb(Object item, Object party, RandomSource source) {
    if (party != null) throw new IllegalArgumentException("known is not federated; do not pass a party");
    long key = keyOf(item); // refuse a bad item before drawing anything
    int level = 1 + Sampling.uniformInt(2, source);
    if (level == SCREEN) {
      long seed = Sampling.uniformInt(buckets, source);
      int x = LinearHash.value(seed, key, p, d);
      int y = x;
      if (!Sampling.bernoulli(screenKeep, source)) {
        int u = Sampling.uniformInt(p - 1, source);
        y = u + (u >= x ? 1 : 0);
      }
      return Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", NAME, "l", SCREEN, "s", Hex.u64(seed), "y", y);
    }
    JsonObject inner = olh.perturbKey(key, source);
    return Json.obj("v", FrequencyOracle.WIRE_VERSION, "m", NAME, "l", TEST, "s", inner.get("s"), "y", inner.get("y"));
  }

  /** Parse one payload as the Python server does; returns l, s (the hex seed) and y. */
  @Override
  public JsonObject decode(JsonElement payload, int index) {
    JsonObject p = PayloadFields.header(payload, FIELDS, NAME, index);
    long level = PayloadFields.intField(p, "l", 1, 3, index);
    String seed = PayloadFields.seedField(p, "s", index);
    long y = PayloadFields.intField(p, "y", 0, yBound(), index);
    if (level == SCREEN && (Compat.compareUnsigned(Compat.parseHex64(seed), buckets) >= 0 || y >= this.p)) {
      throw new ReportDecodeException("out_of_range", "a screen report (l = 1) needs s < " + buckets + " (p^d) and y < " + this.p, index);
    }
    if (level == TEST && y >= olh.g) throw new ReportDecodeException("out_of_range", "a test report (l = 2) needs y < " + olh.g, index);
    return Json.obj("l", level, "s", seed, "y", y);
  }

  @Override
  public String toString() {
    return "KnownCandidates(epsilon=" + PyRepr.floatRepr(epsilon) + ", k=" + k + ", domain=" + Json.canonical(domain.config()) + ")";
  }
}
