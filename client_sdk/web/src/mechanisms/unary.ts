/**
 * Unary encoding: SUE (basic one-time RAPPOR) and OUE; client_sdk/mechanisms/unary.py.
 *
 * Privacy: epsilon-LDP. A value is one-hot encoded into k bits; a 1-bit stays 1 with
 * probability p, a 0-bit becomes 1 with probability q; the worst output ratio is
 * p(1−q)/((1−p)q) = e^epsilon (docs/algorithms.md).
 *
 * - SUE: `p = e^{ε/2}/(e^{ε/2}+1)`, `q = 1 − p` (computed as 1/(e^{ε/2}+1)).
 * - OUE: `p = 1/2`, `q = 1/(e^ε + 1)`.
 *
 * Reports travel as packed bits (little-endian bit order within each byte, zero padding),
 * base64 of ceil(k/8) bytes.
 */

import { decodeBase64Strict, encodeBase64 } from "../base64.js";
import { ReportDecodeError } from "../errors.js";
import { exp } from "../math.js";
import { bernoulliBits, cryptoSource, Threshold, type RandomSource } from "../random.js";
import { FrequencyOracle, WIRE_VERSION, type BitsPayload } from "./base.js";

/** Pack bits (0/1 per entry) little-endian within each byte. */
export function packBits(bits: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array((bits.length + 7) >> 3);
  for (let j = 0; j < bits.length; j++) if (bits[j]) out[j >> 3] |= 1 << (j & 7);
  return out;
}

/** Unpack the first `count` bits of little-endian packed bytes. */
export function unpackBits(packed: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let j = 0; j < count; j++) out[j] = (packed[j >> 3] >> (j & 7)) & 1;
  return out;
}

export abstract class UnaryEncoding extends FrequencyOracle {
  /** 8 KiB per report; beyond that use OLH */
  static readonly maxDomainSize = 1 << 16;
  abstract override readonly name: "sue" | "oue";
  protected readonly wireFields: readonly string[] = ["v", "m", "bits"];
  protected abstract readonly p: number;
  protected abstract readonly q: number;
  private thresholds?: [Threshold, Threshold];

  get pStar(): number {
    return this.p;
  }

  get qStar(): number {
    return this.q;
  }

  get reportBits(): number {
    return this.domainSize;
  }

  get width(): number {
    return (this.domainSize + 7) >> 3;
  }

  /** The wire payload of given bits (k entries of 0/1). */
  encodeBits(bits: ArrayLike<number>): BitsPayload {
    if (bits.length !== this.domainSize) throw new RangeError(`expected ${this.domainSize} bits, got ${bits.length}`);
    return { v: WIRE_VERSION, m: this.name, bits: encodeBase64(packBits(bits)) };
  }

  encode(report: { bits: ArrayLike<number> }): BitsPayload {
    return this.encodeBits(report.bits);
  }

  perturb(value: number, source: RandomSource = cryptoSource): BitsPayload {
    const v = this.checkValue(value);
    if (this.thresholds === undefined) this.thresholds = [Threshold.ofVector(this.p), Threshold.ofVector(this.q)];
    const [keep, flip] = this.thresholds;
    return this.encodeBits(bernoulliBits(this.domainSize, (j) => (j === v ? keep : flip), source));
  }

  decode(payload: unknown, index: number | null = null): { bits: Uint8Array } {
    const p = this.checkHeader(payload, index);
    const raw = this.field(p, "bits");
    if (typeof raw !== "string") throw new ReportDecodeError("bad_type", "field 'bits' must be a base64 string", index);
    const data = decodeBase64Strict(raw);
    if (data === null) throw new ReportDecodeError("bad_encoding", "field 'bits' is not valid base64", index);
    const width = this.width;
    if (data.length !== width) {
      throw new ReportDecodeError(
        "bad_length",
        `field 'bits' holds ${data.length} bytes, expected ${width} for k=${this.domainSize}`,
        index,
      );
    }
    const spare = width * 8 - this.domainSize;
    if (spare && data[width - 1] >> (8 - spare)) {
      throw new ReportDecodeError("out_of_range", "padding bits beyond the domain must be zero", index);
    }
    return { bits: unpackBits(data, this.domainSize) };
  }

  /** Keys are bit patterns as integers (bit j of the key = report bit j); k <= 12. */
  override outputDistribution(value: number): Map<number, number> {
    const v = this.checkValue(value);
    if (this.domainSize > 12) throw new Error("output distribution enumerated for k <= 12 only");
    const out = new Map<number, number>();
    for (let pattern = 0; pattern < 1 << this.domainSize; pattern++) {
      let probability = 1;
      for (let j = 0; j < this.domainSize; j++) {
        const one = j === v ? this.p : this.q;
        probability *= (pattern >> j) & 1 ? one : 1 - one;
      }
      out.set(pattern, probability);
    }
    return out;
  }
}

export class OUE extends UnaryEncoding {
  static readonly mechanism = "oue";
  readonly name = "oue" as const;
  protected readonly p: number;
  protected readonly q: number;

  constructor(epsilon: unknown, domainSize: unknown) {
    super(epsilon, domainSize, UnaryEncoding.maxDomainSize, "oue");
    this.p = 0.5;
    this.q = 1.0 / (exp(this.epsilon) + 1.0);
  }
}

export class SUE extends UnaryEncoding {
  static readonly mechanism = "sue";
  readonly name = "sue" as const;
  protected readonly p: number;
  protected readonly q: number;

  constructor(epsilon: unknown, domainSize: unknown) {
    super(epsilon, domainSize, UnaryEncoding.maxDomainSize, "sue");
    const half = exp(this.epsilon / 2);
    this.p = half / (half + 1.0);
    this.q = 1.0 / (half + 1.0);
  }
}
