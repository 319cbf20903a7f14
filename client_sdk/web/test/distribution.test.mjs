// Distribution tests: reports drawn from the real CSPRNG (crypto.getRandomValues) follow the
// closed-form output law of each mechanism (Pearson chi-square goodness of fit).
//
// False-failure rate: every test rejects at p < ALPHA = 1e-9 and there are fewer than 40
// such tests, so a correct implementation fails a run with probability below 4e-8 (the
// cells' expected counts are all >= 30, where the chi-square approximation holds well;
// RS+FD's rarest outputs are pooled into one cell until that holds).
// Power: 40,000 reports per input detect a shift of about 0.01 in any output probability
// of a few cells, far below any real bug (see the "rejects a wrong sampler" check).
import assert from "node:assert/strict";
import { test } from "node:test";

import * as LDP from "../dist/index.js";
import { chiSquare, gammaQ } from "./chisquare.mjs";

const ALPHA = 1e-9;
const DRAWS = 40_000;

function assertFits(observed, probabilities, what) {
  const r = chiSquare(observed, probabilities);
  assert.ok(r.minExpected >= 30, `${what}: expected counts too small (${r.minExpected})`);
  assert.ok(r.pValue > ALPHA, `${what}: chi2 = ${r.statistic.toFixed(1)} on ${r.df} df, p = ${r.pValue.toExponential(2)}`);
  return r;
}

/** Observed counts of each output of `outputOf(payload)` over `draws` perturbations of `value`. */
function histogram(m, value, cells, outputOf, draws = DRAWS) {
  const counts = new Array(cells).fill(0);
  for (let i = 0; i < draws; i++) {
    const payload = m.perturb(value);
    m.validatePayload(payload);
    counts[outputOf(payload, m)] += 1;
  }
  return counts;
}

function lawArray(m, value, cells) {
  const law = m.outputDistribution(value);
  return Array.from({ length: cells }, (_, y) => law.get(y) ?? 0);
}

const patternOf = (payload, m) => {
  const { bits } = m.decode(payload);
  let pattern = 0;
  for (let j = 0; j < bits.length; j++) pattern |= bits[j] << j;
  return pattern;
};

test("chi-square p-values are right (sanity of the test itself)", () => {
  // known values (scipy.stats.chi2.sf): chi2(1) at 3.841459 -> 0.05; chi2(10) at 18.307038 -> 0.05;
  // chi2(3) at 46.27 -> 4.9692e-10; chi2(1000) at 1000 -> 0.494053
  assert.ok(Math.abs(gammaQ(0.5, 3.841459 / 2) - 0.05) < 1e-6);
  assert.ok(Math.abs(gammaQ(5, 18.307038 / 2) - 0.05) < 1e-6);
  assert.ok(Math.abs(gammaQ(1.5, 46.27 / 2) / 4.969196e-10 - 1) < 1e-5);
  assert.ok(Math.abs(gammaQ(500, 1000 / 2) - 0.494053) < 1e-5);
});

for (const [eps, k, values] of [
  [1.0, 4, [0, 3]],
  [0.5, 2, [1]],
  [2.0, 7, [3]],
  [1.0, 1000, [500]],
]) {
  test(`GRR eps=${eps} k=${k}: outputs follow p, q`, () => {
    const m = LDP.create("grr", { epsilon: eps, domainSize: k });
    for (const v of values) assertFits(histogram(m, v, k, (p) => p.y), lawArray(m, v, k), `grr v=${v}`);
  });
}

for (const [name, eps, k, values] of [
  ["sue", 1.0, 4, [0, 2]],
  ["sue", 0.5, 3, [1]],
  ["oue", 1.0, 4, [1, 3]],
  ["oue", 2.0, 3, [0]],
]) {
  test(`${name.toUpperCase()} eps=${eps} k=${k}: bit patterns follow the product law`, () => {
    const m = LDP.create(name, { epsilon: eps, domainSize: k });
    for (const v of values) assertFits(histogram(m, v, 1 << k, patternOf), lawArray(m, v, 1 << k), `${name} v=${v}`);
  });
}

for (const [eps, k, values] of [
  [1.0, 5, [0, 1, 2, 4]],
  [0.5, 2, [1]],
  [3.0, 10, [9]],
  [1.0, 100, [0, 99]],
]) {
  test(`HR eps=${eps} k=${k}: outputs follow 2p/K inside C_v, 2(1-p)/K outside`, () => {
    const m = LDP.create("hr", { epsilon: eps, domainSize: k });
    for (const v of values) assertFits(histogram(m, v, m.K, (p) => p.y), lawArray(m, v, m.K), `hr v=${v}`);
  });
}

for (const [name, eps, k, g, values] of [
  ["olh", 1.0, 10, undefined, [0, 7]],
  ["olh", 0.5, 100, 3, [99]],
  ["blh", 1.0, 10, undefined, [3]],
]) {
  test(`${name.toUpperCase()} eps=${eps} g=${g ?? "auto"}: (H_s(v), y) follows (1/g)(p if y = H_s(v) else q)`, () => {
    const m = LDP.create(name, { epsilon: eps, domainSize: k, ...(g ? { g } : {}) });
    const [p, q] = [m.parameters().p, m.parameters().q];
    const law = [];
    for (let x = 0; x < m.g; x++) for (let y = 0; y < m.g; y++) law.push((x === y ? p : q) / m.g);
    for (const v of values) {
      const cell = (payload) => {
        const { seed, y } = m.decode(payload);
        return LDP.hashValue(seed, v, m.g) * m.g + y;
      };
      assertFits(histogram(m, v, m.g * m.g, cell), law, `${name} v=${v}`);
    }
  });
}

test("olh-mas-v1: hashes of two keys under a random seed are independent and uniform", () => {
  for (const [g, a, b] of [
    [5, 17, 18],
    [4, 0, 2 ** 32 - 1],
    [3, 1, 2],
  ]) {
    const counts = new Array(g * g).fill(0);
    for (let i = 0; i < DRAWS; i++) {
      const seed = LDP.randomU64(LDP.cryptoSource);
      counts[LDP.hashValue(seed, a, g) * g + LDP.hashValue(seed, b, g)] += 1;
    }
    assertFits(counts, new Array(g * g).fill(1 / (g * g)), `hash pair g=${g} keys ${a},${b}`);
  }
});

test("uniformInt and bernoulli from the CSPRNG: uniform, exact probability", () => {
  for (const n of [3, 7, 10, 100]) {
    const counts = new Array(n).fill(0);
    for (let i = 0; i < DRAWS; i++) counts[LDP.uniformInt(n, LDP.cryptoSource)] += 1;
    assertFits(counts, new Array(n).fill(1 / n), `uniformInt(${n})`);
  }
  for (const p of [1 / 3, 0.01]) {
    const threshold = LDP.Threshold.of(p);
    let ones = 0;
    for (let i = 0; i < 4 * DRAWS; i++) ones += LDP.bernoulli(threshold, LDP.cryptoSource) ? 1 : 0;
    assertFits([ones, 4 * DRAWS - ones], [p, 1 - p], `bernoulli(${p})`);
  }
});

test("the test rejects a wrong sampler (power check)", () => {
  // a classic slip: on "not kept", draw uniformly among all k values (v included)
  const m = LDP.create("grr", { epsilon: 1.0, domainSize: 4 });
  const keep = LDP.Threshold.of(m.pStar);
  const counts = new Array(4).fill(0);
  for (let i = 0; i < DRAWS; i++) {
    counts[LDP.bernoulli(keep, LDP.cryptoSource) ? 0 : LDP.uniformInt(4, LDP.cryptoSource)] += 1;
  }
  const r = chiSquare(counts, lawArray(m, 0, 4));
  assert.ok(r.pValue < ALPHA, `wrong sampler not detected: p = ${r.pValue}`);
});

/** Merge the cells whose expected count is below 30 (rarest first) into one pooled cell. */
function pooled(counts, probabilities, draws) {
  const order = probabilities.map((p, i) => i).sort((a, b) => probabilities[a] - probabilities[b]);
  const keep = new Set(order);
  let poolP = 0;
  let poolN = 0;
  for (const i of order) {
    if (draws * probabilities[i] >= 30 && (poolP === 0 || draws * poolP >= 30)) break;
    poolP += probabilities[i];
    poolN += counts[i];
    keep.delete(i);
  }
  const p = [...keep].map((i) => probabilities[i]);
  const n = [...keep].map((i) => counts[i]);
  if (poolP > 0) {
    p.push(poolP);
    n.push(poolN);
  }
  return [n, p];
}

for (const [name, eps, sizes, values] of [
  ["rsfd-grr", 1.0, [3, 2], [[0, 0], [2, 1]]],
  ["rsfd-oue-z", 1.0, [2, 3], [[1, 2]]],
  ["rsfd-oue-r", 1.0, [3, 2], [[0, 1]]],
  ["rsfd-adp", 3.0, [2, 9], [[1, 3]]],
]) {
  test(`RS+FD ${name} eps=${eps} k=${JSON.stringify(sizes)}: whole reports follow the closed-form law`, () => {
    const m = LDP.createMultidim(name, { epsilon: eps, domainSizes: sizes });
    for (const value of values) {
      const law = m.outputDistribution(value);
      const keys = [...law.keys()];
      const index = new Map(keys.map((k, i) => [k, i]));
      const counts = new Array(keys.length).fill(0);
      for (let i = 0; i < DRAWS; i++) {
        const payload = m.perturb(value);
        const { y } = m.decode(payload);
        const key = y.map((entry) => (typeof entry === "number" ? entry : Array.from(entry).reduce((s, b, j) => s | (b << j), 0))).join(",");
        counts[index.get(key)] += 1;
      }
      const [n, p] = pooled(counts, keys.map((k) => law.get(k)), DRAWS);
      assertFits(n, p, `${name} value=${value}`);
    }
  });
}

test("known: the group, the screen's and the test's randomised responses and the screen seed follow their laws", () => {
  // cells: screen kept, screen moved by δ = 1..p−1 (mod p), test kept, test moved by δ = 1..g−1 (mod g)
  const h = LDP.createHeavyHitters("known", { epsilon: 2, k: 4, domain: { type: "string", max_bytes: 4 } });
  const [p, g, d] = [h.p, h.g, h.d];
  const key = h.keyOf("hi");
  const law = [h.screenPStar / 2, ...new Array(p - 1).fill((1 - h.screenPStar) / (2 * (p - 1)))];
  law.push(h.olh.pStar / 2, ...new Array(g - 1).fill((1 - h.olh.pStar) / (2 * (g - 1))));
  const counts = new Array(p + g).fill(0);
  const digits = new Array(p * p).fill(0); // the screen seed's most and least significant base-p digits
  for (let i = 0; i < DRAWS; i++) {
    const payload = h.perturb("hi");
    const r = h.decode(payload);
    if (r.l === 1) {
      counts[(r.y - LDP.linearHash(r.s, key, p, d) + p) % p] += 1;
      const seed = Number(r.s);
      digits[Math.floor(seed / p ** (d - 1)) * p + (seed % p)] += 1;
    } else {
      counts[p + ((r.y - LDP.hashValue(r.s, key, g) + g) % g)] += 1;
    }
  }
  assertFits(counts, law, "known groups and offsets");
  const screened = digits.reduce((a, b) => a + b, 0);
  assertFits(digits, new Array(p * p).fill(1 / (p * p)), `known screen seed digits (${screened} reports)`);
});

test("RS+FD: the sampled attribute does not change which draws are made (same bytes for every tuple)", () => {
  // a replay source records how many bytes a perturbation consumed: it must not depend on the value
  const m = LDP.createMultidim("rsfd-adp", { epsilon: 1.0, domainSizes: [4, 2, 40] });
  const bytes = new Uint8Array(4096);
  globalThis.crypto.getRandomValues(bytes);
  const used = new Set();
  for (const value of [[0, 0, 0], [3, 1, 39], [1, 0, 17]]) {
    const source = new LDP.ReplaySource(bytes);
    m.perturb(value, source);
    used.add(source.consumed);
  }
  assert.equal(used.size, 1);
});
