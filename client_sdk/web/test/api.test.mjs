// The SDK's API beyond the shared vectors: argument checking, sources, the browser bundle.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { webcrypto } from "node:crypto";

import * as LDP from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const BUNDLE = join(here, "..", "dist", "ldp-sdk.min.js");

test("create/fromConfig round-trip for every mechanism; names are case-insensitive", () => {
  assert.deepEqual(LDP.available(), ["grr", "sue", "oue", "olh", "blh", "hr", "auto"]);
  for (const name of ["grr", "sue", "oue", "olh", "blh", "hr"]) {
    const m = LDP.create(name.toUpperCase(), { epsilon: 1, domainSize: 16 });
    assert.equal(m.name, name);
    const again = LDP.fromConfig(JSON.parse(JSON.stringify(m.config)));
    assert.deepEqual(again.config, m.config);
    assert.equal(again.configHashSync(), m.configHashSync());
  }
  assert.equal(LDP.create("auto", { epsilon: 1, domainSize: 10 }).name, "grr");
  assert.equal(LDP.create("auto", { epsilon: 1, domainSize: 1000, maxReportBits: 100 }).name, "olh");
  assert.equal(LDP.create("olh", { epsilon: 1, domainSize: 10 }).g, 4);
  assert.equal(LDP.create("hr", { epsilon: 1, domainSize: 10 }).K, 16);
});

test("configuration limits are refused with ConfigError", () => {
  const bad = [
    () => LDP.create("grr", { epsilon: 0.001, domainSize: 4 }),
    () => LDP.create("grr", { epsilon: 21, domainSize: 4 }),
    () => LDP.create("grr", { epsilon: NaN, domainSize: 4 }),
    () => LDP.create("grr", { epsilon: 1, domainSize: 1 }),
    () => LDP.create("oue", { epsilon: 1, domainSize: 65537 }),
    () => LDP.create("olh", { epsilon: 1, domainSize: 10, g: 1 }),
    () => LDP.create("olh", { epsilon: 1, domainSize: 10, g: 2 ** 20 + 1 }),
    () => LDP.create("blh", { epsilon: 1, domainSize: 10, g: 3 }),
    () => LDP.create("nope", { epsilon: 1, domainSize: 10 }),
    () => LDP.fromConfig({ mechanism: "olh", epsilon: 1, domain_size: 10, hash: "xxhash32" }),
  ];
  for (const call of bad) assert.throws(call, LDP.ConfigError);
  assert.throws(() => LDP.create("grr", { epsilon: 25, domainSize: 4 }), {
    message: "epsilon must lie in [0.01, 20.0], got 25.0",
  });
});

test("perturb checks its value", () => {
  const m = LDP.create("grr", { epsilon: 1, domainSize: 4 });
  for (const bad of [-1, 4, 1.5, "1", true, null, undefined, NaN]) {
    assert.throws(() => m.perturb(bad), (e) => e instanceof TypeError || e instanceof RangeError);
  }
  const olh = LDP.create("olh", { epsilon: 1, domainSize: 4 });
  assert.throws(() => olh.perturbKey(2 ** 32), RangeError);
  assert.equal(olh.perturbKey(2 ** 32 - 1).m, "olh");
});

test("decodeAll names the index of the first bad payload; validatePayload", () => {
  const m = LDP.create("hr", { epsilon: 1, domainSize: 10 });
  const good = m.perturb(3);
  assert.deepEqual(m.decodeAll([good, good]).length, 2);
  assert.throws(
    () => m.decodeAll([good, good, { v: 1, m: "hr", y: 16 }]),
    (e) => e instanceof LDP.ReportDecodeError && e.index === 2 && e.reason === "out_of_range" && /^report 2: /.test(e.message),
  );
  assert.throws(() => m.validatePayload({ v: 1, m: "grr", y: 1 }), { reason: "wrong_mechanism" });
});

test("replay source: exact consumption, and exhaustion is an error", () => {
  const source = new LDP.ReplaySource("00");
  assert.throws(() => LDP.randomU64(source), RangeError);
  const s2 = new LDP.ReplaySource(new Uint8Array([0xff, 0xff, 0x01]));
  assert.equal(LDP.uniformInt(3, s2), 0); // 0xff>>6 = 3 rejected twice, then 0x01>>6 = 0
  assert.equal(s2.remaining, 0);
});

test("large unary reports draw more than one getRandomValues call (64 KiB limit)", () => {
  const m = LDP.create("oue", { epsilon: 1, domainSize: 65536 });
  const payload = m.perturb(123);
  const { bits } = m.decode(payload);
  assert.equal(bits.length, 65536);
  const ones = bits.reduce((s, b) => s + b, 0);
  const mean = m.qStar * 65535 + 0.5;
  assert.ok(Math.abs(ones - mean) < 8 * Math.sqrt(mean), `${ones} ones, expected about ${mean}`);
});

test("probability thresholds: edges", () => {
  assert.equal(LDP.probabilityThreshold(0), 0n);
  assert.equal(LDP.probabilityThreshold(-0.5), 0n);
  assert.equal(LDP.probabilityThreshold(1), 1n << 64n);
  assert.equal(LDP.probabilityThreshold(0.5), 1n << 63n);
  assert.equal(LDP.probabilityThreshold(2 ** -65), 0n); // 0.5 rounds to even
  assert.equal(LDP.probabilityThreshold(1.5 * 2 ** -64), 2n);
  assert.equal(LDP.probabilityThreshold(2.5 * 2 ** -64), 2n);
  assert.throws(() => LDP.probabilityThreshold(NaN), RangeError);
  // p = 1 is always true, p = 0 never, whatever the word
  const all = new LDP.ReplaySource("ffffffffffffffff0000000000000000");
  assert.equal(LDP.bernoulli(LDP.Threshold.of(1), all), true);
  assert.equal(LDP.bernoulli(LDP.Threshold.of(0), all), false);
});

test("configHash (Web Crypto) equals configHashSync (JavaScript SHA-256)", async () => {
  const m = LDP.create("olh", { epsilon: 0.5, domainSize: 1000 });
  assert.equal(await m.configHash(), m.configHashSync());
  assert.match(m.configHashSync(), /^sha256:[0-9a-f]{64}$/);
  assert.equal(LDP.canonicalJson(m.config), '{"domain_size":1000,"epsilon":0.5,"g":3,"hash":"olh-mas-v1","mechanism":"olh"}');
  // RFC 8785: a number's text depends on its value only (1.0 and 1 are both 1)
  assert.equal(LDP.canonicalJson({ n: 1, epsilon: 1.0, tiny: 1e-7, big: 1e16 }), '{"big":10000000000000000,"epsilon":1,"n":1,"tiny":1e-7}');
});

function loadBundle(globals) {
  const context = vm.createContext({ ...globals });
  vm.runInContext(readFileSync(BUNDLE, "utf8"), context, { filename: "ldp-sdk.min.js" });
  return context;
}

test("browser bundle: an IIFE defining the global LDP, working with Web Crypto alone", async () => {
  const context = loadBundle({ crypto: webcrypto, TextEncoder });
  const out = vm.runInContext(
    `(async () => {
      const m = LDP.create("oue", { epsilon: 1, domainSize: 20 });
      const p = m.perturb(3);
      m.validatePayload(p);
      return { name: m.name, bits: p.bits.length, hash: await m.configHash(), sync: m.configHashSync(),
               olh: LDP.create("olh", { epsilon: 1, domainSize: 20 }).perturb(5).s.length };
    })()`,
    context,
  );
  const result = await out;
  assert.equal(result.name, "oue");
  assert.equal(result.bits, 4); // base64 of 3 bytes
  assert.equal(result.hash, result.sync);
  assert.equal(result.olh, 16);
  assert.equal(result.sync, LDP.create("oue", { epsilon: 1, domainSize: 20 }).configHashSync());
});

test("browser bundle: without crypto.subtle the hash falls back; without a CSPRNG perturb refuses", async () => {
  const noSubtle = loadBundle({ crypto: { getRandomValues: (a) => webcrypto.getRandomValues(a) }, TextEncoder });
  const hash = await vm.runInContext(`LDP.create("grr", { epsilon: 2, domainSize: 5 }).configHash()`, noSubtle);
  assert.equal(hash, LDP.create("grr", { epsilon: 2, domainSize: 5 }).configHashSync());
  const none = loadBundle({ TextEncoder });
  assert.throws(() => vm.runInContext(`LDP.create("grr", { epsilon: 2, domainSize: 5 }).perturb(1)`, none), /getRandomValues/);
});

test("browser bundle: RS+FD, heavy hitters and the runtime are in the global LDP too", async () => {
  const context = loadBundle({ crypto: webcrypto, TextEncoder, TextDecoder });
  const out = await vm.runInContext(
    `(async () => {
      const m = LDP.createMultidim("rsfd-adp", { epsilon: 1, domainSizes: [4, 2, 40] });
      const p = m.perturb([1, 0, 39]);
      m.validatePayload(p);
      const h = LDP.createHeavyHitters("pem", { epsilon: 4, k: 2, domain: { type: "string", max_bytes: 2 } });
      const r = h.perturb("hi");
      h.validatePayload(r);
      const kn = LDP.createHeavyHitters("known", { epsilon: 2, k: 2, domain: { type: "string", max_bytes: 2 } });
      const kr = kn.perturb("hi");
      kn.validatePayload(kr);
      return { y: p.y.length, hm: r.m, levels: [...h.lengths], km: kr.m, screen: kn.config.screen, client: typeof LDP.Client.open,
               errors: new LDP.DeviceBudgetExceededError("c", "lifetime", 1, 1, 1, 1, 1).name };
    })()`,
    context,
  );
  assert.deepEqual(JSON.parse(JSON.stringify(out)), { y: 3, hm: "pem", levels: [5, 9, 13, 16, 16], km: "known", screen: { hash: "lin-zp-v1", p: 7, d: 7 }, client: "function", errors: "DeviceBudgetExceededError" });
});
