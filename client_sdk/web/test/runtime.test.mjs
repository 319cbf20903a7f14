// The device runtime (Client): the shared runtime vectors (config hash of served JSON,
// epochs, units), and its behaviour against an in-process fake of the server's ingestion
// contract (ldpserver/schemas/reports.py): budget refusal, atomic queueing, batching,
// retries with backoff and Retry-After, 413 splitting, duplicates as success, permanent
// rejections kept with the reason, deferred reasons, config refetch on config_mismatch,
// the localStorage fallback, and the page-hide keepalive request. IndexedDB itself is
// exercised in headless Chromium (tests/system/test_web_e2e.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as LDP from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(process.env.LDP_VECTORS_DIR ?? join(here, "..", "..", "..", "tests", "vectors"));
const runtime = JSON.parse(readFileSync(join(VECTORS, "runtime.json"), "utf8"));

test("runtime vectors: served config text -> canonical JSON, hash, and what the device compiles", async () => {
  for (const c of runtime.configs) {
    // RFC 8785: plain JSON.parse of the served text is all the hash needs
    const parsed = JSON.parse(c.text);
    assert.equal(LDP.canonicalJson(parsed), c.canonical);
    assert.equal(await LDP.configHash(parsed), c.config_hash);
    assert.equal(LDP.configHashSync(parsed), c.config_hash);
    if (c.compiled === undefined) continue;
    const body = `{"id":"col_test","config":${c.text},"config_hash":"${c.config_hash}"}`;
    if (c.compiled.memoized) {
      await assert.rejects(LDP.CollectionConfig.fromServerText("col_test", body), LDP.UnsupportedCollectionError);
      continue;
    }
    const cfg = await LDP.CollectionConfig.fromServerText("col_test", body);
    assert.equal(cfg.configHash, c.config_hash);
    assert.equal(cfg.kind, c.compiled.kind);
    assert.equal(cfg.epochSeconds, c.compiled.epoch_seconds);
    assert.equal(cfg.epochStartUs, BigInt(c.compiled.epoch_start_us));
    assert.equal(cfg.grace, c.compiled.grace);
    assert.equal(cfg.budget.unitEpsilon, c.compiled.unit_epsilon);
    assert.equal(cfg.budget.maxUnitsLifetime, c.compiled.max_units_lifetime);
    assert.equal(cfg.budget.maxUnitsWindow, c.compiled.max_units_window);
    // a tampered hash is refused
    const bad = `{"id":"col_test","config":${c.text},"config_hash":"sha256:${"0".repeat(64)}"}`;
    await assert.rejects(LDP.CollectionConfig.fromServerText("col_test", bad), LDP.ConfigHashMismatchError);
  }
  assert.ok(runtime.configs.some((c) => c.compiled?.kind === "multidim"));
  assert.ok(runtime.configs.some((c) => c.compiled?.kind === "heavy_hitters"));
});

test("runtime vectors: epochs (floor division in microseconds) and budget units", () => {
  for (const [start, seconds, nowMs, epoch, startUs] of runtime.epochs) {
    assert.equal(LDP.parseTimestampMicros(start), BigInt(startUs), start);
    assert.equal(LDP.epochOf(nowMs, BigInt(startUs), seconds), epoch, `${start} ${seconds} ${nowMs}`);
  }
  for (const [cap, unit, units] of runtime.units) assert.equal(LDP.maxUnits(cap, unit), units, `${cap} / ${unit}`);
  assert.equal(LDP.maxUnits(null, 1), null);
});

test("runtime vectors: a config of another version is refused with a clear error, before its hash", async () => {
  assert.ok(runtime.old_versions.length >= 1);
  for (const c of runtime.old_versions) {
    const body = `{"id":"col_test","config":${c.text},"config_hash":"${c.config_hash}"}`;
    await assert.rejects(LDP.CollectionConfig.fromServerText("col_test", body), (error) => {
      assert.ok(error instanceof LDP[c.error], `${error.name}: ${error.message}`);
      assert.equal(error.message, c.message);
      return true;
    });
  }
});

// --- a fake server ----------------------------------------------------------------------

const T0 = Date.UTC(2030, 0, 1, 5, 30); // inside epoch 5 of hourly epochs from 2030-01-01

function publicConfig(mechanism, kind = "frequency", budget = {}, epsilon = 1.0) {
  return {
    version: 2,
    kind,
    mechanism,
    epsilon: epsilon,
    neighbouring: kind === "multidim" ? "tuple" : "record",
    epoch: { seconds: 3600, start: "2030-01-01T00:00:00Z", grace: 1 },
    release: { windows: [1], cumulative: true, min_reports: 100 },
    budget: {
      cap_lifetime: budget.cap_lifetime ?? 100,
      cap_per_window: budget.cap_per_window === undefined ? null : budget.cap_per_window,
      window_epochs: budget.window_epochs ?? 1,
      memoized: false,
      epsilon_per_memo: null,
    },
    ...(kind === "heavy_hitters" ? { parties: [] } : {}),
  };
}

/** The server side of the wire contract, in process: configs, dedupe, per-report verdicts, faults. */
class FakeServer {
  constructor() {
    this.collections = new Map();
    this.reports = new Map(); // report_id -> body text
    this.faults = []; // per POST: "503", "500", "network", "hang", "413" or a function(reports) -> results
    this.requests = [];
    this.verdict = null; // (report) -> null | {reason, detail}
    this.devices = new Map(); // enrolled client_id -> device secret
    this.enrolFaults = []; // per enrolment: a status ("429", "403") or "network"
  }

  enrol(json) {
    const fault = this.enrolFaults.shift();
    if (fault === "network") throw new TypeError("fetch failed");
    if (fault === "429") return json(429, { detail: "slow down" }, { "Retry-After": "0.01" });
    if (fault) return json(Number(fault), { detail: "enrolment refused" });
    const id = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    this.devices.set(id, secret);
    return json(201, { devices: [{ client_id: id, device_secret: secret }] });
  }

  add(id, config) {
    const canonical = LDP.canonicalJson(config);
    this.collections.set(id, { text: canonical, hash: LDP.configHashSync(config) });
    return this.collections.get(id).hash;
  }

  fetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    this.requests.push({ method: init.method ?? "GET", pathname, keepalive: Boolean(init.keepalive), body: init.body, headers: init.headers });
    const json = (status, body, headers = {}) =>
      new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
    if (init.headers?.Authorization !== "Bearer test-key") return json(401, { detail: "no key" });
    let m = /^\/v1\/collections\/([^/]+)$/.exec(pathname);
    if (m && (init.method ?? "GET") === "GET") {
      const c = this.collections.get(decodeURIComponent(m[1]));
      if (!c) return json(404, { detail: "no collection" });
      return json(200, `{"id":"${m[1]}","config":${c.text},"config_hash":"${c.hash}","current_epoch":5}`);
    }
    if (pathname === "/v1/devices" && init.method === "POST") return this.enrol(json);
    m = /^\/v1\/collections\/([^/]+)\/reports$/.exec(pathname);
    if (!m || init.method !== "POST") return json(404, { detail: "no route" });
    const fault = this.faults.shift();
    if (fault === "network") throw new TypeError("fetch failed");
    if (fault === "hang") {
      return new Promise((_, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    }
    if (fault === "503") return json(503, { detail: "maintenance" }, { "Retry-After": "0.05" });
    if (fault === "500") return json(500, { detail: "boom" });
    const document = JSON.parse(init.body);
    assert.deepEqual(Object.keys(document), ["wire", "reports", "devices"]); // wire version 2, with the device proof
    assert.equal(document.wire, 2);
    const { reports, devices = {} } = document;
    if (fault === "413" || (this.maxBatch && reports.length > this.maxBatch)) return json(413, { detail: "too large" });
    if (fault === "400") return json(400, { detail: "bad request" });
    const c = this.collections.get(decodeURIComponent(m[1]));
    const results = reports.map((r) => {
      const secret = this.devices.get(r.client_id);
      if (secret === undefined || devices[r.client_id] !== secret) {
        return { report_id: r.report_id, status: "rejected", reason: "device_unauthenticated", detail: "enrol" };
      }
      if (r.config_hash !== c.hash) return { report_id: r.report_id, status: "rejected", reason: "config_mismatch", detail: "other hash" };
      const special = this.verdict?.(r);
      if (special) return { report_id: r.report_id, status: "rejected", reason: special.reason, detail: special.detail ?? null };
      const body = JSON.stringify([r.client_id, r.epoch, r.payload]);
      if (this.reports.has(r.report_id)) {
        return this.reports.get(r.report_id) === body
          ? { report_id: r.report_id, status: "duplicate", reason: null, detail: "already accepted" }
          : { report_id: r.report_id, status: "rejected", reason: "report_id_conflict", detail: null };
      }
      this.reports.set(r.report_id, body);
      return { report_id: r.report_id, status: "accepted", reason: null, detail: null };
    });
    if (fault === "drop") throw new TypeError("connection reset after the server committed");
    return json(200, { results });
  };

  /** report uploads (enrolments are in `enrolments()`) */
  posts() {
    return this.requests.filter((r) => r.method === "POST" && r.pathname.endsWith("/reports"));
  }

  enrolments() {
    return this.requests.filter((r) => r.method === "POST" && r.pathname === "/v1/devices");
  }
}

async function setup(options = {}) {
  const server = new FakeServer();
  const oue = LDP.create("oue", { epsilon: 1, domainSize: 16 }).config;
  const hash = server.add("col_a", publicConfig({ ...oue, epsilon: 1 }, "frequency", options.budget ?? {}));
  let now = options.now ?? T0;
  const client = await LDP.Client.open({
    baseUrl: "http://ldp.test",
    apiKey: "test-key",
    storage: options.storage ?? "memory",
    localStorage: options.localStorage,
    fetch: server.fetch,
    clock: () => now,
    batchSize: options.batchSize ?? 500,
    retry: new LDP.RetryPolicy({ baseDelay: 0.01, maxDelay: 0.05, requestTimeout: options.requestTimeout ?? 2 }),
  });
  return { server, client, hash, setNow: (t) => (now = t) };
}

test("report queues atomically without network I/O; flush delivers; duplicates are success", async () => {
  const { server, client, hash } = await setup({ batchSize: 4 });
  const receipts = [];
  for (let i = 0; i < 10; i++) receipts.push(await client.report("col_a", i % 16));
  assert.equal(server.posts().length, 0, "report() must not send");
  assert.equal(await client.pending("col_a"), 10);
  assert.equal(receipts[0].epoch, 5);
  assert.match(receipts[0].reportId, /^[0-9a-f]{32}$/);
  const first = await client.flush({ timeout: 5 });
  assert.equal(first.accepted, 10);
  assert.equal(first.requests, 3); // batches of 4
  assert.ok(first.ok);
  const posted = JSON.parse(server.posts()[0].body).reports[0];
  assert.deepEqual(Object.keys(posted), ["report_id", "client_id", "config_hash", "epoch", "payload"]);
  assert.equal(posted.config_hash, hash);
  assert.equal(posted.client_id, client.clientId);
  assert.equal(posted.payload.m, "oue");
  const b = await client.budget("col_a");
  assert.equal(b.lifetime.units, 10);
  assert.equal(b.acknowledgedUnits, 10);
  assert.equal(b.reportsAccepted, 10);
  // a response lost in transit: the batch is sent again and counted once (duplicate = success)
  await client.report("col_a", 3);
  server.faults.push("drop");
  const again = await client.flush({ timeout: 5 });
  assert.equal(again.duplicates, 1);
  assert.equal(again.requests, 2);
  assert.equal(await client.pending(), 0);
  assert.equal(server.reports.size, 11);
  client.close();
});

test("the device refuses the report that would pass a cap: nothing drawn, stored or queued", async () => {
  const { client, setNow } = await setup({ budget: { cap_lifetime: 5.0, cap_per_window: 2.0 } });
  await client.report("col_a", 1);
  await client.report("col_a", 2);
  await assert.rejects(client.report("col_a", 3), (e) => e instanceof LDP.DeviceBudgetExceededError && e.scope === "window" && e.units === 2);
  assert.equal(await client.pending(), 2);
  setNow(T0 + 3600_000); // next epoch = next accounting window
  await client.report("col_a", 3);
  await client.report("col_a", 4);
  setNow(T0 + 2 * 3600_000);
  await client.report("col_a", 5);
  await assert.rejects(client.report("col_a", 6), (e) => e instanceof LDP.DeviceBudgetExceededError && e.scope === "lifetime" && e.maxUnits === 5);
  const b = await client.budget("col_a");
  assert.equal(b.lifetime.units, 5);
  assert.equal(b.lifetime.remainingUnits, 0);
  assert.equal(b.window.units, 1);
  assert.equal(b.pending, 5);
  assert.equal(await client.pending(), 5);
  client.close();
});

test("retries: 503 + Retry-After, 500 and network errors back off; a 4xx stops and keeps the reports", async () => {
  const { server, client } = await setup();
  for (let i = 0; i < 3; i++) await client.report("col_a", i);
  server.faults.push("503", "network", "500");
  const started = performance.now();
  const r = await client.flush({ timeout: 10 });
  assert.ok(performance.now() - started >= 45, "Retry-After: 0.05 must be waited");
  assert.equal(r.requests, 4);
  assert.equal(r.accepted, 3);
  await client.report("col_a", 9);
  server.faults.push("400");
  const stopped = await client.flush({ timeout: 5 });
  assert.equal(stopped.remaining, 1);
  assert.match(stopped.errors[0], /HTTP 400/);
  assert.equal((await client.store.nextBatch("col_a", Infinity, 10))[0].attempts, 1);
  // a request that never answers is cut by requestTimeout, then the flush times out
  server.faults.push("hang", "hang", "hang", "hang", "hang", "hang", "hang", "hang");
  const slow = await setup({ requestTimeout: 0.05 });
  await slow.client.report("col_a", 1);
  slow.server.faults.push(...Array(50).fill("hang"));
  const timedOut = await slow.client.flush({ timeout: 0.3 });
  assert.ok(timedOut.timedOut);
  assert.equal(timedOut.remaining, 1);
  slow.client.close();
  client.close();
});

test("413 splits the batch; one report too large is kept as rejected", async () => {
  const { server, client } = await setup();
  server.maxBatch = 2;
  for (let i = 0; i < 7; i++) await client.report("col_a", i);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.accepted, 7);
  assert.ok(r.requests > 4);
  server.maxBatch = 0.5;
  await client.report("col_a", 1);
  const big = await client.flush({ timeout: 5 });
  assert.equal(big.reasons.too_large, 1);
  assert.equal((await client.rejectedReports())[0].reason, "too_large");
  client.close();
});

test("permanent rejections are kept with their reason; deferred reasons stay queued", async () => {
  const { server, client } = await setup();
  server.verdict = (r) => (r.payload.bits === undefined ? null : r.epoch === 5 ? { reason: "epoch_too_old", detail: "too old" } : null);
  await client.report("col_a", 1);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.rejected, 1);
  assert.deepEqual(r.reasons, { epoch_too_old: 1 });
  const [kept] = await client.rejectedReports("col_a");
  assert.equal(kept.reason, "epoch_too_old");
  assert.equal(kept.detail, "too old");
  assert.equal(JSON.parse(kept.payload).m, "oue");
  const b = await client.budget("col_a");
  assert.equal(b.rejected, 1.0, "a refused report still counts: it left the device");
  assert.equal(b.reportsRejected, 1);
  server.verdict = () => ({ reason: "epoch_in_future", detail: "later" });
  await client.report("col_a", 2);
  const d = await client.flush({ timeout: 5 });
  assert.equal(d.deferred, 1);
  assert.equal(await client.pending(), 1);
  const [row] = await client.store.nextBatch("col_a", Infinity, 10);
  assert.ok(row.next_attempt_at > Date.now() / 1000 + 0.9);
  assert.match(row.last_error, /^epoch_in_future/);
  client.close();
});

test("config_mismatch: the config is refetched; a report of the old config is kept as rejected", async () => {
  const { server, client } = await setup();
  await client.report("col_a", 1);
  const grr = LDP.create("grr", { epsilon: 1, domainSize: 16 }).config;
  server.add("col_a", publicConfig({ ...grr, epsilon: 1 })); // the collection changed under us
  const r = await client.flush({ timeout: 5 });
  assert.deepEqual(r.reasons, { config_mismatch: 1 });
  assert.equal((await client.config("col_a")).protocol.name, "grr");
  await client.report("col_a", 1);
  assert.equal((await client.flush({ timeout: 5 })).accepted, 1);
  client.close();
});

test("a served config whose hash does not match is refused: nothing perturbed or queued", async () => {
  const { server, client } = await setup();
  const c = server.collections.get("col_a");
  assert.ok(c.text.includes('"cap_lifetime":100,'));
  server.collections.set("col_b", { text: c.text.replace('"cap_lifetime":100,', '"cap_lifetime":1000,'), hash: c.hash });
  await assert.rejects(client.report("col_b", 1), LDP.ConfigHashMismatchError);
  // RFC 8785 hashes values, not spellings: a server writing 1.0 (Python's json.dumps) for 1 still matches
  assert.ok(c.text.includes('"epsilon":1,"mechanism"'));
  server.collections.set("col_c", { text: c.text.replace('"epsilon":1,"mechanism"', '"epsilon":1.0,"mechanism"'), hash: c.hash });
  await client.report("col_c", 1);
  assert.equal(await client.pending(), 1);
  const unreachable = await LDP.Client.open({ baseUrl: "http://ldp.test", apiKey: "wrong", storage: "memory", fetch: server.fetch });
  await assert.rejects(unreachable.report("col_a", 1), LDP.ConfigUnavailableError);
  assert.equal(await client.pending(), 1);
  client.close();
});

test("multidim and heavy-hitter collections report through the same runtime", async () => {
  const { server, client } = await setup();
  const rsfd = LDP.createMultidim("rsfd-adp", { epsilon: 1, domainSizes: [4, 2, 40] });
  server.add("col_m", publicConfig({ ...rsfd.config, epsilon: 1 }, "multidim", {}, rsfd.privacy.epsilon));
  const tap = LDP.createHeavyHitters("tap", { epsilon: 3, k: 4, domain: { type: "string", max_bytes: 4 }, parties: ["a", "b"] });
  const tapConfig = JSON.parse(tap.canonicalConfig);
  server.add("col_h", { ...publicConfig(tapConfig, "heavy_hitters", {}, 3), parties: ["a", "b"] });
  await client.report("col_m", [3, 1, 39]);
  await client.report("col_h", "hello", { party: "b" });
  await assert.rejects(client.report("col_h", "hello", { party: "zz" }), RangeError);
  await assert.rejects(client.report("col_m", [4, 1, 39]), RangeError);
  assert.equal(await client.pending(), 2);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.accepted, 2);
  const bodies = server.posts().map((p) => JSON.parse(p.body).reports[0].payload);
  assert.deepEqual(bodies.map((p) => p.m).sort(), ["rsfd-adp", "tap"]);
  assert.equal(bodies.find((p) => p.m === "tap").p, 1);
  // under-charging configs are refused on the device
  server.add("col_under", publicConfig({ ...rsfd.config, epsilon: 1 }, "multidim", {}, 1.0));
  await assert.rejects(client.report("col_under", [0, 0, 0]), /under-count/);
  client.close();
});

test("known-candidate heavy-hitter collections report through the runtime as PEM ones do", async () => {
  const { server, client } = await setup();
  const known = LDP.createHeavyHitters("known", { epsilon: 2, k: 4, domain: { type: "string", max_bytes: 4 } });
  server.add("col_k", publicConfig(JSON.parse(known.canonicalConfig), "heavy_hitters", {}, 2));
  for (let i = 0; i < 40; i++) await client.report("col_k", i % 3 ? "hi" : "ok");
  await assert.rejects(client.report("col_k", "hi", { party: "a" }), RangeError);
  await assert.rejects(client.report("col_k", 7), LDP.ItemEncodingError);
  assert.equal((await client.budget("col_k")).lifetime.units, 40);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.accepted, 40);
  const payloads = server.posts().flatMap((p) => JSON.parse(p.body).reports.map((x) => x.payload));
  assert.equal(payloads.length, 40);
  for (const p of payloads) {
    assert.deepEqual(Object.keys(p), ["v", "m", "l", "s", "y"]);
    known.validatePayload(p);
  }
  assert.deepEqual([...new Set(payloads.map((p) => p.l))].sort(), [1, 2]);
  // a served mechanism this SDK would read differently (no screen hash) is refused
  const { hash: _hash, ...screen } = known.config.screen;
  server.add("col_k2", publicConfig({ ...JSON.parse(known.canonicalConfig), screen }, "heavy_hitters", {}, 2));
  await assert.rejects(client.report("col_k2", "hi"), LDP.UnsupportedCollectionError);
  client.close();
});

test("localStorage fallback: one document, persistent across clients (same client id)", async () => {
  const data = new Map();
  const storage = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, String(v)) };
  const a = await setup({ storage: "localstorage", localStorage: storage });
  assert.equal(a.client.storage, "localstorage");
  await a.client.report("col_a", 1);
  await a.client.report("col_a", 2);
  a.client.close();
  const b = await LDP.Client.open({ baseUrl: "http://ldp.test", apiKey: "test-key", storage: "localstorage", localStorage: storage, fetch: a.server.fetch, clock: () => T0 });
  assert.equal(b.clientId, a.client.clientId);
  assert.equal(await b.pending(), 2);
  assert.equal((await b.flush({ timeout: 5 })).accepted, 2);
  assert.equal((await b.budget("col_a")).acknowledgedUnits, 2);
  // a failed write (quota) stores nothing: the report is neither charged nor queued
  storage.setItem = () => {
    throw new Error("QuotaExceededError");
  };
  await assert.rejects(b.report("col_a", 3), /Quota/);
  assert.equal((await b.budget("col_a")).lifetime.units, 2);
  b.close();
});

test("page hide: the reports this page queued go out with fetch keepalive; a later flush sees duplicates", async () => {
  const { server, client } = await setup();
  const target = new EventTarget();
  const uninstall = client.installPageHideFlush(target);
  await client.report("col_a", 9);
  assert.equal(client.flushOnPageHide(), 0, "not enrolled yet: nothing to send with (the next flush enrols)");
  assert.equal(client.clientId, null);
  await client.enrol();
  assert.equal((await client.flush({ timeout: 5 })).accepted, 1);
  const before = server.posts().length;
  for (let i = 0; i < 3; i++) await client.report("col_a", i);
  target.dispatchEvent(new Event("pagehide"));
  await new Promise((r) => setTimeout(r, 50));
  const beacon = server.posts().slice(before);
  assert.equal(beacon.length, 1);
  assert.ok(beacon[0].keepalive);
  assert.equal(beacon[0].headers.Authorization, "Bearer test-key");
  assert.equal(server.reports.size, 4);
  assert.equal(JSON.parse(beacon[0].body).devices[client.clientId], server.devices.get(client.clientId));
  assert.equal(await client.pending(), 0, "the answer arrived while the page lived: applied");
  // a page that dies before the answer: the outbox keeps the reports, the next flush gets duplicates
  await client.report("col_a", 7);
  server.faults.push("drop");
  target.dispatchEvent(new Event("pagehide"));
  target.dispatchEvent(new Event("pagehide")); // sent once
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(server.posts().length, before + 2);
  assert.equal(await client.pending(), 1);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.duplicates, 1);
  uninstall();
  client.close();
});

test("device credential: the first flush enrols once; the secret rides with every batch; a forgotten device re-enrols", async () => {
  const { server, client } = await setup();
  assert.equal(client.clientId, null);
  await client.report("col_a", 1);
  assert.equal(server.enrolments().length, 0, "report() stays offline");
  assert.equal((await client.flush({ timeout: 5 })).accepted, 1);
  const first = client.clientId;
  assert.match(first, /^[0-9a-f]{32}$/);
  assert.equal(JSON.parse(server.posts()[0].body).devices[first], server.devices.get(first));
  await client.report("col_a", 2);
  assert.equal((await client.flush({ timeout: 5 })).accepted, 1);
  assert.equal(server.enrolments().length, 1);
  server.devices.clear(); // the server lost the device (e.g. restored from an older backup)
  await client.report("col_a", 3);
  const r = await client.flush({ timeout: 5 });
  assert.equal(r.accepted, 1);
  assert.equal(r.rejected, 0);
  assert.notEqual(client.clientId, first);
  assert.equal(server.enrolments().length, 2);
  assert.equal((await client.budget("col_a")).acknowledgedUnits, 3, "the local ledger kept every charge");
  client.close();
});

test("enrolment: 429 + Retry-After is retried; a 403 (quota) keeps the reports queued", async () => {
  const { server, client } = await setup();
  server.enrolFaults.push("429");
  await client.report("col_a", 1);
  assert.equal((await client.flush({ timeout: 5 })).accepted, 1);
  client.close();
  const other = await setup();
  other.server.enrolFaults.push("403");
  await other.client.report("col_a", 1);
  const r = await other.client.flush({ timeout: 5 });
  assert.equal(r.accepted, 0);
  assert.equal(r.remaining, 1);
  assert.match(r.errors[0], /enrolment: HTTP 403/);
  other.client.close();
});

test("retryAfterSeconds: delta-seconds, HTTP-date, garbage, caps", () => {
  assert.equal(LDP.retryAfterSeconds("2"), 2);
  assert.equal(LDP.retryAfterSeconds(" 0.5 "), 0.5);
  assert.equal(LDP.retryAfterSeconds(null), null);
  assert.equal(LDP.retryAfterSeconds("soon"), null);
  assert.equal(LDP.retryAfterSeconds("99999"), 3600);
  assert.equal(LDP.retryAfterSeconds("-3"), 0);
  const now = Date.UTC(2030, 0, 1);
  assert.equal(LDP.retryAfterSeconds(new Date(now + 7000).toUTCString(), now), 7);
});
