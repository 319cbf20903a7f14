package org.ldp.sdk;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * RFC 8785, the JSON Canonicalization Scheme: keys sorted by UTF-16 code units, no
 * whitespace, strings as ECMAScript {@code JSON.stringify} writes them, numbers in ECMAScript's
 * shortest round-trip form ({@code 1.0} is {@code 1}, {@code 1e-07} is {@code 1e-7}), UTF-8.
 * The form the server's configs are hashed in from config version 2 on (the Python SDK's
 * client_sdk/canonical.py); integers beyond ±(2^53 − 1), NaN and infinities have no RFC 8785
 * form and are refused.
 */
public final class Jcs {
  private Jcs() {}

  private static final BigInteger MAX_SAFE = BigInteger.valueOf((1L << 53) - 1);

  public static String canonical(JsonElement value) {
    StringBuilder out = new StringBuilder();
    write(value, out);
    return out.toString();
  }

  /** {@code sha256:<hex>} of the RFC 8785 text. */
  public static String hash(JsonElement value) {
    return "sha256:" + Hex.encode(Json.sha256(canonical(value).getBytes(StandardCharsets.UTF_8)));
  }

  private static void write(JsonElement value, StringBuilder out) {
    if (value == null || value.isJsonNull()) {
      out.append("null");
    } else if (value.isJsonPrimitive()) {
      JsonPrimitive p = value.getAsJsonPrimitive();
      if (p.isBoolean()) out.append(p.getAsBoolean() ? "true" : "false");
      else if (p.isString()) writeString(p.getAsString(), out);
      else out.append(number(p));
    } else if (value.isJsonArray()) {
      JsonArray a = value.getAsJsonArray();
      out.append('[');
      for (int i = 0; i < a.size(); i++) {
        if (i > 0) out.append(',');
        write(a.get(i), out);
      }
      out.append(']');
    } else {
      JsonObject o = value.getAsJsonObject();
      List<Map.Entry<String, JsonElement>> entries = new ArrayList<>(o.entrySet());
      entries.sort((x, y) -> x.getKey().compareTo(y.getKey())); // UTF-16 code units
      out.append('{');
      for (int i = 0; i < entries.size(); i++) {
        if (i > 0) out.append(',');
        writeString(entries.get(i).getKey(), out);
        out.append(':');
        write(entries.get(i).getValue(), out);
      }
      out.append('}');
    }
  }

  private static String number(JsonPrimitive p) {
    if (!Json.isFloat(p)) {
      BigInteger n = Json.bigInt(p);
      if (n.abs().compareTo(MAX_SAFE) > 0) throw new IllegalArgumentException("integer " + n + " has no RFC 8785 form (beyond 2^53 - 1)");
      return n.toString();
    }
    return ecmaNumber(p.getAsDouble());
  }

  /** ECMAScript's Number.prototype.toString(x) (ECMA-262 Number::toString), shortest round trip. */
  public static String ecmaNumber(double x) {
    if (Double.isNaN(x) || Double.isInfinite(x)) throw new IllegalArgumentException("NaN and infinities have no RFC 8785 form");
    if (x == 0) return "0";
    String sign = x < 0 ? "-" : "";
    BigDecimal s = PyRepr.shortest(Math.abs(x)).stripTrailingZeros();
    String digits = s.unscaledValue().toString();
    int k = digits.length();
    int n = k - s.scale(); // value = 0.d1..dk * 10^n
    StringBuilder out = new StringBuilder(sign);
    if (k <= n && n <= 21) {
      out.append(digits);
      for (int i = k; i < n; i++) out.append('0');
    } else if (0 < n && n <= 21) {
      out.append(digits, 0, n).append('.').append(digits.substring(n));
    } else if (-6 < n && n <= 0) {
      out.append("0.");
      for (int i = 0; i < -n; i++) out.append('0');
      out.append(digits);
    } else {
      int e = n - 1;
      out.append(digits.charAt(0));
      if (k > 1) out.append('.').append(digits.substring(1));
      out.append('e').append(e < 0 ? '-' : '+').append(Math.abs(e));
    }
    return out.toString();
  }

  /** JSON.stringify's string form: short escapes, other controls as \\u00xx, lone surrogates escaped. */
  static void writeString(String s, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
          boolean lone = Character.isHighSurrogate(c) ? !(i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1)))
              : Character.isLowSurrogate(c) && !(i > 0 && Character.isHighSurrogate(s.charAt(i - 1)));
          if (c < 0x20 || lone) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
      }
    }
    out.append('"');
  }
}
