/**
 * GRR — generalised randomised response (k-RR, direct encoding); client_sdk/mechanisms/grr.py.
 *
 * Privacy: epsilon-LDP, P[y | v] / P[y | v'] <= p/q = e^epsilon (docs/algorithms.md).
 * `p = e^ε/(e^ε + k − 1)`, `q = 1/(e^ε + k − 1)`; the report is the value itself with
 * probability p, otherwise a uniform draw among the k − 1 other values.
 */

import { exp, log, logaddexp } from "../math.js";
import { bernoulli, cryptoSource, Threshold, uniformInt, type RandomSource } from "../random.js";
import { checkIndex, decodeIndex, FrequencyOracle, WIRE_VERSION, type IndexPayload } from "./base.js";

/** (p, q) of GRR over k values: q = exp(−logaddexp(ε, log(k − 1))), without overflow. */
export function grrProbabilities(epsilon: number, k: number): [number, number] {
  const logDenominator = logaddexp(epsilon, log(k - 1));
  return [exp(epsilon - logDenominator), exp(-logDenominator)];
}

export class GRR extends FrequencyOracle {
  static readonly mechanism = "grr";
  static readonly maxDomainSize = 2 ** 31;
  readonly name = "grr" as const;
  protected readonly wireFields: readonly string[] = ["v", "m", "y"];
  private readonly p: number;
  private readonly q: number;
  private readonly keep: Threshold;

  constructor(epsilon: unknown, domainSize: unknown) {
    super(epsilon, domainSize, GRR.maxDomainSize, "grr");
    [this.p, this.q] = grrProbabilities(this.epsilon, this.domainSize);
    this.keep = Threshold.of(this.p);
  }

  get pStar(): number {
    return this.p;
  }

  get qStar(): number {
    return this.q;
  }

  get reportBits(): number {
    return Math.max(1, 32 - Math.clz32(this.domainSize - 1)); // ceil(log2 k)
  }

  perturb(value: number, source: RandomSource = cryptoSource): IndexPayload {
    const v = this.checkValue(value);
    let y = v;
    if (!bernoulli(this.keep, source)) {
      const u = uniformInt(this.domainSize - 1, source);
      y = u + (u >= v ? 1 : 0);
    }
    return { v: WIRE_VERSION, m: this.name, y };
  }

  encode(report: { y: number }): IndexPayload {
    return { v: WIRE_VERSION, m: this.name, y: checkIndex(report.y, this.domainSize) };
  }

  decode(payload: unknown, index: number | null = null): { y: number } {
    const p = this.checkHeader(payload, index);
    return { y: decodeIndex(this.field(p, "y"), this.domainSize, "y", index) };
  }

  override outputDistribution(value: number): Map<number, number> {
    const v = this.checkValue(value);
    const out = new Map<number, number>();
    for (let y = 0; y < this.domainSize; y++) out.set(y, y === v ? this.p : this.q);
    return out;
  }
}
