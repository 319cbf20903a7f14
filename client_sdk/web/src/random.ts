/**
 * Exact sampling from the platform CSPRNG (`crypto.getRandomValues`), byte for byte as the
 * Python SDK's client_sdk/_random.py consumes `os.urandom`.
 *
 * Device-side perturbation never uses a seedable PRNG (docs/algorithms.md). Every draw reads
 * bytes from a {@link RandomSource}; the default one is the CSPRNG, and tests pass a
 * {@link ReplaySource} to replay fixed bytes. The layout of the draws follows Python's, so
 * that the shared test vectors replay the same bytes through both SDKs:
 *
 * - a uniform 64-bit integer is 8 bytes, big-endian (`secrets.randbits(64)`);
 * - Bernoulli(p) is `U < round(p·2^64)` for such a U, with the threshold computed exactly
 *   (so every probability is realised to within 2^-64);
 * - a uniform integer in [0, n) takes `bitLength(n)` bits from `ceil(bitLength(n)/8)`
 *   big-endian bytes (the top bits) and rejects values >= n (`secrets.randbelow`): exact,
 *   no modulo bias;
 * - a vector of Bernoulli bits (unary encoding) is 8 bytes per bit, little-endian
 *   (numpy's `frombuffer(os.urandom(8·k), uint64)`).
 */

import { decompose } from "./math.js";

/** Where random bytes come from. */
export interface RandomSource {
  /** Fill `bytes` with uniform random bytes. */
  fill(bytes: Uint8Array): void;
}

const MAX_GET_RANDOM_VALUES = 65536; // the Web Crypto limit per call

/** The platform CSPRNG: `globalThis.crypto.getRandomValues` (browsers, Node.js >= 19). */
export const cryptoSource: RandomSource = {
  fill(bytes: Uint8Array): void {
    const crypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
    if (!crypto || typeof crypto.getRandomValues !== "function") {
      throw new Error("crypto.getRandomValues is not available: the SDK needs a CSPRNG");
    }
    for (let offset = 0; offset < bytes.length; offset += MAX_GET_RANDOM_VALUES) {
      crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + MAX_GET_RANDOM_VALUES, bytes.length)));
    }
  },
};

/** Replays fixed bytes (test vectors); throws when asked for more than it holds. */
export class ReplaySource implements RandomSource {
  private readonly bytes: Uint8Array;
  private position = 0;

  constructor(bytes: Uint8Array | string) {
    this.bytes = typeof bytes === "string" ? hexToBytes(bytes) : bytes;
  }

  fill(out: Uint8Array): void {
    if (this.position + out.length > this.bytes.length) {
      throw new RangeError(`replay source exhausted: ${out.length} bytes asked, ${this.remaining} left`);
    }
    out.set(this.bytes.subarray(this.position, this.position + out.length));
    this.position += out.length;
  }

  /** Bytes handed out so far. */
  get consumed(): number {
    return this.position;
  }

  get remaining(): number {
    return this.bytes.length - this.position;
  }
}

export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError("not a hex string");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const TWO64 = 1n << 64n;

/**
 * The integer t with P[U < t] = t / 2^64 closest to p, for U uniform on [0, 2^64):
 * `min(max(round(p * 2**64), 0), 2**64)` exactly as Python computes it (the product is
 * exact in binary floating point; Python's round goes to even at exact halves).
 */
export function probabilityThreshold(p: number): bigint {
  if (Number.isNaN(p)) throw new RangeError("probability is NaN");
  if (p === Infinity) throw new RangeError("probability is infinite");
  if (p <= 0) return 0n;
  if (p >= 1) return TWO64;
  const { mantissa, exponent } = decompose(p); // p = mantissa · 2^exponent
  const shift = exponent + 64;
  if (shift >= 0) return mantissa << BigInt(shift);
  const s = BigInt(-shift);
  const whole = mantissa >> s;
  const rest = mantissa - (whole << s);
  const half = 1n << (s - 1n);
  return rest > half || (rest === half && (whole & 1n) === 1n) ? whole + 1n : whole;
}

/** A Bernoulli threshold split into 32-bit halves for fast comparison. */
export class Threshold {
  readonly value: bigint;
  readonly hi: number;
  readonly lo: number;

  constructor(value: bigint) {
    this.value = value;
    this.hi = Number(value >> 32n); // 2^32 for value = 2^64: every draw is below it
    this.lo = Number(value & 0xffffffffn);
  }

  static of(p: number): Threshold {
    return new Threshold(probabilityThreshold(p));
  }

  /**
   * The threshold numpy uses in the vectorised path (`bernoulli_vector`): the same
   * rounding, capped at 2^64 - 2048 because uint64 cannot hold 2^64 (p = 1 never occurs).
   */
  static ofVector(p: number): Threshold {
    const t = probabilityThreshold(p);
    const cap = TWO64 - 2048n;
    return new Threshold(t < cap ? t : cap);
  }

  /** Is the 64-bit integer hi·2^32 + lo below the threshold? */
  below(hi: number, lo: number): boolean {
    return hi < this.hi || (hi === this.hi && lo < this.lo);
  }
}

const word = new Uint8Array(8);
const wordView = new DataView(word.buffer);

/** A uniform 64-bit integer (8 bytes, big-endian). */
export function randomU64(source: RandomSource): bigint {
  source.fill(word);
  return wordView.getBigUint64(0, false);
}

/** One Bernoulli draw: a uniform 64-bit integer (big-endian) below the threshold. */
export function bernoulli(threshold: Threshold, source: RandomSource): boolean {
  source.fill(word);
  return threshold.below(wordView.getUint32(0, false), wordView.getUint32(4, false));
}

/**
 * A uniform integer in [0, n) for 1 <= n <= 2^48, by rejection: take the top
 * bitLength(n) bits of ceil(bitLength(n)/8) big-endian bytes until the value is below n.
 */
export function uniformInt(n: number, source: RandomSource): number {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 48) throw new RangeError(`upper bound must be an integer in [1, 2^48], got ${n}`);
  const bits = n < 0x100000000 ? 32 - Math.clz32(n) : 32 + (32 - Math.clz32(Math.floor(n / 0x100000000)));
  const size = (bits + 7) >> 3;
  const drop = 2 ** (size * 8 - bits);
  const buffer = new Uint8Array(size);
  for (;;) {
    source.fill(buffer);
    let x = 0;
    for (let i = 0; i < size; i++) x = x * 256 + buffer[i];
    const r = Math.floor(x / drop);
    if (r < n) return r;
  }
}

/**
 * Independent Bernoulli bits, bit i with threshold `thresholdOf(i)`: 8 bytes per bit,
 * each a little-endian 64-bit integer (numpy's layout of `os.urandom(8·k)`).
 */
export function bernoulliBits(count: number, thresholdOf: (i: number) => Threshold, source: RandomSource): Uint8Array {
  const bytes = new Uint8Array(8 * count);
  source.fill(bytes);
  const data = new DataView(bytes.buffer);
  const bits = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    bits[i] = thresholdOf(i).below(data.getUint32(8 * i + 4, true), data.getUint32(8 * i, true)) ? 1 : 0;
  }
  return bits;
}
