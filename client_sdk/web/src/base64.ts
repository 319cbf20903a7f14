/**
 * Base64 (standard alphabet, padded) for unary-encoding reports.
 *
 * {@link decodeBase64Strict} accepts exactly what the Python server accepts with
 * `base64.b64decode(s, validate=True)` (CPython 3.11's `binascii.a2b_base64` in strict
 * mode): only alphabet characters, no leading padding, no data after complete padding, no
 * data characters after a `=`, and the data length must not leave a partial quantum
 * without enough padding. Non-zero unused bits in the last character are tolerated, as in
 * Python. The shared decode vectors pin this behaviour.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const TABLE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) TABLE[ALPHABET.charCodeAt(i)] = i;

export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const left = bytes.length - i;
  if (left === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + "==";
  } else if (left === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + "=";
  }
  return out;
}

/** The decoded bytes, or null where Python's strict decoder raises. */
export function decodeBase64Strict(text: string): Uint8Array | null {
  const n = text.length;
  if (n > 0 && text[0] === "=") return null; // leading padding
  const out: number[] = [];
  let quadPos = 0;
  let left = 0;
  let pads = 0;
  let paddingStarted = false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 61 /* = */) {
      paddingStarted = true;
      if (quadPos >= 2 && quadPos + ++pads >= 4) {
        if (i + 1 < n) return null; // data after complete padding
        return Uint8Array.from(out);
      }
      continue;
    }
    const v = c < 128 ? TABLE[c] : -1;
    if (v < 0) return null; // not base64 (Python also refuses non-ASCII text)
    if (paddingStarted) return null; // discontinuous padding
    pads = 0;
    switch (quadPos) {
      case 0:
        quadPos = 1;
        left = v;
        break;
      case 1:
        quadPos = 2;
        out.push(((left << 2) | (v >> 4)) & 0xff);
        left = v & 0x0f;
        break;
      case 2:
        quadPos = 3;
        out.push(((left << 4) | (v >> 2)) & 0xff);
        left = v & 0x03;
        break;
      default:
        quadPos = 0;
        out.push(((left << 6) | v) & 0xff);
        left = 0;
    }
  }
  return quadPos === 0 ? Uint8Array.from(out) : null;
}
