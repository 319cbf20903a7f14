"""Budget safety under load: many devices, uploads racing across two gunicorn workers, PostgreSQL.

Every device appears once in every batch, and eight clients send their batches at the
same time, so each device's charge is contended by both worker processes (and several
database connections) at once. With ε = 1 and a lifetime cap of 5, each device must end
with exactly 5 accepted reports: no overspend (the cap holds) and no lost acceptance
(every refusal is ``budget_exceeded_lifetime`` only once the cap is reached).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.service.helpers import make_reports
from tests.system.ops_helpers import provision
from tests.system.test_faults import Uploader, _record, check_invariants, create_collection, gunicorn, pg_database

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

DEVICES, CAP, CLIENTS, ROUNDS = 300, 5, 8, 8


def test_racing_uploads_across_workers_never_overspend(tmp_path):
    with pg_database(tmp_path) as db, gunicorn(tmp_path, db.url, workers=2) as server:
        col = create_collection(server.url, db.keys["admin"], epsilon=1.0, cap=float(CAP))
        devices = [f"race-{i}" for i in range(DEVICES)]
        provision(db.url, db.keys["client"], devices)
        up = Uploader(server.url, db.keys["client"], col)
        barrier = threading.Barrier(CLIENTS)
        failures: list[BaseException] = []
        deadline = time.monotonic() + 150

        def client(c: int) -> None:
            try:
                with httpx.Client(timeout=60) as http:
                    for r in range(ROUNDS):
                        batch = make_reports(col, DEVICES, client_ids=devices, seed=c * 100 + r)
                        barrier.wait(timeout=60)  # every round starts together: maximal contention
                        up.post_until_ok(http, batch, deadline)
            except BaseException as exc:
                failures.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert not failures, failures
        result = check_invariants(db, server.url, up, cap_reports=CAP)
        # the cap is reached exactly: nobody over, nobody refused early
        assert result["acknowledged"] == result["stored"] == DEVICES * CAP
        assert set(up.rejected.values()) == {"budget_exceeded_lifetime"}
        assert result["max_reports_per_device"] == CAP
        result.update(devices=DEVICES, racing_clients=CLIENTS, attempts_per_device=CLIENTS * ROUNDS, workers=2)
        _record(result)


@pytest.mark.timeout(180)
def test_short_load_run_has_no_errors_and_stores_every_acknowledged_report():
    """The CI version of ``bench/bench_load.py`` (the 5-minute run is a bench script): 8 s of
    sustained ingestion and 8 s of the mixed workload; the script exits non-zero when
    acknowledged ≠ stored or the ledger does not verify."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.service.conftest import require_postgres

    require_postgres()
    root = Path(__file__).resolve().parents[2]
    script = str(root / "bench" / "bench_load.py")
    done = subprocess.run(
        [sys.executable, script, "--duration", "8", "--mixed-duration", "8", "--no-write"],
        cwd=root, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| sustained | upload |" in done.stdout
    for line in done.stdout.splitlines():
        if line.startswith("| ") and "| upload |" in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[-1] == "0" and cells[-2] == "0", line  # no errors, no 5xx on uploads
    _record({"short_load_run": "ok", "table": [ln for ln in done.stdout.splitlines() if ln.startswith("| ")]})
