// Shared vectors of the multidimensional (RS+FD) and heavy-hitter clients (tests/vectors/
// multidim.json, heavy_hitters.json, generated from the Python SDK): parameters, privacy,
// configs and hashes, item codes and prefix keys, whole perturbations replayed on Python's
// random bytes, encodings and decoder verdicts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as LDP from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(process.env.LDP_VECTORS_DIR ?? join(here, "..", "..", "..", "tests", "vectors"));
const load = (name) => JSON.parse(readFileSync(join(VECTORS, name), "utf8"));
const hex64 = (x) => x.toString(16).padStart(16, "0");

const view = new DataView(new ArrayBuffer(8));
function ulps(a, b) {
  view.setFloat64(0, a);
  const x = view.getBigInt64(0);
  view.setFloat64(0, b);
  const d = x - view.getBigInt64(0);
  return d < 0n ? -d : d;
}
const close = (a, b, rel = 1e-12) => a === b || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

// --- RS+FD ------------------------------------------------------------------------------

const multidim = load("multidim.json");

test("multidim: parameters, amplified budget, privacy, Var*, config and hash over the grid", (t) => {
  let exact = 0;
  let total = 0;
  for (const d of multidim.grid) {
    const m = LDP.multidimFromConfig(d.config);
    const where = `${d.name} ${JSON.stringify(d.config.domain_sizes.slice(0, 8))} eps=${d.config.epsilon}`;
    assert.equal(m.name, d.name, where);
    assert.deepEqual(m.config, d.config, where);
    assert.equal(LDP.canonicalJson(m.config), d.canonical, where);
    assert.equal(m.configHashSync(), d.config_hash, where);
    assert.ok(ulps(m.epsilonAmplified, d.epsilon_amplified) <= 1n, `${where}: eps' ${m.epsilonAmplified} vs ${d.epsilon_amplified}`);
    d.attributes.forEach((a, i) => {
      const w = m.attributes[i];
      assert.equal(w.k, a.k, where);
      assert.equal(w.oracle, a.oracle, `${where} attribute ${i} oracle`);
      assert.equal(w.fake, a.fake, where);
      for (const [key, mine] of [["p", w.p], ["q", w.q], ["fake_support", w.fakeSupport], ["epsilon", w.epsilon]]) {
        assert.ok(ulps(mine, a[key]) <= 1n, `${where} attribute ${i} ${key}: ${mine} vs ${a[key]}`);
        total += 1;
        if (mine === a[key]) exact += 1;
      }
      if (w.p === a.p) assert.equal(LDP.probabilityThreshold(w.p), BigInt(a.threshold_p), where);
    });
    assert.equal(m.privacy.neighbouring, d.privacy.neighbouring);
    for (const key of ["epsilon", "epsilon_tuple", "epsilon_attribute"]) {
      assert.ok(close(m.privacy[key], d.privacy[key]), `${where} ${key}: ${m.privacy[key]} vs ${d.privacy[key]}`);
    }
    m.varianceApproxPerUser.forEach((v, i) => assert.ok(close(v, d.variance_approx_per_user[i], 1e-12), where));
  }
  t.diagnostic(`${exact} of ${total} attribute parameters bit-identical to Python's (all within 1 ulp)`);
  assert.ok(multidim.grid.length > 100);
  assert.ok(exact >= 0.97 * total);
});

test("multidim: ConfigError cases and from_config", () => {
  for (const e of multidim.errors) {
    assert.throws(
      () => LDP.createMultidim(e.name, { epsilon: e.epsilon, domainSizes: e.domain_sizes, neighbouring: e.neighbouring, ...e.options }),
      LDP.ConfigError,
      JSON.stringify(e).slice(0, 200),
    );
  }
  for (const config of multidim.config_errors) assert.throws(() => LDP.multidimFromConfig(config), LDP.ConfigError, JSON.stringify(config));
  for (const d of multidim.from_config) {
    const m = LDP.multidimFromConfig(d.config_in);
    assert.deepEqual(m.config, d.config);
    assert.equal(m.configHashSync(), d.config_hash);
  }
  assert.throws(() => LDP.createMultidim("spl", { epsilon: 1, domainSizes: [2] }), /not implemented by the web SDK/);
});

test("multidim: perturb replayed on the bytes the Python SDK drew", () => {
  const seen = new Set();
  for (const c of multidim.perturb) {
    const m = LDP.multidimFromConfig(c.config);
    const source = new LDP.ReplaySource(c.random);
    const payload = m.perturb(c.value, source);
    assert.deepEqual(payload, c.payload, `${c.config.mechanism} ${JSON.stringify(c.value)}`);
    assert.equal(JSON.stringify(payload), c.payload_json);
    assert.equal(source.remaining, 0, "must consume exactly the bytes Python consumed");
    seen.add(c.config.mechanism);
  }
  assert.deepEqual([...seen].sort(), ["rsfd-adp", "rsfd-grr", "rsfd-oue-r", "rsfd-oue-z"]);
});

test("multidim: encodings of given reports, and the decoder's verdicts (reason codes)", () => {
  for (const e of multidim.encode) {
    const m = LDP.multidimFromConfig(e.config);
    const report = { y: e.report.map((entry) => (typeof entry === "string" ? Array.from(entry, Number) : entry)) };
    const payload = m.encode(report);
    assert.deepEqual(payload, e.payload);
    assert.equal(JSON.stringify(payload), e.payload_json);
    const back = m.decode(payload).y.map((entry) => (typeof entry === "number" ? entry : Array.from(entry).join("")));
    assert.deepEqual(back, e.report);
  }
  const cache = new Map();
  let divergent = 0;
  for (const c of multidim.decode) {
    const key = JSON.stringify(c.config);
    if (!cache.has(key)) cache.set(key, LDP.multidimFromConfig(c.config));
    const m = cache.get(key);
    let verdict;
    try {
      verdict = { ok: m.decode(c.payload, 5).y.map((entry) => (typeof entry === "number" ? entry : Array.from(entry).join(""))) };
    } catch (error) {
      assert.ok(error instanceof LDP.ReportDecodeError, `${JSON.stringify(c.payload)}: ${error}`);
      assert.equal(error.index, 5);
      verdict = { reason: error.reason };
    }
    assert.deepEqual(verdict, c.expect, `${c.config.mechanism} ${JSON.stringify(c.payload)}`);
    if (c.python !== undefined) divergent += 1;
  }
  assert.ok(multidim.decode.length > 200);
  assert.ok(divergent < 20);
});

test("multidim: exact output laws equal Python's output_distribution", () => {
  for (const { config, value, law } of multidim.output_distribution) {
    const got = LDP.multidimFromConfig(config).outputDistribution(value);
    assert.equal(got.size, law.length);
    let total = 0;
    for (const [outputs, probability] of law) {
      const mine = got.get(outputs.join(","));
      assert.ok(Math.abs(mine - probability) <= 1e-15, `${config.mechanism} ${outputs}: ${mine} vs ${probability}`);
      total += mine;
    }
    assert.ok(Math.abs(total - 1) < 1e-12);
  }
});

// --- heavy hitters ------------------------------------------------------------------------

const hh = load("heavy_hitters.json");
const itemOf = (item) => (item !== null && typeof item === "object" && "int" in item ? BigInt(item.int) : item);

test("heavy hitters: item codes of string and integer domains (hh-item-v1)", () => {
  for (const c of hh.items) {
    const domain = LDP.domainFromConfig(c.domain);
    assert.deepEqual(domain.config, c.domain);
    const item = itemOf(c.item);
    if (c.error) {
      assert.throws(() => domain.encode(item), LDP.ItemEncodingError, JSON.stringify(c));
    } else {
      assert.equal(domain.encode(item).toString(16), c.code, JSON.stringify(c));
      if (c.canonical !== undefined) assert.equal(domain.canonical(item), c.canonical);
    }
  }
  // a lone surrogate cannot be encoded (Python refuses it too); TextEncoder alone would not say so
  assert.throws(() => new LDP.StringDomain(4).encode("a\ud800"), LDP.ItemEncodingError);
  assert.throws(() => new LDP.StringDomain(4).encode("\udc00b"), LDP.ItemEncodingError);
  assert.throws(() => new LDP.IntegerDomain(64).encode(2 ** 60), /BigInt/);
  assert.ok(hh.items.length > 200);
});

test("heavy hitters: prefix keys of hh-key-v1 (fmix32 up to 32 bits, splitmix64 chain beyond)", () => {
  for (const [prefix, length, key] of hh.prefix_keys) assert.equal(LDP.prefixKey(BigInt(`0x${prefix}`), length), key, `${prefix}/${length}`);
  assert.ok(hh.prefix_keys.length > 300);
});

test("heavy hitters: configs, hashes, levels and g of create(); ConfigError cases; from_config", () => {
  for (const c of hh.configs) {
    const p = LDP.createHeavyHitters(c.protocol, c.options);
    assert.deepEqual(p.config, c.config, c.protocol);
    assert.equal(p.canonicalConfig, c.canonical);
    assert.equal(p.configHashSync(), c.config_hash);
    assert.deepEqual([...p.lengths], c.levels);
    assert.equal(p.g, c.g);
    assert.equal(p.mechanism, c.mechanism);
    assert.ok(ulps(p.olh.pStar, c.p) <= 1n);
    assert.equal(p.privacy.epsilon, c.epsilon_charged);
    const again = LDP.heavyHittersFromConfig(JSON.parse(JSON.stringify(c.config)));
    assert.equal(again.configHashSync(), c.config_hash);
  }
  for (const e of hh.errors.filter((e) => !e.js_integral_float)) assert.throws(() => LDP.createHeavyHitters(e.protocol, e.options), LDP.ConfigError, JSON.stringify(e));
  for (const config of hh.config_errors) assert.throws(() => LDP.heavyHittersFromConfig(config), LDP.ConfigError, JSON.stringify(config));
  for (const d of hh.from_config) {
    const p = LDP.heavyHittersFromConfig(d.config_in);
    assert.deepEqual(p.config, d.config);
    assert.equal(p.configHashSync(), d.config_hash);
  }
});

test("heavy hitters: perturb(item, party) replayed on the bytes the Python SDK drew", () => {
  const seen = new Set();
  for (const c of hh.perturb) {
    const p = LDP.heavyHittersFromConfig(c.config);
    const source = new LDP.ReplaySource(c.random);
    const payload = p.perturb(itemOf(c.item), c.party, source);
    assert.deepEqual(payload, c.payload, `${c.config.protocol} ${JSON.stringify(c.item)} ${c.party}`);
    assert.equal(JSON.stringify(payload), c.payload_json);
    assert.equal(source.remaining, 0, "must consume exactly the bytes Python consumed");
    p.validatePayload(payload);
    seen.add(c.config.protocol);
  }
  assert.deepEqual([...seen].sort(), ["pem", "tap", "taps", "treehist"]);
});

test("heavy hitters: the decoder accepts and refuses as the Python server does", () => {
  let divergent = 0;
  for (const c of hh.decode) {
    const p = LDP.heavyHittersFromConfig(c.config);
    let verdict;
    try {
      const r = p.decode(c.payload, 2);
      const ok = { l: r.l, s: hex64(r.s), y: r.y };
      if (r.p !== undefined) ok.p = r.p;
      if (r.s2 !== undefined) Object.assign(ok, { s2: hex64(r.s2), y2: r.y2 });
      verdict = { ok };
    } catch (error) {
      assert.ok(error instanceof LDP.ReportDecodeError, `${JSON.stringify(c.payload)}: ${error}`);
      assert.equal(error.index, 2);
      verdict = { reason: error.reason };
    }
    assert.deepEqual(verdict, c.expect, `${c.config.protocol} ${JSON.stringify(c.payload)}`);
    if (c.python !== undefined) divergent += 1;
  }
  assert.ok(hh.decode.length > 150);
  assert.ok(divergent < 20);
});
