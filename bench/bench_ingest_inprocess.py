#!/usr/bin/env python3
"""In-process ingestion timing: the server's own Python CPU per 1,000 reports, no HTTP server.

A fresh database (PostgreSQL: a uniquely named database on 127.0.0.1:5432, dropped
afterwards; SQLite: a temporary file), ``ldp migrate``, keys, one OUE collection (k = 128,
ε = 1, a per-window cap) and enrolled devices; then the Flask test client posts
pre-encoded batches of 1,000 reports (each from a new device, with its secret) to
``/v1/collections/{id}/reports``, as the load generator of ``bench/bench_ingest.py`` does.
Every answer must accept the whole batch. It prints this process's CPU per 1,000 reports
(``time.process_time``: request parsing, validation, device proof, planning, statement
building, the driver and the response — everything but the database server's own work)
the garbage collector's share of it, and the wall time per batch; ``--profile`` adds a cProfile of the timed batches (top
functions by own time), ``--stages`` the median wall time per batch of each stage
(:data:`STAGES`: validation, planning, the transaction up to COMMIT and its statements).

    python bench/bench_ingest_inprocess.py --backend postgresql --batches 30
    python bench/bench_ingest_inprocess.py --backend postgresql --batches 10 --profile
    python bench/bench_ingest_inprocess.py --backend sqlite --batches 40 --stages
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import ACCEPTED, create_pg_database, drop_pg_database, make_bodies, postgres_pids, process_cpu

#: stages of the ingestion path timed by ``--stages`` (those the build under test has; an earlier
#: build has some under other names), as (module, class or None, function)
STAGES = [
    ("ldpserver.bodies", None, "nesting_depth"),
    ("ldpserver.bodies", None, "_parse"),
    ("ldpserver.services.ingest", "Ingestor", "_validate"),
    ("ldpserver.services.ingest", None, "well_formed"),
    ("ldpserver.services.ingest", None, "prove"),
    ("ldpserver.services.ingest", "Ingestor", "_check_payloads"),
    ("ldpserver.services.ingest", None, "payload_texts"),
    ("ldpserver.services.ingest", None, "stage"),
    ("ldpserver.services.ingest", "Ingestor", "_plan_new"),
    ("ldpserver.services.ingest", "Ingestor", "_transaction"),
    ("ldpserver.services.ingest", None, "plan_new_singles"),
    ("ldpserver.services.ledger", None, "charge_lines"),
    *(
        ("ldpserver.services.bulk", "Bulk", name)
        for name in (
            "closed_epochs",
            "insert_new_devices",
            "lock_devices",
            "write_devices",
            "update_devices",
            "insert_report_batches",
            "insert_partials",
            "lock_head",
            "append_block",
        )
    ),  # fmt: skip
    ("sqlalchemy.engine.base", "Connection", "_commit_impl"),
]


def oue_collection_spec(name: str, k: int) -> dict:
    """The benchmarks' collection: OUE over ``k`` items, ε = 1, daily epochs, a per-window cap."""
    return {
        "name": name,
        "kind": "frequency",
        "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": k},
        "epoch": {"seconds": 86400, "grace": 1},
        "budget": {"cap_lifetime": 10.0, "cap_per_window": 2.0},
    }


def time_stages() -> dict[str, list[float]]:
    """Wrap the :data:`STAGES` this build has with wall-clock timers (this process only);
    returns the seconds of each call by stage, filled as the batches run. ``_transaction``
    is the time inside the transaction up to COMMIT (on SQLite: inside the write lock)."""
    import functools
    import importlib

    spent: dict[str, list[float]] = {}
    for module_name, owner_name, name in STAGES:
        module = importlib.import_module(module_name)
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name, None)
        if original is None:
            continue
        calls = spent.setdefault(name.lstrip("_") if name == "_commit_impl" else name, [])

        @functools.wraps(original)
        def timed(*args, _original=original, _calls=calls, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                _calls.append(time.perf_counter() - started)

        setattr(owner, name, timed)
    return spent


def run(
    backend: str,
    batches: int,
    warmup: int,
    batch: int,
    k: int,
    profile: bool,
    no_device_key: bool = False,
    stages: bool = False,
) -> dict:
    from ldpserver import schema
    from ldpserver.app import create_app
    from ldpserver.config import Settings
    from ldpserver.db import make_engine
    from ldpserver.heap import settle_heap
    from ldpserver.services.keys import KeyLimits, create_key

    pg_name = None
    tmpdir = Path(tempfile.mkdtemp(prefix="ldp-inproc-"))
    try:
        if backend == "postgresql":
            pg_name, url = create_pg_database()
        else:
            url = f"sqlite:///{tmpdir / 'inproc.sqlite3'}"
        schema.upgrade(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        _, admin = create_key(engine, "admin", "bench", now)
        unlimited = KeyLimits(max_devices=10**9, enrol_per_hour=10**9, enrol_per_address_hour=10**9)
        _, client_key = create_key(engine, "client", "bench", now, limits=unlimited)
        # tagged device secrets (LDP_DEVICE_KEY), as bench_ingest.py's server and production run
        device_key = None if no_device_key else secrets.token_urlsafe(32)
        app = create_app(Settings(database_url=url, log_level="WARNING", device_key=device_key), engine=engine)
        client = app.test_client()
        spec = oue_collection_spec("inprocess", k)
        collection = client.post("/v1/collections", json=spec, headers={"Authorization": f"Bearer {admin}"}).get_json()
        total = warmup + batches
        devices: list[tuple[str, str]] = []
        auth = {"Authorization": f"Bearer {client_key}"}
        while len(devices) < total * batch:
            answer = client.post("/v1/devices", json={"count": 1000}, headers=auth).get_json()
            devices += [(d["client_id"], d["device_secret"]) for d in answer["devices"]]
        bodies = make_bodies(
            collection["config"]["mechanism"], collection["config_hash"], collection["current_epoch"], total, batch, 3,
            devices,
        )  # fmt: skip
        url_path = f"/v1/collections/{collection['id']}/reports"
        headers = {**auth, "Content-Type": "application/json"}

        def post(body: bytes) -> None:
            response = client.post(url_path, data=body, headers=headers)
            # the head of the answer only (as the load generator reads it): this process's CPU is the server's
            head = ACCEPTED.match(response.data[:40]) if response.status_code == 200 else None
            if head is None or int(head.group(1)) != batch:
                raise RuntimeError(f"batch not wholly accepted: {response.status_code} {response.data[:300]!r}")

        for body in bodies[:warmup]:
            post(body)
        settle_heap()  # as ldpserver/wsgi.py does after building the app
        collections = {"count": 0, "cpu_s": 0.0, "started": 0.0}  # the garbage collector's share of the CPU

        def on_collection(phase: str, info: dict) -> None:
            if phase == "start":
                collections["started"] = time.process_time()
            else:
                collections["count"] += 1
                collections["cpu_s"] += time.process_time() - collections["started"]

        gc.callbacks.append(on_collection)
        spent = time_stages() if stages else {}
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU time, not waits
        walls = []
        pg_pids = postgres_pids(pg_name) if pg_name else []  # its backends, WAL writer, checkpointer
        pg0 = {pid: process_cpu(pid) for pid in pg_pids}
        cpu0 = time.process_time()
        if profiler:
            profiler.enable()
        for body in bodies[warmup:]:
            t0 = time.perf_counter()
            post(body)
            walls.append(time.perf_counter() - t0)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu0
        pg_cpu = sum(process_cpu(pid) - cpu_then for pid, cpu_then in pg0.items())
        gc.callbacks.remove(on_collection)
        if profiler:
            pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(45)
        return {
            "backend": backend,
            "batches": batches,
            "batch": batch,
            "profiled": profile,
            "device_key": not no_device_key,
            "cpu_ms_per_1000_reports": round(cpu / (batches * batch) * 1e6, 2),
            "postgresql_cpu_ms_per_1000_reports": round(pg_cpu / (batches * batch) * 1e6, 2) if pg_name else None,
            "gc_ms_per_1000_reports": round(collections["cpu_s"] / (batches * batch) * 1e6, 2),
            "gc_collections": collections["count"],
            "wall_ms_per_batch_median": round(statistics.median(walls) * 1e3, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            **(
                {"stage_wall_ms_median": {n: round(statistics.median(v) * 1e3, 2) for n, v in spent.items() if v}}
                if stages
                else {}
            ),
        }
    finally:
        if pg_name:
            drop_pg_database(pg_name)
        shutil.rmtree(tmpdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--batches", type=int, default=30, help="timed batches")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--profile", action="store_true", help="cProfile the timed batches")
    parser.add_argument("--no-device-key", action="store_true", help="no LDP_DEVICE_KEY: devices looked up")
    parser.add_argument(
        "--stages", action="store_true", help="median wall ms per batch of each stage (timers around them)"
    )
    args = parser.parse_args()
    np.random.seed(0)
    result = run(args.backend, args.batches, args.warmup, args.batch, args.k, args.profile, args.no_device_key,
                 args.stages)  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
