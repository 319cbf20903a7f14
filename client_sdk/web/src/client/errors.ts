/** Errors of the web runtime (mirroring client_sdk/client/errors.py). Every message says what happened. */

import { ConfigError, LDPError } from "../errors.js";

/** Base class of the runtime's own errors. */
export class ClientError extends LDPError {}

/** The client was closed; open a new one. */
export class ClientClosedError extends ClientError {}

/** The collection's public config is not cached and could not be fetched: nothing was perturbed. */
export class ConfigUnavailableError extends ClientError {}

/** The server answered with an error status; `problem` is its problem+json body (if any). */
export class HTTPError extends ClientError {
  constructor(
    readonly status: number,
    detail: string,
    readonly problem: Record<string, unknown> = {},
  ) {
    super(`HTTP ${status}: ${detail}`);
  }
}

/** The config the server sent does not hash to the config_hash it claims: refused, not used. */
export class ConfigHashMismatchError extends ConfigError {}

/** The collection's kind or config cannot be run by this SDK (or would under-charge the budget). */
export class UnsupportedCollectionError extends ConfigError {}

/** A device-side budget refusal: nothing was perturbed, stored or queued. */
export class DeviceBudgetExceededError extends LDPError {
  constructor(
    readonly collectionId: string,
    /** "lifetime" or "window" */
    readonly scope: "lifetime" | "window",
    readonly spent: number,
    readonly cap: number,
    /** epsilon this report would have cost */
    readonly charge: number,
    readonly units: number,
    readonly maxUnits: number,
    readonly window: number | null = null,
  ) {
    const where = scope === "lifetime" ? `lifetime cap ${fmt(cap)}` : `cap ${fmt(cap)} for accounting window ${window}`;
    super(
      `collection '${collectionId}': this report would cost epsilon ${fmt(charge)}, but this device has already spent ` +
        `${fmt(spent)} of its ${where} (${units} of ${maxUnits} charges); nothing was perturbed, stored or sent` +
        (scope === "lifetime" ? "" : "; the window cap resets in a later window"),
    );
  }
}

/** Python's `:g` format, closely enough for messages. */
function fmt(x: number): string {
  return Number(x.toPrecision(6)).toString();
}
