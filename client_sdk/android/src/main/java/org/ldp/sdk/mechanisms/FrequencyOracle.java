package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.SecureRandomSource;

/**
 * The contract every frequency oracle fulfils on the device (client_sdk/mechanisms/_base.py):
 * parameters, perturbation of one value into a wire payload, and a decoder that refuses
 * malformed payloads with the Python server's reason codes. Estimation stays on the server.
 */
public abstract class FrequencyOracle {
  public static final int WIRE_VERSION = 1;
  /** below this p* - q* vanishes and estimates explode */
  public static final double EPSILON_MIN = 0.01;
  /** above this exp(eps) loses the q side to rounding */
  public static final double EPSILON_MAX = 20.0;

  public final String name;
  public final double epsilon;
  public final long domainSize;

  protected FrequencyOracle(String name, JsonElement epsilon, JsonElement domainSize, long maxDomainSize) {
    this.name = name;
    this.epsilon = validateEpsilon(epsilon, "epsilon");
    this.domainSize = validateDomainSize(domainSize, maxDomainSize, name);
  }

  public static double validateEpsilon(JsonElement epsilon, String what) {
    if (!Json.isNumber(epsilon)) throw new ConfigException(what + " must be a number, got " + PyRepr.repr(epsilon));
    double e = epsilon.getAsDouble();
    if (Double.isNaN(e) || Double.isInfinite(e) || e <= 0) {
      throw new ConfigException(what + " must be a finite number > 0, got " + PyRepr.repr(epsilon));
    }
    if (e < EPSILON_MIN || e > EPSILON_MAX) {
      throw new ConfigException(what + " must lie in [" + PyRepr.floatRepr(EPSILON_MIN) + ", " + PyRepr.floatRepr(EPSILON_MAX)
          + "], got " + PyRepr.floatRepr(e));
    }
    return e;
  }

  public static long validateDomainSize(JsonElement domainSize, long maximum, String mechanism) {
    if (!Json.isInt(domainSize)) throw new ConfigException("domain_size must be an integer, got " + PyRepr.repr(domainSize));
    java.math.BigInteger k = Json.bigInt(domainSize);
    if (k.compareTo(java.math.BigInteger.valueOf(2)) < 0) throw new ConfigException("domain_size must be at least 2, got " + k);
    if (k.compareTo(java.math.BigInteger.valueOf(maximum)) > 0) {
      throw new ConfigException("domain_size " + k + " is too large for " + mechanism + " (at most " + maximum + ")");
    }
    return k.longValue();
  }

  /** Every field of a wire payload ("v", "m" and the mechanism's own); any other is refused. */
  protected abstract java.util.List<String> wireFields();

  /** P[v in Support(y) | user holds v]. */
  public abstract double pStar();

  /** P[v in Support(y) | user holds u != v]. */
  public abstract double qStar();

  /** Size of one report's payload in bits (for the report-size limit of "auto"). */
  public abstract int reportBits();

  /** n Var*: the variance of one value's estimate at f = 0, times n. */
  public double varianceApproxPerUser() {
    double gap = pStar() - qStar();
    return qStar() * (1 - qStar()) / (gap * gap);
  }

  /** The canonical configuration: everything both sides need, nothing else. */
  public JsonObject config() {
    return Json.obj("mechanism", name, "epsilon", epsilon, "domain_size", domainSize);
  }

  public String configHash() {
    return Json.configHash(config());
  }

  /** The mechanism's probabilities (Python's privacy.parameters). */
  public Map<String, Number> parameters() {
    Map<String, Number> out = new LinkedHashMap<>();
    out.put("p", pStar());
    out.put("q", qStar());
    return out;
  }

  protected long checkValue(long value) {
    if (value < 0 || value >= domainSize) {
      throw new IllegalArgumentException("value " + value + " is outside the domain [0, " + domainSize + ")");
    }
    return value;
  }

  /** One report's wire payload, drawn from the platform CSPRNG. */
  public JsonObject perturb(long value) {
    return perturb(value, SecureRandomSource.INSTANCE);
  }

  /** One report's wire payload, drawn from {@code source}. */
  public abstract JsonObject perturb(long value, RandomSource source);

  /** The wire payload of a report given in decoded form (the inverse of {@link #decode}). */
  public abstract JsonObject encode(DecodedReport report);

  /** Parse one wire payload; throws ReportDecodeException (with {@code index}) if malformed. */
  public abstract DecodedReport decode(JsonElement payload, int index);

  /** Exact probability of every report for {@code value} (small domains), keyed by output. */
  public Map<Long, Double> outputDistribution(long value) {
    throw new UnsupportedOperationException("output distribution not enumerated for " + name);
  }

  protected JsonObject checkHeader(JsonElement payload, int index) {
    if (payload == null || !payload.isJsonObject()) throw new ReportDecodeException("not_an_object", "payload must be a JSON object", index);
    JsonObject p = payload.getAsJsonObject();
    JsonElement v = Json.get(p, "v");
    if (!Json.isVersion(v, WIRE_VERSION)) {
      throw new ReportDecodeException("bad_version", "wire version must be the integer " + WIRE_VERSION + ", got " + PyRepr.repr(v), index);
    }
    JsonElement m = Json.get(p, "m");
    if (!(Json.isString(m) && m.getAsString().equals(name))) {
      throw new ReportDecodeException("wrong_mechanism", "payload is for mechanism " + PyRepr.repr(m) + ", expected '" + name + "'", index);
    }
    Json.refuseUnknownFields(p, wireFields(), index);
    return p;
  }

  /** An integer field in [0, upper), or a ReportDecodeException naming the field. */
  public static long decodeIndex(JsonElement raw, long upper, String field, int index) {
    if (!Json.isInt(raw)) {
      throw new ReportDecodeException("bad_type", "field '" + field + "' must be an integer, got " + PyRepr.repr(raw), index);
    }
    java.math.BigInteger y = Json.bigInt(raw);
    if (y.signum() < 0 || y.compareTo(java.math.BigInteger.valueOf(upper)) >= 0) {
      throw new ReportDecodeException("out_of_range", "field '" + field + "' = " + PyRepr.repr(raw) + " is outside [0, " + upper + ")", index);
    }
    return y.longValue();
  }

  public static long checkIndex(long y, long upper) {
    if (y < 0 || y >= upper) throw new IllegalArgumentException("report index must be an integer in [0, " + upper + "), got " + y);
    return y;
  }

  protected static JsonObject header(String m) {
    return Json.obj("v", WIRE_VERSION, "m", m);
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + "(epsilon=" + PyRepr.floatRepr(epsilon) + ", domain_size=" + domainSize + ")";
  }
}
