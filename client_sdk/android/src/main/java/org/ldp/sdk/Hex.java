package org.ldp.sdk;

/** Lowercase hexadecimal. */
public final class Hex {
  private Hex() {}

  private static final char[] DIGITS = "0123456789abcdef".toCharArray();

  public static String encode(byte[] bytes) {
    char[] out = new char[2 * bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      out[2 * i] = DIGITS[(bytes[i] >> 4) & 15];
      out[2 * i + 1] = DIGITS[bytes[i] & 15];
    }
    return new String(out);
  }

  public static byte[] decode(String hex) {
    if (hex.length() % 2 != 0) throw new IllegalArgumentException("not a hex string");
    byte[] out = new byte[hex.length() / 2];
    for (int i = 0; i < out.length; i++) {
      int hi = Character.digit(hex.charAt(2 * i), 16);
      int lo = Character.digit(hex.charAt(2 * i + 1), 16);
      if (hi < 0 || lo < 0) throw new IllegalArgumentException("not a hex string");
      out[i] = (byte) ((hi << 4) | lo);
    }
    return out;
  }

  /** A 64-bit value as 16 lowercase hex digits. */
  public static String u64(long x) {
    String s = Long.toHexString(x);
    StringBuilder out = new StringBuilder(16);
    for (int i = s.length(); i < 16; i++) out.append('0');
    return out.append(s).toString();
  }
}
