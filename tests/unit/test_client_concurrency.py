"""The device ledger under concurrency: threads of one Client, and several processes on one
state_dir, never spend past the cap (BEGIN IMMEDIATE serialises check-and-charge)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from client_sdk.client import Client, DeviceBudgetExceededError
from client_sdk.client.store import DB_NAME
from tests.unit.test_client_runtime import OUE, FakeServer, make_client, public_config

REPO = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, sys
from datetime import UTC, datetime
from client_sdk.client import Client, DeviceBudgetExceededError
from client_sdk.client.store import DB_NAME
state_dir, n = sys.argv[1], int(sys.argv[2])
clock = lambda: datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)
ok = refused = 0
with Client("http://127.0.0.1:9", None, state_dir, clock=clock) as client:   # config from the cache
    for i in range(n):
        try:
            client.report("c1", i % 128)
            ok += 1
        except DeviceBudgetExceededError:
            refused += 1
print(json.dumps({"ok": ok, "refused": refused}))
"""


def test_threads_never_overspend(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.add("c1", public_config(OUE, cap_lifetime=150.0))
    client = make_client(fake, tmp_path)
    client.config("c1")
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(25):
            try:
                rid = client.report("c1", i).report_id
            except DeviceBudgetExceededError:
                rid = "refused"
            with lock:
                outcomes.append(rid)

    threads = [threading.Thread(target=work) for _ in range(8)]
    flusher = threading.Thread(target=lambda: [client.flush(timeout=5) for _ in range(5)])
    for t in [*threads, flusher]:
        t.start()
    for t in [*threads, flusher]:
        t.join()
    client.flush(timeout=5)
    ids = [o for o in outcomes if o != "refused"]
    assert len(ids) == 150 and len(set(ids)) == 150 and outcomes.count("refused") == 50
    assert sorted(fake.accepted) == sorted(ids)
    b = client.budget("c1")
    assert b.lifetime.units == 150 and b.acknowledged == 150.0
    client.close()


def test_processes_sharing_a_state_dir_never_overspend(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.add("c1", public_config(OUE, cap_lifetime=100.0))
    with make_client(fake, tmp_path) as client:
        client.config("c1")  # cache the config; the workers have no server
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), "45"], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(3)
    ]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(r["ok"] for r in results) == 100 and sum(r["refused"] for r in results) == 35
    with Client("http://127.0.0.1:9", None, str(tmp_path)) as client:
        assert client.pending("c1") == 100 and client.budget("c1").lifetime.units == 100


STREAM = r"""
import sys
from datetime import UTC, datetime
from client_sdk.client import Client
clock = lambda: datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)
with Client("http://127.0.0.1:9", None, sys.argv[1], clock=clock) as client:
    i = 0
    while True:
        client.report("c1", i % 128)
        i += 1
        if i % 100 == 0:
            print(i, flush=True)
"""


def test_sigkill_in_the_middle_of_reporting_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.add("c1", public_config(OUE, cap_lifetime=1e6))
    with make_client(fake, tmp_path) as client:
        client.config("c1")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", STREAM, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    while int(child.stdout.readline()) < 300:
        pass
    os.kill(child.pid, signal.SIGKILL)  # most likely inside a transaction
    child.wait(10)
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    queued = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    charged = db.execute("SELECT COUNT(*), COALESCE(SUM(units), 0) FROM charges").fetchone()
    units, reports = db.execute("SELECT units, reports FROM budget WHERE collection_id = 'c1'").fetchone()
    db.close()
    assert queued >= 300 and charged == (queued, queued) and units == reports == queued
    with make_client(fake, tmp_path) as client:  # and the device carries on, delivering everything
        client.report("c1", 1)
        assert client.flush(timeout=10).accepted == queued + 1


def test_a_dead_flushers_lease_is_taken_over(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path) as client:
        client.report("c1", 1)
        db = sqlite3.connect(tmp_path / DB_NAME)
        alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        try:
            far = time.time() + 3600
            db.execute("INSERT INTO flush_leases VALUES ('c1', ?, ?)", (f"{alive.pid}:x", far))
            db.commit()
            blocked = client.flush(timeout=5)
            assert blocked.remaining == 1 and "another process" in blocked.errors[0]
            db.execute("UPDATE flush_leases SET owner = ?", (f"{dead.pid}:x",))
            db.commit()
            assert client.flush(timeout=5).accepted == 1
        finally:
            alive.kill()
            alive.wait()
            db.close()
