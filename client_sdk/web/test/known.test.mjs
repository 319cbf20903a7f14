// Shared vectors of known-candidate heavy hitters (tests/vectors/known.json, generated from the
// Python SDK by tests/vectors/generate_known.py), every section replayed: default screens,
// configs and hashes, refused options, bucket vectors and linear hashes (exact 64-bit
// arithmetic), whole perturbations on Python's random bytes, decoder verdicts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as LDP from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(process.env.LDP_VECTORS_DIR ?? join(here, "..", "..", "..", "tests", "vectors"));
const TEXT = readFileSync(join(VECTORS, "known.json"), "utf8");
const known = JSON.parse(TEXT);
const hex64 = (x) => x.toString(16).padStart(16, "0");
const itemOf = (item) => (item !== null && typeof item === "object" && "int" in item ? BigInt(item.int) : item);

const view = new DataView(new ArrayBuffer(8));
function ulps(a, b) {
  view.setFloat64(0, a);
  const x = view.getBigInt64(0);
  view.setFloat64(0, b);
  const d = x - view.getBigInt64(0);
  return d < 0n ? -d : d;
}

test("known: the protocol is listed and created by name, as in Python's available()", () => {
  assert.deepEqual(LDP.availableHeavyHitters(), ["pem", "treehist", "tap", "taps", "known"]);
  const h = LDP.createHeavyHitters("KNOWN", { epsilon: 2, k: 4, domain: { type: "string", max_bytes: 4 } });
  assert.ok(h instanceof LDP.KnownCandidates);
  assert.equal(h.name, "known");
  assert.equal(h.groups, 2);
  assert.equal(h.parties, null);
  assert.throws(() => h.perturb("hi", "eu"), RangeError);
  assert.throws(() => h.perturb(7), LDP.ItemEncodingError);
});

test("known: default screens (p, d) of many epsilons", () => {
  for (const [epsilon, p, d] of known.screens) assert.deepEqual(LDP.defaultScreen(epsilon), [p, d], `epsilon ${epsilon}`);
  assert.equal(known.screens.length, 12);
});

test("known: configs, hashes, g, p* and the screen of create(); from_config gives them back", () => {
  for (const c of known.configs) {
    const h = LDP.createHeavyHitters("known", c.options);
    const what = JSON.stringify(c.options);
    assert.deepEqual(h.config, c.config, what);
    assert.equal(h.canonicalConfig, c.canonical, what);
    assert.equal(h.configHashSync(), c.config_hash, what);
    assert.equal(h.g, c.g, what);
    assert.equal(h.mechanism, c.mechanism);
    assert.ok(ulps(h.olh.pStar, c.p_star) <= 1n, what);
    assert.deepEqual([h.p, h.d], [c.screen.p, c.screen.d], what);
    assert.equal(h.buckets, c.screen.p ** c.screen.d);
    assert.ok(ulps(h.screenPStar, c.screen.p_star) <= 1n, what);
    assert.equal(h.privacy.epsilon, c.epsilon_charged);
    const again = LDP.heavyHittersFromConfig(JSON.parse(JSON.stringify(c.config)));
    assert.ok(again instanceof LDP.KnownCandidates);
    assert.equal(again.configHashSync(), c.config_hash, what);
  }
  assert.equal(known.configs.length, 8);
});

/**
 * Names of the options that hold an integral float (`2.0`) in an error case, read from the
 * file's text (one case per line): JSON.parse turns 2.0 into 2, so where such a float is an
 * option Python requires to be an integer (`screen.p`), this SDK cannot refuse it.
 */
function integralFloatKeys() {
  const block = TEXT.slice(TEXT.indexOf('\n "errors": [\n') + 1);
  const lines = block.slice(block.indexOf("\n") + 1, block.indexOf("\n ]")).split("\n");
  return lines.map((line) => [...line.matchAll(/"([^"]+)": -?\d+\.0(?=[,}\]])/g)].map((m) => m[1]));
}
const REAL_OPTIONS = ["epsilon", "alpha"]; // numbers in both SDKs: 2.0 and 2 are the same value

test("known: options the Python SDK refuses are refused (integral floats honoured)", () => {
  const floats = integralFloatKeys();
  assert.equal(floats.length, known.errors.length);
  let checked = 0;
  const unknowable = [];
  known.errors.forEach((e, i) => {
    const what = JSON.stringify(e.options);
    assert.equal(e.js_integral_float, floats[i].length > 0, what);
    if (floats[i].every((key) => REAL_OPTIONS.includes(key))) {
      assert.throws(() => LDP.createHeavyHitters("known", e.options), LDP.ConfigError, what);
      checked += 1;
    } else {
      unknowable.push(what);
    }
  });
  // only {"screen": {"p": 7.0}}: Python refuses a float p; here it is the integer 7
  assert.equal(checked, known.errors.length - 1, unknowable.join("; "));
  assert.deepEqual(LDP.createHeavyHitters("known", JSON.parse(unknowable[0])).config.screen, { hash: "lin-zp-v1", p: 7, d: 7 });
  assert.ok(checked >= 15);
});

test("known: bucket vectors of lin-zp-v1 (splitmix64 of the salted key, exact 64-bit arithmetic)", () => {
  for (const [key, p, d, bucket] of known.buckets) {
    const k = BigInt(`0x${key}`);
    assert.equal(LDP.bucketOf(k, p, d), bucket, `${key} ${p}^${d}`);
    assert.equal(LDP.bucketOf(Number(k), p, d), bucket, `${key} ${p}^${d} (number)`);
  }
  assert.equal(known.buckets.length, 224);
});

test("known: linear hashes <s, b(key)> mod p over Z_p^d", () => {
  for (const [seed, key, p, d, value] of known.linear_hash) {
    assert.equal(LDP.linearHash(seed, BigInt(`0x${key}`), p, d), value, `${seed} ${key} ${p}^${d}`);
    assert.equal(LDP.linearHash(BigInt(seed), Number(BigInt(`0x${key}`)), p, d), value);
  }
  assert.equal(known.linear_hash.length, 400);
});

test("known: perturb(item) replayed on the bytes the Python SDK drew, byte for byte", () => {
  const seen = { screenKept: 0, screenMoved: 0, test: 0 };
  for (const c of known.perturb) {
    const h = LDP.heavyHittersFromConfig(c.config);
    const item = itemOf(c.item);
    const source = new LDP.ReplaySource(c.random);
    const payload = h.perturb(item, null, source);
    const what = `${JSON.stringify(c.config.domain)} ${JSON.stringify(c.item)}`;
    assert.deepEqual(payload, c.payload, what);
    assert.equal(JSON.stringify(payload), c.payload_json, what);
    assert.equal(source.remaining, 0, "must consume exactly the bytes Python consumed");
    h.validatePayload(payload);
    if (payload.l === 2) seen.test += 1;
    else if (LDP.linearHash(BigInt(`0x${payload.s}`), h.keyOf(item), h.p, h.d) === payload.y) seen.screenKept += 1;
    else seen.screenMoved += 1;
  }
  assert.equal(known.perturb.length, 104);
  // both groups, and both branches of the screen's randomised response, are replayed
  assert.ok(seen.test > 0 && seen.screenKept > 0 && seen.screenMoved > 0, JSON.stringify(seen));
});

test("known: the decoder accepts and refuses as the Python server does", () => {
  const reasons = new Set();
  let divergent = 0;
  for (const c of known.decode) {
    const h = LDP.heavyHittersFromConfig(c.config);
    let verdict;
    try {
      const r = h.decode(c.payload, 2);
      verdict = { ok: { l: r.l, s: hex64(r.s), y: r.y } };
    } catch (error) {
      assert.ok(error instanceof LDP.ReportDecodeError, `${JSON.stringify(c.payload)}: ${error}`);
      assert.equal(error.index, 2);
      verdict = { reason: error.reason };
      reasons.add(error.reason);
    }
    assert.deepEqual(verdict, c.expect, `${JSON.stringify(c.config.screen)} ${JSON.stringify(c.payload)}`);
    if (c.python !== undefined) {
      assert.ok(typeof c.note === "string", "a divergence from Python says why");
      divergent += 1;
    }
  }
  assert.equal(known.decode.length, 74);
  assert.equal(divergent, 2); // {"l": 1.0}: an integral float is an integer in JavaScript
  assert.deepEqual([...reasons].sort(), ["bad_encoding", "bad_type", "bad_version", "missing_field", "not_an_object", "out_of_range", "unknown_field", "wrong_mechanism"]);
});
