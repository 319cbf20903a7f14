package org.ldp.sdk.longitudinal;

import com.google.gson.JsonElement;
import org.ldp.sdk.Base64Codec;
import org.ldp.sdk.Json;
import org.ldp.sdk.ReportDecodeException;
import org.ldp.sdk.mechanisms.UnaryEncoding;

/** Bits packed little-endian within each byte, base64 (the longitudinal wire and memo form, _base.py's pack_bits). */
final class Bits {
  private Bits() {}

  static String pack(byte[] bits) {
    return Base64Codec.encode(UnaryEncoding.packBits(bits, 0, bits.length));
  }

  /** The nbits bits of a packed base64 string; a ReportDecodeException naming the field, or a MemoException with {@code memo}. */
  static byte[] unpack(JsonElement raw, int nbits, String field, int index, boolean memo) {
    if (!Json.isString(raw)) throw fail(memo, "bad_type", "field '" + field + "' must be a base64 string", index);
    byte[] data = Base64Codec.decodeStrict(raw.getAsString());
    if (data == null) throw fail(memo, "bad_encoding", "field '" + field + "' is not valid base64", index);
    int width = (nbits + 7) >> 3;
    if (data.length != width) {
      throw fail(memo, "bad_length", "field '" + field + "' holds " + data.length + " bytes, expected " + width + " for " + nbits + " bits", index);
    }
    int spare = width * 8 - nbits;
    if (spare != 0 && ((data[width - 1] & 0xff) >> (8 - spare)) != 0) {
      throw fail(memo, "out_of_range", "padding bits of field '" + field + "' must be zero", index);
    }
    return UnaryEncoding.unpackBits(data, nbits);
  }

  private static RuntimeException fail(boolean memo, String reason, String detail, int index) {
    return memo ? new MemoException("memo " + detail + " (" + reason + ")") : new ReportDecodeException(reason, detail, index);
  }

  /** The integer sum bit_j 2^j of at most 63 bits. */
  static long pattern(byte[] bits) {
    long out = 0;
    for (int j = 0; j < bits.length; j++) if (bits[j] != 0) out |= 1L << j;
    return out;
  }
}
