package org.ldp.sdk.heavy;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.util.Collection;
import java.util.List;
import java.util.TreeSet;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.mechanisms.FrequencyOracle;

/**
 * The strict checks of a heavy-hitter wire payload, as the Python server's decoder
 * (client_sdk/heavy_hitters/_common.py, decode_payloads) makes them and with its reason codes:
 * a JSON object with exactly the expected fields, wire version the integer 1, the protocol's
 * {@code m}, integer fields (never booleans or floats) in a half-open range, seeds of exactly 16
 * lowercase hexadecimal digits.
 */
final class PayloadFields {
  private PayloadFields() {}

  /** The payload as an object with exactly {@code expected} fields, version 1 and {@code m} = mechanism. */
  static JsonObject header(JsonElement payload, List<String> expected, String mechanism, int index) {
    if (payload == null || !payload.isJsonObject()) throw new ReportDecodeException("not_an_object", "payload must be a JSON object", index);
    JsonObject p = payload.getAsJsonObject();
    TreeSet<String> missing = new TreeSet<>(expected);
    missing.removeAll(p.keySet());
    TreeSet<String> unexpected = new TreeSet<>(p.keySet());
    unexpected.removeAll(expected);
    if (!missing.isEmpty() || !unexpected.isEmpty()) {
      throw new ReportDecodeException(!missing.isEmpty() ? "missing_field" : "unknown_field",
          "fields missing " + quoted(missing) + ", unexpected " + quoted(unexpected), index);
    }
    if (!Json.isVersion(p.get("v"), FrequencyOracle.WIRE_VERSION)) {
      throw new ReportDecodeException("bad_version", "wire version must be the integer 1, got " + PyRepr.repr(p.get("v")), index);
    }
    if (!(Json.isString(p.get("m")) && p.get("m").getAsString().equals(mechanism))) {
      throw new ReportDecodeException("wrong_mechanism", "payload is for " + PyRepr.repr(p.get("m")) + ", expected " + PyRepr.strRepr(mechanism), index);
    }
    return p;
  }

  /** Python's repr of a sorted list of strings: ['a', 'b']. */
  static String quoted(Collection<String> keys) {
    StringBuilder s = new StringBuilder("[");
    for (String k : keys) s.append(s.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
    return s.append(']').toString();
  }

  /** An integer field in [low, high). */
  static long intField(JsonObject p, String key, long low, long high, int index) {
    JsonElement value = p.get(key);
    if (!Json.isInt(value)) throw new ReportDecodeException("bad_type", "field '" + key + "' must be an integer", index);
    BigInteger v = Json.bigInt(value);
    if (v.compareTo(BigInteger.valueOf(low)) < 0 || v.compareTo(BigInteger.valueOf(high)) >= 0) {
      throw new ReportDecodeException("out_of_range", "field '" + key + "' must lie in [" + low + ", " + high + "), got " + PyRepr.repr(value), index);
    }
    return v.longValue();
  }

  /** A seed field: exactly 16 lowercase hexadecimal digits (returned as given). */
  static String seedField(JsonObject p, String key, int index) {
    JsonElement raw = p.get(key);
    if (!Json.isString(raw)) throw new ReportDecodeException("bad_type", "field '" + key + "' must be a 16-digit lowercase hexadecimal string", index);
    String s = raw.getAsString();
    boolean ok = s.length() == 16;
    for (int i = 0; ok && i < 16; i++) {
      char c = s.charAt(i);
      ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (!ok) throw new ReportDecodeException("bad_encoding", "field '" + key + "' must be 16 lowercase hexadecimal digits", index);
    return s;
  }
}
