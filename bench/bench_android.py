"""Android/JVM SDK: size of the SDK jar, and how long ``Client.report()`` takes.

Builds ``client_sdk/android`` offline (``mvn -o -q package -DskipTests``, then
``test-compile`` for the benchmark main) and reports the jar's size (the SDK alone; its one
runtime dependency, Gson, is listed with its own size). Then runs ``org.ldp.sdk.ReportBench``
on the build JVM: ``report()`` with the config cached and no network (budget check,
perturbation from SecureRandom, charge and outbox record in one store transaction, durable
before it returns) for each store — the file journal with fsync (the default), without
fsync, and SQLite through sqlite-jdbc (``synchronous=FULL``) — each call timed on its own
(p50, p90, p99); memoized (longitudinal) collections twice: a value whose memo the device
holds (round 2 only) and a new value every call (a new memo drawn, stored and charged). The
machine's load average is recorded before and after (the machine is shared). A JVM on a server core, not a phone: on a device expect the same shape and
a few times the figures (flash fsync latency dominates).

    python bench/bench_android.py            # N = 3000 reports per case
    python bench/bench_android.py --quick    # N = 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import machine, table, write_results

ROOT = Path(__file__).resolve().parent.parent
ANDROID = ROOT / "client_sdk" / "android"
M2 = Path.home() / ".m2" / "repository"
GSON = M2 / "com" / "google" / "code" / "gson" / "gson" / "2.11.0" / "gson-2.11.0.jar"
SQLITE_JDBC = Path("/usr/share/java/sqlite-jdbc.jar")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 500 if args.quick else 3000
    load_before = os.getloadavg()
    for goal in (["package", "-DskipTests"], ["test-compile"]):
        subprocess.run(["mvn", "-o", "-q", *goal], cwd=ANDROID, check=True)
    jar = ANDROID / "target" / "ldp-sdk-android-0.1.0.jar"
    cp = [ANDROID / "target" / "classes", ANDROID / "target" / "test-classes", GSON]
    if SQLITE_JDBC.exists():
        cp.append(SQLITE_JDBC)
    out = subprocess.run(
        ["java", "-cp", os.pathsep.join(map(str, cp)), "org.ldp.sdk.ReportBench", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    load_after = os.getloadavg()
    info = machine()
    load = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]}
    data = {
        "machine": info,
        "load_average": load,
        "jar_bytes": jar.stat().st_size,
        "gson_bytes": GSON.stat().st_size,
        "n": n,
        **result,
    }
    rows = [
        [
            c["case"],
            c["calls"],
            f"{c['p50_ms']:.3f}",
            f"{c['p90_ms']:.3f}",
            f"{c['p99_ms']:.3f}",
            f"{c['calls_per_s']:,.0f}",
        ]
        for c in result["cases"]
    ]
    markdown = "\n".join(
        [
            "## Android/JVM SDK (jar size, report() latency)",
            "",
            f"`python bench/bench_android.py` — {info['date']}, {info['cpu']}, {info['cores']} cores (shared with other work),"
            f" {result['vm']} {result['java']}, commit {info['commit']}; load average (1, 5, 15 min) {load['before']} before,"
            f" {load['after']} after.",
            "",
            f"SDK jar `client_sdk/android/target/ldp-sdk-android-0.1.0.jar`: **{jar.stat().st_size:,} bytes** (plus Gson 2.11.0,"
            f" {GSON.stat().st_size:,} bytes, its one runtime dependency; sqlite-jdbc only for the JVM SQLite store).",
            "",
            table(["case", "calls", "p50 ms", "p90 ms", "p99 ms", "calls/s"], rows),
            "",
            "`report()` = value check, then one store transaction: the device's spent units, the cap check, perturbation"
            " (SecureRandom), charge and outbox record, durable before it returns (the file journal: one CRC'd line and"
            " `FileChannel.force(true)`; SQLite: `synchronous=FULL`); config cached, no network. Memoized collections add the"
            " memo lookup (an HMAC of the memo key), round 2 from the stored memo, and for a new value the memo's draw and row"
            " in the same transaction. A JVM on this server, not a"
            " phone: a phone's flash makes the fsync'd cases slower. On a machine shared with other builds and tests the"
            " tails (p99) are the machine's, not the SDK's.",
        ]
    )
    write_results("android", data, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
