/**
 * Item encoding of the prefix-tree heavy hitters (client_sdk/heavy_hitters/encoding.py):
 * item ↔ m-bit code (`hh-item-v1`), prefixes, and their 32-bit OLH keys (`hh-key-v1`).
 * No randomness and no data-dependent choice: a public, versioned mapping.
 *
 * * Strings (`max_bytes` = L, m = 8L): UTF-8 bytes, right-padded with 0x00 to L bytes, read
 *   big-endian. U+0000 and lone surrogates are refused; longer strings are truncated to
 *   the longest prefix of whole code points that fits (`overflow: "truncate"`, default) or
 *   refused (`"reject"`). No Unicode normalisation.
 * * Integers (`bits` = m, 1..64): a number (safe integer) or a BigInt in [0, 2^m).
 * * Keys: ℓ ≤ 32: `fmix32(P xor (ℓ·0x9E3779B9 mod 2^32))`; ℓ > 32: `h >> 32` where
 *   `h = splitmix64(ℓ·φ + 0x6868)` absorbs the prefix's 64-bit words, least significant
 *   first, as `h = splitmix64(h xor w)`.
 *
 * Codes and prefixes are BigInts (a string domain has up to 256 bits).
 */

import { ConfigError, LDPError } from "../errors.js";
import { pyRepr } from "../messages.js";
import { GOLDEN, MASK64, splitmix64 } from "../mechanisms/olh.js";

export const ITEM_ENCODING = "hh-item-v1";
export const KEY_FAMILY = "hh-key-v1";
export const MAX_STRING_BYTES = 32;
export const MAX_INTEGER_BITS = 64;
const LEN_MULT32 = 0x9e3779b9;
const FP_SALT = 0x6868n;

/** An item that the configured domain cannot encode (wrong type, too long, NUL, ...). */
export class ItemEncodingError extends LDPError {}

/** MurmurHash3's 32-bit finaliser (a bijection of [0, 2^32)). */
export function fmix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The 32-bit OLH key of a length-`length` prefix (`hh-key-v1`). */
export function prefixKey(prefix: bigint, length: number): number {
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`prefix length must be >= 1, got ${length}`);
  if (prefix < 0n || prefix >> BigInt(length) !== 0n) throw new RangeError(`prefix ${prefix} does not fit in ${length} bits`);
  if (length <= 32) {
    const mult = Number((BigInt(length) * BigInt(LEN_MULT32)) & 0xffffffffn);
    return fmix32((Number(prefix) ^ mult) >>> 0);
  }
  let h = splitmix64((BigInt(length) * GOLDEN + FP_SALT) & MASK64);
  const words = Math.max(1, Math.ceil(length / 64));
  for (let j = 0; j < words; j++) h = splitmix64(h ^ ((prefix >> BigInt(64 * j)) & MASK64));
  return Number(h >> 32n);
}

export interface StringDomainConfig {
  type: "string";
  max_bytes: number;
  overflow: "truncate" | "reject";
  encoding: typeof ITEM_ENCODING;
}
export interface IntegerDomainConfig {
  type: "integer";
  bits: number;
  encoding: typeof ITEM_ENCODING;
}
export type DomainConfig = StringDomainConfig | IntegerDomainConfig;

export interface Domain {
  readonly bits: number;
  readonly config: DomainConfig;
  /** The item's m-bit code. */
  encode(item: unknown): bigint;
}

function checkIntOption(value: unknown, name: string, low: number, high: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value > high) {
    throw new ConfigError(`${name} must be an integer in [${low}, ${high}], got ${pyRepr(value)}`);
  }
  return value;
}

// created on first use: loading the bundle must not need them
let utf8: TextEncoder | undefined;
let utf8Decoder: TextDecoder | undefined;

/** UTF-8 strings of at most `max_bytes` bytes, 0x00-padded. */
export class StringDomain implements Domain {
  readonly maxBytes: number;
  readonly overflow: "truncate" | "reject";
  readonly bits: number;

  constructor(maxBytes: unknown, overflow: unknown = "truncate") {
    this.maxBytes = checkIntOption(maxBytes, "max_bytes", 1, MAX_STRING_BYTES);
    if (overflow !== "truncate" && overflow !== "reject") {
      throw new ConfigError(`overflow must be 'truncate' or 'reject', got ${pyRepr(overflow)}`);
    }
    this.overflow = overflow;
    this.bits = 8 * this.maxBytes;
  }

  get config(): StringDomainConfig {
    return { type: "string", max_bytes: this.maxBytes, overflow: this.overflow, encoding: ITEM_ENCODING };
  }

  /** The unpadded UTF-8 bytes an item stands for (after truncation). */
  toBytes(item: unknown): Uint8Array {
    if (typeof item !== "string") throw new ItemEncodingError(`string items must be str, got ${item === null ? "NoneType" : typeof item}`);
    if (item.includes("\u0000")) throw new ItemEncodingError("string items may not contain U+0000 (0x00 is the pad byte)");
    for (let i = 0; i < item.length; i++) {
      const c = item.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        const next = item.charCodeAt(i + 1);
        if (!(next >= 0xdc00 && next <= 0xdfff)) throw new ItemEncodingError("string item is not valid Unicode (lone surrogate)");
        i++;
      } else if (c >= 0xdc00 && c <= 0xdfff) {
        throw new ItemEncodingError("string item is not valid Unicode (lone surrogate)");
      }
    }
    let raw = (utf8 ??= new TextEncoder()).encode(item);
    if (raw.length > this.maxBytes) {
      if (this.overflow === "reject") {
        throw new ItemEncodingError(
          `string item is ${raw.length} UTF-8 bytes long; at most ${this.maxBytes} allowed (overflow='reject')`,
        );
      }
      let cut = this.maxBytes;
      while ((raw[cut] & 0xc0) === 0x80) cut -= 1; // never split a character
      raw = raw.slice(0, cut);
    }
    return raw;
  }

  /** The item as the server will see it (truncated per the overflow rule). */
  canonical(item: unknown): string {
    return (utf8Decoder ??= new TextDecoder("utf-8")).decode(this.toBytes(item));
  }

  encode(item: unknown): bigint {
    const raw = this.toBytes(item);
    let code = 0n;
    for (let i = 0; i < this.maxBytes; i++) code = (code << 8n) | BigInt(i < raw.length ? raw[i] : 0);
    return code;
  }
}

/** Integers in [0, 2^bits), most significant bit first. */
export class IntegerDomain implements Domain {
  readonly bits: number;

  constructor(bits: unknown) {
    this.bits = checkIntOption(bits, "bits", 1, MAX_INTEGER_BITS);
  }

  get config(): IntegerDomainConfig {
    return { type: "integer", bits: this.bits, encoding: ITEM_ENCODING };
  }

  encode(item: unknown): bigint {
    let v: bigint;
    if (typeof item === "bigint") v = item;
    else if (typeof item === "number" && Number.isInteger(item)) {
      if (!Number.isSafeInteger(item)) throw new ItemEncodingError(`integer item ${item} is not exact in a JavaScript number: pass a BigInt`);
      v = BigInt(item);
    } else {
      throw new ItemEncodingError(`integer items must be int, got ${item === null ? "NoneType" : typeof item}`);
    }
    if (v < 0n || v >> BigInt(this.bits) !== 0n) throw new ItemEncodingError(`integer item ${v} is outside [0, 2^${this.bits})`);
    return v;
  }
}

const DOMAIN_FIELDS: { readonly string: readonly string[]; readonly integer: readonly string[] } = {
  string: ["type", "encoding", "max_bytes", "overflow"],
  integer: ["type", "encoding", "bits"],
};

/** Rebuild a domain from its config (`{"type": "string", "max_bytes": L}` or `{"type": "integer", "bits": m}`). */
export function domainFromConfig(config: unknown): Domain {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`domain must be a mapping, got ${pyRepr(config)}`);
  }
  const c = config as Record<string, unknown>;
  const has = (key: string) => Object.prototype.hasOwnProperty.call(c, key);
  const known = c.type === "string" ? DOMAIN_FIELDS.string : c.type === "integer" ? DOMAIN_FIELDS.integer : null;
  const unknown = known === null ? [] : Object.keys(c).filter((key) => !known.includes(key)).sort();
  if (unknown.length) {
    // a key this version does not know is refused, never silently dropped (as in Python)
    throw new ConfigError(`unknown ${String(c.type)} domain fields [${unknown.map((k) => pyRepr(k)).join(", ")}]`);
  }
  const encoding = has("encoding") ? c.encoding : ITEM_ENCODING;
  if (encoding !== ITEM_ENCODING) throw new ConfigError(`unknown item encoding ${pyRepr(encoding)}; supported: ${ITEM_ENCODING}`);
  if (c.type === "string") {
    if (!has("max_bytes")) throw new ConfigError("domain config lacks 'max_bytes'");
    return new StringDomain(c.max_bytes, has("overflow") ? c.overflow : "truncate");
  }
  if (c.type === "integer") {
    if (!has("bits")) throw new ConfigError("domain config lacks 'bits'");
    return new IntegerDomain(c.bits);
  }
  throw new ConfigError(`domain type must be 'string' or 'integer', got ${pyRepr(c.type)}`);
}
