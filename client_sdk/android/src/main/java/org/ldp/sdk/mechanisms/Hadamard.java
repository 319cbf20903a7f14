package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.Sampling;

/**
 * Hadamard response, O(log k) bits per report (Acharya, Sun, Zhang, AISTATS 2019);
 * client_sdk/mechanisms/hadamard.py.
 *
 * <p>Privacy: epsilon-LDP. With K the smallest power of two above k, value x owns the half
 * C_x = {y : H_K[x+1][y] = +1}; the report is uniform on C_x with probability e^eps/(1+e^eps)
 * and uniform on its complement otherwise. Sampler: y1 uniform in [K], y2 = y1 XOR (highest set
 * bit of x+1); exactly one lies in C_x; report it with that probability, else the other.
 */
public final class Hadamard extends FrequencyOracle {
  public static final long MAX_DOMAIN_SIZE = 1L << 24;
  /** the smallest power of two above k */
  public final long bigK;
  private final double p;
  private final Sampling.Threshold keep;

  public Hadamard(JsonElement epsilon, JsonElement domainSize) {
    super("hr", epsilon, domainSize, MAX_DOMAIN_SIZE);
    bigK = 1L << ExactMath.bitLength(this.domainSize);
    double e = ExactMath.exp(this.epsilon);
    p = e / (1 + e);
    keep = Sampling.Threshold.of(p);
  }

  /** True where H[row][y] = +1, i.e. popcount(row AND y) is even. */
  public static boolean inHalf(long row, long y) {
    return Long.bitCount(row & y) % 2 == 0;
  }

  @Override
  protected java.util.List<String> wireFields() {
    return java.util.Arrays.asList("v", "m", "y");
  }

  @Override
  public double pStar() {
    return p;
  }

  @Override
  public double qStar() {
    return 0.5;
  }

  @Override
  public int reportBits() {
    return ExactMath.bitLength(domainSize);
  }

  @Override
  public Map<String, Number> parameters() {
    Map<String, Number> out = new LinkedHashMap<>();
    out.put("p", p);
    out.put("q", 0.5);
    out.put("K", bigK);
    return out;
  }

  @Override
  public JsonObject perturb(long value, RandomSource source) {
    long v = checkValue(value);
    long y1 = Sampling.uniformInt(bigK, source);
    long y2 = y1 ^ Long.highestOneBit(v + 1);
    long inside = inHalf(v + 1, y1) ? y1 : y2;
    long outside = inside == y1 ? y2 : y1;
    JsonObject out = header(name);
    out.addProperty("y", Sampling.bernoulli(keep, source) ? inside : outside);
    return out;
  }

  @Override
  public JsonObject encode(DecodedReport report) {
    JsonObject out = header(name);
    out.addProperty("y", checkIndex(report.y, bigK));
    return out;
  }

  @Override
  public DecodedReport decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    return DecodedReport.ofIndex(decodeIndex(p.get("y"), bigK, "y", index));
  }

  @Override
  public Map<Long, Double> outputDistribution(long value) {
    long v = checkValue(value);
    double inside = 2 * p / bigK;
    double outside = 2 * (1 - p) / bigK;
    Map<Long, Double> out = new LinkedHashMap<>();
    for (long y = 0; y < bigK; y++) out.put(y, inHalf(v + 1, y) ? inside : outside);
    return out;
  }
}
