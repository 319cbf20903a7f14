package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ldp.sdk.Compat;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Hex;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;

/**
 * OLH, optimised local hashing, and BLH (its g = 2 case) (Wang, Blocki, Li, Jha, USENIX
 * Security 2017); client_sdk/mechanisms/olh.py.
 *
 * <p>Privacy: epsilon-LDP. Each report draws a fresh hash function H_s: domain -> [g]
 * independent of the data, then applies GRR over [g]. g = round(e^eps) + 1 (OLH) or 2 (BLH);
 * p* = e^eps/(e^eps + g - 1), q* = 1/g.
 *
 * <p>Hash family {@code olh-mas-v1} (docs/mechanisms.md), 64-bit wrapping arithmetic:
 * a = splitmix64(s + phi), b = splitmix64(s + 2 phi); h(x) = ((a x + b) mod 2^64) >> 32;
 * H_s(x) = (h(x) g) >> 32.
 */
public final class Olh extends FrequencyOracle {
  public static final String HASH_FAMILY = "olh-mas-v1";
  public static final long GOLDEN = 0x9E3779B97F4A7C15L;
  public static final long MAX_KEY = 1L << 32;
  public static final long MAX_G = 1L << 20;
  public final int g;
  private final double p;
  private final double qReport;
  private final Sampling.Threshold keep;

  private Olh(String name, JsonElement epsilon, JsonElement domainSize, JsonElement g) {
    super(name, epsilon, domainSize, MAX_KEY);
    long range;
    if (g == null || g.isJsonNull()) {
      range = optimalG(this.epsilon);
      if (range < 2 || range > MAX_G) throw new ConfigException("hash range g must be an integer in [2, 2^20], got " + range);
    } else {
      Long gv = Json.longValue(g);
      if (gv == null || gv < 2 || gv > MAX_G) throw new ConfigException("hash range g must be an integer in [2, 2^20], got " + PyRepr.repr(g));
      range = gv;
    }
    this.g = (int) range;
    double[] pq = Grr.probabilities(this.epsilon, this.g);
    p = pq[0];
    qReport = pq[1];
    keep = Sampling.Threshold.of(p);
  }

  public static Olh olh(JsonElement epsilon, JsonElement domainSize, JsonElement g) {
    return new Olh("olh", epsilon, domainSize, g);
  }

  public static Olh blh(JsonElement epsilon, JsonElement domainSize, JsonElement g) {
    if (!(g == null || g.isJsonNull() || (Json.isInt(g) && Json.numberEquals(g, 2)))) {
      throw new ConfigException("BLH has g = 2, got g = " + PyRepr.repr(g));
    }
    return new Olh("blh", epsilon, domainSize, Json.of(2));
  }

  /** SplitMix64's output function (Steele, Lea, Flood, OOPSLA 2014). */
  public static long splitmix64(long x) {
    long z = x;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** The multiplier a and offset b of the hash function named by a 64-bit seed. */
  public static long[] expandSeed(long seed) {
    return new long[] {splitmix64(seed + GOLDEN), splitmix64(seed + 2 * GOLDEN)};
  }

  /** H_seed(key) in [0, g) for one 32-bit key. */
  public static int hashValue(long seed, long key, long g) {
    long[] ab = expandSeed(seed);
    long h32 = (ab[0] * key + ab[1]) >>> 32;
    return (int) ((h32 * g) >>> 32);
  }

  /** g = round(e^eps) + 1, rounding half to even as Python does. */
  public static long optimalG(double epsilon) {
    return ExactMath.roundHalfEven(ExactMath.exp(epsilon)) + 1;
  }

  @Override
  protected java.util.List<String> wireFields() {
    return java.util.Arrays.asList("v", "m", "s", "y");
  }

  @Override
  public double pStar() {
    return p;
  }

  @Override
  public double qStar() {
    return 1.0 / g;
  }

  @Override
  public int reportBits() {
    return 64 + Math.max(1, ExactMath.bitLength(g - 1));
  }

  @Override
  public JsonObject config() {
    JsonObject c = super.config();
    c.addProperty("g", g);
    c.addProperty("hash", HASH_FAMILY);
    return c;
  }

  @Override
  public Map<String, Number> parameters() {
    Map<String, Number> out = new LinkedHashMap<>();
    out.put("p", p);
    out.put("q", qReport);
    out.put("q_star", qStar());
    out.put("g", g);
    return out;
  }

  @Override
  public JsonObject perturb(long value, RandomSource source) {
    return perturbKey(checkValue(value), source);
  }

  /** One report of an arbitrary 32-bit key (the heavy-hitter protocols use it). */
  public JsonObject perturbKey(long key, RandomSource source) {
    if (key < 0 || key >= MAX_KEY) throw new IllegalArgumentException("key must be a 32-bit unsigned integer, got " + key);
    long seed = Sampling.randomU64(source);
    long x = hashValue(seed, key, g);
    long y = x;
    if (!Sampling.bernoulli(keep, source)) {
      long u = Sampling.uniformInt(g - 1, source);
      y = u + (u >= x ? 1 : 0);
    }
    JsonObject out = header(name);
    out.addProperty("s", Hex.u64(seed));
    out.addProperty("y", y);
    return out;
  }

  @Override
  public JsonObject encode(DecodedReport report) {
    JsonObject out = header(name);
    out.addProperty("s", Hex.u64(report.seed));
    out.addProperty("y", checkIndex(report.y, g));
    return out;
  }

  @Override
  public DecodedReport decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    JsonElement raw = Json.get(p, "s");
    if (!Json.isString(raw) || raw.getAsString().codePointCount(0, raw.getAsString().length()) != 16) {
      throw new ReportDecodeException("bad_type", "field 's' must be a 16-digit hexadecimal seed", index);
    }
    String s = raw.getAsString();
    for (int i = 0; i < 16; i++) {
      char c = s.charAt(i);
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        throw new ReportDecodeException("bad_encoding", "field 's' is not hexadecimal", index);
      }
    }
    long seed = Compat.parseHex64(s);
    return DecodedReport.ofSeed(seed, decodeIndex(Json.get(p, "y"), g, "y", index));
  }
}
