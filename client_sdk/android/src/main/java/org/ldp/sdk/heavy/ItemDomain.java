package org.ldp.sdk.heavy;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.ldp.sdk.ConfigException;
import org.ldp.sdk.Json;
import org.ldp.sdk.PyRepr;
import org.ldp.sdk.mechanisms.Olh;

/**
 * Item encoding of the prefix-tree heavy hitters (client_sdk/heavy_hitters/encoding.py):
 * item to m-bit code ({@code hh-item-v1}), prefixes, and their 32-bit OLH keys
 * ({@code hh-key-v1}). No randomness and no data-dependent choice: a public, versioned mapping.
 *
 * <p>Strings ({@code max_bytes} = L, m = 8L): UTF-8 bytes right-padded with 0x00, read
 * big-endian; U+0000 and lone surrogates refused; longer strings truncated to whole code
 * points ({@code overflow: "truncate"}) or refused ({@code "reject"}). Integers ({@code bits} = m):
 * a Long/Integer/BigInteger in [0, 2^m). Keys: length <= 32: fmix32(P xor (length * 0x9E3779B9
 * mod 2^32)); longer: h >> 32 where h = splitmix64(length * phi + 0x6868) absorbs the prefix's
 * 64-bit words, least significant first, as h = splitmix64(h xor w).
 */
public final class ItemDomain {
  public static final String ITEM_ENCODING = "hh-item-v1";
  public static final String KEY_FAMILY = "hh-key-v1";
  public static final int MAX_STRING_BYTES = 32;
  public static final int MAX_INTEGER_BITS = 64;
  private static final BigInteger MASK64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

  /** "string" or "integer" */
  public final String type;
  public final int bits;
  public final int maxBytes;
  public final String overflow;

  private ItemDomain(String type, int bits, int maxBytes, String overflow) {
    this.type = type;
    this.bits = bits;
    this.maxBytes = maxBytes;
    this.overflow = overflow;
  }

  public static ItemDomain strings(int maxBytes, String overflow) {
    return fromConfig(Json.obj("type", "string", "max_bytes", maxBytes, "overflow", overflow));
  }

  public static ItemDomain integers(int bits) {
    return fromConfig(Json.obj("type", "integer", "bits", bits));
  }

  private static int checkIntOption(JsonElement value, String name, int low, int high) {
    Long v = Json.longValue(value);
    if (v == null || v < low || v > high) throw new ConfigException(name + " must be an integer in [" + low + ", " + high + "], got " + PyRepr.repr(value));
    return v.intValue();
  }

  /** Rebuild from {"type": "string", "max_bytes": L} or {"type": "integer", "bits": m}. */
  public static ItemDomain fromConfig(JsonElement element) {
    if (element == null || !element.isJsonObject()) throw new ConfigException("domain must be a mapping, got " + PyRepr.repr(element));
    JsonObject c = element.getAsJsonObject();
    JsonElement encoding = c.has("encoding") ? c.get("encoding") : Json.of(ITEM_ENCODING);
    if (!(Json.isString(encoding) && encoding.getAsString().equals(ITEM_ENCODING))) {
      throw new ConfigException("unknown item encoding " + PyRepr.repr(encoding) + "; supported: " + ITEM_ENCODING);
    }
    JsonElement type = Json.get(c, "type");
    String t = Json.isString(type) ? type.getAsString() : "";
    java.util.List<String> known = t.equals("string") ? Arrays.asList("encoding", "max_bytes", "overflow", "type")
        : t.equals("integer") ? Arrays.asList("bits", "encoding", "type") : null;
    if (known != null) {
      java.util.TreeSet<String> unknown = new java.util.TreeSet<>(c.keySet());
      unknown.removeAll(known);
      if (!unknown.isEmpty()) { // a key this version does not know is refused, never silently dropped
        StringBuilder u = new StringBuilder("[");
        for (String k : unknown) u.append(u.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
        StringBuilder a = new StringBuilder("[");
        for (String k : known) a.append(a.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
        throw new ConfigException("unknown " + t + " domain fields " + u + "]; allowed: " + a + "]");
      }
    }
    if (t.equals("string")) {
      if (!c.has("max_bytes")) throw new ConfigException("domain config lacks 'max_bytes'");
      int maxBytes = checkIntOption(c.get("max_bytes"), "max_bytes", 1, MAX_STRING_BYTES);
      JsonElement overflow = c.has("overflow") ? c.get("overflow") : Json.of("truncate");
      if (!(Json.isString(overflow) && (overflow.getAsString().equals("truncate") || overflow.getAsString().equals("reject")))) {
        throw new ConfigException("overflow must be 'truncate' or 'reject', got " + PyRepr.repr(overflow));
      }
      return new ItemDomain("string", 8 * maxBytes, maxBytes, overflow.getAsString());
    }
    if (t.equals("integer")) {
      if (!c.has("bits")) throw new ConfigException("domain config lacks 'bits'");
      return new ItemDomain("integer", checkIntOption(c.get("bits"), "bits", 1, MAX_INTEGER_BITS), 0, null);
    }
    throw new ConfigException("domain type must be 'string' or 'integer', got " + PyRepr.repr(type));
  }

  public JsonObject config() {
    if (type.equals("string")) return Json.obj("type", "string", "max_bytes", maxBytes, "overflow", overflow, "encoding", ITEM_ENCODING);
    return Json.obj("type", "integer", "bits", bits, "encoding", ITEM_ENCODING);
  }

  /** The unpadded UTF-8 bytes a string item stands for (after truncation). */
  public byte[] toBytes(Object item) {
    if (!(item instanceof String)) {
      throw new ItemEncodingException("string items must be str, got " + (item == null ? "NoneType" : item.getClass().getSimpleName()));
    }
    String s = (String) item;
    if (s.indexOf('\u0000') >= 0) throw new ItemEncodingException("string items may not contain U+0000 (0x00 is the pad byte)");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) throw new ItemEncodingException("string item is not valid Unicode (lone surrogate)");
        i++;
      } else if (Character.isLowSurrogate(c)) {
        throw new ItemEncodingException("string item is not valid Unicode (lone surrogate)");
      }
    }
    byte[] raw = s.getBytes(StandardCharsets.UTF_8);
    if (raw.length > maxBytes) {
      if (overflow.equals("reject")) {
        throw new ItemEncodingException("string item is " + raw.length + " UTF-8 bytes long; at most " + maxBytes + " allowed (overflow='reject')");
      }
      int cut = maxBytes;
      while ((raw[cut] & 0xc0) == 0x80) cut -= 1; // never split a character
      raw = Arrays.copyOf(raw, cut);
    }
    return raw;
  }

  /** The item as the server will see it (truncated per the overflow rule). */
  public String canonical(Object item) {
    return new String(toBytes(item), StandardCharsets.UTF_8);
  }

  /** The item's m-bit code. */
  public BigInteger encode(Object item) {
    if (type.equals("string")) {
      byte[] raw = toBytes(item);
      BigInteger code = BigInteger.ZERO;
      for (int i = 0; i < maxBytes; i++) code = code.shiftLeft(8).or(BigInteger.valueOf(i < raw.length ? raw[i] & 0xff : 0));
      return code;
    }
    BigInteger v;
    if (item instanceof BigInteger) v = (BigInteger) item;
    else if (item instanceof Long || item instanceof Integer || item instanceof Short || item instanceof Byte) v = BigInteger.valueOf(((Number) item).longValue());
    else throw new ItemEncodingException("integer items must be int, got " + (item == null ? "NoneType" : item.getClass().getSimpleName()));
    if (v.signum() < 0 || v.bitLength() > bits) throw new ItemEncodingException("integer item " + v + " is outside [0, 2^" + bits + ")");
    return v;
  }

  /** MurmurHash3's 32-bit finaliser (a bijection of [0, 2^32)). */
  public static int fmix32(int x) {
    x ^= x >>> 16;
    x *= 0x85ebca6b;
    x ^= x >>> 13;
    x *= 0xc2b2ae35;
    return x ^ (x >>> 16);
  }

  /** The 32-bit OLH key of a length-{@code length} prefix ({@code hh-key-v1}), unsigned. */
  public static long prefixKey(BigInteger prefix, int length) {
    if (length < 1) throw new IllegalArgumentException("prefix length must be >= 1, got " + length);
    if (prefix.signum() < 0 || prefix.bitLength() > length) throw new IllegalArgumentException("prefix " + prefix + " does not fit in " + length + " bits");
    if (length <= 32) {
      int mult = (int) ((long) length * 0x9E3779B9L);
      return fmix32(prefix.intValue() ^ mult) & 0xffffffffL;
    }
    long h = Olh.splitmix64((long) length * Olh.GOLDEN + 0x6868L);
    int words = Math.max(1, (length + 63) / 64);
    for (int j = 0; j < words; j++) h = Olh.splitmix64(h ^ prefix.shiftRight(64 * j).and(MASK64).longValue());
    return h >>> 32;
  }
}
