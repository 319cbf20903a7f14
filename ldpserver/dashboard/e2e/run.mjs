// End-to-end driver of the dashboard: headless Debian Chromium through playwright-core
// (no browser download). Input: one JSON argument (see tests/system/test_dashboard.py);
// output: one JSON line of observations on stdout; screenshots in cfg.artifacts.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const cfg = JSON.parse(process.argv[2]);
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ldp-dash-chromium-"));
fs.mkdirSync(cfg.artifacts, { recursive: true });
const obs = { consoleErrors: [], foreignRequests: [], httpErrors: [] };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) obs.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => obs.consoleErrors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) obs.httpErrors.push(`${r.status()} ${new URL(r.url()).pathname}`); });
  page.on("request", (r) => { if (!r.url().startsWith(cfg.url)) obs.foreignRequests.push(r.url()); });

  const ready = () => page.waitForSelector("body[data-state=ready]");
  const settle = async (fn) => {  // run an action that starts a load, then wait for it
    await page.evaluate(() => { document.body.dataset.state = "pending"; });
    await fn();
    await ready();
  };
  async function login(key, hash) {
    await page.goto(`${cfg.url}/dashboard?run=${Date.now()}${hash}`);  // a real load, not a hash change
    await ready();
    await settle(async () => { await page.fill("#key", key); await page.click("#use-key"); });
  }
  async function pick(collection) {
    await settle(() => page.selectOption("#collection", collection));
  }
  const count = (sel) => page.locator(sel).count();
  const text = async (sel) => ((await page.locator(sel).count()) ? (await page.locator(sel).first().textContent()) : null);
  const shot = async (name) => {
    const file = path.join(cfg.artifacts, name + ".png");
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };

  // ---- analyst key, analyst view
  await login(cfg.keys.analyst, "#analyst");
  await pick(cfg.collections.frequency);
  obs.analyst = {
    estPoints: await count("#est-chart [data-point]"),
    estCI: await count("#est-chart [data-ci]"),
    tsPoints: await count("#ts-chart [data-point]"),
    tsBand: await count("#ts-chart [data-band]"),
    releaseNumber: await page.getAttribute("#release-number", "data-release"),
    configHash: await text("#release-config-hash"),
    releaseOptions: await count("#release option"),
    denied: await count("[data-denied]"),
    shot: await shot("analyst-frequency"),
  };
  // an older release and the cumulative scope
  await settle(() => page.selectOption("#release", "2"));
  obs.analyst.olderRelease = await page.getAttribute("#release-number", "data-release");
  obs.analyst.olderEstPoints = await count("#est-chart [data-point]");
  await pick(cfg.collections.multidim);
  // the time series is drawn after its own request: give it the moment the marginals do not need
  // (as long as the page's other waits: under a loaded CI machine 5 s was once too short)
  await page.waitForFunction(() => document.querySelectorAll("#ts-chart [data-point]").length >= 2, null,
    { timeout: 15000 }).catch(() => {});
  obs.multidim = {
    marginals: await count("svg[data-marginal]"),
    pointsPerMarginal: await page.$$eval("svg[data-marginal]", (els) => els.map((e) => e.querySelectorAll("[data-point]").length)),
    tsPoints: await count("#ts-chart [data-point]"),
    shot: await shot("analyst-multidim"),
  };
  await pick(cfg.collections.heavy_hitters);
  obs.heavy = {
    globalRows: await count("[data-hh-row][data-party='']"),
    partyBlocks: await page.$$eval("[data-party-block]", (els) => els.map((e) => e.getAttribute("data-party-block"))),
    partyRows: await count("[data-party-block] [data-hh-row]"),
    chartPoints: await count("#hh-chart [data-point]"),
    tsPoints: await count("#ts-chart [data-point]"),
    shot: await shot("analyst-heavy-hitters"),
  };
  // ---- analyst key, auditor view: no data
  await pick(cfg.collections.frequency);
  await settle(() => page.evaluate(() => { location.hash = "#auditor"; }));
  obs.analystOnAuditor = {
    denied: await page.$$eval("[data-denied]", (els) => els.map((e) => e.textContent)),
    points: await count("#view-auditor [data-point]"),
    verify: await count("#verify-result"),
    rejections: await count("[data-rejection]"),
    params: await count("[data-param]"),
    shot: await shot("analyst-key-on-auditor-view"),
  };

  // ---- auditor key, auditor view
  await page.evaluate(() => sessionStorage.clear());
  await login(cfg.keys.auditor, "#auditor");
  await pick(cfg.collections.frequency);
  obs.auditor = {
    verifyText: await text("#verify-result"),
    verifyOk: await page.getAttribute("#verify-result", "data-ok"),
    rejections: await page.$$eval("[data-rejection]", (els) => els.map((e) => e.getAttribute("data-rejection"))),
    rejectionsTotal: await page.getAttribute("#rejections-total", "data-total"),
    budgetBars: await count("#budget-chart [data-point]"),
    capMarker: await count("#budget-chart [data-marker=cap]"),
    releaseRows: await count("[data-release-row]"),
    params: await page.$$eval("[data-param]", (els) => els.map((e) => e.textContent)),
    denied: await count("[data-denied]"),
    shot: await shot("auditor-frequency"),
  };
  // ---- auditor key, analyst view: the release log is readable, estimates are not
  await settle(() => page.evaluate(() => { location.hash = "#analyst"; }));
  obs.auditorOnAnalyst = {
    denied: await page.$$eval("[data-denied]", (els) => els.map((e) => e.textContent)),
    points: await count("#view-analyst [data-point]"),
    shot: await shot("auditor-key-on-analyst-view"),
  };
  // ---- a key with no role-appropriate use (bad key): nothing, an error
  await page.evaluate(() => sessionStorage.clear());
  await login("ldp_000000000000_not-a-real-key-not-a-real-key-not-a-real-k", "#analyst");
  obs.badKey = { status: await text("#status"), points: await count("[data-point]"), options: await count("#collection option") };
  obs.keyInStorageOnly = await page.evaluate(() => !document.cookie && !location.href.includes("ldp_"));
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(obs) + "\n");
