/**
 * The contract every frequency oracle fulfils on the device (client_sdk/mechanisms/_base.py):
 * parameters, perturbation of one value into a wire payload, and a decoder that refuses
 * malformed payloads with the Python server's reason codes. Estimation stays on the server.
 */

import { configHash, configHashSync } from "../canonical.js";
import { ConfigError, ReportDecodeError } from "../errors.js";
import { pyFloatRepr, pyRepr } from "../messages.js";
import type { RandomSource } from "../random.js";

export const WIRE_VERSION = 1;
/** below this p* − q* vanishes and estimates explode (docs/algorithms.md) */
export const EPSILON_MIN = 0.01;
/** above this exp(eps) loses the q side to rounding; no useful privacy left */
export const EPSILON_MAX = 20.0;

export type MechanismName = "grr" | "sue" | "oue" | "olh" | "blh" | "hr";

/** The canonical configuration, with Python's key names. */
export interface MechanismConfig {
  mechanism: MechanismName;
  epsilon: number;
  domain_size: number;
  g?: number;
  hash?: string;
}

export interface IndexPayload {
  v: 1;
  m: "grr" | "hr";
  y: number;
}
export interface BitsPayload {
  v: 1;
  m: "sue" | "oue";
  bits: string;
}
export interface HashPayload {
  v: 1;
  m: "olh" | "blh";
  s: string;
  y: number;
}
export type Payload = IndexPayload | BitsPayload | HashPayload;

/** A decoded report: `y` (GRR, HR), the unpacked `bits` (SUE, OUE) or `seed` and `y` (OLH, BLH). */
export type DecodedReport = { y: number } | { bits: ArrayLike<number> } | { seed: bigint; y: number };

export interface PrivacyStatement {
  epsilon: number;
  neighbouring: "record";
  mechanism: MechanismName;
  parameters: Record<string, number>;
}

export function validateEpsilon(epsilon: unknown, name = "epsilon"): number {
  if (typeof epsilon !== "number") throw new ConfigError(`${name} must be a number, got ${pyRepr(epsilon)}`);
  if (!Number.isFinite(epsilon) || epsilon <= 0) {
    throw new ConfigError(`${name} must be a finite number > 0, got ${pyRepr(epsilon)}`);
  }
  if (epsilon < EPSILON_MIN || epsilon > EPSILON_MAX) {
    throw new ConfigError(
      `${name} must lie in [${pyFloatRepr(EPSILON_MIN)}, ${pyFloatRepr(EPSILON_MAX)}], got ${pyFloatRepr(epsilon)}`,
    );
  }
  return epsilon;
}

export function validateDomainSize(domainSize: unknown, maximum: number, mechanism: string): number {
  if (typeof domainSize !== "number" || !Number.isInteger(domainSize)) {
    throw new ConfigError(`domain_size must be an integer, got ${pyRepr(domainSize)}`);
  }
  if (domainSize < 2) throw new ConfigError(`domain_size must be at least 2, got ${domainSize}`);
  if (domainSize > maximum) {
    throw new ConfigError(`domain_size ${domainSize} is too large for ${mechanism} (at most ${maximum})`);
  }
  return domainSize;
}

function own(payload: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(payload, key) ? (payload as Record<string, unknown>)[key] : undefined;
}

/**
 * Refuse a field the protocol does not define (as client_sdk/wire_checks.py does): a payload
 * is exactly its protocol's fields, so nothing can travel next to the perturbed report.
 */
export function refuseUnknownFields(payload: object, allowed: readonly string[], index: number | null): void {
  const extra = Object.keys(payload).filter((key) => !allowed.includes(key));
  if (extra.length) {
    const shown = extra.sort().slice(0, 5).map((key) => pyRepr(key));
    throw new ReportDecodeError("unknown_field", `unexpected fields [${shown.join(", ")}]`, index);
  }
}

/** An integer field in [0, upper), or a ReportDecodeError naming the field. */
export function decodeIndex(raw: unknown, upper: number, field: string, index: number | null): number {
  if (typeof raw !== "number" || !Number.isInteger(raw)) {
    throw new ReportDecodeError("bad_type", `field '${field}' must be an integer, got ${pyRepr(raw)}`, index);
  }
  if (!(raw >= 0 && raw < upper)) {
    throw new ReportDecodeError("out_of_range", `field '${field}' = ${pyRepr(raw)} is outside [0, ${upper})`, index);
  }
  return raw + 0; // normalises -0
}

/** An index to encode: an integer in [0, upper) (RangeError otherwise). */
export function checkIndex(y: unknown, upper: number): number {
  if (typeof y !== "number" || !Number.isInteger(y) || y < 0 || y >= upper) {
    throw new RangeError(`report index must be an integer in [0, ${upper}), got ${pyRepr(y)}`);
  }
  return y + 0;
}

/** Base of every single-attribute frequency oracle. */
export abstract class FrequencyOracle {
  abstract readonly name: MechanismName;
  /** Every field of a wire payload ("v", "m" and the mechanism's own); any other is refused. */
  protected abstract readonly wireFields: readonly string[];
  readonly epsilon: number;
  readonly domainSize: number;

  constructor(epsilon: unknown, domainSize: unknown, maxDomainSize: number, name: MechanismName) {
    this.epsilon = validateEpsilon(epsilon);
    this.domainSize = validateDomainSize(domainSize, maxDomainSize, name);
  }

  /** P[v in Support(y) | user holds v]. */
  abstract get pStar(): number;
  /** P[v in Support(y) | user holds u != v]. */
  abstract get qStar(): number;
  /** Size of one report's payload in bits (for the report-size limit of "auto"). */
  abstract get reportBits(): number;

  /** n·Var*: the variance of one value's estimate at f = 0, times n. */
  get varianceApproxPerUser(): number {
    const gap = this.pStar - this.qStar;
    return (this.qStar * (1 - this.qStar)) / gap ** 2;
  }

  /** The canonical configuration: everything both sides need, nothing else. */
  get config(): MechanismConfig {
    return { mechanism: this.name, epsilon: this.epsilon, domain_size: this.domainSize };
  }

  configHash(): Promise<string> {
    return configHash(this.config);
  }

  configHashSync(): string {
    return configHashSync(this.config);
  }

  /** The mechanism's probabilities (as in Python's `privacy.parameters`). */
  parameters(): Record<string, number> {
    return { p: this.pStar, q: this.qStar };
  }

  get privacy(): PrivacyStatement {
    return { epsilon: this.epsilon, neighbouring: "record", mechanism: this.name, parameters: this.parameters() };
  }

  protected checkValue(value: unknown): number {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new TypeError(`value must be an integer in [0, ${this.domainSize}), got ${pyRepr(value)}`);
    }
    if (!(value >= 0 && value < this.domainSize)) {
      throw new RangeError(`value ${value} is outside the domain [0, ${this.domainSize})`);
    }
    return value + 0;
  }

  /** One report's wire payload, drawn from `source` (default: the platform CSPRNG). */
  abstract perturb(value: number, source?: RandomSource): Payload;

  /** The wire payload of a report given in decoded form (the inverse of {@link decode}). */
  abstract encode(report: DecodedReport): Payload;

  /** Parse one wire payload; throws ReportDecodeError (with `index`) if it is malformed. */
  abstract decode(payload: unknown, index?: number | null): DecodedReport;

  /** Parse payloads; throws on the first bad one, naming its index. */
  decodeAll(payloads: readonly unknown[]): DecodedReport[] {
    return payloads.map((payload, i) => this.decode(payload, i));
  }

  /** Throw ReportDecodeError if one payload is malformed (Python's validate_payload). */
  validatePayload(payload: unknown): void {
    this.decode(payload, 0);
  }

  /**
   * Exact probability of every possible report for `value` (small domains only), keyed by
   * the report's output (y, or the bit pattern as an integer with bit j = value j).
   */
  outputDistribution(_value: number): Map<number, number> {
    throw new Error(`output distribution not enumerated for ${this.name}`);
  }

  protected checkHeader(payload: unknown, index: number | null): Record<string, unknown> {
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      throw new ReportDecodeError("not_an_object", "payload must be a JSON object", index);
    }
    const v = own(payload, "v");
    if (v !== WIRE_VERSION) {
      throw new ReportDecodeError("bad_version", `wire version must be ${WIRE_VERSION}, got ${pyRepr(v)}`, index);
    }
    const m = own(payload, "m");
    if (m !== this.name) {
      throw new ReportDecodeError("wrong_mechanism", `payload is for mechanism ${pyRepr(m)}, expected '${this.name}'`, index);
    }
    refuseUnknownFields(payload, this.wireFields, index);
    return payload as Record<string, unknown>;
  }

  protected field(payload: Record<string, unknown>, key: string): unknown {
    return own(payload, key);
  }

  toString(): string {
    return `${this.constructor.name}(epsilon=${pyFloatRepr(this.epsilon)}, domain_size=${this.domainSize})`;
  }
}
