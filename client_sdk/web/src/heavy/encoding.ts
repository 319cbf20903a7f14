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
import { pyRepr, pyStrRepr } from "../messages.js";
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
export interface AlphabetDomainConfig {
  type: "string";
  alphabet: string | string[];
  max_chars: number;
  overflow: "truncate" | "reject";
  outside: "reject" | "drop";
  encoding: typeof ITEM_ENCODING;
}
export type DomainConfig = StringDomainConfig | IntegerDomainConfig | AlphabetDomainConfig;

export interface Domain {
  readonly bits: number;
  readonly config: DomainConfig;
  /** Default bits per prefix-tree level (eta). */
  readonly levelStep: number;
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
  readonly levelStep = 4;
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
  readonly levelStep = 4;
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

/** named alphabets of {@link AlphabetDomain} (symbol i+1 is the i-th character; 0 is the pad) */
export const NAMED_ALPHABETS: Readonly<Record<string, string>> = {
  lower: "abcdefghijklmnopqrstuvwxyz",
  letters: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
  "lower-digits": "abcdefghijklmnopqrstuvwxyz0123456789",
  "letters-digits": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
  printable: Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join(""),
};
/** the code points of the `unicode` alphabet (no controls, DEL, surrogates, U+FFFE/U+FFFF) */
export const UNICODE_RANGES: readonly (readonly [number, number])[] = [
  [0x20, 0x7e],
  [0xa0, 0xd7ff],
  [0xe000, 0xfffd],
  [0x10000, 0x10ffff],
];
export const MAX_ALPHABET = 4096;
export const MAX_CODE_BITS = 256;
const UNICODE_STEP = 7;

const inUnicode = (cp: number) => UNICODE_RANGES.some(([lo, hi]) => lo <= cp && cp <= hi);
// Python's unicodedata category Cc/Cs/Cn: controls, surrogates, unassigned; approximated by
// the ranges the web SDK can check without tables (explicit alphabets are validated by the
// server, which uses the full Unicode database)
const isControlChar = (ch: string) => {
  const cp = ch.codePointAt(0) as number;
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffe || cp === 0xffff;
};

/** Strings over a declared alphabet, at most `max_chars` characters (see encoding.py's AlphabetDomain). */
export class AlphabetDomain implements Domain {
  readonly alphabet: string | string[];
  readonly chars: string[] | null;
  readonly symbols: number;
  readonly symbolBits: number;
  readonly maxChars: number;
  readonly overflow: "truncate" | "reject";
  readonly outside: "reject" | "drop";
  readonly bits: number;
  private readonly index: Map<string, number> | null;

  constructor(alphabet: unknown, maxChars: unknown, overflow: unknown = "truncate", outside: unknown = "reject") {
    let chars: string[] | null;
    if (typeof alphabet === "string") {
      if (alphabet === "unicode") chars = null;
      else if (Object.prototype.hasOwnProperty.call(NAMED_ALPHABETS, alphabet)) chars = Array.from(NAMED_ALPHABETS[alphabet]);
      else throw new ConfigError(`unknown alphabet ${pyRepr(alphabet)}; named: ['letters', 'letters-digits', 'lower', 'lower-digits', 'printable', 'unicode'] or a list`);
    } else if (Array.isArray(alphabet)) {
      if (alphabet.length < 1 || alphabet.length > MAX_ALPHABET) {
        throw new ConfigError(`an explicit alphabet needs 1..${MAX_ALPHABET} characters, got ${alphabet.length}`);
      }
      for (const ch of alphabet) {
        if (typeof ch !== "string" || Array.from(ch).length !== 1 || isControlChar(ch)) {
          throw new ConfigError(`alphabet entries must be single non-control characters, got ${pyRepr(ch)}`);
        }
      }
      if (new Set(alphabet).size !== alphabet.length) throw new ConfigError("alphabet characters must be distinct");
      chars = [...(alphabet as string[])];
    } else {
      throw new ConfigError(`alphabet must be a name or a list of characters, got ${pyRepr(alphabet)}`);
    }
    if (overflow !== "truncate" && overflow !== "reject") throw new ConfigError(`overflow must be 'truncate' or 'reject', got ${pyRepr(overflow)}`);
    if (outside !== "reject" && outside !== "drop") throw new ConfigError(`outside must be 'reject' or 'drop', got ${pyRepr(outside)}`);
    this.alphabet = typeof alphabet === "string" ? alphabet : [...(chars as string[])];
    this.chars = chars;
    this.symbols = chars === null ? 0x10ffff : chars.length;
    this.symbolBits = this.symbols.toString(2).length;
    const limit = Math.floor(MAX_CODE_BITS / this.symbolBits);
    if (typeof maxChars !== "number" || !Number.isInteger(maxChars) || maxChars < 1 || maxChars > limit) {
      throw new ConfigError(`max_chars must be an integer in [1, ${limit}] for this alphabet, got ${pyRepr(maxChars)}`);
    }
    this.maxChars = maxChars;
    this.overflow = overflow;
    this.outside = outside;
    this.bits = this.symbolBits * maxChars;
    this.index = chars === null ? null : new Map(chars.map((ch, i) => [ch, i + 1]));
  }

  get config(): AlphabetDomainConfig {
    return {
      type: "string",
      alphabet: typeof this.alphabet === "string" ? this.alphabet : [...this.alphabet],
      max_chars: this.maxChars,
      overflow: this.overflow,
      outside: this.outside,
      encoding: ITEM_ENCODING,
    };
  }

  get levelStep(): number {
    return this.chars === null ? UNICODE_STEP : this.symbolBits;
  }

  private symbol(ch: string): number | null {
    if (this.index !== null) return this.index.get(ch) ?? null;
    const cp = ch.codePointAt(0) as number;
    return inUnicode(cp) ? cp : null;
  }

  /** The item's symbols after the `outside` and `overflow` rules (device side, before perturbation). */
  symbolsOf(item: unknown): number[] {
    if (typeof item !== "string") throw new ItemEncodingError(`string items must be str, got ${item === null ? "NoneType" : typeof item}`);
    const out: number[] = [];
    for (const ch of item) {
      const sym = this.symbol(ch);
      if (sym === null) {
        if (this.outside === "reject") throw new ItemEncodingError(`character ${pyRepr(ch)} is outside the domain's alphabet (outside='reject')`);
        continue;
      }
      out.push(sym);
    }
    if (out.length > this.maxChars) {
      if (this.overflow === "reject") {
        throw new ItemEncodingError(`string item has ${out.length} characters; at most ${this.maxChars} allowed (overflow='reject')`);
      }
      out.length = this.maxChars;
    }
    return out;
  }

  /** The item as the server will see it. */
  canonical(item: unknown): string {
    return this.symbolsOf(item)
      .map((s) => (this.chars === null ? String.fromCodePoint(s) : this.chars[s - 1]))
      .join("");
  }

  encode(item: unknown): bigint {
    const syms = this.symbolsOf(item);
    const b = BigInt(this.symbolBits);
    let code = 0n;
    for (let j = 0; j < this.maxChars; j++) code = (code << b) | BigInt(j < syms.length ? syms[j] : 0);
    return code;
  }
}

const DOMAIN_FIELDS: Readonly<Record<string, readonly string[]>> = {
  "string-bytes": ["type", "max_bytes", "overflow", "encoding"],
  "string-alphabet": ["type", "alphabet", "max_chars", "overflow", "outside", "encoding"],
  integer: ["type", "bits", "encoding"],
};

/** Rebuild a domain from its config (`{"type": "string", "max_bytes": L}` or `{"type": "integer", "bits": m}`). */
export function domainFromConfig(config: unknown): Domain {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`domain must be a mapping, got ${pyRepr(config)}`);
  }
  const c = config as Record<string, unknown>;
  const has = (key: string) => Object.prototype.hasOwnProperty.call(c, key);
  const encoding = has("encoding") ? c.encoding : ITEM_ENCODING;
  if (encoding !== ITEM_ENCODING) throw new ConfigError(`unknown item encoding ${pyRepr(encoding)}; supported: ${ITEM_ENCODING}`);
  const flavour = c.type === "string" ? (has("alphabet") ? "string-alphabet" : "string-bytes") : c.type;
  if (typeof flavour === "string" && Object.prototype.hasOwnProperty.call(DOMAIN_FIELDS, flavour)) {
    const allowed = DOMAIN_FIELDS[flavour];
    const unknown = Object.keys(c).filter((k) => !allowed.includes(k)).sort();
    if (unknown.length) throw new ConfigError(`unknown domain field(s) [${unknown.map(pyStrRepr).join(", ")}]; allowed: [${[...allowed].sort().map(pyStrRepr).join(", ")}]`);
  }
  if (flavour === "string-alphabet") {
    if (!has("max_chars")) throw new ConfigError("domain config lacks 'max_chars'");
    return new AlphabetDomain(c.alphabet, c.max_chars, has("overflow") ? c.overflow : "truncate", has("outside") ? c.outside : "reject");
  }
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
