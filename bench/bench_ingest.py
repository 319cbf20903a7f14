#!/usr/bin/env python3
"""Ingestion benchmark: gunicorn (2 sync workers) on PostgreSQL and on SQLite.

For each backend: a fresh database (PostgreSQL: a uniquely named database on
127.0.0.1:5432, dropped afterwards; SQLite: a temporary file), ``ldp migrate``, keys, one
OUE collection (k = 128, ε = 1), then gunicorn on a loopback port and a multi-process
load generator (httpx, one keep-alive client per process) posting batches of 1,000
pre-generated reports (``perturb_batch`` + ``encode`` + JSON bodies built before timing)
for a bounded time. Afterwards it counts what is durable — report rows, ledger rows,
the sum of the epoch partials' n — checks that all equal the acknowledged count, and
verifies the ledger chain.

    python bench/bench_ingest.py                       # both backends, 20 s each
    python bench/bench_ingest.py --backend postgresql --duration 30 --clients 4

Writes ``bench/results/ingest.json`` and ``bench/results/ingest.md``; prints the JSON.
Traffic goes to 127.0.0.1 only; every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("LDP_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- CPU accounting (Linux /proc) ------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after "(comm)", starting at field 3


def process_cpu(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0  # utime + stime


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def postgres_pids(database: str | None) -> list[int]:
    """Backends of the bench database plus the server's WAL writer, checkpointer and bgwriter."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and (
            (database and f" {database} " in cmd) or any(w in cmd for w in ("walwriter", "checkpointer", "writer"))
        ):
            out.append(int(entry.name))
    return out


def machine_busy() -> float:
    """CPU-seconds the whole machine has been busy (all tenants)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICK


# --- databases ------------------------------------------------------------------------
def create_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"ldp_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- load generator -------------------------------------------------------------------
def enrol_devices(base: str, key: str, count: int, per_request: int = 1000) -> list[tuple[str, str]]:
    """Enrol ``count`` devices through the API (before timing): (client_id, device secret)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(n: int) -> list[tuple[str, str]]:
        r = httpx.post(f"{base}/v1/devices", json={"count": n}, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        r.raise_for_status()
        return [(d["client_id"], d["device_secret"]) for d in r.json()["devices"]]

    sizes = [min(per_request, count - s) for s in range(0, count, per_request)]
    with ThreadPoolExecutor(4) as pool:
        return [d for chunk in pool.map(one, sizes) for d in chunk]


def make_bodies(
    config: dict,
    config_hash: str,
    epoch: int,
    batches: int,
    batch_size: int,
    seed: int,
    devices: list[tuple[str, str]],
) -> list[bytes]:
    """Batches of ``batch_size`` reports, each from another enrolled device, with their secrets."""
    from client_sdk import mechanisms

    m = mechanisms.from_config(config)
    rng = np.random.default_rng(seed)
    bodies = []
    for b in range(batches):
        values = rng.integers(0, m.domain_size, size=batch_size)
        payloads = m.encode(m.perturb_batch(values, rng=rng))
        mine = devices[b * batch_size : (b + 1) * batch_size]
        reports = [
            {
                "report_id": rng.bytes(16).hex(),
                "client_id": mine[i][0],
                "config_hash": config_hash,
                "epoch": epoch,
                "payload": payload,
            }
            for i, payload in enumerate(payloads)
        ]
        body = {"wire": 2, "reports": reports, "devices": dict(mine)}
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


ACCEPTED = re.compile(rb'^\{"accepted":(\d+),')


def load_worker(url: str, key: str, bodies: list[bytes], start: mp.Event, stop_at: mp.Value, out: mp.Queue) -> None:
    """Post pre-built bodies until the deadline; the count is read from the head of the answer
    (``{"accepted": n, ...}``) rather than by parsing 100 kB of results, to spare the CPU the
    server shares with the load generator."""
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies, accepted, errors, sent = [], 0, 0, 0
    with httpx.Client(headers=headers, timeout=60.0) as client:
        start.wait()
        cpu0 = time.process_time()
        for body in bodies:
            if time.time() >= stop_at.value:
                break
            t0 = time.perf_counter()
            response = client.post(url, content=body)
            latencies.append(time.perf_counter() - t0)
            sent += 1
            head = ACCEPTED.match(response.content[:40]) if response.status_code == 200 else None
            if head is not None:
                accepted += int(head.group(1))
            else:
                errors += 1
                if errors <= 3:
                    print(f"batch refused: {response.status_code} {response.text[:300]}", file=sys.stderr)
        cpu = time.process_time() - cpu0
    out.put({"latencies": latencies, "accepted": accepted, "errors": errors, "batches": sent, "cpu_s": cpu})


# --- one backend ----------------------------------------------------------------------
def run_backend(backend: str, args: argparse.Namespace) -> dict:
    import httpx

    from ldpserver import schema
    from ldpserver.db import make_engine
    from ldpserver.services.keys import KeyLimits, create_key

    pg_name = None
    tmpdir = Path(tempfile.mkdtemp(prefix="ldp-bench-"))
    if backend == "postgresql":
        pg_name, url = create_pg_database()
    else:
        url = f"sqlite:///{tmpdir / 'bench.sqlite3'}"
    server = None
    try:
        schema.upgrade(url)
        engine = make_engine(url, null_pool=True)
        now = datetime.now(UTC)
        _, admin = create_key(engine, "admin", "bench", now)
        unlimited = KeyLimits(max_devices=10**9, enrol_per_hour=10**9, enrol_per_address_hour=10**9)  # one address
        _, client_key = create_key(engine, "client", "bench", now, limits=unlimited)

        port = free_port()
        env = dict(os.environ, DATABASE_URL=url, LDP_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
        log_path = tmpdir / "gunicorn.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
             "--timeout", "120", "ldpserver.wsgi:app"],
            cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not become ready; see {log_path}")

        spec = {
            "name": "bench",
            "kind": "frequency",
            "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": args.k},
            "epoch": {"seconds": 86400, "grace": 1},
            "budget": {"cap_lifetime": 10.0, "cap_per_window": 2.0},
        }
        r = httpx.post(f"{base}/v1/collections", json=spec, headers={"Authorization": f"Bearer {admin}"})
        r.raise_for_status()
        collection = r.json()

        per_client = max(1, int(args.max_rate * args.duration / args.batch / args.clients) + 1)
        t_enrol = time.perf_counter()
        per_gen = per_client * args.batch
        devices = enrol_devices(base, client_key, per_gen * args.clients)
        enrolment_s = time.perf_counter() - t_enrol
        t_gen = time.perf_counter()
        with mp.get_context("fork").Pool(min(args.clients, os.cpu_count() or 1)) as pool:
            bodies = pool.starmap(
                make_bodies,
                [
                    (collection["config"]["mechanism"], collection["config_hash"], collection["current_epoch"],
                     per_client, args.batch, 1000 * (backend == "sqlite") + c,
                     devices[c * per_gen : (c + 1) * per_gen])
                    for c in range(args.clients)
                ],
            )  # fmt: skip
        del devices
        generation_s = time.perf_counter() - t_gen

        ctx = mp.get_context("fork")
        start, out = ctx.Event(), ctx.Queue()
        stop_at = ctx.Value("d", 0.0)
        procs = [
            ctx.Process(target=load_worker, args=(f"{base}/v1/collections/{collection['id']}/reports", client_key,
                                                  bodies[c], start, stop_at, out))
            for c in range(args.clients)
        ]  # fmt: skip
        for p in procs:
            p.start()
        del bodies
        time.sleep(0.5)
        server_pids = [server.pid, *children_of(server.pid)]
        pg_pids = postgres_pids(pg_name) if pg_name else []
        cpu_server0 = sum(process_cpu(p) for p in server_pids)
        cpu_pg0 = {p: process_cpu(p) for p in pg_pids}
        busy0 = machine_busy()
        t0 = time.time()
        stop_at.value = t0 + args.duration
        start.set()
        results = [out.get(timeout=args.duration + 300) for _ in procs]
        wall = time.time() - t0
        busy = machine_busy() - busy0
        cpu_server = sum(process_cpu(p) for p in server_pids) - cpu_server0
        pg_now = postgres_pids(pg_name) if pg_name else []
        cpu_pg = sum(process_cpu(p) - cpu_pg0.get(p, 0.0) for p in pg_now)
        for p in procs:
            p.join(timeout=30)

        latencies = np.array([x for r in results for x in r["latencies"]])
        acknowledged = sum(r["accepted"] for r in results)
        batches = sum(r["batches"] for r in results)
        errors = sum(r["errors"] for r in results)

        # durability: count what the database holds after the run
        from sqlalchemy import func, select

        from ldpserver.models import EpochPartial, LedgerEntry, Report
        from ldpserver.services.ledger import verify_all

        with engine.connect() as conn:
            stored = conn.execute(
                select(func.count()).select_from(Report).where(Report.collection_id == collection["id"])
            ).scalar_one()
            ledger_rows = conn.execute(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.collection_id == collection["id"])
            ).scalar_one()
            partial_n = conn.execute(
                select(func.coalesce(func.sum(EpochPartial.n), 0)).where(EpochPartial.collection_id == collection["id"])
            ).scalar_one()
            chain = verify_all(conn, collection["id"])[0]
        engine.dispose()
        return {
            "backend": backend,
            "duration_s": round(wall, 2),
            "batches": batches,
            "batch_size": args.batch,
            "errors": errors,
            "acknowledged_reports": acknowledged,
            "reports_per_s": round(acknowledged / wall, 1),
            "latency_ms": {
                "p50": round(float(np.percentile(latencies, 50)) * 1000, 1) if latencies.size else None,
                "p99": round(float(np.percentile(latencies, 99)) * 1000, 1) if latencies.size else None,
                "max": round(float(latencies.max()) * 1000, 1) if latencies.size else None,
            },
            "durable": {
                "report_rows": int(stored),
                "ledger_rows": int(ledger_rows),
                "aggregated_n": int(partial_n),
                "all_match": int(stored) == int(ledger_rows) == int(partial_n) == acknowledged,
                "ledger_chain_ok": chain.ok,
            },
            "payload_generation_s": round(generation_s, 1),
            "enrolment_s": round(enrolment_s, 1),
            "devices_enrolled": per_gen * args.clients,
            "cpu_seconds": {
                "server": round(cpu_server, 1),
                "postgresql": round(cpu_pg, 1) if pg_name else None,
                "load_generator": round(sum(r["cpu_s"] for r in results), 1),
                "machine_busy": round(busy, 1),
                "machine_capacity": round(wall * (os.cpu_count() or 1), 1),
            },
            "cpu_ms_per_1000_reports": {
                "server": round(cpu_server / max(acknowledged, 1) * 1e6, 1),
                "postgresql": round(cpu_pg / max(acknowledged, 1) * 1e6, 1) if pg_name else None,
                "load_generator": round(sum(r["cpu_s"] for r in results) / max(acknowledged, 1) * 1e6, 1),
            },
            # CPU the machine spent on other tenants' processes during the run
            "cpu_seconds_other_tenants": round(
                max(0.0, busy - cpu_server - cpu_pg - sum(r["cpu_s"] for r in results)), 1
            ),
            # what the whole machine could ingest at this CPU cost per report (server + database)
            "projected_reports_per_s_whole_machine": round(
                (os.cpu_count() or 1) / max((cpu_server + cpu_pg) / max(acknowledged, 1), 1e-12)
            ),
        }
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if pg_name:
            drop_pg_database(pg_name)
        shutil.rmtree(tmpdir, ignore_errors=True)


def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# Ingestion benchmark",
        "",
        f"{report['date']} · {report['machine']['cpus']} CPUs ({report['machine']['processor']}) · "
        f"Python {report['machine']['python']} · gunicorn {report['settings']['workers']} sync workers · "
        f"{report['settings']['clients']} load-generator processes (httpx, loopback) · batches of "
        f"{report['settings']['batch']} OUE reports (k = {report['settings']['k']}, ε = 1) · "
        f"{report['settings']['duration_s']} s per backend. Load generator, server and database share the machine.",
        "",
        "| backend | accepted reports/s | batches | p50 batch latency | p99 batch latency | durable rows = acknowledged "
        "| ledger chain | CPU ms per 1,000 reports (server / PostgreSQL / load generator) "
        "| CPU-s used by other tenants (of capacity) | projected reports/s, whole machine |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: |",
    ]
    for r in report["results"]:
        d = r["durable"]
        lines.append(
            f"| {r['backend']} | {r['reports_per_s']:,.0f} | {r['batches']} | {r['latency_ms']['p50']} ms | "
            f"{r['latency_ms']['p99']} ms | {'yes' if d['all_match'] else 'NO'} ({d['report_rows']:,} reports, "
            f"{d['ledger_rows']:,} ledger rows, n = {d['aggregated_n']:,}) | {'ok' if d['ledger_chain_ok'] else 'BROKEN'} "
            f"| {r['cpu_ms_per_1000_reports']['server']} / {r['cpu_ms_per_1000_reports']['postgresql'] or '-'} / "
            f"{r['cpu_ms_per_1000_reports']['load_generator']} "
            f"| {r['cpu_seconds_other_tenants']} of {r['cpu_seconds']['machine_capacity']} "
            f"| {r['projected_reports_per_s_whole_machine']:,} |"
        )
    lines += [
        "",
        "Durable = rows counted in the database after the run (reports, ledger rows, and the summed n of "
        "the epoch aggregates) equal to the reports the server acknowledged; the ledger chain is verified. "
        "CPU is read from /proc for the gunicorn master and workers, the benchmark database's PostgreSQL "
        "backends (plus its WAL writer, checkpointer and background writer) and the load generator; the "
        "machine is shared, and the CPU other tenants used during the run is shown. The projection divides "
        "the machine's cores by the measured server + database CPU per report: the throughput this build "
        "would reach with the machine to itself (the load generator's own small share aside).",
        "",
        "Reproduce: `python bench/bench_ingest.py` (see its docstring for options).",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per backend (bounded)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--max-rate", type=float, default=40_000, help="reports/s to pre-generate for")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write bench/results")
    args = parser.parse_args()
    if args.duration > 600:
        parser.error("--duration is capped at 600 s")
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    report = {
        "benchmark": "ingest",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "workers": args.workers,
            "clients": args.clients,
            "batch": args.batch,
            "k": args.k,
            "duration_s": args.duration,
        },
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "ingest.json").write_text(json.dumps(report, indent=2) + "\n")
        write_markdown(report, RESULTS / "ingest.md")
    return 0 if all(r["durable"]["all_match"] and r["durable"]["ledger_chain_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
