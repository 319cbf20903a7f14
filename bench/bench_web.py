"""Web SDK: size of the browser bundle, and the cost of one perturbation in JavaScript.

Builds client_sdk/web (``npm ci`` when node_modules is missing, then ``npm run build``) and
reports the size of ``dist/ldp-sdk.min.js`` (the IIFE bundle that defines the global
``LDP``): raw, minified, and gzip-compressed at level 9 (what a server sends with
``Content-Encoding: gzip``). Then, in Node.js (V8, as in Chrome), the time of one
``perturb`` per mechanism with the platform CSPRNG (``crypto.getRandomValues``), the time
to build a mechanism (its probabilities are computed in exact arithmetic) and to hash its
config.

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
console.log(JSON.stringify({ node: process.version, perturb: rows, setup }));
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


def sizes() -> dict[str, int]:
    data = BUNDLE.read_bytes()
    return {
        "minified_bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
    }


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
        "IIFE, global `LDP`: the six frequency oracles, `auto`, canonical JSON, SHA-256, base64).",
        "",
        table(
            ["bundle", "minified", "minified + gzip -9"],
            [["ldp-sdk.min.js", f"{size['minified_bytes']:,} B", f"{size['gzip_bytes']:,} B"]],
        ),
        "",
        f"One `perturb` in Node.js with `crypto.getRandomValues` (mean over {data['reports']:,} reports, ε = 1):",
        "",
        table(
            ["mechanism", "k", "µs per report", "payload bytes (JSON)"],
            [[r["mechanism"], r["k"], f"{r['perturb_us']:.1f}", r["payload_bytes"]] for r in data["perturb"]],
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
        "perturb": measured["perturb"],
        "setup": measured["setup"],
    }
    print(
        f"ldp-sdk.min.js: {data['bundle']['minified_bytes']:,} B minified, {data['bundle']['gzip_bytes']:,} B gzip -9"
    )
    write_results("web", data, markdown(data))


if __name__ == "__main__":
    main()
