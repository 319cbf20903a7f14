// Drives the cross-origin check (tests/system/test_web_cors.py) in the system's Chromium:
// node test/e2e/drive_cors.mjs <chromium> <profile dir> <page origin>...
// Visits `${origin}/?phase=cors` for each origin (the page talks to the server on another
// origin) and prints one JSON line: {origin: the page's results}, plus the console.
import { chromium } from "playwright-core";

const [executablePath, userDataDir, ...origins] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  timeout: 60_000,
});
const console_ = [];
const results = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  for (const origin of origins) {
    await page.goto(`${origin}/?phase=cors`, { waitUntil: "load" });
    await page.waitForFunction(() => window.__ldp && window.__ldp.done, null, { timeout: 90_000 });
    results[origin] = await page.evaluate(() => window.__ldp);
  }
} finally {
  await context.close();
}
console.log(JSON.stringify({ results, console: console_ }));
