"""Web SDK: size of the browser bundle, and the cost of one perturbation in JavaScript.

Builds client_sdk/web (``npm ci`` when node_modules is missing, then ``npm run build``) and
reports the size of ``dist/ldp-sdk.min.js`` (the IIFE bundle that defines the global
``LDP``): minified, and gzip-compressed at level 9 (what a server sends with
``Content-Encoding: gzip``); also of tree-shaken subsets an application bundler would
produce (oracles only; oracles + RS+FD + heavy hitters without the runtime). Then, in
Node.js (V8, as in Chrome), the time of one ``perturb`` per mechanism with the platform
CSPRNG (``crypto.getRandomValues``) — the frequency oracles, RS+FD and the heavy-hitter
clients — the time to build a mechanism (its probabilities are computed in exact
arithmetic) and to hash its config, and the runtime's ``report()`` (budget check, charge,
perturbation, queueing) with the in-memory store. The IndexedDB cost of ``report()`` in a
browser is printed by the end-to-end page (tests/system/test_web_e2e.py).

    python bench/bench_web.py            # full: 20,000 reports per mechanism and k
    python bench/bench_web.py --quick    # 2,000 reports
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import machine, table, write_results

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "client_sdk" / "web"
BUNDLE = WEB / "dist" / "ldp-sdk.min.js"

TIMING_SCRIPT = r"""
import * as LDP from "./dist/index.js";
const reports = Number(process.argv[1]);
const rows = [];
for (const k of [16, 1024]) {
  for (const name of ["grr", "sue", "oue", "olh", "blh", "hr"]) {
    const m = LDP.create(name, { epsilon: 1, domainSize: k });
    for (let i = 0; i < 200; i++) m.perturb(i % k);  // warm-up
    const started = performance.now();
    for (let i = 0; i < reports; i++) m.perturb(i % k);
    const perturbUs = ((performance.now() - started) * 1000) / reports;
    const payloadBytes = JSON.stringify(m.perturb(0)).length;
    rows.push({ mechanism: name, k, perturb_us: perturbUs, payload_bytes: payloadBytes });
  }
}
const protocols = [];
const time = (fn, n) => {
  for (let i = 0; i < Math.min(200, n); i++) fn(i);
  const started = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return ((performance.now() - started) * 1000) / n;
};
for (const [name, sizes, eps] of [
  ["rsfd-grr", [4, 2, 40], 1],
  ["rsfd-oue-z", [4, 2, 40], 1],
  ["rsfd-adp", [4, 2, 40], 1],
  ["rsfd-adp", [16, 8, 100, 1000, 2, 30, 7, 12], 1],
]) {
  const m = LDP.createMultidim(name, { epsilon: eps, domainSizes: sizes });
  const value = sizes.map((k) => k - 1);
  protocols.push({ protocol: name, params: `k=${JSON.stringify(sizes)}`, perturb_us: time(() => m.perturb(value), reports),
                   payload_bytes: JSON.stringify(m.perturb(value)).length });
}
for (const [name, options, item, party] of [
  ["pem", { epsilon: 4, k: 16, domain: { type: "string", max_bytes: 8 } }, "example", null],
  ["pem", { epsilon: 4, k: 16, domain: { type: "integer", bits: 32 } }, 123456789, null],
  ["tap", { epsilon: 4, k: 16, domain: { type: "string", max_bytes: 8 }, parties: ["a", "b"] }, "example", "b"],
  ["treehist", { epsilon: 4, k: 16, domain: { type: "string", max_bytes: 8 } }, "example", null],
]) {
  const h = LDP.createHeavyHitters(name, options);
  protocols.push({ protocol: name, params: JSON.stringify(options.domain), perturb_us: time(() => h.perturb(item, party), reports),
                   payload_bytes: JSON.stringify(h.perturb(item, party)).length });
}
const runtime = [];
{
  const oue = LDP.create("oue", { epsilon: 1, domainSize: 128 });
  const config = {
    version: 2, kind: "frequency", mechanism: { ...oue.config, epsilon: 1 }, epsilon: 1,
    neighbouring: "record", epoch: { seconds: 3600, start: "2030-01-01T00:00:00Z", grace: 1 },
    release: { windows: [1], cumulative: true, min_reports: 100 },
    budget: { cap_lifetime: 1e6, cap_per_window: null, window_epochs: 1, memoized: false, epsilon_per_memo: null },
  };
  const text = `{"id":"c","config":${LDP.canonicalJson(config)},"config_hash":"${LDP.configHashSync(config)}"}`;
  const fakeFetch = async (url, init = {}) => {
    if ((init.method ?? "GET") === "GET") return new Response(text, { status: 200 });
    if (String(url).endsWith("/v1/devices")) {  // enrolment: one made-up credential
      return new Response(JSON.stringify({ devices: [{ client_id: "0".repeat(32), device_secret: "s".repeat(43) }] }), { status: 201 });
    }
    const { reports: rs } = JSON.parse(init.body);
    return new Response(JSON.stringify({ results: rs.map((r) => ({ report_id: r.report_id, status: "accepted", reason: null, detail: null })) }), { status: 200 });
  };
  const client = await LDP.Client.open({ baseUrl: "http://x", apiKey: "k", storage: "memory", fetch: fakeFetch, batchSize: 500 });
  const n = Math.min(reports, 2000);
  await client.report("c", 1);
  let started = performance.now();
  for (let i = 0; i < n; i++) await client.report("c", i % 128);
  const reportUs = ((performance.now() - started) * 1000) / n;
  started = performance.now();
  const flushed = await client.flush({ timeout: 60 });
  const flushUs = ((performance.now() - started) * 1000) / flushed.accepted;
  runtime.push({ operation: "report() (memory store, OUE k=128)", us: reportUs, n });
  runtime.push({ operation: "flush() per report (fake server, batches of 500)", us: flushUs, n: flushed.accepted });
  started = performance.now();
  for (let i = 0; i < 200; i++) await LDP.CollectionConfig.fromServerText("c", text);
  runtime.push({ operation: "verify + compile a served config (typed JSON, SHA-256)", us: ((performance.now() - started) * 1000) / 200, n: 200 });
  client.close();
}
const setup = [];
for (const name of ["grr", "oue", "olh", "hr", "auto"]) {
  const n = 200;
  let m = LDP.create(name, { epsilon: 1, domainSize: 100 });
  for (let i = 0; i < 2000; i++) m.configHashSync();  // warm-up (JIT)
  let started = performance.now();
  for (let i = 0; i < n; i++) m = LDP.create(name, { epsilon: 0.5 + i / n, domainSize: 100 });
  const createUs = ((performance.now() - started) * 1000) / n;
  started = performance.now();
  for (let i = 0; i < 10 * n; i++) m.configHashSync();
  const hashUs = ((performance.now() - started) * 1000) / (10 * n);
  setup.push({ mechanism: name, create_us: createUs, config_hash_us: hashUs });
}
console.log(JSON.stringify({ node: process.version, perturb: rows, protocols, runtime, setup }));
"""


def npm(*args: str) -> None:
    result = subprocess.run(["npm", *args], cwd=WEB, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"npm {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def build() -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        sys.exit("bench_web.py needs Node.js (>= 20) and npm on PATH")
    if not (WEB / "node_modules").is_dir():
        npm("ci", "--no-audit", "--no-fund")
    npm("run", "build")


#: tree-shaken subsets (what an application's bundler keeps when it imports only these)
SUBSETS = {
    "frequency oracles only": 'export { create, fromConfig, canonicalJson } from "./src/index.ts";',
    "oracles + RS+FD + heavy hitters (no runtime)": (
        "export { create, fromConfig, createMultidim, multidimFromConfig, createHeavyHitters, heavyHittersFromConfig }"
        ' from "./src/index.ts";'
    ),
}


def measure(data: bytes) -> dict[str, int]:
    return {"minified_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


def sizes() -> dict[str, int]:
    return measure(BUNDLE.read_bytes())


def subset_sizes() -> list[dict]:
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    out = []
    for name, entry in SUBSETS.items():
        result = subprocess.run(
            [str(esbuild), "--bundle", "--minify", "--format=iife", "--global-name=LDP", "--keep-names",
             "--target=es2020", "--legal-comments=none", "--loader=ts", "--sourcefile=entry.ts"],
            cwd=WEB, input=entry.encode(), capture_output=True, check=True,
        )  # fmt: skip
        out.append({"bundle": name, **measure(result.stdout)})
    return out


def timings(reports: int) -> dict:
    result = subprocess.run(
        ["node", "--input-type=module", "-e", TIMING_SCRIPT, str(reports)],
        cwd=WEB,
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(data: dict) -> str:
    m = data["machine"]
    size = data["bundle"]
    lines = [
        "## Web SDK",
        "",
        f"`python bench/bench_web.py{' --quick' if data['quick'] else ''}` — {m['date']}, {m['cpu']}, {m['cores']} cores, "
        f"Node.js {data['node']}, commit {m['commit']}. Bundle: `client_sdk/web/dist/ldp-sdk.min.js` (esbuild, minified "
        "IIFE, global `LDP`, no runtime dependencies: the six frequency oracles and `auto`, RS+FD, the PEM/TAP/TAPS/"
        "TreeHist clients, canonical JSON, SHA-256, base64, and the runtime: config fetch with hash check, IndexedDB / "
        "localStorage device ledger and outbox, batching with retries, page-hide `fetch` keepalive). The subsets are "
        "what a bundler keeps of `src/index.ts` for those imports only.",
        "",
        table(
            ["bundle", "minified", "minified + gzip -9"],
            [["ldp-sdk.min.js (everything)", f"{size['minified_bytes']:,} B", f"{size['gzip_bytes']:,} B"]]
            + [[s["bundle"], f"{s['minified_bytes']:,} B", f"{s['gzip_bytes']:,} B"] for s in data["subsets"]],
        ),
        "",
        f"One `perturb` in Node.js with `crypto.getRandomValues` (mean over {data['reports']:,} reports, ε = 1):",
        "",
        table(
            ["mechanism", "k", "µs per report", "payload bytes (JSON)"],
            [[r["mechanism"], r["k"], f"{r['perturb_us']:.1f}", r["payload_bytes"]] for r in data["perturb"]],
        ),
        "",
        "One `perturb` of the multidimensional (RS+FD, ε = 1) and heavy-hitter clients (ε = 4, k = 16):",
        "",
        table(
            ["protocol", "parameters", "µs per report", "payload bytes (JSON)"],
            [
                [r["protocol"], f"`{r['params']}`", f"{r['perturb_us']:.1f}", r["payload_bytes"]]
                for r in data["protocols"]
            ],
        ),
        "",
        "The runtime in Node.js (in-memory store; in Chromium with IndexedDB one `report()` — one readwrite "
        "transaction — takes a few milliseconds, shown by the end-to-end page):",
        "",
        table(
            ["operation", "µs", "n"],
            [[r["operation"], f"{r['us']:.1f}", f"{r['n']:,}"] for r in data["runtime"]],
        ),
        "",
        "Building a mechanism (ε varies; p, q in exact BigInt arithmetic) and hashing its config (JavaScript SHA-256), k = 100:",
        "",
        table(
            ["mechanism", "create µs", "configHashSync µs"],
            [[r["mechanism"], f"{r['create_us']:.1f}", f"{r['config_hash_us']:.1f}"] for r in data["setup"]],
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 reports per mechanism instead of 20,000")
    args = parser.parse_args()
    reports = 2_000 if args.quick else 20_000
    build()
    measured = timings(reports)
    data = {
        "machine": machine(),
        "node": measured["node"],
        "quick": args.quick,
        "reports": reports,
        "bundle": sizes(),
        "subsets": subset_sizes(),
        "perturb": measured["perturb"],
        "protocols": measured["protocols"],
        "runtime": measured["runtime"],
        "setup": measured["setup"],
    }
    print(
        f"ldp-sdk.min.js: {data['bundle']['minified_bytes']:,} B minified, {data['bundle']['gzip_bytes']:,} B gzip -9"
    )
    write_results("web", data, markdown(data))


if __name__ == "__main__":
    main()
