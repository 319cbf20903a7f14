/**
 * Automatic choice of the lowest-variance frequency oracle for (epsilon, k);
 * client_sdk/mechanisms/auto.py.
 *
 * The choice depends only on public parameters, so client and server make it
 * independently and identically (docs/algorithms.md). Candidates GRR, OUE, OLH, HR are compared
 * by Var*; ties go to the earlier candidate (a strictly smaller variance, beyond a relative
 * 1e-12, is needed to displace it). An optional `maxReportBits` drops larger reports.
 */

import { ConfigError } from "../errors.js";
import { pyRepr } from "../messages.js";
import type { FrequencyOracle } from "./base.js";
import { GRR } from "./grr.js";
import { Hadamard } from "./hadamard.js";
import { OLH } from "./olh.js";
import { OUE, UnaryEncoding } from "./unary.js";

const CANDIDATES: ReadonlyArray<{ maxDomainSize: number; build: (epsilon: unknown, k: unknown) => FrequencyOracle }> = [
  { maxDomainSize: GRR.maxDomainSize, build: (e, k) => new GRR(e, k) },
  { maxDomainSize: UnaryEncoding.maxDomainSize, build: (e, k) => new OUE(e, k) },
  { maxDomainSize: OLH.maxDomainSize, build: (e, k) => new OLH(e, k) },
  { maxDomainSize: Hadamard.maxDomainSize, build: (e, k) => new Hadamard(e, k) },
];

/** The candidate with the smallest Var* that fits the report-size limit. */
export function choose(epsilon: unknown, domainSize: unknown, maxReportBits?: number | null): FrequencyOracle {
  let best: FrequencyOracle | null = null;
  for (const candidate of CANDIDATES) {
    if (typeof domainSize === "number" && domainSize > candidate.maxDomainSize) continue;
    const mechanism = candidate.build(epsilon, domainSize);
    if (maxReportBits !== undefined && maxReportBits !== null && mechanism.reportBits > maxReportBits) continue;
    if (best === null || mechanism.varianceApproxPerUser < best.varianceApproxPerUser * (1 - 1e-12)) {
      best = mechanism;
    }
  }
  if (best === null) {
    throw new ConfigError(
      `no frequency oracle fits a report of at most ${pyRepr(maxReportBits)} bits for k=${pyRepr(domainSize)}`,
    );
  }
  return best;
}
