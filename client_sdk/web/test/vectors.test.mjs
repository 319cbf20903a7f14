// The shared test vectors of tests/vectors/ (generated from the Python SDK by
// tests/vectors/generate.py): the web SDK must encode, hash, sample and decode identically.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as LDP from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(process.env.LDP_VECTORS_DIR ?? join(here, "..", "..", "..", "tests", "vectors"));
const load = (name) => JSON.parse(readFileSync(join(VECTORS, name), "utf8"));

const big = (hex) => BigInt(`0x${hex}`);
const hex64 = (x) => x.toString(16).padStart(16, "0");

const view = new DataView(new ArrayBuffer(8));
function bits(x) {
  view.setFloat64(0, x);
  return view.getBigInt64(0);
}
/** Distance in units in the last place between two doubles of the same sign. */
function ulps(a, b) {
  const d = bits(a) - bits(b);
  return d < 0n ? -d : d;
}

/** Options of create() from Python's keyword options. */
function createOptions(epsilon, domainSize, options = {}) {
  const out = { epsilon, domainSize };
  for (const [key, value] of Object.entries(options)) out[key === "max_report_bits" ? "maxReportBits" : key] = value;
  return out;
}

/** Compare a web mechanism with the Python description of one; returns [exactP, exactQ]. */
function checkDescription(m, d, where) {
  assert.equal(m.name, d.name, where);
  assert.deepEqual(m.config, d.config, where);
  assert.equal(LDP.canonicalJson(m.config), d.canonical, where);
  assert.equal(m.configHashSync(), d.config_hash, where);
  assert.equal(m.reportBits, d.report_bits, where);
  const params = m.parameters();
  assert.deepEqual(Object.keys(params).sort(), Object.keys(d.parameters).sort(), where);
  for (const [key, value] of Object.entries(d.parameters)) {
    if (key === "g" || key === "K") assert.equal(params[key], value, `${where} ${key}`);
    else assert.ok(ulps(params[key], value) <= 1n, `${where} ${key}: ${params[key]} vs ${value}`);
  }
  assert.ok(ulps(m.pStar, d.p_star) <= 1n, `${where} p*: ${m.pStar} vs ${d.p_star}`);
  assert.ok(ulps(m.qStar, d.q_star) <= 1n, `${where} q*: ${m.qStar} vs ${d.q_star}`);
  const exact = m.pStar === d.p_star && m.qStar === d.q_star;
  if (exact) assert.equal(m.varianceApproxPerUser, d.variance_approx_per_user, where);
  else assert.ok(Math.abs(m.varianceApproxPerUser / d.variance_approx_per_user - 1) < 1e-14, where);
  // the Bernoulli threshold of Python's own p, bit for bit
  assert.equal(LDP.probabilityThreshold(d.p_star), BigInt(d.threshold_p), where);
  return exact;
}

test("params: p, q, parameters, Var*, report size, config, canonical JSON and hash over the grid", (t) => {
  const { grid } = load("params.json");
  let exact = 0;
  for (const d of grid) {
    const options = createOptions(d.epsilon, d.domain_size, d.g === undefined ? {} : { g: d.g });
    const m = LDP.create(d.name, options);
    if (checkDescription(m, d, `${d.name} eps=${d.epsilon} k=${d.domain_size}`)) exact += 1;
  }
  t.diagnostic(`p* and q* bit-identical to Python's in ${exact} of ${grid.length} configurations (all within 1 ulp)`);
  assert.ok(grid.length > 300);
  assert.ok(exact >= 0.97 * grid.length, `only ${exact} of ${grid.length} bit-identical`);
});

test("params: g = round(e^eps) + 1 of OLH, on a fine grid and at the half-integer boundaries", () => {
  const { optimal_g: cases } = load("params.json");
  const wrong = cases.filter(([eps, g]) => LDP.optimalG(eps) !== g);
  assert.deepEqual(wrong, []);
  assert.ok(cases.length > 1500);
});

test("params: the auto choice", () => {
  const { auto } = load("params.json");
  for (const [eps, k, maxBits, name] of auto) {
    let got;
    try {
      got = LDP.choose(eps, k, maxBits).name;
    } catch (error) {
      assert.ok(error instanceof LDP.ConfigError, String(error));
      got = null;
    }
    assert.equal(got, name, `auto eps=${eps} k=${k} max_report_bits=${maxBits}`);
  }
});

test("params: exact output laws equal Python's output_distribution", () => {
  const { output_distribution: laws } = load("params.json");
  for (const { config, value, law } of laws) {
    const got = LDP.fromConfig(config).outputDistribution(value);
    assert.equal(got.size, law.length);
    for (const [y, probability] of law) assert.ok(Math.abs(got.get(y) - probability) <= 1e-15, `${config.mechanism} ${value} ${y}`);
  }
});

test("config: from_config successes and ConfigError cases with Python's messages", () => {
  const { from_config: created, errors } = load("config.json");
  for (const d of created) checkDescription(LDP.fromConfig(d.config_in), d, JSON.stringify(d.config_in));
  let exactMessages = 0;
  for (const e of errors) {
    const call =
      e.call === "create"
        ? () => LDP.create(e.name, createOptions(e.epsilon, e.domain_size, e.options))
        : () => LDP.fromConfig(e.config);
    assert.throws(call, (error) => {
      assert.ok(error instanceof LDP.ConfigError, `${JSON.stringify(e)}: ${error}`);
      if (e.message_exact) {
        assert.equal(error.message, e.message);
        exactMessages += 1;
      }
      return true;
    });
  }
  assert.ok(exactMessages > 30);
});

test("olh_hash: splitmix64, expand_seed and hash_value of olh-mas-v1", () => {
  const vectors = load("olh_hash.json");
  assert.equal(vectors.family, LDP.HASH_FAMILY);
  for (const [x, out] of vectors.splitmix64) assert.equal(hex64(LDP.splitmix64(big(x))), out);
  for (const [seed, a, b] of vectors.expand_seed) {
    const [ga, gb] = LDP.expandSeed(big(seed));
    assert.deepEqual([hex64(ga), hex64(gb)], [a, b]);
  }
  for (const [seed, key, g, h] of vectors.hash_value) assert.equal(LDP.hashValue(big(seed), key, g), h, `${seed} ${key} ${g}`);
  assert.ok(vectors.hash_value.length > 500);
});

test("random: probability thresholds round(p * 2^64), scalar and numpy's vector form, bit for bit", () => {
  const { thresholds } = load("random.json");
  for (const { p, threshold, vector_threshold: vectorThreshold } of thresholds) {
    assert.equal(LDP.probabilityThreshold(p), BigInt(threshold), `p=${p}`);
    if (vectorThreshold !== undefined) assert.equal(LDP.Threshold.ofVector(p).value, BigInt(vectorThreshold), `p=${p}`);
  }
  assert.ok(thresholds.length > 150);
});

test("random: primitive draws replayed on Python's bytes", () => {
  const v = load("random.json");
  const replay = (hex, draw) => {
    const source = new LDP.ReplaySource(hex);
    const result = draw(source);
    assert.equal(source.remaining, 0, "must consume exactly the bytes Python consumed");
    return result;
  };
  for (const { p, random, result } of v.bernoulli) assert.equal(replay(random, (s) => LDP.bernoulli(LDP.Threshold.of(p), s)), result);
  for (const { n, random, result } of v.uniform_int) assert.equal(replay(random, (s) => LDP.uniformInt(n, s)), result, `n=${n}`);
  for (const { random, result } of v.random_u64) assert.equal(hex64(replay(random, (s) => LDP.randomU64(s))), result);
  for (const { probabilities, random, result } of v.bernoulli_vector) {
    const got = replay(random, (s) => LDP.bernoulliBits(probabilities.length, (i) => LDP.Threshold.ofVector(probabilities[i]), s));
    assert.deepEqual(Array.from(got), result);
  }
});

test("canonical: RFC 8785 number forms, canonical JSON and config hashes, refusals", async () => {
  const v = load("canonical.json");
  for (const [x, text] of v.numbers) assert.equal(LDP.canonicalJson(x), text, `JCS form of ${x}`);
  for (const { value, canonical, config_hash: hash } of v.objects) {
    assert.equal(LDP.canonicalJson(value), canonical);
    if (hash !== undefined) {
      assert.equal(LDP.configHashSync(value), hash);
      assert.equal(await LDP.configHash(value), hash);
    }
  }
  for (const bad of [NaN, Infinity, { x: -Infinity }, "\ud800", { x: 1n }]) assert.throws(() => LDP.canonicalJson(bad), LDP.CanonicalJSONError);
});

test("wire: encodings of given reports, as Python's payloads and JSON text", () => {
  const { encode } = load("wire.json");
  for (const e of encode) {
    const m = LDP.fromConfig(e.config);
    let payload;
    if (e.bits !== undefined) payload = m.encode({ bits: Array.from(e.bits, Number) });
    else if (e.seed !== undefined) payload = m.encode({ seed: big(e.seed), y: e.y });
    else payload = m.encode({ y: e.y });
    assert.deepEqual(payload, e.payload);
    assert.equal(JSON.stringify(payload), e.payload_json);
    // and back
    const decoded = m.decode(payload);
    if (e.bits !== undefined) assert.equal(Array.from(decoded.bits).join(""), e.bits);
    else assert.equal(decoded.y, e.y);
  }
});

test("wire: the decoder accepts and refuses as the Python server does (reason codes)", () => {
  const { decode } = load("wire.json");
  const mechanisms = new Map();
  let divergent = 0;
  for (const c of decode) {
    const key = JSON.stringify(c.config);
    if (!mechanisms.has(key)) mechanisms.set(key, LDP.fromConfig(c.config));
    const m = mechanisms.get(key);
    let verdict;
    try {
      const r = m.decode(c.payload, 3);
      if (r.bits !== undefined) verdict = { ok: { bits: Array.from(r.bits).join("") } };
      else if (r.seed !== undefined) verdict = { ok: { seed: hex64(r.seed), y: r.y } };
      else verdict = { ok: { y: r.y } };
    } catch (error) {
      assert.ok(error instanceof LDP.ReportDecodeError, `${JSON.stringify(c.payload)}: ${error}`);
      assert.equal(error.index, 3);
      verdict = { reason: error.reason };
    }
    assert.deepEqual(verdict, c.expect, `${c.config.mechanism} ${JSON.stringify(c.payload)}`);
    if (c.python !== undefined) divergent += 1;
  }
  assert.ok(decode.length > 700);
  assert.ok(divergent < 60, "divergences from Python are the documented few");
});

test("perturb: whole reports replayed on the bytes the Python SDK drew", () => {
  const { cases } = load("perturb.json");
  const seen = new Set();
  for (const c of cases) {
    const m = LDP.fromConfig(c.config);
    const source = new LDP.ReplaySource(c.random);
    const payload = m.perturb(c.value, source);
    assert.deepEqual(payload, c.payload, `${JSON.stringify(c.config)} value=${c.value}`);
    assert.equal(JSON.stringify(payload), c.payload_json);
    assert.equal(source.remaining, 0, "must consume exactly the bytes Python consumed");
    seen.add(c.config.mechanism);
  }
  assert.deepEqual([...seen].sort(), ["blh", "grr", "hr", "olh", "oue", "sue"]);
});
