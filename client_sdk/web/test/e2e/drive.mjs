// Drives the end-to-end page in the system's Chromium with playwright-core (no browser
// download): node test/e2e/drive.mjs <page origin> <screenshot.png> <chromium> <profile dir>
// Prints one JSON line: the page's results of the main, hide and after phases, the console.
import { chromium } from "playwright-core";

const [origin, screenshot, executablePath, userDataDir] = process.argv.slice(2);
const ARGS = [
  // what this machine's Chromium needs (the profile dir is userDataDir below; headless is set by Playwright)
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: ARGS,
  viewport: { width: 1100, height: 720 },
  timeout: 60_000,
});
const console_ = [];
const results = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  const run = async (phase) => {
    await page.goto(`${origin}/?phase=${phase}`, { waitUntil: "load" });
    await page.waitForFunction(() => window.__ldp && window.__ldp.done, null, { timeout: 90_000 });
    return page.evaluate(() => window.__ldp);
  };
  results.main = await run("main");
  await page.screenshot({ path: screenshot, fullPage: true });
  results.hide = await run("hide");
  // leaving the page fires pagehide: the SDK sends the queued reports with fetch keepalive;
  // wait (at most 30 s) until the server has answered for them, then visit again
  await page.goto("about:blank");
  const plan = await (await fetch(`${origin}/plan.json`)).json();
  const hide = plan.hideCollection;
  const until = Date.now() + 30_000;
  for (;;) {
    const answered = await (await fetch(`${origin}/e2e/answered`)).json();
    results.keepaliveAnswered = answered[hide.id] ?? 0;
    if (results.keepaliveAnswered >= hide.values.length || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  results.after = await run("after");
  results.browser = context.browser()?.version() ?? null;
} finally {
  await context.close();
}
console.log(JSON.stringify({ ...results, console: console_ }));
