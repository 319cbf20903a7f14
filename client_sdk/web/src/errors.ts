/** Exceptions of the SDK, mirroring client_sdk/errors.py. Every message says what was wrong. */

export class LDPError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A mechanism configuration the math cannot support (epsilon <= 0, k < 2, ...). */
export class ConfigError extends LDPError {}

/** The stable, machine-readable reasons a report payload is refused (same codes as Python). */
export type DecodeReason =
  | "not_an_object"
  | "bad_version"
  | "wrong_mechanism"
  | "bad_type"
  | "out_of_range"
  | "bad_encoding"
  | "bad_length"
  // heavy-hitter decoders (client_sdk/heavy_hitters/_common.py)
  | "missing_field"
  | "unknown_field"
  | "not_a_list";

/** A report payload that is malformed, of another mechanism or out of range. */
export class ReportDecodeError extends LDPError {
  readonly reason: DecodeReason;
  readonly detail: string;
  readonly index: number | null;

  constructor(reason: DecodeReason, detail: string, index: number | null = null) {
    super(`${index !== null ? `report ${index}: ` : ""}${detail} (${reason})`);
    this.reason = reason;
    this.detail = detail;
    this.index = index;
  }
}
