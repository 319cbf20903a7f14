/**
 * RS+FD — random sampling plus fake data (Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021);
 * the device side of client_sdk/multidim/rsfd.py, byte-compatible on the wire.
 *
 * Each user samples one attribute j uniformly (never sent), perturbs v_j at the amplified
 * budget ε' = ln(d(e^ε − 1) + 1), and sends fake data for every other attribute:
 *
 * | variant      | sampled attribute      | other attributes (fake data)            |
 * | ------------ | ---------------------- | --------------------------------------- |
 * | `rsfd-grr`   | GRR(v_j, k_j, ε')      | uniform value in [k_i]                  |
 * | `rsfd-oue-z` | OUE(one-hot(v_j), ε')  | OUE of the all-zero vector              |
 * | `rsfd-oue-r` | OUE(one-hot(v_j), ε')  | OUE of one-hot(uniform value in [k_i])  |
 * | `rsfd-adp`   | per attribute GRR or OUE-z, whichever has the lower variance       |
 *
 * Privacy: ε-LDP only for tuples differing in one attribute (and then only exactly so for
 * RS+FD[OUE-z] and for RS+FD[GRR] with equal domain sizes); for whole tuples — the
 * standard notion and the default `neighbouring: "tuple"` — the loss is exactly ε'.
 * `privacy.epsilon` is what the ledger charges under the promised notion (docs/multidim.md).
 *
 * Wire form: `{"v": 1, "m": "rsfd-grr", "y": [...]}` with one entry per attribute: the
 * value (GRR attributes) or base64 of the packed OUE bits (little-endian bit order).
 *
 * The sampled attribute must not leak through the draws: `perturb` makes the same random
 * draws, in the same order, whatever attribute is sampled (the order of the Python SDK's
 * draws, so the shared vectors replay the same bytes), and merges real and fake parts by
 * arithmetic selection.
 */

import { decodeBase64Strict, encodeBase64 } from "../base64.js";
import { canonicalJson, configHash, configHashSync } from "../canonical.js";
import { ConfigError, ReportDecodeError } from "../errors.js";
import { exp } from "../math.js";
import { pyFloatRepr, pyRepr, pyStrRepr } from "../messages.js";
import { bernoulli, bernoulliBits, cryptoSource, Threshold, uniformInt, type RandomSource } from "../random.js";
import { decodeIndex, EPSILON_MAX, refuseUnknownFields, validateDomainSize, validateEpsilon, WIRE_VERSION } from "../mechanisms/base.js";
import { grrProbabilities } from "../mechanisms/grr.js";
import { packBits, unpackBits } from "../mechanisms/unary.js";

export const MULTIDIM_KIND = "multidim";
export const MAX_ATTRIBUTES = 256;
export const NEIGHBOURING = ["tuple", "attribute"] as const;
export type Neighbouring = (typeof NEIGHBOURING)[number];
export type RSFDName = "rsfd-grr" | "rsfd-oue-z" | "rsfd-oue-r" | "rsfd-adp";
export const RSFD_NAMES: readonly RSFDName[] = ["rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp"];
/** protocols of client_sdk.multidim the web SDK does not implement (yet) */
const PYTHON_ONLY = ["spl", "smp"];

export const FAKE_UNIFORM = "uniform";
export const FAKE_ZERO = "zero";
export const FAKE_ONE_HOT = "one-hot";
export type FakeData = typeof FAKE_UNIFORM | typeof FAKE_ZERO | typeof FAKE_ONE_HOT;

export interface MultidimConfig {
  kind: "multidim";
  mechanism: RSFDName;
  epsilon: number;
  domain_sizes: number[];
  neighbouring: Neighbouring;
}

export interface MultidimPayload {
  v: 1;
  m: RSFDName;
  /** per attribute: the value (GRR) or base64 of the packed bits (OUE) */
  y: Array<number | string>;
}

/** A decoded report: per attribute, the value (GRR) or the unpacked bits (OUE). */
export interface MultidimReport {
  y: Array<number | ArrayLike<number>>;
}

export interface MultidimPrivacy {
  /** what the ledger charges per report under `neighbouring` */
  epsilon: number;
  epsilon_attribute: number;
  epsilon_tuple: number;
  neighbouring: Neighbouring;
  mechanism: RSFDName;
}

/** ε' = ln(d(e^ε − 1) + 1): the budget of the sampled attribute (Arcolezi et al. 2021, Thm. 1). */
export function amplifiedEpsilon(epsilon: number, d: number): number {
  return Math.log1p(d * Math.expm1(epsilon));
}

/** The ε that makes the tuple-level cost ε' equal `epsilonTuple`: ln(1 + (e^B − 1)/d). */
export function epsilonForTupleBudget(epsilonTuple: number, d: number): number {
  const eps = validateEpsilon(epsilonTuple, "epsilon_tuple");
  return Math.log1p(Math.expm1(eps) / d);
}

/** One attribute's randomiser (all numbers derived from the public config). */
export class AttributeParameters {
  constructor(
    readonly k: number,
    readonly oracle: "grr" | "oue",
    readonly fake: FakeData,
    readonly epsilon: number,
    /** P[report supports v | sampled attribute holds v] */
    readonly p: number,
    /** P[report supports v | sampled attribute holds u != v] */
    readonly q: number,
    /** P[fake report supports a given value] */
    readonly fakeSupport: number,
  ) {}

  /** the RS+FD paper's δ: P[report supports v] for a population with frequency f of v. */
  delta(f: number, d: number): number {
    return (this.q + f * (this.p - this.q) + (d - 1) * this.fakeSupport) / d;
  }

  /** Smallest r(y | x) = P_real(y | x)/P_fake(y) over outputs and inputs (docs/multidim.md). */
  ratioMin(): number {
    if (this.oracle === "grr") return this.k * this.q;
    const b = this.p / this.q;
    const a = (1 - this.p) / (1 - this.q);
    if (this.fake === FAKE_ZERO) return a;
    return (a * this.k) / ((this.k - 1) * b + a);
  }

  /** (r(y | x), r(y | x')) for the y maximising the one-attribute loss. */
  ratioPair(): [number, number] {
    if (this.oracle === "grr") return [this.k * this.p, this.k * this.q];
    const b = this.p / this.q;
    const a = (1 - this.p) / (1 - this.q);
    if (this.fake === FAKE_ZERO) return [b, a];
    const denominator = b + (this.k - 1) * a;
    return [(b * this.k) / denominator, (a * this.k) / denominator];
  }

  toJSON(): Record<string, unknown> {
    return {
      domain_size: this.k,
      oracle: this.oracle,
      fake: this.fake,
      epsilon: this.epsilon,
      p: this.p,
      q: this.q,
      fake_support: this.fakeSupport,
    };
  }
}

function grrAttribute(k: number, epsAmp: number): AttributeParameters {
  const [p, q] = grrProbabilities(epsAmp, k);
  return new AttributeParameters(k, "grr", FAKE_UNIFORM, epsAmp, p, q, 1.0 / k);
}

function oueAttribute(k: number, epsAmp: number, fake: FakeData): AttributeParameters {
  const p = 0.5;
  const q = 1.0 / (exp(epsAmp) + 1.0);
  const b = fake === FAKE_ZERO ? q : (p + (k - 1) * q) / k;
  return new AttributeParameters(k, "oue", fake, epsAmp, p, q, b);
}

/** n·Var* of the RS+FD paper's formula at f = 0. */
function varianceAtZero(a: AttributeParameters, d: number): number {
  const delta = a.delta(0.0, d);
  return (d * d * delta * (1 - delta)) / (a.p - a.q) ** 2;
}

/** Σ of doubles with Neumaier's compensation (close to Python's math.fsum). */
function compensatedSum(values: number[]): number {
  let sum = 0;
  let c = 0;
  for (const x of values) {
    const t = sum + x;
    c += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    sum = t;
  }
  return sum + c;
}

export function validateDomainSizes(domainSizes: unknown, maximum: number, mechanism: string): number[] {
  if (!Array.isArray(domainSizes)) throw new ConfigError(`domain_sizes must be a list of integers, got ${pyRepr(domainSizes)}`);
  if (domainSizes.length < 1 || domainSizes.length > MAX_ATTRIBUTES) {
    throw new ConfigError(`domain_sizes must list 1 to ${MAX_ATTRIBUTES} attributes, got ${domainSizes.length}`);
  }
  return domainSizes.map((k, j) => {
    try {
      return validateDomainSize(k, maximum, mechanism);
    } catch (error) {
      if (error instanceof ConfigError) throw new ConfigError(`attribute ${j}: ${error.message}`);
      throw error;
    }
  });
}

export function validateNeighbouring(neighbouring: unknown): Neighbouring {
  if (!(NEIGHBOURING as readonly unknown[]).includes(neighbouring)) {
    throw new ConfigError(`neighbouring must be one of ('tuple', 'attribute'), got ${pyRepr(neighbouring)}`);
  }
  return neighbouring as Neighbouring;
}

const HEADER_FIELDS = (payload: object, key: string): unknown =>
  Object.prototype.hasOwnProperty.call(payload, key) ? (payload as Record<string, unknown>)[key] : undefined;

/** Base of the RS+FD variants; subclasses choose each attribute's randomiser. */
export abstract class RSFD {
  abstract readonly name: RSFDName;
  static readonly maxDomainSize: number = 1 << 16;
  readonly epsilon: number;
  readonly domainSizes: readonly number[];
  readonly neighbouring: Neighbouring;
  readonly epsilonAmplified: number;
  readonly attributes: readonly AttributeParameters[];
  /** offset of each OUE attribute's bits in the shared bit vector (−1 for GRR attributes) */
  private readonly bitOffsets: number[];
  private readonly totalBits: number;
  private thresholdCache?: { keep: Threshold[]; base: Threshold[]; hot: Threshold[]; fakeHot: Threshold[] };

  constructor(epsilon: unknown, domainSizes: unknown, neighbouring: unknown, name: RSFDName, maxDomainSize: number) {
    this.epsilon = validateEpsilon(epsilon);
    this.domainSizes = Object.freeze(validateDomainSizes(domainSizes, maxDomainSize, name));
    this.neighbouring = validateNeighbouring(neighbouring);
    this.epsilonAmplified = amplifiedEpsilon(this.epsilon, this.d);
    if (this.epsilonAmplified > EPSILON_MAX) {
      throw new ConfigError(
        `the amplified budget ε' = ln(d(e^ε − 1) + 1) = ${this.epsilonAmplified.toFixed(3)} exceeds ${pyFloatRepr(EPSILON_MAX)}; lower epsilon`,
      );
    }
    this.attributes = Object.freeze(this.domainSizes.map((k) => this.attribute(k, this.epsilonAmplified)));
    for (const a of this.attributes) {
      if (!(0 < a.q && a.q < a.p && a.p < 1)) {
        throw new ConfigError(`derived probabilities p=${pyFloatRepr(a.p)}, q=${pyFloatRepr(a.q)} are unusable (need 0 < q < p < 1)`);
      }
    }
    this.bitOffsets = [];
    let offset = 0;
    for (const a of this.attributes) {
      this.bitOffsets.push(a.oracle === "oue" ? offset : -1);
      if (a.oracle === "oue") offset += a.k;
    }
    this.totalBits = offset;
  }

  protected abstract attribute(k: number, epsAmp: number): AttributeParameters;

  /** Number of attributes. */
  get d(): number {
    return this.domainSizes.length;
  }

  get config(): MultidimConfig {
    return {
      kind: MULTIDIM_KIND,
      mechanism: this.name,
      epsilon: this.epsilon,
      domain_sizes: [...this.domainSizes],
      neighbouring: this.neighbouring,
    };
  }

  configHash(): Promise<string> {
    return configHash(this.config);
  }

  configHashSync(): string {
    return configHashSync(this.config);
  }

  get canonicalConfig(): string {
    return canonicalJson(this.config);
  }

  /** Exact worst-case loss over any two tuples: ε' (docs/multidim.md). */
  get epsilonTuple(): number {
    return this.epsilonAmplified;
  }

  /** Exact worst-case loss over tuples differing in one attribute (docs/multidim.md). */
  get epsilonAttribute(): number {
    const minima = this.attributes.map((a) => a.ratioMin());
    const total = compensatedSum(minima);
    let worst = 0.0;
    this.attributes.forEach((a, i) => {
      const rest = total - minima[i];
      const [hi, lo] = a.ratioPair();
      worst = Math.max(worst, Math.log((rest + hi) / (rest + lo)));
    });
    return worst;
  }

  /** What the ledger charges per report under the promised notion. */
  get epsilonCharged(): number {
    return this.neighbouring === "tuple" ? this.epsilonTuple : Math.max(this.epsilon, this.epsilonAttribute);
  }

  get privacy(): MultidimPrivacy {
    return {
      epsilon: this.epsilonCharged,
      epsilon_attribute: this.epsilonAttribute,
      epsilon_tuple: this.epsilonTuple,
      neighbouring: this.neighbouring,
      mechanism: this.name,
    };
  }

  /** n·Var* per attribute: the variance of one value's estimate at f = 0, times n. */
  get varianceApproxPerUser(): number[] {
    return this.attributes.map((a) => varianceAtZero(a, this.d));
  }

  private checkTuple(value: unknown): number[] {
    if (!Array.isArray(value) && !ArrayBuffer.isView(value)) {
      throw new TypeError(`a report needs a tuple of ${this.d} integers, got ${pyRepr(value)}`);
    }
    const items = Array.from(value as ArrayLike<unknown>);
    if (items.length !== this.d) {
      throw new RangeError(`a report needs a tuple of ${this.d} values (one per attribute), got ${items.length}`);
    }
    return items.map((v, j) => {
      const k = this.domainSizes[j];
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new TypeError(`attribute ${j}: value must be an integer in [0, ${k}), got ${pyRepr(v)}`);
      }
      if (!(v >= 0 && v < k)) throw new RangeError(`attribute ${j}: value ${v} is outside the domain [0, ${k})`);
      return v + 0;
    });
  }

  private thresholds() {
    if (this.thresholdCache === undefined) {
      this.thresholdCache = {
        keep: this.attributes.map((a) => Threshold.of(a.p)),
        base: this.attributes.map((a) => Threshold.ofVector(a.q)),
        hot: this.attributes.map((a) => Threshold.ofVector(a.p)),
        fakeHot: this.attributes.map((a) => Threshold.ofVector(a.fake === FAKE_ONE_HOT ? a.p : a.q)),
      };
    }
    return this.thresholdCache;
  }

  /**
   * One report's wire payload for one user's tuple, from `source` (default: the CSPRNG).
   * Draws, in Python's order: the sampled attribute; per attribute, GRR: keep bit, other
   * value, fake value — OUE: fake hot position; then every OUE bit (8 bytes each).
   */
  perturb(value: ArrayLike<number>, source: RandomSource = cryptoSource): MultidimPayload {
    const v = this.checkTuple(value);
    const t = this.thresholds();
    const j = uniformInt(this.d, source);
    const y: Array<number | string> = new Array(this.d);
    const hotPosition: number[] = new Array(this.d).fill(-1);
    const hotThreshold: Array<Threshold | null> = new Array(this.d).fill(null);
    for (let i = 0; i < this.d; i++) {
      const a = this.attributes[i];
      const s = i === j ? 1 : 0;
      if (a.oracle === "grr") {
        const keep = bernoulli(t.keep[i], source) ? 1 : 0;
        let other = uniformInt(a.k - 1, source);
        other += other >= v[i] ? 1 : 0;
        const real = keep * v[i] + (1 - keep) * other;
        const fake = uniformInt(a.k, source);
        y[i] = s * real + (1 - s) * fake;
      } else {
        const fakeHot = uniformInt(a.k, source);
        hotPosition[i] = s * v[i] + (1 - s) * fakeHot;
        hotThreshold[i] = s ? t.hot[i] : t.fakeHot[i];
      }
    }
    if (this.totalBits > 0) {
      // one threshold per bit of the shared vector: q everywhere, the hot bit of each OUE attribute
      const owner = new Int32Array(this.totalBits);
      for (let i = 0; i < this.d; i++) {
        if (this.bitOffsets[i] >= 0) owner.fill(i, this.bitOffsets[i], this.bitOffsets[i] + this.attributes[i].k);
      }
      const bits = bernoulliBits(
        this.totalBits,
        (b) => {
          const i = owner[b];
          return b - this.bitOffsets[i] === hotPosition[i] ? (hotThreshold[i] as Threshold) : t.base[i];
        },
        source,
      );
      for (let i = 0; i < this.d; i++) {
        const start = this.bitOffsets[i];
        if (start >= 0) y[i] = encodeBase64(packBits(bits.subarray(start, start + this.attributes[i].k)));
      }
    }
    return { v: WIRE_VERSION, m: this.name, y };
  }

  /** The wire payload of a report given per attribute (value, or k bits for OUE). */
  encode(report: MultidimReport): MultidimPayload {
    if (!Array.isArray(report.y) || report.y.length !== this.d) throw new RangeError(`a report has ${this.d} entries`);
    const y = report.y.map((entry, i) => {
      const a = this.attributes[i];
      if (a.oracle === "grr") {
        if (typeof entry !== "number" || !Number.isInteger(entry) || entry < 0 || entry >= a.k) {
          throw new RangeError(`attribute ${i}: value must be an integer in [0, ${a.k})`);
        }
        return entry;
      }
      if (typeof entry === "number" || entry.length !== a.k) throw new RangeError(`attribute ${i}: expected ${a.k} bits`);
      return encodeBase64(packBits(entry));
    });
    return { v: WIRE_VERSION, m: this.name, y };
  }

  /** Parse one payload as the Python server does; throws ReportDecodeError with its reason. */
  decode(payload: unknown, index: number | null = null): { y: Array<number | Uint8Array> } {
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      throw new ReportDecodeError("not_an_object", "payload must be a JSON object", index);
    }
    const v = HEADER_FIELDS(payload, "v");
    if (v !== WIRE_VERSION) throw new ReportDecodeError("bad_version", `wire version must be ${WIRE_VERSION}, got ${pyRepr(v)}`, index);
    const m = HEADER_FIELDS(payload, "m");
    if (m !== this.name) {
      throw new ReportDecodeError("wrong_mechanism", `payload is for mechanism ${pyRepr(m)}, expected ${pyStrRepr(this.name)}`, index);
    }
    refuseUnknownFields(payload, ["v", "m", "y"], index);
    const y = HEADER_FIELDS(payload, "y");
    if (!Array.isArray(y)) throw new ReportDecodeError("bad_type", `field 'y' must be a list of ${this.d} entries`, index);
    if (y.length !== this.d) {
      throw new ReportDecodeError("bad_length", `field 'y' has ${y.length} entries, expected ${this.d} (one per attribute)`, index);
    }
    return {
      y: this.attributes.map((a, i) =>
        a.oracle === "grr" ? decodeIndex(y[i], a.k, `y[${i}]`, index) : decodeBits(y[i], a.k, `y[${i}]`, index),
      ),
    };
  }

  decodeAll(payloads: readonly unknown[]): Array<{ y: Array<number | Uint8Array> }> {
    return payloads.map((payload, i) => this.decode(payload, i));
  }

  validatePayload(payload: unknown): void {
    this.decode(payload, 0);
  }

  /** Outputs of one attribute with P_real(y | v) and P_fake(y) (OUE: bit patterns, k <= 12). */
  private attributeOutputs(a: AttributeParameters, v: number): { outputs: number[]; real: number[]; fake: number[] } {
    if (a.oracle === "grr") {
      const outputs = Array.from({ length: a.k }, (_, y) => y);
      return { outputs, real: outputs.map((y) => (y === v ? a.p : a.q)), fake: outputs.map(() => 1.0 / a.k) };
    }
    if (a.k > 12) throw new Error("output distribution enumerated for k <= 12 only");
    const outputs = Array.from({ length: 1 << a.k }, (_, y) => y);
    const pattern = (y: number, hot: number | null) => {
      let out = 1.0;
      for (let i = 0; i < a.k; i++) {
        const pr = i === hot ? a.p : a.q;
        out *= (y >> i) & 1 ? pr : 1.0 - pr;
      }
      return out;
    };
    const real = outputs.map((y) => pattern(y, v));
    let fake: number[];
    if (a.fake === FAKE_ZERO) fake = outputs.map((y) => pattern(y, null));
    else fake = outputs.map((y) => Array.from({ length: a.k }, (_, u) => pattern(y, u)).reduce((s, x) => s + x, 0) / a.k);
    return { outputs, real, fake };
  }

  /**
   * Exact probability of every possible report for one tuple (small domains only), keyed
   * by the outputs joined with "," (OUE outputs as bit patterns, bit j = value j).
   */
  outputDistribution(value: ArrayLike<number>): Map<string, number> {
    const v = this.checkTuple(value);
    const parts = this.attributes.map((a, i) => this.attributeOutputs(a, v[i]));
    if (parts.reduce((s, p) => s * p.outputs.length, 1) > 200_000) throw new Error("output space too large to enumerate");
    const out = new Map<string, number>();
    const combo = new Array(this.d).fill(0);
    for (;;) {
      let total = 0.0;
      for (let j = 0; j < this.d; j++) {
        let term = parts[j].real[combo[j]];
        for (let i = 0; i < this.d; i++) if (i !== j) term *= parts[i].fake[combo[i]];
        total += term;
      }
      out.set(combo.map((c, i) => parts[i].outputs[c]).join(","), total / this.d);
      let i = this.d - 1;
      while (i >= 0 && ++combo[i] === parts[i].outputs.length) combo[i--] = 0;
      if (i < 0) break;
    }
    return out;
  }

  toString(): string {
    return `${this.constructor.name}(epsilon=${pyFloatRepr(this.epsilon)}, domain_sizes=[${this.domainSizes.join(", ")}], neighbouring='${this.neighbouring}')`;
  }
}

/** A base64 string of ceil(k/8) bytes holding k little-endian bits (padding bits zero). */
export function decodeBits(raw: unknown, k: number, field: string, index: number | null): Uint8Array {
  if (typeof raw !== "string") throw new ReportDecodeError("bad_type", `field '${field}' must be a base64 string of ${k} packed bits`, index);
  const data = decodeBase64Strict(raw);
  if (data === null) throw new ReportDecodeError("bad_encoding", `field '${field}' is not valid base64`, index);
  const width = (k + 7) >> 3;
  if (data.length !== width) {
    throw new ReportDecodeError("bad_length", `field '${field}' holds ${data.length} bytes, expected ${width} for k=${k}`, index);
  }
  const spare = width * 8 - k;
  if (spare && data[width - 1] >> (8 - spare)) {
    throw new ReportDecodeError("out_of_range", `field '${field}': padding bits beyond the domain must be zero`, index);
  }
  return unpackBits(data, k);
}

/** RS+FD[GRR]: GRR on the sampled attribute, uniform fake values elsewhere. */
export class RSFD_GRR extends RSFD {
  static override readonly maxDomainSize = 2 ** 31;
  readonly name = "rsfd-grr" as const;
  constructor(epsilon: unknown, domainSizes: unknown, neighbouring: unknown = "tuple") {
    super(epsilon, domainSizes, neighbouring, "rsfd-grr", RSFD_GRR.maxDomainSize);
  }
  protected attribute(k: number, epsAmp: number): AttributeParameters {
    return grrAttribute(k, epsAmp);
  }
}

/** RS+FD[OUE-z]: OUE on the sampled attribute, OUE of the zero vector elsewhere. */
export class RSFD_OUE_Z extends RSFD {
  readonly name = "rsfd-oue-z" as const;
  constructor(epsilon: unknown, domainSizes: unknown, neighbouring: unknown = "tuple") {
    super(epsilon, domainSizes, neighbouring, "rsfd-oue-z", RSFD.maxDomainSize);
  }
  protected attribute(k: number, epsAmp: number): AttributeParameters {
    return oueAttribute(k, epsAmp, FAKE_ZERO);
  }
}

/** RS+FD[OUE-r]: OUE on the sampled attribute, OUE of a random one-hot vector elsewhere. */
export class RSFD_OUE_R extends RSFD {
  readonly name = "rsfd-oue-r" as const;
  constructor(epsilon: unknown, domainSizes: unknown, neighbouring: unknown = "tuple") {
    super(epsilon, domainSizes, neighbouring, "rsfd-oue-r", RSFD.maxDomainSize);
  }
  protected attribute(k: number, epsAmp: number): AttributeParameters {
    return oueAttribute(k, epsAmp, FAKE_ONE_HOT);
  }
}

/** RS+FD[ADP]: per attribute, GRR if its variance at f = 0 is at most OUE-z's (Arcolezi et al. 2021, Eq. 12). */
export class RSFD_ADP extends RSFD {
  readonly name = "rsfd-adp" as const;
  constructor(epsilon: unknown, domainSizes: unknown, neighbouring: unknown = "tuple") {
    super(epsilon, domainSizes, neighbouring, "rsfd-adp", RSFD.maxDomainSize);
  }
  protected attribute(k: number, epsAmp: number): AttributeParameters {
    const grr = grrAttribute(k, epsAmp);
    const oue = oueAttribute(k, epsAmp, FAKE_ZERO);
    const d = (this.domainSizes as readonly number[]).length;
    return varianceAtZero(grr, d) <= varianceAtZero(oue, d) ? grr : oue;
  }
}

const REGISTRY: Record<RSFDName, new (e: unknown, k: unknown, n: unknown) => RSFD> = {
  "rsfd-grr": RSFD_GRR,
  "rsfd-oue-z": RSFD_OUE_Z,
  "rsfd-oue-r": RSFD_OUE_R,
  "rsfd-adp": RSFD_ADP,
};

export interface MultidimOptions {
  epsilon: number;
  domainSizes: number[];
  /** "tuple" (default, the standard notion) or "attribute" */
  neighbouring?: Neighbouring;
}

function build(name: unknown, epsilon: unknown, domainSizes: unknown, neighbouring: unknown, options: Record<string, unknown>): RSFD {
  if (typeof name !== "string") throw new ConfigError(`protocol name must be a string, got ${pyRepr(name)}`);
  const key = name.toLowerCase();
  if (PYTHON_ONLY.includes(key)) {
    throw new ConfigError(`multidimensional protocol ${pyRepr(name)} is not implemented by the web SDK (RS+FD only: ${RSFD_NAMES.join(", ")})`);
  }
  if (!Object.prototype.hasOwnProperty.call(REGISTRY, key)) {
    throw new ConfigError(`unknown multidimensional protocol ${pyRepr(name)}; available: ${RSFD_NAMES.join(", ")}`);
  }
  const unknown = Object.keys(options);
  if (unknown.length) throw new ConfigError(`bad options for ${key}: [${unknown.sort().map(pyStrRepr).join(", ")}] (allowed: none)`);
  return new REGISTRY[key as RSFDName](epsilon, domainSizes, neighbouring);
}

/** Names accepted by {@link createMultidim}. */
export function availableMultidim(): RSFDName[] {
  return [...RSFD_NAMES];
}

/** Build an RS+FD protocol by name (client_sdk.multidim.create_multidim). */
export function createMultidim(name: string, options: MultidimOptions): RSFD {
  const { epsilon, domainSizes, neighbouring, ...rest } = options;
  return build(name, epsilon, domainSizes, neighbouring === undefined ? "tuple" : neighbouring, rest);
}

/** Rebuild a protocol from its canonical config (the inverse of `m.config`). */
export function multidimFromConfig(config: Record<string, unknown>): RSFD {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`config must be a mapping, got ${pyRepr(config)}`);
  }
  const has = (key: string) => Object.prototype.hasOwnProperty.call(config, key);
  const kind = has("kind") ? config.kind : MULTIDIM_KIND;
  if (kind !== MULTIDIM_KIND) throw new ConfigError(`not a multidimensional config (kind=${pyRepr(kind)})`);
  for (const field of ["mechanism", "epsilon", "domain_sizes"]) {
    if (!has(field)) throw new ConfigError(`config lacks required field '${field}'`);
  }
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!["kind", "mechanism", "epsilon", "domain_sizes", "neighbouring"].includes(k)) options[k] = v;
  }
  return build(config.mechanism, config.epsilon, config.domain_sizes, has("neighbouring") ? config.neighbouring : "tuple", options);
}
