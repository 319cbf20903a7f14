/**
 * A collection's public config on the device: hash check, epochs, budget units, the
 * protocol that perturbs — the rules of client_sdk/public_config.py and client_sdk/client/config.py
 * (and so of the server's ldpserver/services/ingest.py), byte for byte where numbers are involved:
 *
 * * the config version is checked first (it says how the hash is computed: version 2 is
 *   RFC 8785 canonical JSON of the served config, canonical.ts); another version is refused;
 * * the config is hashed as parsed by `JSON.parse` (JCS needs no number typing), and a hash
 *   that differs from `config_hash` is refused;
 * * the mechanism config must be read by this SDK exactly as the server wrote it (its
 *   canonical JSON rebuilt from the protocol object must equal the served one) — a config
 *   this SDK would interpret differently is refused rather than reported under;
 * * `epoch = floor((now − epoch.start) / epoch.seconds)` in whole microseconds (BigInt);
 * * a charge is counted in integer units of `unit_epsilon` (the per-report epsilon); a cap
 *   allows `floor(cap / unit · (1 + 1e-9))` units; the window of an epoch is
 *   `epoch // budget.window_epochs`;
 * * the unit may never be below the protocol's own loss (`privacy.epsilon`).
 */

import { canonicalJson, configHash } from "../canonical.js";
import { ConfigError } from "../errors.js";
import { heavyHittersFromConfig } from "../heavy/factory.js";
import type { HeavyHitters } from "../heavy/protocols.js";
import type { FrequencyOracle } from "../mechanisms/base.js";
import { fromConfig } from "../mechanisms/index.js";
import { multidimFromConfig, type RSFD } from "../multidim/rsfd.js";
import { ConfigHashMismatchError, UnsupportedCollectionError } from "./errors.js";

export const UNIT_SLACK = 1e-9;
export const PRIVACY_TOLERANCE = 1e-9;
/** version 2: hashed as RFC 8785 (JCS) canonical JSON; version 1 (Python json.dumps text) is refused */
export const CONFIG_VERSION = 2;
export type CollectionKind = "frequency" | "multidim" | "heavy_hitters";
export const SUPPORTED_KINDS: readonly CollectionKind[] = ["frequency", "multidim", "heavy_hitters"];

/** How many charges of `unit` fit under `cap` (null: no cap) — the server's rule. */
export function maxUnits(cap: number | null, unit: number): number | null {
  if (cap === null) return null;
  return Math.floor((cap / unit) * (1 + UNIT_SLACK));
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/;

/** Microseconds since the Unix epoch of an ISO 8601 timestamp with a time zone. */
export function parseTimestampMicros(text: unknown): bigint {
  if (typeof text !== "string") throw new UnsupportedCollectionError(`epoch.start must be a timestamp string, got ${String(text)}`);
  const m = TIMESTAMP.exec(text);
  if (m === null) throw new UnsupportedCollectionError(`epoch.start '${text}' is not an ISO 8601 timestamp with a time zone`);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (!Number.isFinite(ms)) throw new UnsupportedCollectionError(`epoch.start '${text}' is not a valid date`);
  let us = BigInt(ms) * 1000n + BigInt((frac ?? "").padEnd(6, "0") || "0");
  if (zone !== "Z") {
    const sign = zone[0] === "-" ? -1n : 1n;
    const offset = BigInt(Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60) * 1_000_000n;
    us -= sign * offset;
  }
  return us;
}

/** floor((now − start) / seconds) in whole microseconds, as the server's timedelta floor division. */
export function epochOf(nowMs: number, startUs: bigint, seconds: number): number {
  const us = BigInt(Math.round(nowMs * 1000));
  const span = BigInt(seconds) * 1_000_000n;
  const elapsed = us - startUs;
  let q = elapsed / span; // truncates toward zero
  if (elapsed % span !== 0n && elapsed < 0n) q -= 1n; // floor
  return Number(q);
}

export interface BudgetPolicy {
  capLifetime: number;
  capPerWindow: number | null;
  windowEpochs: number;
  memoized: boolean;
  epsilonPerMemo: number | null;
  /** epsilon of one charge unit */
  unitEpsilon: number;
  maxUnitsLifetime: number;
  maxUnitsWindow: number | null;
  unit: "report" | "memo";
}

/** What turns a value into a wire payload. */
export type Protocol = FrequencyOracle | RSFD | HeavyHitters;

function buildProtocol(kind: CollectionKind, mechanism: Record<string, unknown>): { protocol: Protocol; canonical: string; charge: number } {
  if (kind === "frequency") {
    const m = fromConfig(mechanism);
    return { protocol: m, canonical: canonicalJson(m.config), charge: m.epsilon };
  }
  if (kind === "multidim") {
    const m = multidimFromConfig(mechanism);
    return { protocol: m, canonical: canonicalJson(m.config), charge: m.privacy.epsilon };
  }
  const h = heavyHittersFromConfig(mechanism);
  return { protocol: h, canonical: canonicalJson(h.config), charge: h.privacy.epsilon };
}

/** Refuses a config of another version, naming it (the message of client_sdk/public_config.py). */
function checkVersion(collectionId: string, config: Record<string, unknown>): void {
  const version = config.version;
  if (version === CONFIG_VERSION) return;
  const hint =
    version === 1
      ? "; version 1 configs were hashed as Python json.dumps text, version 2 as RFC 8785 canonical JSON: recreate the collection on a current server"
      : "";
  const shown = typeof version === "string" ? `'${version}'` : version === undefined || version === null ? "None" : String(version);
  throw new UnsupportedCollectionError(
    `collection '${collectionId}': config version ${shown} is not supported (this SDK reads ${CONFIG_VERSION})${hint}`,
  );
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A verified public config, compiled for the device. */
export class CollectionConfig {
  private constructor(
    readonly collectionId: string,
    readonly kind: CollectionKind,
    /** the config as plain JavaScript values */
    readonly config: Record<string, unknown>,
    /** canonical JSON of the config (what its hash is over) */
    readonly canonical: string,
    readonly configHash: string,
    readonly epochSeconds: number,
    readonly epochStartUs: bigint,
    readonly grace: number,
    readonly epsilon: number,
    readonly neighbouring: string,
    readonly budget: BudgetPolicy,
    readonly protocol: Protocol,
  ) {}

  /** From the JSON text of `GET /v1/collections/{id}`: refuses a hash that does not match. */
  static async fromServerText(collectionId: string, text: string): Promise<CollectionConfig> {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new UnsupportedCollectionError(`collection '${collectionId}': the server's answer is not JSON (${(error as Error).message})`);
    }
    if (!isObject(body)) throw new UnsupportedCollectionError(`collection '${collectionId}': the server's answer is not an object`);
    if (body.id !== undefined && body.id !== null && body.id !== collectionId) {
      throw new UnsupportedCollectionError(`asked for collection '${collectionId}', the server answered for '${String(body.id)}'`);
    }
    const config = body.config;
    const claimed = body.config_hash;
    if (!isObject(config) || typeof claimed !== "string") {
      throw new UnsupportedCollectionError(`collection '${collectionId}': the answer lacks config / config_hash`);
    }
    return CollectionConfig.build(collectionId, config, claimed);
  }

  /** From a parsed config and the hash it must have. */
  static async build(collectionId: string, config: Record<string, unknown>, claimedHash: string): Promise<CollectionConfig> {
    // the version says how the hash is computed: checked first, for a clear error
    checkVersion(collectionId, config);
    let actual: string;
    let canonical: string;
    try {
      canonical = canonicalJson(config);
      actual = await configHash(config);
    } catch (error) {
      throw new ConfigHashMismatchError(`collection '${collectionId}': config is not canonical JSON (${(error as Error).message})`);
    }
    if (actual !== claimedHash) {
      throw new ConfigHashMismatchError(
        `collection '${collectionId}': the config hashes to ${actual}, but the server claims ${claimedHash}; ` +
          "refusing to report under a config whose hash does not match",
      );
    }
    return CollectionConfig.compile(collectionId, config, canonical, actual);
  }

  /** From canonical JSON text cached on the device (re-verified). */
  static fromCache(collectionId: string, canonical: string, hash: string): Promise<CollectionConfig> {
    return CollectionConfig.build(collectionId, JSON.parse(canonical) as Record<string, unknown>, hash);
  }

  private static compile(collectionId: string, config: Record<string, unknown>, canonical: string, digest: string): CollectionConfig {
    const fail = (detail: string) => new UnsupportedCollectionError(`collection '${collectionId}': ${detail}`);
    checkVersion(collectionId, config);
    const kind = config.kind;
    if (kind === "longitudinal") throw fail("longitudinal (memoized) collections are not supported by the web SDK; use the Python SDK");
    if (!(SUPPORTED_KINDS as readonly unknown[]).includes(kind)) {
      throw fail(`collection kind ${JSON.stringify(kind)} is not supported; known: ${SUPPORTED_KINDS.join(", ")}`);
    }
    const epoch = config.epoch;
    const budget = config.budget;
    const mechanism = config.mechanism;
    if (!isObject(epoch) || !isObject(budget) || !isObject(mechanism)) {
      throw fail("config is missing or has a bad field (epoch, budget or mechanism)");
    }
    const num = (x: unknown, what: string, integer = false): number => {
      if (typeof x !== "number" || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw fail(`config has a bad field ${what}: ${String(x)}`);
      return x;
    };
    const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k) && o[k] !== null;
    const seconds = num(epoch.seconds, "epoch.seconds", true);
    const startUs = parseTimestampMicros(epoch.start);
    const grace = has(epoch, "grace") ? num(epoch.grace, "epoch.grace", true) : 1;
    const epsilon = num(config.epsilon, "epsilon");
    const memoized = Boolean(budget.memoized ?? false);
    const perMemo = has(budget, "epsilon_per_memo") ? num(budget.epsilon_per_memo, "budget.epsilon_per_memo") : null;
    const capLifetime = num(budget.cap_lifetime, "budget.cap_lifetime");
    const capWindow = has(budget, "cap_per_window") ? num(budget.cap_per_window, "budget.cap_per_window") : null;
    const windowEpochs = has(budget, "window_epochs") ? num(budget.window_epochs, "budget.window_epochs", true) : 1;
    if (seconds < 1 || windowEpochs < 1 || !(epsilon > 0)) throw fail("epoch.seconds, budget.window_epochs and epsilon must be positive");
    if (memoized) {
      throw fail("memoized collections (budget.memoized) are not supported by the web SDK yet; use the Python SDK");
    }
    const unit = epsilon;
    const policy: BudgetPolicy = {
      capLifetime,
      capPerWindow: capWindow,
      windowEpochs,
      memoized,
      epsilonPerMemo: perMemo,
      unitEpsilon: unit,
      maxUnitsLifetime: maxUnits(capLifetime, unit) || 0,
      maxUnitsWindow: maxUnits(capWindow, unit),
      unit: "report",
    };
    let built: { protocol: Protocol; canonical: string; charge: number };
    try {
      built = buildProtocol(kind as CollectionKind, mechanism);
    } catch (error) {
      if (error instanceof ConfigError) throw fail(`the SDK refuses the mechanism config: ${error.message}`);
      throw error;
    }
    const served = canonicalJson(mechanism);
    if (built.canonical !== served) {
      throw fail(
        `the web SDK reads the mechanism config as ${built.canonical}, but the server wrote ${served}; ` +
          "refusing to report under a config this SDK would interpret differently",
      );
    }
    // The device is the real guard: never charge less than the mechanism's own loss.
    if (unit < built.charge * (1 - PRIVACY_TOLERANCE)) {
      throw fail(
        `the config charges epsilon = ${unit} per report, below the mechanism's own loss ${built.charge}; ` +
          "this device refuses to under-count its budget",
      );
    }
    return new CollectionConfig(
      collectionId,
      kind as CollectionKind,
      config,
      canonical,
      digest,
      seconds,
      startUs,
      grace,
      epsilon,
      typeof config.neighbouring === "string" ? config.neighbouring : "record",
      policy,
      built.protocol,
    );
  }

  /** The epoch of a clock reading (Unix milliseconds). */
  epochAt(nowMs: number): number {
    return epochOf(nowMs, this.epochStartUs, this.epochSeconds);
  }

  /** The accounting window of an epoch (floor division). */
  windowOf(epoch: number): number {
    return Math.floor(epoch / this.budget.windowEpochs);
  }

  /** One wire payload of `value` (a value index, a tuple, or an item; `party` for TAP/TAPS). */
  perturb(value: unknown, party?: unknown): Record<string, unknown> {
    const p = this.protocol as unknown as { perturb(v: unknown): Record<string, unknown> };
    if (this.kind === "heavy_hitters") return (this.protocol as HeavyHitters).perturb(value, party ?? null) as unknown as Record<string, unknown>;
    if (party !== undefined && party !== null) throw new TypeError(`party applies to heavy_hitters collections only, not '${this.kind}'`);
    return p.perturb(value);
  }
}
