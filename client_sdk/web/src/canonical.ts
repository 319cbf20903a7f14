/**
 * Canonical JSON and its hash: how a configuration is identified on both sides
 * (client_sdk/canonical.py: `json.dumps(obj, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False, allow_nan=False)`, then `sha256:<hex>` of its UTF-8 bytes).
 *
 * JavaScript has one number type where Python has int and float, and Python writes the
 * float 1.0 as `1.0`. So numbers are written as Python would write them given their
 * Python type: a number under a key in `floatKeys` (default: `epsilon`, the only float
 * of a frequency-oracle config) or wrapped in {@link PyFloat} is a float (`repr` form);
 * any other integral number is an int; a non-integral number is a float; a bigint is an
 * int.
 */

import { pyFloatRepr } from "./pyrepr.js";
import { sha256, toHex } from "./sha256.js";

/** Marks a number as a Python float for canonical JSON (`new PyFloat(1)` is written `1.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export const DEFAULT_FLOAT_KEYS: ReadonlySet<string> = new Set(["epsilon"]);

/** Python's sort_keys order: by code point (not by UTF-16 unit, as Array.sort does). */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i].codePointAt(0) as number) - (y[i].codePointAt(0) as number);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function writeNumber(n: number, asFloat: boolean): string {
  if (!Number.isFinite(n)) throw new RangeError(`Out of range float values are not JSON compliant: ${n}`);
  if (asFloat || !Number.isInteger(n)) return pyFloatRepr(n);
  return BigInt(n).toString();
}

function write(value: unknown, floatKeys: ReadonlySet<string>, asFloat: boolean): string {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (value instanceof PyFloat) return writeNumber(value.value, true);
  switch (typeof value) {
    case "number":
      return writeNumber(value, asFloat);
    case "bigint":
      return value.toString();
    case "string":
      // JSON.stringify escapes exactly what json.dumps(ensure_ascii=False) escapes
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v) => write(v, floatKeys, false)).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => compareCodePoints(a, b));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, floatKeys, floatKeys.has(k))}`).join(",")}}`;
    }
    default:
      throw new TypeError(`Object of type ${typeof value} is not JSON serializable`);
  }
}

/** Sorted keys, no whitespace, non-ASCII kept: the same text as the Python SDK writes. */
export function canonicalJson(value: unknown, floatKeys: ReadonlySet<string> = DEFAULT_FLOAT_KEYS): string {
  return write(value, floatKeys, false);
}

/** `sha256:<hex>` of the canonical JSON (synchronous, pure JavaScript). */
export function configHashSync(config: unknown, floatKeys: ReadonlySet<string> = DEFAULT_FLOAT_KEYS): string {
  return `sha256:${toHex(sha256(new TextEncoder().encode(canonicalJson(config, floatKeys))))}`;
}

/** `sha256:<hex>` of the canonical JSON, with Web Crypto where available. */
export async function configHash(config: unknown, floatKeys: ReadonlySet<string> = DEFAULT_FLOAT_KEYS): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(config, floatKeys));
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle && typeof subtle.digest === "function") {
    try {
      return `sha256:${toHex(new Uint8Array(await subtle.digest("SHA-256", bytes)))}`;
    } catch {
      // insecure contexts may refuse: fall through to the JavaScript implementation
    }
  }
  return `sha256:${toHex(sha256(bytes))}`;
}
