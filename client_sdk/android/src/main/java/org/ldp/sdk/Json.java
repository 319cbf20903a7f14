package org.ldp.sdk;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import java.io.StringReader;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * JSON with Python's number types kept, and the config hash: {@code sha256:<hex>} of the RFC 8785
 * (JCS) text ({@link Jcs}, client_sdk/canonical.py). {@link #canonical} is Python's
 * {@code json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)} text, kept
 * for typed comparisons; it is not what configs are hashed over.
 *
 * <p>Gson keeps a parsed number's text, so a number written with a fraction or an exponent is
 * a Python float and any other number a Python int, exactly as {@code json.loads} types them
 * (the SDK's validators follow Python's int/float rules); numbers the SDK builds are floats
 * when they are {@code Double}s.
 */
public final class Json {
  private Json() {}

  /** Compact, no HTML escaping ("=" of base64 stays "="), nulls kept: wire payloads. */
  public static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

  /** Strict JSON (no NaN, no comments, no single quotes), numbers kept as their text. */
  public static JsonElement parse(String text) {
    JsonReader reader = new JsonReader(new StringReader(text));
    reader.setStrictness(Strictness.STRICT);
    JsonElement out = JsonParser.parseReader(reader);
    return out;
  }

  public static String write(JsonElement value) {
    return GSON.toJson(value);
  }

  /** Is this number a Python float (a Double, or parsed text with '.', 'e' or 'E')? */
  public static boolean isFloat(JsonPrimitive p) {
    if (!p.isNumber()) return false;
    Number n = p.getAsNumber();
    if (n instanceof Double || n instanceof Float || n instanceof BigDecimal) return true;
    if (n instanceof Integer || n instanceof Long || n instanceof Short || n instanceof Byte || n instanceof BigInteger) {
      return false;
    }
    String t = n.toString();
    return t.indexOf('.') >= 0 || t.indexOf('e') >= 0 || t.indexOf('E') >= 0;
  }

  /** Is this a Python int (a number without fraction or exponent; never a bool)? */
  public static boolean isInt(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber() && !isFloat(e.getAsJsonPrimitive());
  }

  /** Is this a Python int or float (never a bool)? */
  public static boolean isNumber(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber();
  }

  public static boolean isString(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
  }

  public static boolean isBoolean(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean();
  }

  /** The decimal text of a Python int. */
  public static String intText(JsonPrimitive p) {
    return new BigInteger(p.getAsNumber().toString()).toString();
  }

  public static BigInteger bigInt(JsonElement e) {
    return new BigInteger(e.getAsJsonPrimitive().getAsNumber().toString());
  }

  /** Numeric equality as Python's == (1 == 1.0); false for non-numbers and bools. */
  public static boolean numberEquals(JsonElement e, long value) {
    if (!isNumber(e)) return false;
    JsonPrimitive p = e.getAsJsonPrimitive();
    if (isFloat(p)) return p.getAsDouble() == value;
    return bigInt(p).equals(BigInteger.valueOf(value));
  }

  /** The wire version check: the JSON integer itself (1.0 and true are not version 1). */
  public static boolean isVersion(JsonElement e, long version) {
    return isInt(e) && numberEquals(e, version);
  }

  /** Refuse a payload field its protocol does not define (reason unknown_field). */
  public static void refuseUnknownFields(JsonObject payload, java.util.Collection<String> allowed, int index) {
    java.util.TreeSet<String> extra = new java.util.TreeSet<>();
    for (String k : payload.keySet()) if (!allowed.contains(k)) extra.add(k);
    if (!extra.isEmpty()) {
      java.util.List<String> shown = new java.util.ArrayList<>(extra).subList(0, Math.min(5, extra.size()));
      StringBuilder s = new StringBuilder("[");
      for (String k : shown) s.append(s.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
      throw new ReportDecodeException("unknown_field", "unexpected fields " + s + "]", index);
    }
  }

  /** A Python int that fits a long, else null. */
  public static Long longValue(JsonElement e) {
    if (!isInt(e)) return null;
    BigInteger b = bigInt(e);
    return b.bitLength() < 64 ? b.longValue() : null;
  }

  public static JsonElement get(JsonObject o, String key) {
    return o.has(key) ? o.get(key) : null;
  }

  public static boolean has(JsonObject o, String key) {
    return o.has(key);
  }

  // --- canonical JSON ---------------------------------------------------------------------

  /** Sorted keys (by code point), no whitespace, non-ASCII kept: the Python SDK's text. */
  public static String canonical(JsonElement value) {
    StringBuilder out = new StringBuilder();
    writeCanonical(value, out);
    return out.toString();
  }

  private static void writeCanonical(JsonElement value, StringBuilder out) {
    if (value == null || value.isJsonNull()) {
      out.append("null");
    } else if (value.isJsonPrimitive()) {
      JsonPrimitive p = value.getAsJsonPrimitive();
      if (p.isBoolean()) out.append(p.getAsBoolean() ? "true" : "false");
      else if (p.isString()) writeString(p.getAsString(), out);
      else if (isFloat(p)) out.append(PyRepr.floatRepr(p.getAsDouble()));
      else out.append(intText(p));
    } else if (value.isJsonArray()) {
      JsonArray a = value.getAsJsonArray();
      out.append('[');
      for (int i = 0; i < a.size(); i++) {
        if (i > 0) out.append(',');
        writeCanonical(a.get(i), out);
      }
      out.append(']');
    } else {
      List<Map.Entry<String, JsonElement>> entries = new ArrayList<>(value.getAsJsonObject().entrySet());
      entries.sort((x, y) -> compareCodePoints(x.getKey(), y.getKey()));
      out.append('{');
      boolean first = true;
      for (Map.Entry<String, JsonElement> e : entries) {
        if (!first) out.append(',');
        first = false;
        writeString(e.getKey(), out);
        out.append(':');
        writeCanonical(e.getValue(), out);
      }
      out.append('}');
    }
  }

  /** Python's sort_keys order: by code point, not by UTF-16 unit. */
  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int x = a.codePointAt(i);
      int y = b.codePointAt(j);
      if (x != y) return Integer.compare(x, y);
      i += Character.charCount(x);
      j += Character.charCount(y);
    }
    return Integer.compare(a.length() - i, b.length() - j);
  }

  /** What json.dumps(ensure_ascii=False) escapes: quote, backslash and controls below 0x20. */
  static void writeString(String s, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        default:
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
      }
    }
    out.append('"');
  }

  /**
   * The config hash: {@code sha256:<hex>} of the RFC 8785 (JCS) text ({@link Jcs}), the only
   * form configs are hashed in (config version 2, client_sdk/canonical.py).
   */
  public static String configHash(JsonElement value) {
    return Jcs.hash(value);
  }

  public static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java and Android platform", e);
    }
  }

  // --- small builders ---------------------------------------------------------------------

  /** An object from alternating keys and values (String, Number, Boolean, JsonElement, null). */
  public static JsonObject obj(Object... kv) {
    JsonObject o = new JsonObject();
    for (int i = 0; i < kv.length; i += 2) o.add((String) kv[i], of(kv[i + 1]));
    return o;
  }

  public static JsonElement of(Object v) {
    if (v == null) return com.google.gson.JsonNull.INSTANCE;
    if (v instanceof JsonElement) return (JsonElement) v;
    if (v instanceof String) return new JsonPrimitive((String) v);
    if (v instanceof Number) return new JsonPrimitive((Number) v);
    if (v instanceof Boolean) return new JsonPrimitive((Boolean) v);
    if (v instanceof int[]) {
      JsonArray a = new JsonArray();
      for (int x : (int[]) v) a.add(x);
      return a;
    }
    throw new IllegalArgumentException("not a JSON value: " + v.getClass());
  }
}
