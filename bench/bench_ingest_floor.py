#!/usr/bin/env python3
"""What PostgreSQL alone allows the ingestion path: the project's own statements, replayed.

In one invocation, on the same machine, for the same duration each:

1. **COPY ceiling** — ``bench_ingest.run_ceiling``, exactly as ``bench/bench_ingest.py``
   measures it (the ratio in the acceptance of issue 20 is taken against it);
2. **the project's statements alone** — ``--writers`` processes (2, as gunicorn's workers)
   replay, transaction after transaction, the statements one real upload of ``--batch``
   reports sends: recorded from the project's own ``Bulk`` calls while ``Ingestor`` stores a
   real batch (OUE k = 128, every device new), ids made unique per transaction by replacing
   a marker, and the ledger block appended by ``ledger.append`` on the real chain head (so
   its hash is computed and the chain stays verifiable). No HTTP, no JSON, no validation, no
   device proof, no planning: only the database's work and the driver's;
3. the two ratios: statements-alone / COPY is what the project would reach if all of its
   Python cost nothing; and from the CPU measured, how many µs of server CPU per report a
   ratio of 0.85 leaves to everything else (HTTP, validation, planning, ledger lines) on
   this machine's two cores, against what the server spends now (``--server-us``, from
   ``bench/bench_ingest.py``'s last result when not given).

    python bench/bench_ingest_floor.py                 # 20 s each
    python bench/bench_ingest_floor.py --duration 30 --rounds 2

Writes ``bench/results/ingest_floor.json`` (``--no-write``: print only) and prints it.
Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    RESULTS,
    create_pg_database,
    drop_pg_database,
    git_commit,
    machine_busy,
    postgres_pids,
    process_cpu,
    run_ceiling,
)
from bench_ingest_inprocess import oue_collection_spec

MARKER = "ffffffff"  # in every report id and client id of the recorded batch; 8 characters
RECORDED = ("closed_epochs", "insert_new_devices", "insert_report_batches", "insert_partials")


def _unmark(value: Any, tag: str) -> Any:
    """``value`` with every MARKER replaced by ``tag`` (strings inside lists and tuples too)."""
    if isinstance(value, str):
        return value.replace(MARKER, tag) if MARKER in value else value
    if isinstance(value, list):
        return [_unmark(v, tag) for v in value]
    if isinstance(value, tuple):
        return tuple(_unmark(v, tag) for v in value)
    return value


def record_batch(url: str, batch: int, k: int) -> dict[str, Any]:
    """Store one real batch through ``Ingestor`` and record what it asked ``Bulk`` and
    ``ledger.append`` to do (the statements' arguments)."""
    from client_sdk import mechanisms
    from ldpserver.app import create_app
    from ldpserver.config import Settings
    from ldpserver.db import make_engine
    from ldpserver.services import bulk as bulk_module
    from ldpserver.services import ingest as ingest_module
    from ldpserver.services.keys import create_key

    engine = make_engine(url)
    now = datetime.now(UTC)
    _, admin = create_key(engine, "admin", "floor", now)
    app = create_app(Settings(database_url=url, log_level="WARNING"), engine=engine)
    spec = oue_collection_spec("floor", k)
    collection = app.test_client().post("/v1/collections", json=spec, headers={"Authorization": f"Bearer {admin}"})
    info = collection.get_json()
    runtime = app.extensions["ldp"].collections.get(info["id"])
    m = mechanisms.from_config(info["config"]["mechanism"])
    rng = np.random.default_rng(11)
    payloads = m.encode(m.perturb_batch(rng.integers(0, k, batch), rng=rng))
    raws = [
        {
            "report_id": MARKER + rng.bytes(12).hex(),
            "client_id": f"{MARKER}{i:06d}{rng.bytes(9).hex()}",
            "config_hash": info["config_hash"],
            "epoch": info["current_epoch"],
            "payload": payload,
        }
        for i, payload in enumerate(payloads)
    ]
    calls: list[tuple[str, tuple]] = []
    originals = {name: getattr(bulk_module.Bulk, name) for name in RECORDED}
    original_append = ingest_module.ledger.append

    def recorder(name: str):
        def recorded(self, *args):
            calls.append((name, args))
            return originals[name](self, *args)

        return recorded

    def append(bulk, collection_id, entries, when, lines=None):
        calls.append(("append", (collection_id, list(entries), when, lines)))
        return original_append(bulk, collection_id, entries, when, lines)

    for name in RECORDED:
        setattr(bulk_module.Bulk, name, recorder(name))
    ingest_module.ledger.append = append
    try:
        result = ingest_module.ingest(engine, runtime, raws, now, None)
    finally:
        for name in RECORDED:
            setattr(bulk_module.Bulk, name, originals[name])
        ingest_module.ledger.append = original_append
    engine.dispose()
    if result.accepted != batch or [name for name, _ in calls] != [*RECORDED, "append"]:
        raise RuntimeError(f"the recorded batch is not the common one: {result.accepted} accepted, {calls[:1]}")
    return {"collection_id": info["id"], "calls": calls}


def replay_writer(url: str, recorded: dict, writer: int, ready, start, stop_at, out) -> None:
    """Replay the recorded statements, one transaction per batch, until the deadline. ``writer``
    numbers this process across rounds too: its ids never meet another's (each device is new)."""
    from ldpserver.db import make_engine, write_transaction
    from ldpserver.services import ledger
    from ldpserver.services.bulk import Bulk

    engine = make_engine(url, pool_size=1)
    with engine.connect():  # connected before the start: its backend's CPU is counted
        pass
    # which arguments hold a marker (ids, texts of ids): only those are rewritten per batch
    calls = [(name, [(arg, MARKER in repr(arg)) for arg in args]) for name, args in recorded["calls"]]
    with ready.get_lock():
        ready.value += 1
    start.wait()
    done, cpu0 = 0, time.process_time()
    while time.time() < stop_at.value:
        tag = f"{writer:02x}{done:06x}"
        with write_transaction(engine) as conn:
            bulk = Bulk(conn)
            with bulk.pipeline():
                for name, args in calls[:-1]:
                    getattr(bulk, name)(*[_unmark(arg, tag) if marked else arg for arg, marked in args])
                collection_id, entries, when, lines = (arg for arg, _ in calls[-1][1])
                ledger.append(bulk, collection_id, entries, when, _unmark(lines, tag))
        done += 1
    out.put({"batches": done, "cpu_s": time.process_time() - cpu0})
    released_by = time.time() + 60
    while ready.value >= 0 and time.time() < released_by:  # the backend lives until its CPU is read
        time.sleep(0.05)
    engine.dispose()


def run_statements(
    url: str, database: str, recorded: dict, writers: int, duration: float, batch: int, round_: int
) -> dict:
    ctx = mp.get_context("fork")
    start, out, stop_at, ready = ctx.Event(), ctx.Queue(), ctx.Value("d", 0.0), ctx.Value("i", 0)
    stored_before = stored_devices(url, recorded["collection_id"])
    numbers = range(round_ * writers, (round_ + 1) * writers)  # unique across rounds: every device new
    procs = [ctx.Process(target=replay_writer, args=(url, recorded, w, ready, start, stop_at, out)) for w in numbers]
    for p in procs:
        p.start()
    connected_by = time.time() + 60
    while ready.value < writers and time.time() < connected_by:
        time.sleep(0.05)
    pids = postgres_pids(database)
    pg0 = {p: process_cpu(p) for p in pids}
    busy0, t0 = machine_busy(), time.time()
    stop_at.value = t0 + duration
    start.set()
    results = [out.get(timeout=duration + 120) for _ in procs]
    wall = time.time() - t0
    pg_cpu = sum(process_cpu(p) - pg0.get(p, 0.0) for p in postgres_pids(database))
    busy = machine_busy() - busy0
    ready.value = -1  # the writers may now disconnect
    for p in procs:
        p.join(timeout=30)
    reports = sum(r["batches"] for r in results) * batch
    stored = stored_devices(url, recorded["collection_id"]) - stored_before
    if stored != reports:
        raise RuntimeError(f"{reports} reports replayed but {stored} device rows stored")
    return {
        "writers": writers,
        "duration_s": round(wall, 2),
        "reports": reports,
        "reports_per_s": round(reports / wall, 1),
        "cpu_ms_per_1000_reports": {
            "writers": round(sum(r["cpu_s"] for r in results) / reports * 1e6, 2),
            "postgresql": round(pg_cpu / reports * 1e6, 2),
        },
        "machine_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 3),
    }


def stored_devices(url: str, collection_id: str) -> int:
    from sqlalchemy import text

    from ldpserver.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            sql = text("SELECT count(*) FROM device_budgets WHERE collection_id = :c")
            return int(conn.execute(sql, {"c": collection_id}).scalar_one())
    finally:
        engine.dispose()


def last_server_us() -> float | None:
    """Server CPU per report (µs) of bench/bench_ingest.py's last PostgreSQL result."""
    path = RESULTS / "ingest.json"
    if not path.exists():
        return None
    for result in json.loads(path.read_text()).get("results", []):
        if result.get("backend") == "postgresql":
            return float(result["cpu_ms_per_1000_reports"]["server"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each measurement (bounded)")
    parser.add_argument("--writers", type=int, default=2, help="replaying processes (gunicorn's 2 workers)")
    parser.add_argument("--ceiling-writers", type=int, default=2, help="concurrent COPY writers, as bench_ingest.py")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1, help="ceiling and statements alternated this many times")
    parser.add_argument("--server-us", type=float, help="server CPU µs per report now (default: ingest.json)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write bench/results")
    args = parser.parse_args()

    from ldpserver import schema

    name, url = create_pg_database()
    rounds = []
    try:
        schema.upgrade(url)
        recorded = record_batch(url, args.batch, args.k)
        ceiling_args = SimpleNamespace(
            duration=args.duration, batch=args.batch, k=args.k, ceiling_writers=args.ceiling_writers, sqlite_dir=None
        )
        if args.rounds * args.writers > 255:
            parser.error("rounds × writers must stay below 256 (each replaying process has its own id prefix)")
        for round_ in range(args.rounds):
            ceiling = run_ceiling("postgresql", ceiling_args)
            alone = run_statements(url, name, recorded, args.writers, args.duration, args.batch, round_)
            rounds.append({"ceiling": ceiling, "statements_alone": alone})
    finally:
        drop_pg_database(name)

    ceiling_rate = sum(r["ceiling"]["reports_per_s"] for r in rounds) / len(rounds)
    alone_rate = sum(r["statements_alone"]["reports_per_s"] for r in rounds) / len(rounds)
    alone_pg = sum(r["statements_alone"]["cpu_ms_per_1000_reports"]["postgresql"] for r in rounds) / len(rounds)
    alone_driver = sum(r["statements_alone"]["cpu_ms_per_1000_reports"]["writers"] for r in rounds) / len(rounds)
    cores = os.cpu_count() or 1
    # at 0.85 of the ceiling, with every core busy, each report may cost this much CPU in all
    budget_us = cores / (0.85 * ceiling_rate) * 1e6
    server_us = args.server_us if args.server_us is not None else last_server_us()
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "cpus": cores,
        "batch": args.batch,
        "rounds": rounds,
        "ceiling_reports_per_s": round(ceiling_rate, 1),
        "statements_alone_reports_per_s": round(alone_rate, 1),
        "statements_alone_ratio": round(alone_rate / ceiling_rate, 3),
        "cpu_us_per_report_at_0_85": round(budget_us, 2),
        "statements_alone_cpu_us_per_report": {"postgresql": round(alone_pg, 2), "driver": round(alone_driver, 2)},
        "left_for_the_rest_of_the_server_us": round(budget_us - alone_pg - alone_driver, 2),
        "server_us_now": server_us,
    }
    text = json.dumps(report, indent=2)
    print(text)
    print(
        f"statements alone {alone_rate:,.0f} reports/s, COPY {ceiling_rate:,.0f}/s: ratio {alone_rate / ceiling_rate:.3f}; "
        f"0.85 of COPY allows {budget_us:.1f} µs of CPU per report on {cores} cores, the statements take "
        f"{alone_pg:.1f} (PostgreSQL) + {alone_driver:.1f} (driver), leaving {report['left_for_the_rest_of_the_server_us']:.1f} "
        f"µs for HTTP, validation, planning and ledger lines"
        + (f" (the server spends {server_us:.1f} µs now, driver included)" if server_us is not None else "")
    )
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "ingest_floor.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
