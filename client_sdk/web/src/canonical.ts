/**
 * Canonical JSON and its hash: how a configuration is identified on both sides.
 *
 * Canonical JSON is RFC 8785, the JSON Canonicalization Scheme (JCS): keys sorted by UTF-16
 * code units, no whitespace, strings and numbers as ECMAScript's `JSON.stringify` writes
 * them; the hash is `sha256:<hex>` of its UTF-8 bytes (client_sdk/canonical.py, docs/wire.md).
 * Written by the npm package `canonicalize` (bundled into the build), so a config parsed with
 * plain `JSON.parse` hashes exactly as the server hashed it — no number typing is involved.
 * NaN, infinities, lone surrogates and non-JSON values are refused (a `CanonicalJSONError`).
 */

import canonicalize from "canonicalize";
import { sha256, toHex } from "./sha256.js";

/** The value has no RFC 8785 form. */
export class CanonicalJSONError extends TypeError {
  override name = "CanonicalJSONError";
}

/** The RFC 8785 (JCS) text of a JSON value. */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new CanonicalJSONError(`not canonicalisable as RFC 8785 JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw new CanonicalJSONError(`not canonicalisable as RFC 8785 JSON: ${typeof value}`);
  return text;
}

/** `sha256:<hex>` of the canonical JSON (synchronous, pure JavaScript). */
export function configHashSync(config: unknown): string {
  return `sha256:${toHex(sha256(new TextEncoder().encode(canonicalJson(config))))}`;
}

/** `sha256:<hex>` of the canonical JSON, with Web Crypto where available. */
export async function configHash(config: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(config));
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle && typeof subtle.digest === "function") {
    try {
      return `sha256:${toHex(new Uint8Array(await subtle.digest("SHA-256", bytes)))}`;
    } catch {
      // insecure contexts may refuse: fall through to the JavaScript implementation
    }
  }
  return `sha256:${toHex(sha256(bytes))}`;
}
