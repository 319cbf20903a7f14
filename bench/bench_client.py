"""Client runtime: how long ``Client.report()`` takes on the device, and flush throughput.

``report()`` = config from memory, epoch, one SQLite ``BEGIN IMMEDIATE`` transaction (budget
check, perturbation from the OS CSPRNG, charge, outbox row) committed with
``synchronous=FULL`` (fsync'd WAL) before it returns. Measured on a state_dir on the local
disk, with an in-process transport (no network is touched by report()):

* OUE, k = 128, ε = 1 (a fresh report each call) — the acceptance target: median < 2 ms;
* L-OSUE, k = 128 (ε∞ = 2, ε1 = 1): memo reuse (same value) and a new memo per call;
* 4 threads of one Client reporting at once (aggregate throughput);
* the perturbation alone (``mechanism.perturb``), to show what the durability costs;
* ``flush()`` of 10,000 queued reports in batches of 500 to an in-process server that
  accepts everything (client-side cost: JSON encoding, result bookkeeping in SQLite).

    python bench/bench_client.py            # N = 3000 reports per case
    python bench/bench_client.py --quick    # N = 500
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import machine, table, write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client_sdk import mechanisms
from client_sdk.canonical import config_hash
from client_sdk.client import Client, HttpResponse

TARGET_MS = 2.0


def public_config(mechanism: dict[str, Any], kind: str, memoized: bool, epsilon: float) -> dict[str, Any]:
    return {
        "version": 2,
        "kind": kind,
        "mechanism": mechanism,
        "epsilon": epsilon,
        "neighbouring": "record",
        "epoch": {"seconds": 86400, "start": "2020-01-01T00:00:00Z", "grace": 1},
        "release": {"windows": [1], "cumulative": True, "min_reports": 100},
        "budget": {
            "cap_lifetime": 1e6,
            "cap_per_window": None,
            "window_epochs": 1,
            "memoized": memoized,
            "epsilon_per_memo": epsilon if memoized else None,
        },
    }


class AcceptAll:
    """In-process server: serves configs, accepts every report."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.configs = configs

    def request(self, method: str, url: str, *, headers: dict, body: bytes | None, timeout: float) -> HttpResponse:
        if method == "GET":
            cid = url.rsplit("/", 1)[1]
            cfg = self.configs[cid]
            doc = {"id": cid, "kind": cfg["kind"], "config": cfg, "config_hash": config_hash(cfg), "current_epoch": 0}
            return HttpResponse(200, {}, json.dumps(doc).encode())
        if url.endswith("/v1/devices"):  # enrolment: one made-up credential (nothing checks it here)
            device = {"client_id": secrets.token_hex(16), "device_secret": secrets.token_urlsafe(32)}
            return HttpResponse(201, {}, json.dumps({"devices": [device]}).encode())
        reports = json.loads(body)["reports"]
        results = [{"report_id": r["report_id"], "status": "accepted", "reason": None, "detail": None} for r in reports]
        return HttpResponse(200, {}, json.dumps({"accepted": len(results), "results": results}).encode())


CONFIGS = {
    "oue128": public_config({"mechanism": "oue", "epsilon": 1.0, "domain_size": 128}, "frequency", False, 1.0),
    "losue128": public_config(
        {"kind": "longitudinal", "mechanism": "l-osue", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 128},
        "longitudinal",
        True,
        2.0,
    ),
}


def stats_ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    pick = lambda q: s[min(int(q * len(s)), len(s) - 1)] * 1000  # noqa: E731
    return {
        "n": len(s),
        "median_ms": statistics.median(s) * 1000,
        "mean_ms": statistics.fmean(s) * 1000,
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": s[-1] * 1000,
    }


def time_calls(fn: Any, n: int, warmup: int = 50) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 500 if args.quick else args.n
    transport = AcceptAll(CONFIGS)
    cases: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ldp-client-bench-") as tmp:
        # perturbation alone
        oue = mechanisms.create("oue", epsilon=1.0, domain_size=128)
        cases["OUE k=128: mechanism.perturb only (no storage)"] = stats_ms(
            time_calls(lambda i: oue.perturb(i % 128), n)
        )

        with Client("http://bench", "k", f"{tmp}/a", transport=transport) as client:
            client.config("oue128")
            cases["OUE k=128: report() (fresh report, fsync'd)"] = stats_ms(
                time_calls(lambda i: client.report("oue128", i % 128), n)
            )
            client.config("losue128")
            cases["L-OSUE k=128: report() reusing a memo"] = stats_ms(
                time_calls(lambda i: client.report("losue128", 5), n)
            )
            cases["L-OSUE k=128: report() creating a memo"] = stats_ms(
                time_calls(lambda i: client.report("losue128", 6 + i % 122), 100, warmup=0)
            )

        with Client("http://bench", "k", f"{tmp}/b", transport=transport) as client:
            client.config("oue128")
            per_thread = max(n // 4, 50)
            samples: list[float] = []
            lock = threading.Lock()

            def work() -> None:
                local = time_calls(lambda i: client.report("oue128", i % 128), per_thread, warmup=0)
                with lock:
                    samples.extend(local)

            started = time.perf_counter()
            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            concurrent = stats_ms(samples)
            concurrent["throughput_per_s"] = len(samples) / wall
            cases["OUE k=128: report() from 4 threads at once"] = concurrent

        with Client("http://bench", "k", f"{tmp}/c", transport=transport) as client:
            client.config("oue128")
            queued = 2000 if args.quick else 10_000
            for i in range(queued):
                client.report("oue128", i % 128)
            started = time.perf_counter()
            result = client.flush(timeout=300)
            wall = time.perf_counter() - started
            assert result.accepted == queued and result.remaining == 0
            flush = {"reports": queued, "batches": result.requests, "seconds": wall, "reports_per_s": queued / wall}

    headline = cases["OUE k=128: report() (fresh report, fsync'd)"]
    verdict = "PASS" if headline["median_ms"] < TARGET_MS else "FAIL"
    data = {"machine": machine(), "n": n, "target_median_ms": TARGET_MS, "verdict": verdict, "report": cases}
    data["flush"] = flush
    rows = [
        [
            name,
            c["n"],
            f"{c['median_ms']:.3f}",
            f"{c['p90_ms']:.3f}",
            f"{c['p99_ms']:.3f}",
            f"{c.get('throughput_per_s', 1000 / c['mean_ms']):,.0f}",
        ]
        for name, c in cases.items()
    ]
    m = data["machine"]
    md = "\n\n".join(
        [
            "## Client runtime (report latency, flush throughput)",
            f"`python bench/bench_client.py{' --quick' if args.quick else ''}` — {m['date']}, {m['cpu']}, "
            f"{m['cores']} cores, Python {m['python']}, commit {m['commit']}.",
            "`report()` = budget check + perturbation (OS CSPRNG) + charge + outbox row in one SQLite "
            "`BEGIN IMMEDIATE` transaction, committed with `synchronous=FULL` (WAL fsync'd) before it returns; "
            "state_dir on the local disk; no network (the config is cached).",
            table(["case", "calls", "median ms", "p90 ms", "p99 ms", "calls/s"], rows),
            f"* {verdict} — `report()` median for OUE k = 128: {headline['median_ms']:.3f} ms "
            f"(target < {TARGET_MS:g} ms)\n"
            f"* `flush()`: {flush['reports']:,} reports in {flush['batches']} batches of ≤ 500 to an in-process "
            f"server that accepts everything: {flush['seconds']:.2f} s ({flush['reports_per_s']:,.0f} reports/s, "
            "client-side cost only).",
        ]
    )
    print(md)
    write_results("client", data, md)


if __name__ == "__main__":
    main()
