/**
 * JSON text parsed with Python's number types kept: what the config hash needs.
 *
 * The server writes a collection's public config with Python's `json.dumps`, where the
 * float 1.0 is `1.0` and the int 1 is `1`; its hash is over canonical JSON that keeps that
 * difference. `JSON.parse` loses it, so the device parses the served text with
 * {@link parseTyped}: a number with a fraction or an exponent is a Python float
 * ({@link PyFloat}), any other number an int (a number, or a BigInt beyond 2^53), exactly
 * as `json.loads` types them. `canonicalJson` of the result (with no float keys) is then
 * the server's canonical text, byte for byte, and {@link plain} gives the ordinary value.
 */

import { PyFloat } from "./canonical.js";

export type Typed = null | boolean | string | number | bigint | PyFloat | Typed[] | { [key: string]: Typed };

export class JSONSyntaxError extends SyntaxError {}

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

/** Parse JSON text keeping Python's int/float distinction (strict JSON: no NaN or Infinity). */
export function parseTyped(text: string): Typed {
  let pos = 0;
  const fail = (what: string): never => {
    throw new JSONSyntaxError(`${what} at position ${pos}`);
  };
  const skip = () => {
    WS.lastIndex = pos;
    WS.exec(text);
    pos = WS.lastIndex;
  };
  const value = (depth: number): Typed => {
    if (depth > 512) fail("nesting too deep");
    skip();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const out: { [key: string]: Typed } = {};
      skip();
      if (text[pos] === "}") {
        pos++;
        return out;
      }
      for (;;) {
        skip();
        if (text[pos] !== '"') fail("expected a string key");
        const key = string();
        skip();
        if (text[pos] !== ":") fail("expected ':'");
        pos++;
        // defineProperty: a key "__proto__" is data, not the prototype
        Object.defineProperty(out, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "}") {
          pos++;
          return out;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      pos++;
      const out: Typed[] = [];
      skip();
      if (text[pos] === "]") {
        pos++;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "]") {
          pos++;
          return out;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith("false", pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith("null", pos)) {
      pos += 4;
      return null;
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m === null) return fail("unexpected character");
    pos = NUMBER.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) {
      const x = Number(m[0]);
      if (!Number.isFinite(x)) fail("number out of range");
      return new PyFloat(x);
    }
    const n = Number(m[0]);
    return Number.isSafeInteger(n) ? n + 0 : BigInt(m[0]);
  };
  const string = (): string => {
    const start = pos;
    pos++;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (Number.isNaN(c)) fail("unterminated string");
      if (c === 0x22) break;
      if (c === 0x5c) pos += 2;
      else if (c < 0x20) fail("control character in string");
      else pos++;
    }
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  const out = value(0);
  skip();
  if (pos !== text.length) fail("trailing characters");
  return out;
}

/** The ordinary JavaScript value of a typed one (floats as numbers; big ints stay BigInt). */
export function plain(value: Typed): unknown {
  if (value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: plain(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
