/**
 * Known-candidate heavy hitters (`protocol: "known"`; client_sdk/heavy_hitters/known.py),
 * client side: the configuration (validated as the Python SDK does, so the config hash
 * matches), one report per user, and the server's strict decoder. The frequencies of the
 * analyst's dictionary are estimated on the server.
 *
 * Privacy: ε-LDP per user with one report per user; ledger charge ε per report. The user
 * joins one of two groups uniformly at random (CSPRNG, independently of the item; the group
 * is public):
 *
 * * screen (`l` = 1): OLH with the linear hash `lin-zp-v1` over Z_p^d. The item's full
 *   32-bit key (`hh-key-v1`) picks a non-zero bucket vector b (a flat index in [1, p^d),
 *   digit 0 most significant): `b = 1 + splitmix64(key xor 0x4C494E4841534831) mod (p^d − 1)`.
 *   The user draws s uniformly in [0, p^d) and reports `(s, GRR_p(⟨s, b⟩ mod p))` — the
 *   value kept with probability `p* = e^ε/(e^ε + p − 1)`, else one of the p − 1 others
 *   uniformly. s does not depend on the item and GRR_p is ε-LDP.
 * * test (`l` = 2): OLH (`fo`, hash family `olh-mas-v1`) of the item's full key, as PEM's
 *   final group.
 *
 * Random bytes are drawn in Python's order (the shared vectors replay them): the group
 * (uniform in [0, 2)), then for the screen the seed (uniform in [0, p^d)), the Bernoulli
 * draw, and (not kept) a uniform integer in [0, p − 1); for the test, OLH's draws.
 *
 * Wire form (keys in this order): `{"v":1,"m":"known","l":1,"s":"<16 hex>","y":3}`.
 * The decoder adds per-group bounds to the shared ones: a screen report needs s < p^d and
 * y < p, a test report y < g (reason `out_of_range`).
 */

import { canonicalJson, configHash, configHashSync } from "../canonical.js";
import { ConfigError, ReportDecodeError } from "../errors.js";
import { exp, log } from "../math.js";
import { pyRepr, pyStrRepr } from "../messages.js";
import { WIRE_VERSION } from "../mechanisms/base.js";
import { grrProbabilities } from "../mechanisms/grr.js";
import { HASH_FAMILY, MASK64, seedHex, splitmix64, type OLH } from "../mechanisms/olh.js";
import { bernoulli, cryptoSource, Threshold, uniformInt, type RandomSource } from "../random.js";
import { KEY_FAMILY, prefixKey, type Domain, type DomainConfig } from "./encoding.js";
import {
  asDomain,
  checkAlpha,
  checkInt,
  checkPayloadHeader,
  intField,
  makeOLH,
  opt,
  seedField,
  take,
  type DecodedHHReport,
  type HeavyHitters,
  type HHPayload,
  type Options,
} from "./protocols.js";

/** the screen's hash family (bucket vectors and inner products over Z_p^d) */
export const LINEAR_HASH = "lin-zp-v1";
/** XORed into the key before SplitMix64 picks the bucket (ASCII "LINHASH1") */
export const BUCKET_SALT = 0x4c494e4841534831n;
/** the primes the screen may use */
export const SCREEN_PRIMES: readonly number[] = Object.freeze([2, 3, 5, 7, 11, 13]);
/** the largest screen (p^d buckets) */
export const MAX_BUCKETS = 2 ** 22;
/** the default screen holds p^d ≤ 2^21 buckets */
export const DEFAULT_BUCKETS = 2 ** 21;
export const SCREEN = 1;
export const TEST = 2;
const OPTIONS = ["epsilon", "k", "domain", "g", "screen", "alpha"];
const FIELDS = ["v", "m", "l", "s", "y"];
const SCREEN_FIELDS = ["d", "hash", "p"];

/** The largest d with p^d within `buckets`: floor(log(buckets)/log(p) + 1e-9), as Python. */
function digitsWithin(p: number, buckets: number): number {
  return Math.floor(log(buckets) / log(p) + 1e-9);
}

/** (p, d) of the default screen: the largest of 2, 3, 5, 7, 11 at most e^min(ε, 10) + 1
 * (OLH's optimal g), and the largest d with p^d ≤ 2^21. */
export function defaultScreen(epsilon: number): [number, number] {
  const target = exp(Math.min(epsilon, 10.0)) + 1;
  const fit = SCREEN_PRIMES.slice(0, -1).filter((q) => q <= target);
  const p = fit.length ? Math.max(...fit) : 2;
  return [p, digitsWithin(p, DEFAULT_BUCKETS)];
}

/** The screen's (p, d) from its option (null: the default of ε), refused as Python refuses it. */
export function checkScreen(screen: unknown, epsilon: number): [number, number] {
  if (screen === null || screen === undefined) return defaultScreen(epsilon);
  if (typeof screen !== "object" || Array.isArray(screen)) throw new ConfigError("screen must be an object {'hash', 'p', 'd'}");
  const s = screen as Record<string, unknown>;
  const has = (key: string) => Object.prototype.hasOwnProperty.call(s, key);
  const unknown = Object.keys(s)
    .filter((key) => !SCREEN_FIELDS.includes(key))
    .sort();
  if (unknown.length) {
    throw new ConfigError(`unknown screen fields [${unknown.map(pyStrRepr).join(", ")}]; allowed: [${SCREEN_FIELDS.map(pyStrRepr).join(", ")}]`);
  }
  if (has("hash") && s.hash !== LINEAR_HASH) throw new ConfigError(`screen.hash must be ${pyStrRepr(LINEAR_HASH)}, got ${pyRepr(s.hash)}`);
  const p = checkInt(has("p") ? s.p : defaultScreen(epsilon)[0], "screen.p", 2, 13);
  if (!SCREEN_PRIMES.includes(p)) throw new ConfigError(`screen.p must be one of [${SCREEN_PRIMES.join(", ")}], got ${p}`);
  const d = checkInt(has("d") ? s.d : digitsWithin(p, DEFAULT_BUCKETS), "screen.d", 2, digitsWithin(p, MAX_BUCKETS));
  return [p, d];
}

/** The bucket vector of a 32-bit key as a flat index in [1, p^d) (exact 64-bit arithmetic). */
export function bucketOf(key: number | bigint, p: number, d: number): number {
  const h = splitmix64((BigInt(key) ^ BUCKET_SALT) & MASK64);
  return 1 + Number(h % BigInt(p ** d - 1));
}

/** ⟨s, b(key)⟩ mod p for a screen seed s (a flat index, its d base-p digits; digit 0 most
 * significant): the value a screen report perturbs. */
export function linearHash(seed: number | bigint, key: number | bigint, p: number, d: number): number {
  let s = BigInt(seed);
  if (s < 0n) throw new RangeError(`seed must be non-negative, got ${s}`);
  const P = BigInt(p);
  let b = bucketOf(key, p, d);
  let total = 0;
  for (let i = 0; i < d; i++) {
    total += Number(s % P) * (b % p);
    s /= P;
    b = Math.floor(b / p);
  }
  return total % p;
}

/** Known-candidate heavy hitters: a linear-hash screen group and an OLH test group. */
export class KnownCandidates implements HeavyHitters {
  readonly name = "known" as const;
  readonly mechanism = "known" as const;
  readonly groups = 2;
  readonly epsilon: number;
  readonly k: number;
  readonly domain: Domain;
  readonly olh: OLH;
  readonly alpha: number;
  /** the screen's prime p and dimension d (p^d buckets) */
  readonly p: number;
  readonly d: number;
  readonly buckets: number;
  /** probability that a screen report keeps ⟨s, b⟩ */
  readonly screenPStar: number;
  private readonly keep: Threshold;

  /** Options as the Python SDK's: `epsilon`, `k` (1..4096), `domain`, `g`, `screen`
   * (`{hash, p, d}`), `alpha`. */
  constructor(options: Options) {
    take(options, OPTIONS, ["epsilon", "k", "domain"], "known");
    this.olh = makeOLH(opt(options, "epsilon"), opt(options, "g"));
    this.epsilon = this.olh.epsilon;
    this.k = checkInt(opt(options, "k"), "k", 1, 4096);
    this.domain = asDomain(opt(options, "domain"));
    this.alpha = checkAlpha(opt(options, "alpha", 0.05));
    [this.p, this.d] = checkScreen(opt(options, "screen"), this.epsilon);
    this.buckets = this.p ** this.d;
    this.screenPStar = grrProbabilities(this.epsilon, this.p)[0];
    this.keep = Threshold.of(this.screenPStar);
  }

  /** OLH hash range of the test group. */
  get g(): number {
    return this.olh.g;
  }

  /** Values y lie below this in either group (then per group: p, g). */
  get yBound(): number {
    return Math.max(this.p, this.g);
  }

  get parties(): null {
    return null;
  }

  get config(): Record<string, unknown> {
    return {
      protocol: this.name,
      version: WIRE_VERSION,
      epsilon: this.epsilon,
      k: this.k,
      domain: this.domain.config as DomainConfig,
      fo: { mechanism: "olh", g: this.olh.g, hash: HASH_FAMILY },
      key: KEY_FAMILY,
      screen: { hash: LINEAR_HASH, p: this.p, d: this.d },
      alpha: this.alpha,
    };
  }

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
  get privacy(): { epsilon: number; neighbouring: "record"; mechanism: "known" } {
    return { epsilon: this.epsilon, neighbouring: "record", mechanism: this.name };
  }

  /** The item's full-item 32-bit key (`hh-key-v1`, as PEM's final group). */
  keyOf(item: unknown): number {
    return prefixKey(this.domain.encode(item), this.domain.bits);
  }

  /** One report of `item`: the group, then the group's report (see the module comment). */
  perturb(item: unknown, party: unknown = null, source: RandomSource = cryptoSource): HHPayload {
    if (party !== undefined && party !== null) throw new RangeError("known is not federated; do not pass a party");
    const key = this.keyOf(item); // refuse a bad item before drawing anything
    const level = 1 + uniformInt(2, source);
    if (level === SCREEN) {
      const seed = uniformInt(this.buckets, source);
      const x = linearHash(seed, key, this.p, this.d);
      let y = x;
      if (!bernoulli(this.keep, source)) {
        const u = uniformInt(this.p - 1, source);
        y = u + (u >= x ? 1 : 0);
      }
      return { v: WIRE_VERSION, m: this.mechanism, l: SCREEN, s: seedHex(BigInt(seed)), y };
    }
    const inner = this.olh.perturbKey(key, source);
    return { v: WIRE_VERSION, m: this.mechanism, l: TEST, s: inner.s, y: inner.y };
  }

  /** Parse one payload as the Python server does; throws ReportDecodeError with its reason. */
  decode(payload: unknown, index: number | null = null): DecodedHHReport {
    const p = checkPayloadHeader(payload, FIELDS, this.mechanism, index);
    const out: DecodedHHReport = {
      l: intField(p, "l", 1, this.groups + 1, index),
      s: seedField(p, "s", index),
      y: intField(p, "y", 0, this.yBound, index),
    };
    if (out.l === SCREEN && (out.s >= BigInt(this.buckets) || out.y >= this.p)) {
      throw new ReportDecodeError("out_of_range", `a screen report (l = 1) needs s < ${this.buckets} (p^d) and y < ${this.p}`, index);
    }
    if (out.l === TEST && out.y >= this.g) throw new ReportDecodeError("out_of_range", `a test report (l = 2) needs y < ${this.g}`, index);
    return out;
  }

  decodeAll(payloads: readonly unknown[]): DecodedHHReport[] {
    return payloads.map((payload, i) => this.decode(payload, i));
  }

  validatePayload(payload: unknown): void {
    this.decode(payload, 0);
  }
}
