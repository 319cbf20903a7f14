/**
 * Frequency oracles by name: `create(name, {epsilon, domainSize})`, `fromConfig(config)`
 * and `available()`, as client_sdk/mechanisms/__init__.py.
 */

import { ConfigError } from "../errors.js";
import { pyRepr, pyStrRepr } from "../messages.js";
import { choose } from "./auto.js";
import type { FrequencyOracle } from "./base.js";
import { GRR } from "./grr.js";
import { Hadamard } from "./hadamard.js";
import { BLH, HASH_FAMILY, OLH } from "./olh.js";
import { OUE, SUE } from "./unary.js";

export interface CreateOptions {
  epsilon: number;
  domainSize: number;
  /** hash range of OLH (default round(e^ε) + 1); BLH accepts only 2 */
  g?: number | null;
  /** for "auto": drop candidates whose reports are larger */
  maxReportBits?: number | null;
}

type Builder = (epsilon: unknown, domainSize: unknown, options: Record<string, unknown>) => FrequencyOracle;

function noOptions(name: string, options: Record<string, unknown>): void {
  const unknown = Object.keys(options);
  if (unknown.length) throw new ConfigError(`bad options for ${name}: unexpected option ${pyStrRepr(unknown[0])}`);
}

function gOnly(name: string, options: Record<string, unknown>): unknown {
  const { g, ...rest } = options;
  noOptions(name, rest);
  return g;
}

const REGISTRY: Record<string, Builder> = {
  grr: (e, k, o) => (noOptions("grr", o), new GRR(e, k)),
  sue: (e, k, o) => (noOptions("sue", o), new SUE(e, k)),
  oue: (e, k, o) => (noOptions("oue", o), new OUE(e, k)),
  olh: (e, k, o) => new OLH(e, k, gOnly("olh", o)),
  blh: (e, k, o) => new BLH(e, k, gOnly("blh", o)),
  hr: (e, k, o) => (noOptions("hr", o), new Hadamard(e, k)),
};

/** Names accepted by {@link create} ("auto" included). */
export function available(): string[] {
  return [...Object.keys(REGISTRY), "auto"];
}

function build(name: unknown, epsilon: unknown, domainSize: unknown, options: Record<string, unknown>): FrequencyOracle {
  if (typeof name !== "string") throw new ConfigError(`mechanism name must be a string, got ${pyRepr(name)}`);
  const key = name.toLowerCase();
  if (key === "auto") {
    const unknown = Object.keys(options).filter((k) => k !== "max_report_bits");
    if (unknown.length) throw new ConfigError(`bad options for auto: [${unknown.sort().map(pyStrRepr).join(", ")}]`);
    return choose(epsilon, domainSize, options.max_report_bits as number | null | undefined);
  }
  if (!Object.prototype.hasOwnProperty.call(REGISTRY, key)) {
    throw new ConfigError(`unknown mechanism ${pyRepr(name)}; available: ${available().join(", ")}`);
  }
  return REGISTRY[key](epsilon, domainSize, options);
}

/** Build a frequency oracle by name; "auto" picks the lowest-variance one. */
export function create(name: string, options: CreateOptions): FrequencyOracle {
  const { epsilon, domainSize, g, maxReportBits, ...rest } = options;
  const extra: Record<string, unknown> = { ...rest };
  if (g !== undefined) extra.g = g;
  if (maxReportBits !== undefined) extra.max_report_bits = maxReportBits;
  return build(name, epsilon, domainSize, extra);
}

/** Rebuild a mechanism from its canonical config (the inverse of `m.config`). */
export function fromConfig(config: Record<string, unknown>): FrequencyOracle {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`config must be an object, got ${pyRepr(config)}`);
  }
  const has = (key: string) => Object.prototype.hasOwnProperty.call(config, key);
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!["mechanism", "epsilon", "domain_size", "hash"].includes(k)) options[k] = v;
  }
  if (has("hash") && config.hash !== HASH_FAMILY) throw new ConfigError(`unknown hash family ${pyRepr(config.hash)}`);
  for (const field of ["mechanism", "epsilon", "domain_size"]) {
    if (!has(field)) throw new ConfigError(`config lacks required field '${field}'`);
  }
  return build(config.mechanism, config.epsilon, config.domain_size, options);
}
