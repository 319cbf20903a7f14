package org.ldp.sdk;

import java.io.ByteArrayOutputStream;

/**
 * Base64 (standard alphabet, padded) for unary-encoding reports. Our own code, not
 * {@code java.util.Base64} (Android API 26+) nor {@code android.util.Base64} (not on the
 * JVM). {@link #decodeStrict} accepts exactly what the Python server accepts with
 * {@code base64.b64decode(s, validate=True)}; the shared decode vectors pin it.
 */
public final class Base64Codec {
  private Base64Codec() {}

  private static final char[] ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".toCharArray();
  private static final int[] TABLE = new int[128];

  static {
    java.util.Arrays.fill(TABLE, -1);
    for (int i = 0; i < ALPHABET.length; i++) TABLE[ALPHABET[i]] = i;
  }

  public static String encode(byte[] bytes) {
    StringBuilder out = new StringBuilder(((bytes.length + 2) / 3) * 4);
    int i = 0;
    for (; i + 2 < bytes.length; i += 3) {
      int n = ((bytes[i] & 0xff) << 16) | ((bytes[i + 1] & 0xff) << 8) | (bytes[i + 2] & 0xff);
      out.append(ALPHABET[n >> 18]).append(ALPHABET[(n >> 12) & 63]).append(ALPHABET[(n >> 6) & 63]).append(ALPHABET[n & 63]);
    }
    int left = bytes.length - i;
    if (left == 1) {
      int n = (bytes[i] & 0xff) << 16;
      out.append(ALPHABET[n >> 18]).append(ALPHABET[(n >> 12) & 63]).append("==");
    } else if (left == 2) {
      int n = ((bytes[i] & 0xff) << 16) | ((bytes[i + 1] & 0xff) << 8);
      out.append(ALPHABET[n >> 18]).append(ALPHABET[(n >> 12) & 63]).append(ALPHABET[(n >> 6) & 63]).append('=');
    }
    return out.toString();
  }

  /** The decoded bytes, or null where Python's strict decoder raises. */
  public static byte[] decodeStrict(String text) {
    int n = text.length();
    if (n > 0 && text.charAt(0) == '=') return null;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int quadPos = 0;
    int left = 0;
    int pads = 0;
    boolean paddingStarted = false;
    for (int i = 0; i < n; i++) {
      char c = text.charAt(i);
      if (c == '=') {
        paddingStarted = true;
        if (quadPos >= 2 && quadPos + ++pads >= 4) {
          if (i + 1 < n) return null;
          return out.toByteArray();
        }
        continue;
      }
      int v = c < 128 ? TABLE[c] : -1;
      if (v < 0) return null;
      if (paddingStarted) return null;
      pads = 0;
      switch (quadPos) {
        case 0:
          quadPos = 1;
          left = v;
          break;
        case 1:
          quadPos = 2;
          out.write(((left << 2) | (v >> 4)) & 0xff);
          left = v & 0x0f;
          break;
        case 2:
          quadPos = 3;
          out.write(((left << 4) | (v >> 2)) & 0xff);
          left = v & 0x03;
          break;
        default:
          quadPos = 0;
          out.write(((left << 6) | v) & 0xff);
          left = 0;
      }
    }
    return quadPos == 0 ? out.toByteArray() : null;
  }
}
