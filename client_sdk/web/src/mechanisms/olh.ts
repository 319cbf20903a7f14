/**
 * OLH — optimised local hashing, and BLH (its g = 2 case); client_sdk/mechanisms/olh.py.
 *
 * Privacy: epsilon-LDP. Each report draws a fresh hash function H_s: domain → [g] that does
 * not depend on the data, then applies GRR over [g] (docs/algorithms.md).
 * `g = round(e^ε) + 1` (OLH) or `g = 2` (BLH); `p* = e^ε/(e^ε + g − 1)`, `q* = 1/g`.
 *
 * Hash family `olh-mas-v1` (docs/mechanisms.md), in 64-bit wrapping arithmetic:
 *
 *     a = splitmix64(s + φ), b = splitmix64(s + 2φ)          φ = 0x9E3779B97F4A7C15
 *     h(x) = ((a·x + b) mod 2^64) >> 32                      (multiply-add-shift, 32-bit keys)
 *     H_s(x) = (h(x) · g) >> 32                              in [0, g)
 */

import { ConfigError, ReportDecodeError } from "../errors.js";
import { exp, roundHalfEven } from "../math.js";
import { pyRepr } from "../messages.js";
import { bernoulli, cryptoSource, randomU64, Threshold, uniformInt, type RandomSource } from "../random.js";
import { checkIndex, decodeIndex, FrequencyOracle, WIRE_VERSION, type HashPayload, type MechanismConfig } from "./base.js";
import { grrProbabilities } from "./grr.js";

export const HASH_FAMILY = "olh-mas-v1";
export const MASK64 = (1n << 64n) - 1n;
export const GOLDEN = 0x9e3779b97f4a7c15n;
export const MAX_KEY = 2 ** 32;
export const MAX_G = 1 << 20;

/** SplitMix64's output function on one 64-bit integer (Steele, Lea, Flood 2014). */
export function splitmix64(x: bigint): bigint {
  let z = x & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The multiplier a and offset b of the hash function named by a 64-bit seed. */
export function expandSeed(seed: bigint): [bigint, bigint] {
  return [splitmix64((seed + GOLDEN) & MASK64), splitmix64((seed + 2n * GOLDEN) & MASK64)];
}

/** H_seed(key) in [0, g) for one 32-bit key. */
export function hashValue(seed: bigint, key: number | bigint, g: number): number {
  const [a, b] = expandSeed(seed & MASK64);
  const h32 = ((a * BigInt(key) + b) & MASK64) >> 32n;
  return Number((h32 * BigInt(g)) >> 32n);
}

/** g = round(e^ε) + 1 (docs/algorithms.md), rounding half to even as Python does. */
export function optimalG(epsilon: number): number {
  return roundHalfEven(exp(epsilon)) + 1;
}

export function seedHex(seed: bigint): string {
  return seed.toString(16).padStart(16, "0");
}

const HEX16 = /^[0-9a-fA-F]{16}$/;

export class OLH extends FrequencyOracle {
  static readonly mechanism: "olh" | "blh" = "olh";
  static readonly maxDomainSize = MAX_KEY;
  readonly name: "olh" | "blh" = "olh";
  protected readonly wireFields: readonly string[] = ["v", "m", "s", "y"];
  readonly g: number;
  private readonly p: number;
  private readonly qReport: number;
  private readonly keep: Threshold;

  constructor(epsilon: unknown, domainSize: unknown, g?: unknown, name: "olh" | "blh" = "olh") {
    super(epsilon, domainSize, MAX_KEY, name);
    this.name = name;
    if (g === undefined || g === null) g = optimalG(this.epsilon);
    if (typeof g !== "number" || !Number.isInteger(g) || !(g >= 2 && g <= MAX_G)) {
      throw new ConfigError(`hash range g must be an integer in [2, 2^20], got ${pyRepr(g)}`);
    }
    this.g = g;
    [this.p, this.qReport] = grrProbabilities(this.epsilon, this.g);
    this.keep = Threshold.of(this.p);
  }

  get pStar(): number {
    return this.p;
  }

  get qStar(): number {
    return 1.0 / this.g;
  }

  get reportBits(): number {
    return 64 + Math.max(1, 32 - Math.clz32(this.g - 1));
  }

  override get config(): MechanismConfig {
    return { ...super.config, g: this.g, hash: HASH_FAMILY };
  }

  override parameters(): Record<string, number> {
    return { p: this.p, q: this.qReport, q_star: this.qStar, g: this.g };
  }

  perturb(value: number, source: RandomSource = cryptoSource): HashPayload {
    return this.perturbKey(this.checkValue(value), source);
  }

  /** One report of an arbitrary 32-bit key (used by the heavy-hitter protocols). */
  perturbKey(key: number, source: RandomSource = cryptoSource): HashPayload {
    if (!Number.isInteger(key) || key < 0 || key >= MAX_KEY) throw new RangeError(`key must be a 32-bit unsigned integer, got ${key}`);
    const seed = randomU64(source);
    const x = hashValue(seed, key, this.g);
    let y = x;
    if (!bernoulli(this.keep, source)) {
      const u = uniformInt(this.g - 1, source);
      y = u + (u >= x ? 1 : 0);
    }
    return { v: WIRE_VERSION, m: this.name, s: seedHex(seed), y };
  }

  encode(report: { seed: bigint; y: number }): HashPayload {
    if (typeof report.seed !== "bigint" || report.seed < 0n || report.seed > MASK64) throw new RangeError("seed must be a 64-bit unsigned bigint");
    return { v: WIRE_VERSION, m: this.name, s: seedHex(report.seed), y: checkIndex(report.y, this.g) };
  }

  decode(payload: unknown, index: number | null = null): { seed: bigint; y: number } {
    const p = this.checkHeader(payload, index);
    const raw = this.field(p, "s");
    // length in code points, as Python's len()
    if (typeof raw !== "string" || Array.from(raw).length !== 16) {
      throw new ReportDecodeError("bad_type", "field 's' must be a 16-digit hexadecimal seed", index);
    }
    if (!HEX16.test(raw)) throw new ReportDecodeError("bad_encoding", "field 's' is not hexadecimal", index);
    const seed = BigInt(`0x${raw}`);
    return { seed, y: decodeIndex(this.field(p, "y"), this.g, "y", index) };
  }
}

/** Binary local hashing: OLH with g = 2. */
export class BLH extends OLH {
  static override readonly mechanism = "blh";

  constructor(epsilon: unknown, domainSize: unknown, g: unknown = 2) {
    if (!(g === undefined || g === null || g === 2)) throw new ConfigError(`BLH has g = 2, got g = ${pyRepr(g)}`);
    super(epsilon, domainSize, 2, "blh");
  }
}
