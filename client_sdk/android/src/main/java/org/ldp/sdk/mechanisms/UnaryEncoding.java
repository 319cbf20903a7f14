package org.ldp.sdk.mechanisms;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ldp.sdk.Base64Codec;
import org.ldp.sdk.ExactMath;
import org.ldp.sdk.Json;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.Sampling;

/**
 * Unary encoding: SUE (basic one-time RAPPOR; Erlingsson, Pihur, Korolova, CCS 2014) and OUE
 * (Wang, Blocki, Li, Jha, USENIX Security 2017); client_sdk/mechanisms/unary.py.
 *
 * <p>Privacy: epsilon-LDP. A value is one-hot encoded into k bits; a 1-bit stays 1 with
 * probability p, a 0-bit becomes 1 with probability q; p(1-q)/((1-p)q) = e^epsilon.
 * SUE: p = e^(eps/2)/(e^(eps/2)+1), q = 1/(e^(eps/2)+1). OUE: p = 1/2, q = 1/(e^eps + 1).
 * Reports travel as packed bits (little-endian within each byte), base64 of ceil(k/8) bytes.
 */
public final class UnaryEncoding extends FrequencyOracle {
  /** 8 KiB per report; beyond that use OLH */
  public static final long MAX_DOMAIN_SIZE = 1L << 16;
  private final double p;
  private final double q;
  private final Sampling.Threshold keep;
  private final Sampling.Threshold flip;

  private UnaryEncoding(String name, JsonElement epsilon, JsonElement domainSize) {
    super(name, epsilon, domainSize, MAX_DOMAIN_SIZE);
    if (name.equals("oue")) {
      p = 0.5;
      q = 1.0 / (ExactMath.exp(this.epsilon) + 1.0);
    } else {
      double half = ExactMath.exp(this.epsilon / 2);
      p = half / (half + 1.0);
      q = 1.0 / (half + 1.0);
    }
    keep = Sampling.Threshold.ofVector(p);
    flip = Sampling.Threshold.ofVector(q);
  }

  public static UnaryEncoding oue(JsonElement epsilon, JsonElement domainSize) {
    return new UnaryEncoding("oue", epsilon, domainSize);
  }

  public static UnaryEncoding sue(JsonElement epsilon, JsonElement domainSize) {
    return new UnaryEncoding("sue", epsilon, domainSize);
  }

  @Override
  protected java.util.List<String> wireFields() {
    return java.util.Arrays.asList("v", "m", "bits");
  }

  @Override
  public double pStar() {
    return p;
  }

  @Override
  public double qStar() {
    return q;
  }

  @Override
  public int reportBits() {
    return (int) domainSize;
  }

  public int width() {
    return (int) ((domainSize + 7) >> 3);
  }

  /** Pack bits (0/1 per entry) little-endian within each byte. */
  public static byte[] packBits(byte[] bits, int from, int count) {
    byte[] out = new byte[(count + 7) >> 3];
    for (int j = 0; j < count; j++) if (bits[from + j] != 0) out[j >> 3] |= (byte) (1 << (j & 7));
    return out;
  }

  public static byte[] unpackBits(byte[] packed, int count) {
    byte[] out = new byte[count];
    for (int j = 0; j < count; j++) out[j] = (byte) ((packed[j >> 3] >> (j & 7)) & 1);
    return out;
  }

  public JsonObject encodeBits(byte[] bits) {
    if (bits.length != domainSize) throw new IllegalArgumentException("expected " + domainSize + " bits, got " + bits.length);
    JsonObject out = header(name);
    out.addProperty("bits", Base64Codec.encode(packBits(bits, 0, bits.length)));
    return out;
  }

  @Override
  public JsonObject encode(DecodedReport report) {
    return encodeBits(report.bits);
  }

  @Override
  public JsonObject perturb(long value, RandomSource source) {
    final int v = (int) checkValue(value);
    return encodeBits(Sampling.bernoulliBits((int) domainSize, j -> j == v ? keep : flip, source));
  }

  @Override
  public DecodedReport decode(JsonElement payload, int index) {
    JsonObject p = checkHeader(payload, index);
    return DecodedReport.ofBits(decodeBits(Json.get(p, "bits"), (int) domainSize, "bits", "", index));
  }

  /** A base64 string of ceil(k/8) bytes holding k little-endian bits (padding bits zero). */
  public static byte[] decodeBits(JsonElement raw, int k, String field, String typeSuffix, int index) {
    if (!Json.isString(raw)) throw new ReportDecodeException("bad_type", "field '" + field + "' must be a base64 string" + typeSuffix, index);
    byte[] data = Base64Codec.decodeStrict(raw.getAsString());
    if (data == null) throw new ReportDecodeException("bad_encoding", "field '" + field + "' is not valid base64", index);
    int width = (k + 7) >> 3;
    if (data.length != width) {
      throw new ReportDecodeException("bad_length", "field '" + field + "' holds " + data.length + " bytes, expected " + width + " for k=" + k, index);
    }
    int spare = width * 8 - k;
    if (spare != 0 && ((data[width - 1] & 0xff) >> (8 - spare)) != 0) {
      String prefix = field.equals("bits") ? "" : "field '" + field + "': ";
      throw new ReportDecodeException("out_of_range", prefix + "padding bits beyond the domain must be zero", index);
    }
    return unpackBits(data, k);
  }

  /** Keys are bit patterns (bit j of the key = report bit j); k <= 12. */
  @Override
  public Map<Long, Double> outputDistribution(long value) {
    long v = checkValue(value);
    if (domainSize > 12) throw new UnsupportedOperationException("output distribution enumerated for k <= 12 only");
    Map<Long, Double> out = new LinkedHashMap<>();
    for (long pattern = 0; pattern < (1L << domainSize); pattern++) {
      double probability = 1;
      for (int j = 0; j < domainSize; j++) {
        double one = j == v ? p : q;
        probability *= ((pattern >> j) & 1) != 0 ? one : 1 - one;
      }
      out.put(pattern, probability);
    }
    return out;
  }
}
