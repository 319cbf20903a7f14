#!/usr/bin/env python3
"""Device credentials: enrolment throughput and the per-batch proof check, SQLite and PostgreSQL.

Every upload proves, for each device it reports for, that it holds the device's secret
(``ldpserver/services/devices.py``): with ``LDP_DEVICE_KEY`` set, a tag check per device and
no query (``prove()``); else, and for secrets without a valid tag, one SHA-256 per distinct
device and one query (per 1,000 ids on SQLite). This measures both in process — ``prove()``
with the key and ``verify()`` (the look-up) for a batch of 1,000 distinct enrolled devices
(the ingestion benchmark's batch), right secrets and wrong ones — next to the enrolment
service (``enrol()``, 1,000 devices per call, as the demo's
relay and ``bench_ingest.py`` enrol). A fresh database per backend (PostgreSQL: a
uniquely named database on 127.0.0.1:5432, dropped afterwards).

    python bench/bench_devices.py                 # both backends, 20,000 devices, 50 batches
    python bench/bench_devices.py --quick         # 5,000 devices, 20 batches

Writes ``bench/results/devices.json`` and ``bench/results/devices.md``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import create_pg_database, drop_pg_database  # noqa: E402
from common import machine, table, write_results  # noqa: E402

BATCH = 1000


def run_backend(backend: str, devices: int, batches: int) -> dict:
    from ldpserver import schema
    from ldpserver.config import Settings
    from ldpserver.db import make_engine, read_transaction
    from ldpserver.services.devices import DeviceProof, enrol, prove, verify
    from ldpserver.services.keys import KeyLimits, Principal, create_key

    pg_name = None
    if backend == "postgresql":
        pg_name, url = create_pg_database()
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ldp-devices-')) / 'bench.sqlite3'}"
    try:
        schema.upgrade(url)
        engine = make_engine(url)
        limits = KeyLimits(10**9, 10**9, 10**9)
        key_id, _ = create_key(
            engine, "client", "bench", datetime.now(UTC), limits=limits
        )  # enrolment counts on its row
        principal = Principal(key_id, "client", "bench", None, limits)
        settings = Settings(database_url=url, device_key="bench-device-key-" + "k" * 32)  # type: ignore[arg-type]
        key = settings.device_key_bytes
        made = []
        t0 = time.perf_counter()
        for start in range(0, devices, BATCH):
            made += enrol(
                engine, principal, min(BATCH, devices - start), "192.0.2.1", datetime.now(UTC), settings, None
            )
        enrol_s = time.perf_counter() - t0

        rng = random.Random(7)
        right, wrong, tagged = [], [], []
        for _ in range(batches):
            chosen = rng.sample(made, BATCH)
            good = DeviceProof(principal.key_id, {d.client_id: d.device_secret for d in chosen})
            bad = DeviceProof(principal.key_id, {d.client_id: d.device_secret[::-1] for d in chosen})
            for proof, samples, expect in ((good, right, BATCH), (bad, wrong, 0)):
                t = time.perf_counter()
                with read_transaction(engine) as conn:
                    ok = verify(conn, proof, proof.secrets.keys())
                samples.append(time.perf_counter() - t)
                assert len(ok) == expect
            t = time.perf_counter()
            assert len(prove(engine, good, good.secrets.keys(), key)) == BATCH
            tagged.append(time.perf_counter() - t)
        engine.dispose()
    finally:
        if pg_name:
            drop_pg_database(pg_name)

    def ms(samples: list[float], q: float) -> float:
        s = sorted(samples)
        return round(s[min(int(q * len(s)), len(s) - 1)] * 1000, 2)

    return {
        "backend": backend,
        "devices_enrolled": devices,
        "enrol_devices_per_s": round(devices / enrol_s),
        "verify_batches": batches,
        "verify_ms_per_1000_devices": {
            "right_median": round(statistics.median(right) * 1000, 2),
            "right_p99": ms(right, 0.99),
            "wrong_median": round(statistics.median(wrong) * 1000, 2),
            "tagged_median": round(statistics.median(tagged) * 1000, 2),
        },
    }


def markdown(data: dict) -> str:
    m = data["machine"]
    rows = [
        [
            r["backend"],
            f"{r['devices_enrolled']:,}",
            f"{r['enrol_devices_per_s']:,}",
            f"{r['verify_ms_per_1000_devices']['right_median']:.1f} ms",
            f"{r['verify_ms_per_1000_devices']['right_p99']:.1f} ms",
            f"{r['verify_ms_per_1000_devices']['wrong_median']:.1f} ms",
            f"{r['verify_ms_per_1000_devices']['tagged_median']:.2f} ms",
        ]
        for r in data["results"]
    ]
    return "\n".join(
        [
            "## Device credentials (enrolment, per-batch proof)",
            "",
            f"{m['date']} · {m['cpu']} · {m['cores']} cores · Python {m['python']} · commit {m['commit']} · "
            f"{data['note']}",
            "",
            "Every upload proves each device's secret (`ldpserver/services/devices.py`): with `LDP_DEVICE_KEY` "
            "set, by the tag its secret carries, no query (`prove()`); else one SHA-256 per distinct device and "
            "one query (PostgreSQL `= ANY(array)`; SQLite per 1,000 ids; `verify()`, also what a secret without "
            "a valid tag gets). Timed in process for a batch of 1,000 distinct enrolled devices (median over the "
            "batches), and `enrol()` 1,000 devices per call (with the key: tagged secrets).",
            "",
            table(
                [
                    "backend",
                    "devices enrolled",
                    "enrolment devices/s",
                    "verify 1,000 devices (median)",
                    "p99",
                    "wrong secrets (median)",
                    "tagged, with LDP_DEVICE_KEY (median)",
                ],
                rows,
            ),  # fmt: skip
            "",
            "Reproduce: `python bench/bench_devices.py` (`--quick` for a smaller run).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 devices and 20 batches")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--note", default="", help="e.g. 'machine shared with other work'")
    args = parser.parse_args()
    devices, batches = (5_000, 20) if args.quick else (20_000, 50)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    data = {
        "machine": machine(),
        "note": args.note or "quiet machine",
        "results": [run_backend(b, devices, batches) for b in backends],
    }
    for r in data["results"]:
        print(r)
    write_results("devices", data, markdown(data))


if __name__ == "__main__":
    main()
