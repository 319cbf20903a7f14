/**
 * The client side of the heavy-hitter protocols over an open domain
 * (client_sdk/heavy_hitters: pem.py, tap.py, treehist.py, _common.py): the configuration
 * (validated exactly as the Python SDK, so the config hash matches), one report per user,
 * and the server's strict decoder (reason codes). Discovery stays on the server. Known-candidate
 * mode is in known.ts; creation by name and from a config in factory.ts.
 *
 * Privacy: ε-LDP per user with one report per user. PEM and TAP/TAPS: the user joins
 * level group `l` uniformly at random (from the CSPRNG, independently of the item) and
 * sends one OLH report (full ε, hash family `olh-mas-v1`) of the 32-bit key of its item's
 * length-ℓ_l prefix; TAP/TAPS add the public party index `p`. TreeHist: two ε/2 OLH
 * reports (a random level's prefix and the whole item). Ledger charge: ε per report.
 *
 * Wire form (keys in this order): `{"v":1,"m":"pem","l":2,"s":"<16 hex>","y":5}`
 * (+ `"p"` for TAP/TAPS, whose `m` is "tap"; TreeHist adds `"s2"`, `"y2"`).
 */

import { canonicalJson, configHash, configHashSync } from "../canonical.js";
import { ConfigError, ReportDecodeError } from "../errors.js";
import { bitLength } from "../math.js";
import { pyRepr, pyStrRepr } from "../messages.js";
import { cryptoSource, uniformInt, type RandomSource } from "../random.js";
import { validateEpsilon, WIRE_VERSION } from "../mechanisms/base.js";
import { HASH_FAMILY, MAX_KEY, OLH, optimalG } from "../mechanisms/olh.js";
import { AlphabetDomain, domainFromConfig, KEY_FAMILY, prefixKey, type Domain, type DomainConfig } from "./encoding.js";

/** largest OLH hash range of the heavy-hitter protocols */
export const G_MAX = 1 << 16;
/** largest number of first-level candidates (2^ℓ_1) */
export const MAX_FIRST_LEVEL_BITS = 16;
/** the heavy-hitter protocols, in the Python SDK's order (`heavy_hitters.available()`) */
export const HH_PROTOCOLS = ["pem", "treehist", "tap", "taps", "known"] as const;
export type HHProtocolName = (typeof HH_PROTOCOLS)[number];
const HEX16_LOWER = /^[0-9a-f]{16}$/;

export interface HHPayload {
  v: 1;
  m: "pem" | "tap" | "treehist" | "known";
  l: number;
  s: string;
  y: number;
  p?: number;
  s2?: string;
  y2?: number;
}

export interface DecodedHHReport {
  l: number;
  s: bigint;
  y: number;
  p?: number;
  s2?: bigint;
  y2?: number;
}

export function checkInt(value: unknown, name: string, low: number, high: number | null = null): number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw new ConfigError(`${name} must be an integer, got ${pyRepr(value)}`);
  if (value < low || (high !== null && value > high)) {
    throw new ConfigError(`${name} must lie in [${low}, ${high !== null ? high : "inf"}], got ${value}`);
  }
  return value;
}

export function checkFloat(value: unknown, name: string, low = 0.0): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < low) {
    throw new ConfigError(`${name} must be a finite number >= ${low}, got ${pyRepr(value)}`);
  }
  return value;
}

/** OLH over 32-bit keys with g = min(round(e^ε) + 1, 2^16) unless g is given. */
export function makeOLH(epsilon: unknown, g: unknown): OLH {
  const eps = validateEpsilon(epsilon);
  const range = g === undefined || g === null ? Math.min(optimalG(eps), G_MAX) : checkInt(g, "g", 2, G_MAX);
  return new OLH(eps, MAX_KEY, range);
}

/** PEM/TAP prefix lengths ℓ_i = min(γ + iη, m), i = 1..G, G = ⌈(m − γ)/η⌉, γ = ⌈log2 k⌉. */
export function pemLengths(bits: number, k: number, eta: number): number[] {
  const gamma = bitLength(k - 1);
  if (gamma + eta >= bits) return [bits];
  const levels = Math.ceil((bits - gamma) / eta);
  return Array.from({ length: levels }, (_, i) => Math.min(gamma + (i + 1) * eta, bits));
}

/** eta: the domain's default (one whole symbol for an alphabet, 4 otherwise) unless given; for
 * an alphabet with whole-symbol levels, a multiple of the symbol width. */
export function checkEta(eta: unknown, domain: Domain, high: number): number {
  if (eta === null || eta === undefined) return domain.levelStep;
  if (domain instanceof AlphabetDomain) {
    const e = checkInt(eta, "eta", 1, MAX_FIRST_LEVEL_BITS);
    if (domain.chars !== null && e % domain.symbolBits !== 0) {
      throw new ConfigError(`eta must be a multiple of the alphabet's ${domain.symbolBits}-bit symbols (whole characters), got ${e}`);
    }
    return e;
  }
  return checkInt(eta, "eta", 1, high);
}

/** PEM/TAP level lengths: alphabet domains step by whole symbols (ℓ_i = min(iη, m)), others
 * as PEM; with the final round one more group reports the full item (length m). */
export function layoutLengths(domain: Domain, k: number, eta: number, finalRound: boolean): number[] {
  const m = domain.bits;
  const lengths =
    domain instanceof AlphabetDomain ? Array.from({ length: Math.ceil(m / eta) }, (_, i) => Math.min((i + 1) * eta, m)) : pemLengths(m, k, eta);
  return finalRound ? [...lengths, m] : lengths;
}

function checkBool(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(`${name} must be true or false`);
  return value;
}

export function checkAlpha(value: unknown): number {
  const alpha = checkFloat(value, "alpha");
  if (!(alpha > 0 && alpha < 1)) throw new ConfigError(`alpha must lie in (0, 1), got ${pyRepr(alpha)}`);
  return alpha;
}

/** expected_reports: null, or a positive integer (the hopelessness check itself runs where the
 * collection is created, on the server, with the Python SDK). */
function checkExpected(value: unknown): number | null {
  return value === null || value === undefined ? null : checkInt(value, "expected_reports", 1);
}

export function asDomain(domain: unknown): Domain {
  if (domain !== null && typeof domain === "object" && "encode" in domain && "bits" in domain && "config" in domain) return domain as Domain;
  return domainFromConfig(domain);
}

export type Options = Record<string, unknown>;

/** Refuses an unknown option or a missing required one (Python's TypeError, as its message). */
export function take(options: Options, allowed: readonly string[], required: readonly string[], protocol: string): void {
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new ConfigError(`bad options for ${protocol}: unexpected option ${pyStrRepr(unknown[0])}`);
  const missing = required.filter((k) => !Object.prototype.hasOwnProperty.call(options, k));
  if (missing.length) throw new ConfigError(`bad options for ${protocol}: missing required option ${pyStrRepr(missing[0])}`);
}

/** An option's value; `fallback` when it is absent or undefined (an explicit null stays null). */
export const opt = (options: Options, key: string, fallback: unknown = null): unknown =>
  Object.prototype.hasOwnProperty.call(options, key) && options[key] !== undefined ? options[key] : fallback;

/** What every heavy-hitter client offers: one configuration, its hash, one report per user,
 * the strict decoder (the device runtime needs no more). */
export interface HeavyHitters {
  readonly name: HHProtocolName;
  readonly mechanism: HHPayload["m"];
  readonly epsilon: number;
  readonly k: number;
  readonly domain: Domain;
  readonly olh: OLH;
  /** OLH hash range (of the group whose reports are OLH reports of a prefix or the item) */
  readonly g: number;
  /** number of groups a user may join (the wire `l` lies in 1..groups) */
  readonly groups: number;
  readonly config: Record<string, unknown>;
  readonly canonicalConfig: string;
  readonly privacy: { epsilon: number; neighbouring: "record"; mechanism: HHProtocolName };
  readonly parties: readonly string[] | null;
  configHash(): Promise<string>;
  configHashSync(): string;
  perturb(item: unknown, party?: unknown, source?: RandomSource): HHPayload;
  decode(payload: unknown, index?: number | null): DecodedHHReport;
  decodeAll(payloads: readonly unknown[]): DecodedHHReport[];
  validatePayload(payload: unknown): void;
}

/**
 * The checks every heavy-hitter decoder starts with, in the Python server's order: a JSON
 * object, exactly the `expected` fields (`missing_field` before `unknown_field`), wire
 * version 1, then the mechanism `m`. Returns the payload as a record.
 */
export function checkPayloadHeader(payload: unknown, expected: readonly string[], mechanism: string, index: number | null): Record<string, unknown> {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new ReportDecodeError("not_an_object", "payload must be a JSON object", index);
  }
  const p = payload as Record<string, unknown>;
  const keys = Object.keys(p);
  const missing = expected.filter((k) => !keys.includes(k)).sort();
  const extra = keys.filter((k) => !expected.includes(k)).sort();
  if (missing.length || extra.length) {
    throw new ReportDecodeError(
      missing.length ? "missing_field" : "unknown_field",
      `fields missing [${missing.map(pyStrRepr).join(", ")}], unexpected [${extra.map(pyStrRepr).join(", ")}]`,
      index,
    );
  }
  if (p.v !== WIRE_VERSION) throw new ReportDecodeError("bad_version", `wire version must be ${WIRE_VERSION}, got ${pyRepr(p.v)}`, index);
  if (p.m !== mechanism) {
    throw new ReportDecodeError("wrong_mechanism", `payload is for ${pyRepr(p.m)}, expected ${pyStrRepr(mechanism)}`, index);
  }
  return p;
}

/** Shared by the prefix-tree clients (PEM, TAP/TAPS, TreeHist): one configuration, its hash, the decoder. */
export abstract class HeavyHitterClient implements HeavyHitters {
  abstract readonly name: HHProtocolName;
  abstract readonly mechanism: "pem" | "tap" | "treehist";
  readonly epsilon: number;
  readonly k: number;
  readonly domain: Domain;
  readonly eta: number;
  readonly olh: OLH;
  readonly pruneInfeasible: boolean;
  readonly split: "uniform" | "final-2x";
  readonly lengths: readonly number[];

  protected constructor(
    epsilon: number,
    olh: OLH,
    options: Options,
    etaMax: number,
    lengths: (domain: Domain, k: number, eta: number) => number[],
    hasFinalRound = false,
  ) {
    this.epsilon = epsilon;
    this.olh = olh;
    this.k = checkInt(opt(options, "k"), "k", 1, 4096);
    this.domain = asDomain(opt(options, "domain"));
    this.eta = checkEta(opt(options, "eta"), this.domain, etaMax);
    const prune = opt(options, "prune_infeasible", true);
    if (typeof prune !== "boolean") throw new ConfigError("prune_infeasible must be true or false");
    this.pruneInfeasible = prune;
    // PEM/TAP with a final round default to "final-2x" (see drawLevel); TreeHist: uniform only
    const finalRound = hasFinalRound && opt(options, "final_round", true) === true;
    const split = opt(options, "split", finalRound ? "final-2x" : "uniform");
    const allowed = finalRound ? ["final-2x", "uniform"] : ["uniform"];
    if (typeof split !== "string" || !allowed.includes(split)) {
      throw new ConfigError(`unknown user split ${pyRepr(split)}; available: [${allowed.map(pyStrRepr).join(", ")}]`);
    }
    this.split = split as "uniform" | "final-2x";
    this.lengths = Object.freeze(lengths(this.domain, this.k, this.eta));
  }

  /** The user's level group, uniformly at random (independent of the item). "final-2x": the
   * last two groups (last prefix level, final estimation) get twice the users of the others:
   * u uniform in 0..G+1; u < G−2 → group u+1, else G−1 + ⌊(u − (G−2))/2⌋. */
  protected drawLevel(source: RandomSource): number {
    const G = this.groups;
    if (this.split === "uniform" || G < 2) return 1 + uniformInt(G, source);
    const u = uniformInt(G + 2, source);
    return u < G - 2 ? u + 1 : G - 1 + Math.floor((u - (G - 2)) / 2);
  }

  /** Number of level groups G. */
  get groups(): number {
    return this.lengths.length;
  }

  /** OLH hash range. */
  get g(): number {
    return this.olh.g;
  }

  protected clientConfig(): Record<string, unknown> {
    return {
      protocol: this.name,
      version: WIRE_VERSION,
      epsilon: this.epsilon,
      k: this.k,
      eta: this.eta,
      domain: this.domain.config as DomainConfig,
      fo: { mechanism: "olh", g: this.olh.g, hash: HASH_FAMILY },
      key: KEY_FAMILY,
      split: this.split,
      levels: [...this.lengths],
      prune_infeasible: this.pruneInfeasible,
    };
  }

  abstract get config(): Record<string, unknown>;

  get canonicalConfig(): string {
    return canonicalJson(this.config);
  }

  configHash(): Promise<string> {
    return configHash(this.config);
  }

  configHashSync(): string {
    return configHashSync(this.config);
  }

  /** ε-LDP per user; the ledger charges `epsilon` per report. */
  get privacy(): { epsilon: number; neighbouring: "record"; mechanism: HHProtocolName } {
    return { epsilon: this.epsilon, neighbouring: "record", mechanism: this.name };
  }

  /** The names of the parties (federated protocols), or null. */
  get parties(): readonly string[] | null {
    return null;
  }

  protected partyIndex(party: unknown): number | null {
    if (party !== undefined && party !== null) throw new RangeError(`${this.name} is not federated; do not pass a party`);
    return null;
  }

  /** The OLH key of the item's prefix of `length` bits. */
  prefixKeyOf(code: bigint, length: number): number {
    return prefixKey(code >> BigInt(this.domain.bits - length), length);
  }

  /** One report of `item` (the level group is drawn uniformly at random). */
  abstract perturb(item: unknown, party?: unknown, source?: RandomSource): HHPayload;

  protected expectedFields(): string[] {
    return ["v", "m", "l", "s", "y"];
  }

  /** Parse one payload as the Python server does; throws ReportDecodeError with its reason. */
  decode(payload: unknown, index: number | null = null): DecodedHHReport {
    const expected = this.expectedFields();
    const p = checkPayloadHeader(payload, expected, this.mechanism, index);
    const out: DecodedHHReport = {
      l: intField(p, "l", 1, this.groups + 1, index),
      s: seedField(p, "s", index),
      y: intField(p, "y", 0, this.g, index),
    };
    const parties = this.parties;
    if (parties !== null) out.p = intField(p, "p", 0, parties.length, index);
    if (expected.includes("s2")) {
      out.s2 = seedField(p, "s2", index);
      out.y2 = intField(p, "y2", 0, this.g, index);
    }
    return out;
  }

  decodeAll(payloads: readonly unknown[]): DecodedHHReport[] {
    return payloads.map((payload, i) => this.decode(payload, i));
  }

  validatePayload(payload: unknown): void {
    this.decode(payload, 0);
  }
}

/** An integer payload field in [low, high) (Python's `_check_int_field`). */
export function intField(p: Record<string, unknown>, key: string, low: number, high: number, index: number | null): number {
  const value = p[key];
  if (typeof value !== "number" || !Number.isInteger(value)) throw new ReportDecodeError("bad_type", `field '${key}' must be an integer`, index);
  if (!(value >= low && value < high)) {
    throw new ReportDecodeError("out_of_range", `field '${key}' must lie in [${low}, ${high}), got ${pyRepr(value)}`, index);
  }
  return value + 0;
}

/** A 64-bit seed field: exactly 16 lowercase hexadecimal digits. */
export function seedField(p: Record<string, unknown>, key: string, index: number | null): bigint {
  const raw = p[key];
  if (typeof raw !== "string") {
    throw new ReportDecodeError("bad_type", `field '${key}' must be a 16-digit lowercase hexadecimal string`, index);
  }
  if (!HEX16_LOWER.test(raw)) throw new ReportDecodeError("bad_encoding", `field '${key}' must be 16 lowercase hexadecimal digits`, index);
  return BigInt(`0x${raw}`);
}

const PREFIX_OPTIONS = ["epsilon", "k", "domain", "eta", "g", "prune_infeasible", "split", "alpha", "final_round", "expected_reports"];

/** PEM and TAP/TAPS: one OLH report of one level's prefix. */
export abstract class PrefixClient extends HeavyHitterClient {
  readonly finalRound: boolean;
  readonly alpha: number;
  readonly expectedReports: number | null;

  protected constructor(options: Options) {
    const finalRound = checkBool(opt(options, "final_round", true), "final_round");
    super(
      validateEpsilon(opt(options, "epsilon")),
      makeOLH(opt(options, "epsilon"), opt(options, "g")),
      options,
      10,
      (domain, k, eta) => layoutLengths(domain, k, eta, finalRound),
      true,
    );
    this.finalRound = finalRound;
    this.alpha = checkAlpha(opt(options, "alpha", 0.05));
    this.expectedReports = checkExpected(opt(options, "expected_reports"));
    if (this.lengths[0] > MAX_FIRST_LEVEL_BITS) {
      throw new ConfigError(
        `the first level would enumerate 2^${this.lengths[0]} prefixes; at most 2^${MAX_FIRST_LEVEL_BITS} (lower k or eta, or use a shorter item encoding)`,
      );
    }
  }

  perturb(item: unknown, party: unknown = null, source: RandomSource = cryptoSource): HHPayload {
    const p = this.partyIndex(party);
    const code = this.domain.encode(item); // refuse a bad item before drawing anything
    const level = this.drawLevel(source);
    const inner = this.olh.perturbKey(this.prefixKeyOf(code, this.lengths[level - 1]), source);
    const payload: HHPayload = { v: WIRE_VERSION, m: this.mechanism as "pem" | "tap", l: level, s: inner.s, y: inner.y };
    if (p !== null) payload.p = p;
    return payload;
  }
}

/** PEM (Wang, Li, Jha): client side of one collection. */
export class PEM extends PrefixClient {
  readonly name = "pem" as const;
  readonly mechanism = "pem" as const;
  readonly keep: "top" | "threshold";
  readonly width: number;
  readonly maxWidth: number;

  constructor(options: Options) {
    take(options, [...PREFIX_OPTIONS, "keep", "width", "max_width"], ["epsilon", "k", "domain"], "pem");
    super(options);
    const keep = opt(options, "keep", "top");
    if (keep !== "top" && keep !== "threshold") throw new ConfigError(`keep must be 'top' or 'threshold', got ${pyRepr(keep)}`);
    this.keep = keep;
    this.width = checkInt(opt(options, "width", 2 * this.k), "width", this.k, 1 << 14);
    this.maxWidth = checkInt(opt(options, "max_width", 4 * this.k), "max_width", this.k, 1 << 14);
  }

  get config(): Record<string, unknown> {
    return {
      ...this.clientConfig(),
      keep: this.keep,
      width: this.width,
      alpha: this.alpha,
      max_width: this.maxWidth,
      final_round: this.finalRound,
      expected_reports: this.expectedReports,
    };
  }
}

const TAP_OPTIONS = [
  ...PREFIX_OPTIONS,
  "parties",
  "shared_levels",
  "k_max",
  "k_local",
  "k_global",
  "z",
  "z0",
  "width_rule",
  "floor",
  "pruning",
  "mode",
  "order",
];

/** TAP (federated; docs/heavy_hitters.md): PEM reports plus the public party index. */
export class TAP extends PrefixClient {
  readonly name: "tap" | "taps" = "tap";
  readonly mechanism = "tap" as const;
  readonly partyNames: readonly string[];
  readonly sharedLevels: number;
  readonly kMax: number;
  readonly kLocal: number;
  readonly kGlobal: number;
  readonly z: number;
  readonly z0: number;
  readonly widthRule: "aw" | "fixed";
  readonly floor: number;
  readonly pruning: "none" | "consensus";
  readonly mode: "Z" | "R";
  readonly order: "size-desc";

  constructor(options: Options, name: "tap" | "taps" = "tap") {
    take(options, TAP_OPTIONS, ["epsilon", "k", "domain", "parties"], name);
    super(options);
    this.name = name;
    const parties = opt(options, "parties");
    if (!Array.isArray(parties) || parties.length === 0) throw new ConfigError("parties must be a non-empty list of party names");
    const names = parties.map((p) => (typeof p === "string" ? p : String(p)));
    if (new Set(names).size !== names.length) throw new ConfigError("party names must be distinct");
    this.partyNames = Object.freeze(names);
    this.sharedLevels = checkInt(opt(options, "shared_levels", 2), "shared_levels", 1, this.groups - (this.finalRound ? 1 : 0));
    this.kMax = checkInt(opt(options, "k_max", 4 * this.k), "k_max", this.k, 1 << 14);
    this.kLocal = checkInt(opt(options, "k_local", 2 * this.k), "k_local", this.k, 1 << 14);
    this.kGlobal = checkInt(opt(options, "k_global", 2 * this.k), "k_global", this.k, 1 << 14);
    this.z = checkFloat(opt(options, "z", 2.0), "z");
    this.z0 = checkFloat(opt(options, "z0", 1.0), "z0");
    const widthRule = opt(options, "width_rule", "aw");
    if (widthRule !== "aw" && widthRule !== "fixed") throw new ConfigError(`width_rule must be 'aw' or 'fixed', got ${pyRepr(widthRule)}`);
    this.widthRule = widthRule;
    this.floor = checkInt(opt(options, "floor", this.k), "floor", this.k, Math.min(this.kMax, this.kLocal, this.kGlobal));
    const pruning = opt(options, "pruning", name === "taps" ? "consensus" : "none");
    if (pruning !== "none" && pruning !== "consensus") throw new ConfigError(`pruning must be one of ['consensus', 'none'], got ${pyRepr(pruning)}`);
    this.pruning = pruning;
    const mode = opt(options, "mode", "Z");
    if (mode !== "Z" && mode !== "R") throw new ConfigError(`mode must be 'Z' or 'R', got ${pyRepr(mode)}`);
    this.mode = mode;
    const order = opt(options, "order", "size-desc");
    if (order !== "size-desc") throw new ConfigError(`order must be one of ['size-desc'], got ${pyRepr(order)}`);
    this.order = order;
  }

  override get parties(): readonly string[] {
    return this.partyNames;
  }

  get config(): Record<string, unknown> {
    return {
      ...this.clientConfig(),
      parties: [...this.partyNames],
      shared_levels: this.sharedLevels,
      k_max: this.kMax,
      k_local: this.kLocal,
      k_global: this.kGlobal,
      z: this.z,
      z0: this.z0,
      width_rule: this.widthRule,
      floor: this.floor,
      pruning: this.pruning,
      mode: this.mode,
      order: this.order,
      alpha: this.alpha,
      final_round: this.finalRound,
      expected_reports: this.expectedReports,
    };
  }

  /** The party is public metadata: its name, or its index. */
  protected override partyIndex(party: unknown): number {
    if (typeof party === "string" && this.partyNames.includes(party)) return this.partyNames.indexOf(party);
    if (typeof party === "number" && Number.isInteger(party) && party >= 0 && party < this.partyNames.length) return party;
    throw new RangeError(`party must be one of [${this.partyNames.map(pyStrRepr).join(", ")}] (or its index), got ${pyRepr(party)}`);
  }

  protected override expectedFields(): string[] {
    return [...super.expectedFields(), "p"];
  }
}

/** TAPS: TAP with consensus pruning (server side); the same reports (`m` = "tap"). */
export class TAPS extends TAP {
  constructor(options: Options) {
    super(options, "taps");
  }
}

/** TreeHist: two ε/2 OLH reports, a random level's prefix and the full item. */
export class TreeHist extends HeavyHitterClient {
  readonly name = "treehist" as const;
  readonly mechanism = "treehist" as const;
  readonly width: number;
  readonly threshold: number | null;
  readonly fragmentEstimator: "pooled" | "level";
  readonly alpha: number;
  readonly expectedReports: number | null;

  constructor(options: Options) {
    take(
      options,
      ["epsilon", "k", "domain", "eta", "g", "width", "threshold", "fragment_estimator", "prune_infeasible", "split", "alpha", "expected_reports"],
      ["epsilon", "k", "domain"],
      "treehist",
    );
    const epsilon = validateEpsilon(opt(options, "epsilon"));
    super(epsilon, makeOLH(epsilon / 2, opt(options, "g")), options, MAX_FIRST_LEVEL_BITS, (domain, _k, eta) =>
      Array.from({ length: Math.ceil(domain.bits / eta) }, (_, j) => Math.min((j + 1) * eta, domain.bits)),
    );
    this.alpha = checkAlpha(opt(options, "alpha", 0.05));
    this.width = checkInt(opt(options, "width", this.k), "width", 1, 1 << 14);
    const threshold = opt(options, "threshold");
    this.threshold = threshold === null ? null : checkFloat(threshold, "threshold");
    const fragment = opt(options, "fragment_estimator", "pooled");
    if (fragment !== "pooled" && fragment !== "level") {
      throw new ConfigError(`fragment_estimator must be 'pooled' or 'level', got ${pyRepr(fragment)}`);
    }
    this.fragmentEstimator = fragment;
    this.expectedReports = checkExpected(opt(options, "expected_reports"));
  }

  get config(): Record<string, unknown> {
    return {
      ...this.clientConfig(),
      width: this.width,
      threshold: this.threshold,
      fragment_estimator: this.fragmentEstimator,
      alpha: this.alpha,
      expected_reports: this.expectedReports,
    };
  }

  perturb(item: unknown, party: unknown = null, source: RandomSource = cryptoSource): HHPayload {
    this.partyIndex(party);
    const code = this.domain.encode(item);
    const level = 1 + uniformInt(this.groups, source);
    const m = this.domain.bits;
    const first = this.olh.perturbKey(this.prefixKeyOf(code, this.lengths[level - 1]), source);
    const second = this.olh.perturbKey(prefixKey(code, m), source);
    return { v: WIRE_VERSION, m: "treehist", l: level, s: first.s, y: first.y, s2: second.s, y2: second.y };
  }

  protected override expectedFields(): string[] {
    return [...super.expectedFields(), "s2", "y2"];
  }
}
