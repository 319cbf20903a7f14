#!/usr/bin/env python3
"""Load test: gunicorn + PostgreSQL on loopback, sustained ingestion and a mixed workload.

Phase 1, **sustained ingestion** (``--duration``, default 300 s): ``--clients`` processes
(httpx, one keep-alive connection each) post batches of ``--batch`` fresh reports (new
report ids and devices every batch, built on the fly from pre-encoded payloads) as fast
as the server answers — the highest rate the machine holds with this many clients.

Phase 2, **mixed workload** (``--mixed-duration``, default 60 s) on a collection with
10-second epochs, so epochs close all the time: upload processes (batches of 100 into
the current epoch), an analyst process (list collections, list releases, read the latest
release's estimates and the time series), an auditor process (summary), and an admin
process asking for a release of every due epoch every 2 s.

For every operation: count, errors (transport errors and unexpected statuses; 5xx are
listed apart), throughput and p50/p99 latency. Afterwards: reports stored = reports
acknowledged, ledger chain verifies (``/v1/audit/verify``).

    python bench/bench_load.py                                 # 300 s + 60 s
    python bench/bench_load.py --duration 60 --mixed-duration 30
    python bench/bench_load.py --duration 5 --mixed-duration 5 --no-write   # CI smoke (test_budget_race.py)

Writes ``bench/results/load.json`` and ``bench/results/load.md``. Loopback only; every loop
is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import create_pg_database, drop_pg_database, free_port  # noqa: E402
from common import machine, table, write_results  # noqa: E402

ACCEPTED = re.compile(rb'^\{"accepted":(\d+),"duplicates":(\d+),"rejected":(\d+)')


def payload_fragments(config: dict, count: int, seed: int) -> list[str]:
    from client_sdk import mechanisms

    m = mechanisms.from_config(config)
    rng = np.random.default_rng(seed)
    payloads = m.encode(m.perturb_batch(rng.integers(0, m.domain_size, size=count), rng=rng))
    return [json.dumps(p, separators=(",", ":")) for p in payloads]


def batch_body(fragments: list[str], config_hash: str, epoch: int, devices: list[dict[str, str]], offset: int) -> bytes:
    """One report from each enrolled device, with the devices' secrets (``devices``)."""
    parts, proof = [], []
    for i, device in enumerate(devices):
        payload = fragments[(offset + i) % len(fragments)]
        parts.append(
            f'{{"report_id":"{os.urandom(16).hex()}","client_id":"{device["client_id"]}",'
            f'"config_hash":"{config_hash}","epoch":{epoch},"payload":{payload}}}'
        )
        proof.append(f'"{device["client_id"]}":"{device["device_secret"]}"')
    return ('{"wire":2,"reports":[' + ",".join(parts) + '],"devices":{' + ",".join(proof) + "}}").encode()


def _record(stats: dict, op: str, latency: float, ok: bool, status: int | None) -> None:
    entry = stats.setdefault(op, {"latencies": [], "errors": 0, "server_errors": 0, "count": 0})
    entry["count"] += 1
    entry["latencies"].append(latency)
    if not ok:
        entry["errors"] += 1
        if status is None or status >= 500:
            entry["server_errors"] += 1


def uploader(base, key, col, size, stop_at, out, tag, epoch_of) -> None:
    import httpx

    fragments = payload_fragments(col["config"]["mechanism"], 4096, seed=hash(tag) % 2**31)
    url = f"{base}/v1/collections/{col['id']}/reports"
    stats: dict = {}
    accepted = duplicates = rejected = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(headers=headers, timeout=120.0) as client:
        b = 0
        while time.time() < stop_at:
            # every batch comes from new devices, which enrol first (POST /v1/devices, one request)
            t0 = time.perf_counter()
            try:
                e = client.post(f"{base}/v1/devices", json={"count": size})
                enrolled = e.status_code == 201
            except Exception:  # counted as an error
                e, enrolled = None, False
            _record(stats, "enrol", time.perf_counter() - t0, enrolled, e.status_code if e is not None else None)
            if not enrolled:
                continue
            body = batch_body(fragments, col["config_hash"], epoch_of(), e.json()["devices"], b * size)
            b += 1
            t0 = time.perf_counter()
            try:
                r = client.post(url, content=body)
                status = r.status_code
            except Exception:  # counted as an error
                status, r = None, None
            head = ACCEPTED.match(r.content[:80]) if status == 200 else None
            _record(stats, "upload", time.perf_counter() - t0, head is not None, status)
            if head is not None:
                accepted += int(head.group(1))
                duplicates += int(head.group(2))
                rejected += int(head.group(3))
    out.put({"stats": stats, "accepted": accepted, "duplicates": duplicates, "rejected": rejected})


def reader(base, keys, col, stop_at, out, role) -> None:
    import httpx

    stats: dict = {}
    cid = col["id"]
    with httpx.Client(timeout=60.0) as client:
        while time.time() < stop_at:
            if role == "analyst":
                ops = [("list_collections", "GET", "/v1/collections", None, {200}),
                       ("list_releases", "GET", f"/v1/collections/{cid}/releases", None, {200}),
                       ("estimates", "GET", f"/v1/collections/{cid}/estimates", None, {200, 404}),
                       ("timeseries", "GET", f"/v1/collections/{cid}/timeseries?item=3", None, {200, 404})]  # fmt: skip
            elif role == "auditor":
                ops = [("audit_summary", "GET", "/v1/audit/summary", None, {200})]
            else:
                ops = [("release", "POST", f"/v1/collections/{cid}/releases", {}, {200, 201})]
            for name, method, path, body, good in ops:
                params = {"collection": cid} if path.startswith("/v1/audit") else None
                t0 = time.perf_counter()
                try:
                    r = client.request(method, base + path, json=body, params=params,
                                       headers={"Authorization": f"Bearer {keys[role]}"})  # fmt: skip
                    status = r.status_code
                except Exception:
                    status = None
                _record(stats, name, time.perf_counter() - t0, status in good, status)
            if role == "admin":
                time.sleep(2.0)
    out.put({"stats": stats})


def summarise(results: list[dict], seconds: float) -> dict:
    merged: dict = {}
    for res in results:
        for op, e in res["stats"].items():
            m = merged.setdefault(op, {"latencies": [], "errors": 0, "server_errors": 0, "count": 0})
            m["latencies"] += e["latencies"]
            m["errors"] += e["errors"]
            m["server_errors"] += e["server_errors"]
            m["count"] += e["count"]
    out = {}
    for op, m in sorted(merged.items()):
        lat = np.asarray(m["latencies"]) * 1000
        out[op] = {
            "requests": m["count"],
            "per_s": round(m["count"] / seconds, 2),
            "errors": m["errors"],
            "server_errors": m["server_errors"],
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        }
    return out


def run_phase(ctx, targets: list[tuple], seconds: float) -> tuple[list[dict], float]:
    """targets: (function, arguments before (stop_at, out), arguments after); fork start (closures are fine)."""
    out = ctx.Queue()
    stop_at = time.time() + seconds + 1.0
    procs = [ctx.Process(target=fn, args=(*before, stop_at, out, *after)) for fn, before, after in targets]
    t0 = time.time()
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(30)
    return results, time.time() - t0 - 1.0


def stored_count(url: str, cid: str) -> int:
    from ldpserver.db import make_engine
    from ldpserver.services import report_batches

    engine = make_engine(url, null_pool=True)
    with engine.connect() as conn:
        n = report_batches.stored_count(conn, cid)
    engine.dispose()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=300.0, help="sustained ingestion, seconds")
    ap.add_argument("--mixed-duration", type=float, default=60.0, help="mixed workload, seconds")
    ap.add_argument("--clients", type=int, default=2, help="upload processes in the sustained phase")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--k", type=int, default=128, help="OUE domain size")
    ap.add_argument("--no-write", action="store_true", help="print only (the CI smoke run): keep bench/results")
    args = ap.parse_args()

    import httpx

    from ldpserver import schema
    from ldpserver.db import make_engine
    from ldpserver.services.keys import KeyLimits, create_key

    pg_name, url = create_pg_database()
    tmpdir = Path(tempfile.mkdtemp(prefix="ldp-load-"))
    server = None
    try:
        schema.upgrade(url)
        engine = make_engine(url, null_pool=True)
        now = datetime.now(UTC)
        unlimited = KeyLimits(max_devices=10**9, enrol_per_hour=10**9, enrol_per_address_hour=10**9)  # one address
        keys = {
            role: create_key(engine, role, "load", now, limits=unlimited if role == "client" else None)[1]
            for role in ("client", "analyst", "auditor", "admin")
        }
        engine.dispose()
        port = free_port()
        env = dict(os.environ, DATABASE_URL=url, LDP_LOG_LEVEL="WARNING", LDP_BIND=f"127.0.0.1:{port}",
                   LDP_WORKERS=str(args.workers), WEB_CONCURRENCY=str(args.workers), LDP_WORKER_TIMEOUT="120")  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log_path = tmpdir / "gunicorn.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "ldpserver.wsgi:app"],
            cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not become ready; see {log_path}")
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        mech = {"mechanism": "oue", "epsilon": 1.0, "domain_size": args.k}
        spec = {"name": "sustained", "kind": "frequency", "mechanism": mech, "epoch": {"seconds": 86400, "grace": 1},
                "budget": {"cap_lifetime": 10.0}}  # fmt: skip
        sustained = httpx.post(f"{base}/v1/collections", json=spec, headers=admin, timeout=30).json()
        start = datetime.fromtimestamp((int(time.time()) // 10) * 10, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec = {"name": "mixed", "kind": "frequency", "mechanism": mech,
                "epoch": {"seconds": 10, "grace": 1, "start": start},
                "release": {"windows": [1, 6], "min_reports": 1}, "budget": {"cap_lifetime": 10.0}}  # fmt: skip
        r = httpx.post(f"{base}/v1/collections", json=spec, headers=admin, timeout=30)
        assert r.status_code == 201, r.text
        mixed = r.json()
        epoch0 = datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()

        ctx = mp.get_context("fork")
        fixed_epoch = sustained["current_epoch"]
        # --- phase 1 ---
        print(f"sustained ingestion: {args.duration:.0f} s, {args.clients} clients × batches of {args.batch}")
        targets = [(uploader, (base, keys["client"], sustained, args.batch), (f"s{c}", lambda: fixed_epoch))
                   for c in range(args.clients)]  # fmt: skip
        res1, secs1 = run_phase(ctx, targets, args.duration)
        acc1 = sum(r["accepted"] for r in res1)
        stored1 = stored_count(url, sustained["id"])
        phase1 = {
            "seconds": round(secs1, 1),
            "clients": args.clients,
            "batch": args.batch,
            "reports_acknowledged": acc1,
            "reports_stored": stored1,
            "reports_per_s": round(acc1 / secs1, 1),
            "rejected": sum(r["rejected"] for r in res1),
            "ops": summarise(res1, secs1),
        }
        print(json.dumps(phase1, indent=2))
        # --- phase 2 ---
        print(f"mixed workload: {args.mixed_duration:.0f} s")

        def epoch_now() -> int:
            return int((time.time() - epoch0) // 10)

        targets = [(uploader, (base, keys["client"], mixed, 100), (f"m{c}", epoch_now)) for c in range(2)]
        targets += [(reader, (base, keys, mixed), (role,)) for role in ("analyst", "auditor", "admin")]
        res2, secs2 = run_phase(ctx, targets, args.mixed_duration)
        acc2 = sum(r.get("accepted", 0) for r in res2)
        stored2 = stored_count(url, mixed["id"])
        # the chain check goes through the API, as an auditor's would: each answer walks for
        # about 20 s and hands back a cursor, so millions of rows never meet the worker timeout
        verify_s = time.perf_counter()
        auditor = {"Authorization": f"Bearer {keys['auditor']}"}
        verified, verify_answers, longest_answer = True, 0, 0.0
        for c in (sustained, mixed):
            cursor = None
            while verify_answers < 10_000:
                t_answer = time.perf_counter()
                params = {"collection": c["id"], **({"cursor": cursor} if cursor else {})}
                body = httpx.get(f"{base}/v1/audit/verify", params=params, headers=auditor, timeout=120).json()
                longest_answer = max(longest_answer, time.perf_counter() - t_answer)
                verify_answers += 1
                verified = verified and body["ok"]
                cursor = body["next_cursor"]
                if body["complete"]:
                    break
            else:
                verified = False
        verify_s = time.perf_counter() - verify_s
        releases = httpx.get(f"{base}/v1/collections/{mixed['id']}/releases", headers=admin, timeout=60).json()
        phase2 = {
            "seconds": round(secs2, 1),
            "reports_acknowledged": acc2,
            "reports_stored": stored2,
            "rejected": sum(r.get("rejected", 0) for r in res2),
            "releases_published": len(releases.get("items", [])),
            "ops": summarise(res2, secs2),
        }
        print(json.dumps(phase2, indent=2))
        data = {"machine": machine(), "workers": args.workers, "sustained": phase1, "mixed": phase2,
                "ledger_verified": verified, "verify_seconds": round(verify_s, 1),
                "verify_answers": verify_answers, "verify_longest_answer_s": round(longest_answer, 1)}  # fmt: skip
        rows = [["sustained", op, o["requests"], o["per_s"], o["p50_ms"], o["p99_ms"], o["errors"], o["server_errors"]]
                for op, o in phase1["ops"].items()]  # fmt: skip
        rows += [["mixed", op, o["requests"], o["per_s"], o["p50_ms"], o["p99_ms"], o["errors"], o["server_errors"]]
                 for op, o in phase2["ops"].items()]  # fmt: skip
        md = (
            f"## Load (gunicorn {args.workers} sync workers + PostgreSQL, loopback)\n\n"
            f"{data['machine']['date']}, {data['machine']['cpu']}, {data['machine']['cores']} cores (shared), "
            f"Python {data['machine']['python']}, commit {data['machine']['commit']}.\n\n"
            f"Sustained ingestion: {phase1['seconds']} s, {args.clients} client processes × batches of {args.batch}: "
            f"**{phase1['reports_per_s']:,} reports/s**; acknowledged {acc1:,}, stored {stored1:,}.\n"
            f"Mixed workload: {phase2['seconds']} s; reports acknowledged {acc2:,}, stored {stored2:,}; "
            f"{phase2['releases_published']} releases published. Ledger chains verify (`GET /v1/audit/verify`, {verify_answers} answers, longest {longest_answer:.0f} s, {verify_s:.0f} s in all): {verified}.\n\n"
            + table(["phase", "operation", "requests", "req/s", "p50 ms", "p99 ms", "errors", "5xx"], rows)
        )
        if args.no_write:
            print(md)
        else:
            write_results("load", data, md)
        ok = acc1 == stored1 and acc2 == stored2 and verified
        sys.exit(0 if ok else 1)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        drop_pg_database(pg_name)


if __name__ == "__main__":
    main()
