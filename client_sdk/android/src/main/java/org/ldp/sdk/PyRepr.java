package org.ldp.sdk;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Map;

/** Python's text forms of numbers and values, so canonical JSON and messages match the Python SDK. */
public final class PyRepr {
  private PyRepr() {}

  /**
   * {@code repr(x)} of a Python float: the shortest decimal that reads back as x (the closest
   * such one), laid out by Python's rules. Not {@code Double.toString}: before JDK 19 (and so
   * on Android) it is not always the shortest.
   */
  public static String floatRepr(double x) {
    if (Double.isNaN(x) || Double.isInfinite(x)) {
      throw new IllegalArgumentException("Out of range float values are not JSON compliant: " + x);
    }
    if (x == 0) return (1 / x < 0) ? "-0.0" : "0.0";
    String sign = x < 0 ? "-" : "";
    BigDecimal s = shortest(Math.abs(x)).stripTrailingZeros();
    String digits = s.unscaledValue().toString();
    int decpt = digits.length() - s.scale(); // value = 0.<digits> * 10^decpt
    if (decpt <= -4 || decpt > 16) {
      int e = decpt - 1;
      int abs = Math.abs(e);
      String head = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
      return sign + head + "e" + (e < 0 ? "-" : "+") + (abs < 10 ? "0" : "") + abs;
    }
    StringBuilder out = new StringBuilder(sign);
    if (decpt <= 0) {
      out.append("0.");
      for (int i = 0; i < -decpt; i++) out.append('0');
      return out.append(digits).toString();
    }
    if (decpt >= digits.length()) {
      out.append(digits);
      for (int i = digits.length(); i < decpt; i++) out.append('0');
      return out.append(".0").toString();
    }
    return out.append(digits, 0, decpt).append('.').append(digits.substring(decpt)).toString();
  }

  /** The shortest decimal that reads back as the positive finite {@code ax} (the closest such one). */
  static BigDecimal shortest(double ax) {
    BigDecimal exact = new BigDecimal(ax);
    BigDecimal found = null;
    for (int p = 1; p <= 17 && found == null; p++) {
      BigDecimal nearest = exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
      if (nearest.doubleValue() == ax) {
        found = nearest;
        break;
      }
      // the round-trip interval is asymmetric at powers of two: try the other neighbour
      RoundingMode other = nearest.compareTo(exact) > 0 ? RoundingMode.DOWN : RoundingMode.UP;
      BigDecimal alt = exact.round(new MathContext(p, other));
      if (alt.doubleValue() == ax) found = alt;
    }
    if (found == null) throw new IllegalStateException("no round-trip representation for " + ax);
    return found;
  }

  /** {@code repr(s)} of a Python str. */
  public static String strRepr(String s) {
    char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder out = new StringBuilder().append(quote);
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch == quote || ch == '\\') out.append('\\').append(ch);
      else if (ch == '\n') out.append("\\n");
      else if (ch == '\r') out.append("\\r");
      else if (ch == '\t') out.append("\\t");
      else if (ch < 0x20 || ch == 0x7f) out.append(String.format("\\x%02x", (int) ch));
      else out.append(ch);
    }
    return out.append(quote).toString();
  }

  /** Python's repr of a JSON value, as the Python SDK's messages print it. */
  public static String repr(JsonElement value) {
    if (value == null || value.isJsonNull()) return "None";
    if (value.isJsonPrimitive()) {
      JsonPrimitive p = value.getAsJsonPrimitive();
      if (p.isBoolean()) return p.getAsBoolean() ? "True" : "False";
      if (p.isString()) return strRepr(p.getAsString());
      if (Json.isFloat(p)) return floatRepr(p.getAsDouble());
      return Json.intText(p);
    }
    StringBuilder out = new StringBuilder();
    if (value.isJsonArray()) {
      JsonArray a = value.getAsJsonArray();
      out.append('[');
      for (int i = 0; i < a.size(); i++) out.append(i > 0 ? ", " : "").append(repr(a.get(i)));
      return out.append(']').toString();
    }
    JsonObject o = value.getAsJsonObject();
    out.append('{');
    boolean first = true;
    for (Map.Entry<String, JsonElement> e : o.entrySet()) {
      out.append(first ? "" : ", ").append(strRepr(e.getKey())).append(": ").append(repr(e.getValue()));
      first = false;
    }
    return out.append('}').toString();
  }
}
