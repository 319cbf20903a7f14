#!/usr/bin/env python3
"""Release benchmark: close, compact and release an epoch of 1,000,000 stored OUE reports (k = 128).

On a fresh PostgreSQL database (a uniquely named database on 127.0.0.1:5432, dropped
afterwards; ``--backend sqlite`` for a temporary file): ``ldp migrate``, one OUE
collection (k = 128, ε = 1, hourly epochs, grace 1, windows 1 and 24, cumulative,
min_reports 100, one report per device per epoch), then epoch 0 is filled:

* ``--mode ingest`` (default): through the ingestion service function
  (``ldpserver.services.ingest.ingest``), in batches of 1,000 perturbed reports from
  1,000 distinct devices — exactly what ``POST /reports`` stores: report rows, device
  budgets, ledger rows and one ``epoch_partials`` row per batch;
* ``--mode partials``: only the ``epoch_partials`` rows ingestion would write (one per
  batch of 1,000: the SDK aggregate of the batch), for a quick run.

Then the clock moves past the grace period and the scheduler's function releases the
epoch (``release_due``: close_epoch, read and merge the 1,000 partials, the cumulative and
window rows, the counter step, every scope's estimates and Norm-Sub, the canonical JSON
body and its hash, one write transaction). The timed figure is that call. The release is
checked against the SDK's estimate of the same reports, and re-read through the API.

Afterwards ``--epochs`` further epochs (10 partial rows each) are released one by one, to
show that the release time does not grow with the collection's age (compaction: the
cumulative and window scopes read O(1) stored rows).

    python bench/bench_release.py                    # 1e6 reports through ingestion, PostgreSQL
    python bench/bench_release.py --mode partials    # quicker: partial rows only
    python bench/bench_release.py --quick            # 100,000 reports, partial rows

Writes ``bench/results/release.json`` and ``bench/results/release.md`` (another size, mode or
backend: ``release_<backend>_<mode>_<reports>.{json,md}``); prints the JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine, table, write_results  # noqa: E402

from client_sdk import mechanisms  # noqa: E402
from ldpserver import schema  # noqa: E402
from ldpserver.clock import FakeClock  # noqa: E402
from ldpserver.db import make_engine, write_transaction  # noqa: E402
from ldpserver.models import EpochPartial  # noqa: E402
from ldpserver.schemas.collections import CollectionCreate  # noqa: E402
from ldpserver.services import releases as service  # noqa: E402
from ldpserver.services.collections import CollectionCache, create_collection  # noqa: E402
from ldpserver.services.ingest import ingest  # noqa: E402

PG_ADMIN_URL = os.environ.get("LDP_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2025, 1, 1, tzinfo=UTC)
K = 128
BATCH = 1000


@contextmanager
def database(backend: str):
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    import psycopg

    name = f"ldp_bench_release_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def zipf_values(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, K + 1) ** 1.1
    return rng.choice(K, size=n, p=weights / weights.sum())


def fill_epoch(engine, collection, m, clock, epoch: int, n: int, mode: str, seed: int) -> tuple[object, float]:
    """Store n reports for ``epoch``; returns (the SDK aggregate of all of them, seconds)."""
    rng = np.random.default_rng(seed)
    total = m.empty_aggregate()
    clock.set(START + timedelta(hours=epoch, minutes=30))
    elapsed = 0.0
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        batch = m.perturb_batch(zipf_values(size, rng), rng=rng)
        payloads = m.encode(batch)
        total = total + m.aggregate(batch)
        t0 = time.perf_counter()
        for b in range(0, size, BATCH):
            chunk = payloads[b : b + BATCH]
            if mode == "ingest":
                raws = [
                    {
                        "report_id": secrets.token_hex(16),
                        "client_id": f"e{epoch}-{start + b + i}",
                        "config_hash": collection.config_hash,
                        "epoch": epoch,
                        "payload": payload,
                    }
                    for i, payload in enumerate(chunk)
                ]
                result = ingest(engine, collection, raws, clock(), None)  # operator load: no devices
                assert result.accepted == len(chunk), result.to_dict()["results"][:3]
            else:
                agg_n, data = collection.protocol.aggregate_json(m.decode(chunk))
                with write_transaction(engine) as conn:
                    conn.execute(
                        EpochPartial.__table__.insert().values(
                            collection_id=collection.id, epoch=epoch, n=agg_n, aggregate=data, created_at=clock()
                        )
                    )
        elapsed += time.perf_counter() - t0
        print(f"  epoch {epoch}: {start + size:,} / {n:,} reports stored", file=sys.stderr, flush=True)
    return total, elapsed


class Timer:
    """Wraps the release's read + compute phases ("plan") and its write transaction to time them."""

    PHASES = {"read_inputs": "plan", "compute": "plan", "write": "write"}

    def __init__(self) -> None:
        self.plan: list[float] = []
        self.write: list[float] = []
        self._originals = {name: getattr(service, name) for name in self.PHASES}
        self._pending = 0.0

    def _wrap(self, name: str):
        original = self._originals[name]

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                if name == "read_inputs":
                    self._pending = elapsed
                elif name == "compute":
                    self.plan.append(self._pending + elapsed)
                else:
                    self.write.append(elapsed)

        return timed

    def __enter__(self) -> Timer:
        for name in self.PHASES:
            setattr(service, name, self._wrap(name))
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self._originals.items():
            setattr(service, name, original)


def run(args: argparse.Namespace) -> dict:
    with database(args.backend) as url:
        schema.upgrade(url)
        engine = make_engine(url, pool_size=4, max_overflow=4)
        clock = FakeClock(START + timedelta(minutes=30))
        spec = {
            "name": "bench release",
            "kind": "frequency",
            "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": K},
            "epoch": {"seconds": 3600, "start": "2025-01-01T00:00:00Z", "grace": 1},
            "release": {"windows": [1, 24], "cumulative": True, "min_reports": 100},
            "budget": {"cap_lifetime": 1000.0, "cap_per_window": 1.0, "window_epochs": 1},
        }
        created = create_collection(engine, CollectionCreate.model_validate(spec), "bench", clock())
        collection = CollectionCache(engine).get(created["id"])
        m = mechanisms.from_config(collection.config["mechanism"])

        print(f"storing {args.reports:,} reports ({args.mode}) ...", file=sys.stderr, flush=True)
        reference, store_seconds = fill_epoch(engine, collection, m, clock, 0, args.reports, args.mode, seed=1)

        clock.set(START + timedelta(hours=2, minutes=5))  # current 2 > 0 + grace: epoch 0 is due
        with Timer() as timer:
            t0 = time.perf_counter()
            outcome = service.release_due(engine, collection, clock())
            release_seconds = time.perf_counter() - t0
        assert outcome.created == [1], outcome
        print(f"release of epoch 0: {release_seconds:.3f} s", file=sys.stderr, flush=True)

        # the release equals the SDK on the same reports, and re-reads byte for byte through the API
        from ldpserver.app import create_app
        from ldpserver.config import Settings
        from ldpserver.services.keys import create_key

        app = create_app(Settings(database_url=url, log_level="WARNING"), clock=clock, engine=engine)
        _, key = create_key(engine, "analyst", "bench", clock())
        client = app.test_client()
        t0 = time.perf_counter()
        response = client.get(f"/v1/collections/{collection.id}/releases/1", headers={"Authorization": f"Bearer {key}"})
        read_seconds = time.perf_counter() - t0
        assert response.status_code == 200
        assert hashlib.sha256(response.data).hexdigest() == outcome.releases[0]["sha256"]
        body = json.loads(response.data)
        own = next(s for s in body["scopes"] if s["scope"] == "epoch")
        expected = m.estimate(reference)
        # releases carry central noise (docs/releases.md): the published frequencies differ from the
        # SDK's exact estimate by that noise, within the published variance (which includes it)
        published = np.asarray(own["estimates"]["frequencies"])
        max_diff = float(np.max(np.abs(published - expected.frequencies)))
        max_z = float(np.max(np.abs(published - expected.frequencies) / np.sqrt(own["estimates"]["variance"])))
        assert max_z <= 6.0, (max_diff, max_z)
        with engine.connect() as conn:
            partial_rows = conn.execute(
                EpochPartial.__table__.select().where(EpochPartial.__table__.c.collection_id == collection.id)
            ).all()
        assert sum(r.n for r in partial_rows) == args.reports

        # a collection that keeps running: later epochs release in the same time
        later: list[float] = []
        for epoch in range(1, args.epochs + 1):
            fill_epoch(engine, collection, m, clock, epoch, 10 * BATCH, "partials", seed=100 + epoch)
            clock.set(START + timedelta(hours=epoch + 2, minutes=5))
            t0 = time.perf_counter()
            assert service.release_due(engine, collection, clock()).created == [epoch + 1]
            later.append(time.perf_counter() - t0)
        engine.dispose()

    return {
        "backend": args.backend,
        "mode": args.mode,
        "reports": args.reports,
        "k": K,
        "batch": BATCH,
        "partials": len(partial_rows),
        "store_seconds": round(store_seconds, 2),
        "store_reports_per_second": round(args.reports / store_seconds),
        "release_seconds": round(release_seconds, 3),
        "release_read_compute_seconds": round(sum(timer.plan), 3),
        "release_write_seconds": round(sum(timer.write), 3),
        "release_close_and_rest_seconds": round(release_seconds - sum(timer.plan) - sum(timer.write), 3),
        "reread_seconds": round(read_seconds, 4),
        "body_bytes": len(response.data),
        "max_abs_diff_vs_sdk": max_diff,
        "max_diff_in_published_sd": round(max_z, 3),
        "later_epochs": args.epochs,
        "later_release_seconds": {
            "first_5": [round(x, 4) for x in later[:5]],
            "last_5": [round(x, 4) for x in later[-5:]],
            "median": round(statistics.median(later), 4) if later else None,
            "max": round(max(later), 4) if later else None,
        },
        "goal": "release of an epoch of 1,000,000 stored OUE reports (k = 128) under 5 s on PostgreSQL",
        "machine": machine(),
    }


def markdown(r: dict, command: str) -> str:
    mc = r["machine"]
    how = (
        "through the ingestion service function (`services.ingest.ingest`) in batches of 1,000 reports from "
        "distinct devices: report rows, device budgets, ledger rows and one `epoch_partials` row per batch"
        if r["mode"] == "ingest"
        else "as the `epoch_partials` rows ingestion writes (one SDK aggregate per batch of 1,000 reports)"
    )
    later = r["later_release_seconds"]
    rows = [
        ["reports in the epoch", f"{r['reports']:,} (OUE, k = {r['k']}, ε = 1)"],
        ["partial aggregates merged", f"{r['partials']:,}"],
        ["**release of the epoch (close + compact + estimate + write)**", f"**{r['release_seconds']:.3f} s**"],
        ["— read partials, merge, counter, estimates, body", f"{r['release_read_compute_seconds']:.3f} s"],
        ["— write transaction (aggregate row, stream, release)", f"{r['release_write_seconds']:.3f} s"],
        ["— close_epoch and the rest", f"{r['release_close_and_rest_seconds']:.3f} s"],
        ["re-read `GET /releases/1` (byte-identical, hash checked)", f"{r['reread_seconds'] * 1000:.1f} ms"],
        ["release document", f"{r['body_bytes']:,} bytes"],
        ["largest difference published vs SDK frequency (central noise)", f"{r['max_abs_diff_vs_sdk']:.1e}"],
        ["— in published standard deviations", f"{r.get('max_diff_in_published_sd', 0):.2f}"],
        [
            "storing the reports (not part of the release)",
            f"{r['store_seconds']:.1f} s ({r['store_reports_per_second']:,} reports/s)",
        ],
        [
            f"later releases, epochs 1..{r['later_epochs']} (window 24 fills up)",
            f"median {later['median']:.3f} s, max {later['max']:.3f} s; first {later['first_5']}, last {later['last_5']}",
        ],
    ]
    return f"""## Continual release

`{command}` — {mc["date"]}, {mc["cpu"]}, {mc["cores"]} cores, Python {mc["python"]}, commit {mc["commit"]}, {r["backend"]}.
Goal: {r["goal"]}. The epoch's reports were stored {how}. The timed call is the scheduler's
`release_due` after the grace period: `close_epoch`, merging the epoch's partials into one compacted row,
cumulative = previous cumulative + epoch, window = cumulative(e) − cumulative(e − 24), the participation
counter's step (OpenDP noise), every scope's estimates with 95 % intervals and Norm-Sub, the canonical JSON
body and its SHA-256, and one write transaction. Details: `docs/releases.md`.

{table(["measure", "value"], rows)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--mode", choices=["ingest", "partials"], default="ingest")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=30, help="later epochs released one by one")
    parser.add_argument("--quick", action="store_true", help="100,000 reports as partial rows, 10 later epochs")
    args = parser.parse_args()
    if args.quick:
        args.mode, args.reports, args.epochs = "partials", 100_000, 10
    result = run(args)
    command = "python bench/bench_release.py " + " ".join(sys.argv[1:])
    print(json.dumps(result, indent=2))
    # the default run (10^6 reports through ingestion, PostgreSQL) is release.{json,md}; others get their own name
    default = (args.mode, args.reports, args.backend) == ("ingest", 1_000_000, "postgresql") and not args.quick
    name = "release" if default else f"release_{args.backend}_{args.mode}_{args.reports}"
    write_results(name, result, markdown(result, command.strip()))
    return 0 if result["release_seconds"] < 5.0 or args.backend != "postgresql" else 1


if __name__ == "__main__":
    sys.exit(main())
