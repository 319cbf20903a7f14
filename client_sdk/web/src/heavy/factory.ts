/**
 * Heavy-hitter clients by name and from a served config, as client_sdk/heavy_hitters
 * (`create`, `from_config`): the prefix-tree protocols (protocols.ts) and known-candidate
 * mode (known.ts), with the Python SDK's options and refusals.
 */

import { canonicalJson } from "../canonical.js";
import { ConfigError } from "../errors.js";
import { pyRepr } from "../messages.js";
import { HASH_FAMILY } from "../mechanisms/olh.js";
import { KnownCandidates } from "./known.js";
import { HeavyHitterClient, HH_PROTOCOLS, PEM, TAP, TAPS, TreeHist, type HeavyHitters, type HHProtocolName, type Options } from "./protocols.js";

/** config fields that are derived (checked on rebuild, not passed to the constructor) */
const DERIVED = ["protocol", "version", "fo", "key", "levels", "item_fo"];

/** Names accepted by {@link createHeavyHitters}. */
export function availableHeavyHitters(): HHProtocolName[] {
  return [...HH_PROTOCOLS];
}

/**
 * Build a heavy-hitter client by name with the Python SDK's options (snake_case):
 * `epsilon`, `k`, `domain`, `eta`, `g`, ...; TAP/TAPS also `parties`; `known` also `screen`.
 */
export function createHeavyHitters(protocol: "known", options: Options): KnownCandidates;
export function createHeavyHitters(protocol: "pem" | "tap" | "taps" | "treehist", options: Options): HeavyHitterClient;
export function createHeavyHitters(protocol: string, options: Options): HeavyHitters;
export function createHeavyHitters(protocol: string, options: Options): HeavyHitters {
  const key = typeof protocol === "string" ? protocol.toLowerCase() : null;
  switch (key) {
    case "pem":
      return new PEM(options);
    case "tap":
      return new TAP(options);
    case "taps":
      return new TAPS(options);
    case "treehist":
      return new TreeHist(options);
    case "known":
      return new KnownCandidates(options);
    default:
      throw new ConfigError(`unknown heavy-hitter protocol ${pyRepr(protocol)}; available: ${HH_PROTOCOLS.join(", ")}`);
  }
}

/** Rebuild a client from its canonical config; derived fields (levels, key, fo) must agree. */
export function heavyHittersFromConfig(config: Record<string, unknown>): HeavyHitters {
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new ConfigError("config must be a mapping");
  const has = (key: string) => Object.prototype.hasOwnProperty.call(config, key);
  const version = has("version") ? config.version : 1;
  if (version !== 1) throw new ConfigError(`unknown heavy-hitter config version ${pyRepr(version)}`);
  const options: Options = {};
  for (const [k, v] of Object.entries(config)) if (!DERIVED.includes(k)) options[k] = v;
  const fo = config.fo;
  if (fo !== null && typeof fo === "object" && !Array.isArray(fo)) {
    const f = fo as Record<string, unknown>;
    const mechanism = Object.prototype.hasOwnProperty.call(f, "mechanism") ? f.mechanism : "olh";
    const hash = Object.prototype.hasOwnProperty.call(f, "hash") ? f.hash : HASH_FAMILY;
    if (mechanism !== "olh" || hash !== HASH_FAMILY) throw new ConfigError(`unsupported frequency oracle ${canonicalJson(f)}`);
    if (Object.prototype.hasOwnProperty.call(f, "g")) options.g = f.g;
  }
  if (!has("protocol")) throw new ConfigError("config lacks required field 'protocol'");
  // a PEM/TAP config written before the final estimation round existed
  if (["pem", "tap", "taps"].includes(String(config.protocol).toLowerCase()) && !has("final_round")) options.final_round = false;
  const protocol = createHeavyHitters(config.protocol as string, options);
  const built = protocol.config;
  for (const key of ["levels", "key", "fo"]) {
    if (has(key) && canonicalJson(config[key]) !== canonicalJson(built[key])) {
      throw new ConfigError(`config field '${key}' is ${canonicalJson(config[key])} but the parameters give ${canonicalJson(built[key])}`);
    }
  }
  return protocol;
}
