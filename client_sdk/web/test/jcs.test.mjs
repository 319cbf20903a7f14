// Config hashes are RFC 8785 (JCS): the SDK's canonical JSON (npm `canonicalize`, bundled)
// equals an independent JCS implementation (npm `json-canonicalize`) on every shared vector
// that carries a config hash, and the hash is SHA-256 of those bytes. Python runs the same
// check against the RFC's reference implementation (tests/unit/test_canonical_jcs.py).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { canonicalize as reference } from "json-canonicalize";
import * as LDP from "../dist/index.js";

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "tests", "vectors");

function* hashed(node, where) {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* hashed(node[i], `${where}/${i}`);
  } else if (node !== null && typeof node === "object") {
    if ("config_hash" in node && !("error" in node)) {
      const document = "config" in node ? node.config : "text" in node ? JSON.parse(node.text) : node.value;
      yield { where, document, hash: node.config_hash, canonical: node.canonical };
    }
    for (const [key, value] of Object.entries(node)) yield* hashed(value, `${where}/${key}`);
  }
}

test("config hashes equal an independent RFC 8785 implementation's on every vector", () => {
  const files = readdirSync(VECTORS).filter((f) => f.endsWith(".json"));
  const seen = new Set();
  let count = 0;
  for (const file of files) {
    for (const { where, document, hash, canonical } of hashed(JSON.parse(readFileSync(join(VECTORS, file), "utf8")), file)) {
      const expected = reference(document);
      assert.equal(LDP.canonicalJson(document), expected, where);
      if (canonical !== undefined) assert.equal(canonical, expected, where);
      const digest = `sha256:${createHash("sha256").update(expected, "utf8").digest("hex")}`;
      assert.equal(LDP.configHashSync(document), digest, where);
      assert.equal(hash, digest, where);
      seen.add(file);
      count++;
    }
  }
  for (const file of ["params.json", "config.json", "canonical.json", "runtime.json", "multidim.json", "heavy_hitters.json"]) {
    assert.ok(seen.has(file), `${file} has no hashed config`);
  }
  assert.ok(count > 700, `only ${count} hashed documents`);
});
