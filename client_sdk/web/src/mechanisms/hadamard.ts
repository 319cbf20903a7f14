/**
 * Hadamard response (HR): O(log k) bits per report; client_sdk/mechanisms/hadamard.py.
 *
 * Privacy: epsilon-LDP. With K the smallest power of two above k, value x owns the half
 * C_x = {y : H_K[x+1][y] = +1} of [K]; the report is uniform on C_x with probability
 * e^ε/(1+e^ε) and uniform on its complement otherwise (docs/algorithms.md).
 * Sampler: y1 uniform in [K], y2 = y1 XOR (highest set bit of x+1); exactly one of them
 * lies in C_x; report that one with probability e^ε/(1+e^ε), else the other.
 */

import { bitLength, exp } from "../math.js";
import { bernoulli, cryptoSource, Threshold, uniformInt, type RandomSource } from "../random.js";
import { checkIndex, decodeIndex, FrequencyOracle, WIRE_VERSION, type IndexPayload } from "./base.js";

/** True where H[row][y] = +1, i.e. popcount(row AND y) is even. */
export function inHalf(row: number, y: number): boolean {
  let bits = (row & y) >>> 0;
  let parity = 0;
  while (bits) {
    parity ^= 1;
    bits &= bits - 1;
  }
  return parity === 0;
}

export class Hadamard extends FrequencyOracle {
  static readonly mechanism = "hr";
  static readonly maxDomainSize = 1 << 24;
  readonly name = "hr" as const;
  protected readonly wireFields: readonly string[] = ["v", "m", "y"];
  /** the smallest power of two above k */
  readonly K: number;
  private readonly p: number;
  private readonly keep: Threshold;

  constructor(epsilon: unknown, domainSize: unknown) {
    super(epsilon, domainSize, Hadamard.maxDomainSize, "hr");
    this.K = 2 ** bitLength(this.domainSize); // 1 << ceil(log2(k + 1))
    const e = exp(this.epsilon);
    this.p = e / (1 + e);
    this.keep = Threshold.of(this.p);
  }

  get pStar(): number {
    return this.p;
  }

  get qStar(): number {
    return 0.5;
  }

  get reportBits(): number {
    return bitLength(this.domainSize); // log2 K
  }

  override parameters(): Record<string, number> {
    return { p: this.p, q: 0.5, K: this.K };
  }

  perturb(value: number, source: RandomSource = cryptoSource): IndexPayload {
    const v = this.checkValue(value);
    const y1 = uniformInt(this.K, source);
    const y2 = y1 ^ (1 << (bitLength(v + 1) - 1)); // exactly one of y1, y2 lies in C_v
    const [inside, outside] = inHalf(v + 1, y1) ? [y1, y2] : [y2, y1];
    const y = bernoulli(this.keep, source) ? inside : outside;
    return { v: WIRE_VERSION, m: this.name, y };
  }

  encode(report: { y: number }): IndexPayload {
    return { v: WIRE_VERSION, m: this.name, y: checkIndex(report.y, this.K) };
  }

  decode(payload: unknown, index: number | null = null): { y: number } {
    const p = this.checkHeader(payload, index);
    return { y: decodeIndex(this.field(p, "y"), this.K, "y", index) };
  }

  override outputDistribution(value: number): Map<number, number> {
    const v = this.checkValue(value);
    const inside = (2 * this.p) / this.K;
    const outside = (2 * (1 - this.p)) / this.K;
    const out = new Map<number, number>();
    for (let y = 0; y < this.K; y++) out.set(y, inHalf(v + 1, y) ? inside : outside);
    return out;
  }
}
