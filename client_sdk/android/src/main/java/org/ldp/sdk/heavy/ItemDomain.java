package org.ldp.sdk.heavy;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
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
 * a Long/Integer/BigInteger in [0, 2^m). Alphabet strings ({@code alphabet}, {@code max_chars}):
 * each character is its 1-based index in the alphabet (or, for {@code unicode}, its code point),
 * 0 is the pad, b = bitlength(largest symbol) bits per symbol, m = b * max_chars; characters
 * outside the alphabet are refused or dropped ({@code outside}), then longer strings truncated
 * or refused ({@code overflow}). Keys: length <= 32: fmix32(P xor (length * 0x9E3779B9
 * mod 2^32)); longer: h >> 32 where h = splitmix64(length * phi + 0x6868) absorbs the prefix's
 * 64-bit words, least significant first, as h = splitmix64(h xor w).
 */
public final class ItemDomain {
  public static final String ITEM_ENCODING = "hh-item-v1";
  public static final String KEY_FAMILY = "hh-key-v1";
  public static final int MAX_STRING_BYTES = 32;
  public static final int MAX_INTEGER_BITS = 64;
  private static final BigInteger MASK64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

  /** Named alphabets of an alphabet domain (symbol i+1 is the i-th character; 0 is the pad). */
  public static final Map<String, String> NAMED_ALPHABETS;
  /** The code points of the {@code unicode} alphabet: no C0/C1 controls, DEL, surrogates, U+FFFE/U+FFFF. */
  public static final int[][] UNICODE_RANGES = {{0x20, 0x7e}, {0xa0, 0xd7ff}, {0xe000, 0xfffd}, {0x10000, 0x10ffff}};
  public static final int MAX_ALPHABET = 4096;
  public static final int MAX_CODE_BITS = 256;
  private static final int UNICODE_STEP = 7;

  static {
    Map<String, String> named = new LinkedHashMap<>();
    named.put("lower", "abcdefghijklmnopqrstuvwxyz");
    named.put("letters", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    named.put("lower-digits", "abcdefghijklmnopqrstuvwxyz0123456789");
    named.put("letters-digits", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    StringBuilder printable = new StringBuilder();
    for (char c = 0x20; c < 0x7f; c++) printable.append(c);
    named.put("printable", printable.toString());
    NAMED_ALPHABETS = Collections.unmodifiableMap(named);
  }

  /** "string" or "integer" */
  public final String type;
  public final int bits;
  public final int maxBytes;
  public final String overflow;
  /** alphabet domains: the name, or the explicit list as given (null for byte strings and integers) */
  public final JsonElement alphabet;
  /** alphabet domains: the characters' code points in symbol order, or null for {@code unicode} */
  private final int[] chars;
  private final Map<Integer, Integer> index;
  public final int symbols;
  public final int symbolBits;
  public final int maxChars;
  /** alphabet domains: "reject" or "drop" */
  public final String outside;

  private ItemDomain(String type, int bits, int maxBytes, String overflow) {
    this.type = type;
    this.bits = bits;
    this.maxBytes = maxBytes;
    this.overflow = overflow;
    this.alphabet = null;
    this.chars = null;
    this.index = null;
    this.symbols = 0;
    this.symbolBits = 0;
    this.maxChars = 0;
    this.outside = null;
  }

  /** Strings over a declared alphabet, at most {@code maxChars} characters (encoding.py's AlphabetDomain). */
  private ItemDomain(JsonElement alphabet, int[] chars, JsonElement maxChars, String overflow, String outside) {
    this.type = "string";
    this.maxBytes = 0;
    this.overflow = overflow;
    this.outside = outside;
    this.chars = chars;
    if (chars == null) {
      this.alphabet = alphabet;
      this.index = null;
    } else {
      JsonArray list = new JsonArray();
      Map<Integer, Integer> idx = new HashMap<>();
      for (int i = 0; i < chars.length; i++) {
        idx.put(chars[i], i + 1);
        list.add(new String(Character.toChars(chars[i])));
      }
      this.alphabet = Json.isString(alphabet) ? alphabet : list;
      this.index = idx;
    }
    this.symbols = chars == null ? 0x10ffff : chars.length;
    this.symbolBits = 32 - Integer.numberOfLeadingZeros(symbols);
    int limit = MAX_CODE_BITS / symbolBits;
    Long n = Json.isInt(maxChars) ? Json.longValue(maxChars) : null;
    if (n == null || n < 1 || n > limit) {
      throw new ConfigException("max_chars must be an integer in [1, " + limit + "] for this alphabet, got " + PyRepr.repr(maxChars));
    }
    this.maxChars = n.intValue();
    this.bits = symbolBits * this.maxChars;
  }

  /** True for an alphabet domain (named, explicit list or {@code unicode}). */
  public boolean isAlphabet() {
    return symbolBits > 0;
  }

  /** Default bits per prefix-tree level (eta): one whole symbol for an alphabet ({@code unicode}: 7), 4 otherwise. */
  public int levelStep() {
    if (!isAlphabet()) return 4;
    return chars == null ? UNICODE_STEP : symbolBits;
  }

  /** True for an alphabet domain with whole-symbol levels (not {@code unicode}). */
  public boolean hasExplicitChars() {
    return chars != null;
  }

  // Python's unicodedata categories Cc, Cs, Cn (controls, surrogates, unassigned) and U+FFFE/U+FFFF;
  // the JVM's Unicode tables may be an older version than Python's for newly assigned characters
  private static boolean isControl(int cp) {
    int t = Character.getType(cp);
    return t == Character.CONTROL || t == Character.SURROGATE || t == Character.UNASSIGNED || cp == 0xfffe || cp == 0xffff;
  }

  private static ItemDomain alphabetDomain(JsonElement alphabet, JsonElement maxChars, JsonElement overflow, JsonElement outside) {
    int[] chars;
    if (Json.isString(alphabet)) {
      String name = alphabet.getAsString();
      if (name.equals("unicode")) chars = null;
      else if (NAMED_ALPHABETS.containsKey(name)) chars = NAMED_ALPHABETS.get(name).codePoints().toArray();
      else {
        throw new ConfigException("unknown alphabet " + PyRepr.repr(alphabet)
            + "; named: ['letters', 'letters-digits', 'lower', 'lower-digits', 'printable', 'unicode'] or a list");
      }
    } else if (alphabet != null && alphabet.isJsonArray()) {
      JsonArray list = alphabet.getAsJsonArray();
      if (list.size() < 1 || list.size() > MAX_ALPHABET) {
        throw new ConfigException("an explicit alphabet needs 1.." + MAX_ALPHABET + " characters, got " + list.size());
      }
      chars = new int[list.size()];
      java.util.Set<Integer> seen = new java.util.HashSet<>();
      for (int i = 0; i < list.size(); i++) {
        JsonElement ch = list.get(i);
        String s = Json.isString(ch) ? ch.getAsString() : null;
        if (s == null || s.isEmpty() || s.codePointCount(0, s.length()) != 1 || isControl(s.codePointAt(0))) {
          throw new ConfigException("alphabet entries must be single non-control characters, got " + PyRepr.repr(ch));
        }
        chars[i] = s.codePointAt(0);
        seen.add(chars[i]);
      }
      if (seen.size() != chars.length) throw new ConfigException("alphabet characters must be distinct");
    } else {
      throw new ConfigException("alphabet must be a name or a list of characters, got " + PyRepr.repr(alphabet));
    }
    if (!(Json.isString(overflow) && (overflow.getAsString().equals("truncate") || overflow.getAsString().equals("reject")))) {
      throw new ConfigException("overflow must be 'truncate' or 'reject', got " + PyRepr.repr(overflow));
    }
    if (!(Json.isString(outside) && (outside.getAsString().equals("reject") || outside.getAsString().equals("drop")))) {
      throw new ConfigException("outside must be 'reject' or 'drop', got " + PyRepr.repr(outside));
    }
    return new ItemDomain(alphabet, chars, maxChars, overflow.getAsString(), outside.getAsString());
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
    boolean alphabetFlavour = t.equals("string") && c.has("alphabet");
    java.util.List<String> known = alphabetFlavour ? Arrays.asList("alphabet", "encoding", "max_chars", "outside", "overflow", "type")
        : t.equals("string") ? Arrays.asList("encoding", "max_bytes", "overflow", "type")
        : t.equals("integer") ? Arrays.asList("bits", "encoding", "type") : null;
    if (known != null) {
      java.util.TreeSet<String> unknown = new java.util.TreeSet<>(c.keySet());
      unknown.removeAll(known);
      if (!unknown.isEmpty()) { // a key this version does not know is refused, never silently dropped
        StringBuilder u = new StringBuilder("[");
        for (String k : unknown) u.append(u.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
        StringBuilder a = new StringBuilder("[");
        for (String k : known) a.append(a.length() > 1 ? ", " : "").append(PyRepr.strRepr(k));
        throw new ConfigException("unknown domain field(s) " + u + "]; allowed: " + a + "]");
      }
    }
    if (alphabetFlavour) {
      if (!c.has("max_chars")) throw new ConfigException("domain config lacks 'max_chars'");
      return alphabetDomain(c.get("alphabet"), c.get("max_chars"), c.has("overflow") ? c.get("overflow") : Json.of("truncate"),
          c.has("outside") ? c.get("outside") : Json.of("reject"));
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
    if (isAlphabet()) {
      return Json.obj("type", "string", "alphabet", alphabet.deepCopy(), "max_chars", maxChars, "overflow", overflow, "outside", outside,
          "encoding", ITEM_ENCODING);
    }
    if (type.equals("string")) return Json.obj("type", "string", "max_bytes", maxBytes, "overflow", overflow, "encoding", ITEM_ENCODING);
    return Json.obj("type", "integer", "bits", bits, "encoding", ITEM_ENCODING);
  }

  private Integer symbol(int cp) {
    if (index != null) return index.get(cp);
    for (int[] r : UNICODE_RANGES) if (r[0] <= cp && cp <= r[1]) return cp;
    return null;
  }

  /** An alphabet domain's symbols of the item after the {@code outside} and {@code overflow} rules (device side). */
  public int[] symbolsOf(Object item) {
    if (!(item instanceof String)) {
      throw new ItemEncodingException("string items must be str, got " + (item == null ? "NoneType" : item.getClass().getSimpleName()));
    }
    String s = (String) item;
    int[] out = new int[s.length()];
    int n = 0;
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      i += Character.charCount(cp);
      Integer sym = symbol(cp);
      if (sym == null) {
        if (outside.equals("reject")) {
          throw new ItemEncodingException("character " + PyRepr.strRepr(new String(Character.toChars(cp))) + " is outside the domain's alphabet (outside='reject')");
        }
        continue;
      }
      out[n++] = sym;
    }
    if (n > maxChars) {
      if (overflow.equals("reject")) {
        throw new ItemEncodingException("string item has " + n + " characters; at most " + maxChars + " allowed (overflow='reject')");
      }
      n = maxChars;
    }
    return Arrays.copyOf(out, n);
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
    if (isAlphabet()) {
      StringBuilder b = new StringBuilder();
      for (int sym : symbolsOf(item)) b.appendCodePoint(chars == null ? sym : chars[sym - 1]);
      return b.toString();
    }
    return new String(toBytes(item), StandardCharsets.UTF_8);
  }

  /** The item's m-bit code. */
  public BigInteger encode(Object item) {
    if (isAlphabet()) {
      int[] syms = symbolsOf(item);
      BigInteger code = BigInteger.ZERO;
      for (int j = 0; j < maxChars; j++) code = code.shiftLeft(symbolBits).or(BigInteger.valueOf(j < syms.length ? syms[j] : 0));
      return code;
    }
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
