"""Fault injection against the real deployment shape: gunicorn (2 sync workers) on PostgreSQL.

Every test runs on 127.0.0.1 only and is bounded in time. Faults:

(a) SIGKILL of one gunicorn worker while several clients upload concurrently;
(b) a PostgreSQL "restart": every server connection is cut, and new ones are refused for
    a moment, by a TCP proxy (:class:`TcpProxy`) between the app and the shared
    PostgreSQL server — the shared server itself is never stopped, other suites use it;
(c) a client that times out and retries a batch that the server had in fact committed;
(d) a release process SIGKILLed half way through writing a release.

After each: every acknowledged report (``accepted`` or ``duplicate`` in a 200 answer) is
stored exactly once, nothing else is stored, the ledger chain verifies, no device is over
its cap and the service answers again. Clients retry the same batch (same report ids) on
connection errors and 5xx answers, as the SDK does.

The helpers here (``pg_database``, ``Gunicorn``, ``Uploader``, ``check_invariants``) are
reused by ``test_budget_race.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("flask")

from sqlalchemy import func, select

from ldpserver import schema
from ldpserver.db import make_engine
from ldpserver.models import DeviceBudget
from ldpserver.models_release import Release
from ldpserver.services.audit import charges_of
from ldpserver.services.keys import create_key
from ldpserver.services.report_batches import stored_count, stored_reports
from tests.service.conftest import fresh_database, require_postgres
from tests.service.helpers import make_reports
from tests.system.ops_helpers import proof, provision

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a private PostgreSQL database with keys ----------------------------------------------------
@dataclass
class Database:
    url: str
    keys: dict[str, str]

    def via(self, port: int) -> str:
        """The same database reached through 127.0.0.1:<port> (the TCP proxy)."""
        return self.url.replace(f"{PG_HOST}:{PG_PORT}", f"{PG_HOST}:{port}")


@contextlib.contextmanager
def pg_database(tmp_path: Path) -> Iterator[Database]:
    require_postgres()
    with fresh_database("postgresql", tmp_path) as url:
        schema.upgrade(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        keys = {role: create_key(engine, role, f"faults {role}", now)[1] for role in ("client", "auditor", "admin")}
        engine.dispose()
        yield Database(url, keys)


# --- a TCP proxy that can simulate a PostgreSQL restart -----------------------------------------
class TcpProxy:
    """127.0.0.1:<port> → PostgreSQL. ``restart(down)`` cuts every open connection (as a
    server restart does) and refuses new ones for ``down`` seconds."""

    def __init__(self, upstream: tuple[str, int] = (PG_HOST, PG_PORT)) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.accepting = True
        self.stopped = False
        self.cuts = 0
        self.thread = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.accepting:
                conn.close()  # "the database system is starting up"
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:
                conn.close()
                continue
            with self.lock:
                self.sockets.update((conn, up))
            for src, dst in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
                with self.lock:
                    self.sockets.discard(s)

    def cut_all(self) -> int:
        with self.lock:
            victims = list(self.sockets)
            self.sockets.clear()
        for s in victims:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.cuts += len(victims) // 2
        return len(victims) // 2

    def restart(self, down: float) -> int:
        self.accepting = False
        cut = self.cut_all()
        time.sleep(down)
        self.accepting = True
        return cut

    def close(self) -> None:
        self.stopped = True
        self.cut_all()
        self.listener.close()
        self.thread.join(timeout=5)


# --- gunicorn -----------------------------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return out


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py ldpserver.wsgi:app`` with N sync workers on a loopback port."""

    def __init__(self, workdir: Path, database_url: str, workers: int = 2, **env: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=database_url,
            LDP_LOG_LEVEL="WARNING",
            LDP_BIND=f"127.0.0.1:{self.port}",
            LDP_WORKERS=str(workers),
            WEB_CONCURRENCY=str(workers),
            LDP_GRACEFUL_TIMEOUT="3",
            PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        self.env.update(env)
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "ldpserver.wsgi:app"]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 40.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200 and len(self.worker_pids()) >= 1:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn did not answer: {self.log_path.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return children_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def gunicorn(workdir: Path, database_url: str, workers: int = 2, **env: str) -> Iterator[Gunicorn]:
    server = Gunicorn(workdir, database_url, workers, **env).start()
    try:
        yield server
    finally:
        server.stop()


def create_collection(url: str, admin_key: str, epsilon: float = 1.0, cap: float = 3.0) -> dict[str, Any]:
    body = {
        "name": "faults",
        "kind": "frequency",
        "mechanism": {"mechanism": "oue", "epsilon": epsilon, "domain_size": 16},
        "epoch": {"seconds": 86400, "grace": 1},
        "release": {"windows": [1], "min_reports": 1},
        "budget": {"cap_lifetime": cap},
    }
    r = httpx.post(url + "/v1/collections", json=body, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


# --- uploading clients that retry ---------------------------------------------------------------
@dataclass
class Uploader:
    """Threads posting batches; each batch is retried (same ids) until it gets a 200."""

    url: str
    key: str
    collection: dict[str, Any]
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    errors: list[str] = field(default_factory=list)  # attempts that failed (then retried)
    server_errors: int = 0
    batches_done: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post_until_ok(self, client: httpx.Client, batch: list[dict[str, Any]], deadline: float) -> None:
        with self.lock:
            self.sent.update(r["report_id"] for r in batch)
        path = f"{self.url}/v1/collections/{self.collection['id']}/reports"
        attempt = 0
        while True:
            attempt += 1
            assert time.monotonic() < deadline, "a batch could not be delivered before the deadline"
            t0 = time.perf_counter()
            try:
                body = {"wire": 2, "reports": batch, "devices": proof(self.key, batch)}
                r = client.post(path, json=body, headers={"Authorization": f"Bearer {self.key}"})
            except httpx.HTTPError as exc:
                with self.lock:
                    self.retries += 1
                    self.errors.append(type(exc).__name__)
                time.sleep(min(0.05 * attempt, 0.5))
                continue
            if r.status_code >= 500 or r.status_code == 429:
                with self.lock:
                    self.retries += 1
                    self.server_errors += 1
                    self.errors.append(str(r.status_code))
                time.sleep(min(0.05 * attempt, 0.5))
                continue
            assert r.status_code == 200, r.text
            body = r.json()
            with self.lock:
                self.latencies.append(time.perf_counter() - t0)
                self.batches_done += 1
                for item in body["results"]:
                    if item["status"] in ("accepted", "duplicate"):
                        self.acknowledged.add(item["report_id"])
                    else:
                        self.rejected[item["report_id"]] = item["reason"]
            return

    def run(
        self,
        threads: int,
        batches_per_thread: int,
        batch_size: int,
        devices: list[str],
        timeout: float = 120.0,
        until: threading.Event | None = None,
    ) -> None:
        """Each thread sends ``batches_per_thread`` batches — or, with ``until``, keeps sending
        (new batches) until the event is set, at most ten times as many."""
        deadline = time.monotonic() + timeout
        failures: list[BaseException] = []

        def work(t: int) -> None:
            try:
                with httpx.Client(timeout=20) as client:
                    limit = batches_per_thread * (10 if until is not None else 1)
                    for b in range(limit):
                        if until is not None and b >= batches_per_thread and until.is_set():
                            break
                        ids = [devices[(t * 7919 + b * batch_size + i) % len(devices)] for i in range(batch_size)]
                        batch = make_reports(self.collection, batch_size, client_ids=ids, seed=t * 1000 + b)
                        self.post_until_ok(client, batch, deadline)
            except BaseException as exc:  # reported below
                failures.append(exc)

        pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join(timeout=max(1.0, deadline - time.monotonic() + 5))
        assert not any(th.is_alive() for th in pool), "uploader threads did not finish"
        assert not failures, failures


# --- the invariants -----------------------------------------------------------------------------
def check_invariants(db: Database, url: str, up: Uploader, cap_reports: int) -> dict[str, Any]:
    """Acknowledged ⊆ stored, stored once, stored ⊆ sent, chain verifies, nobody over cap, service up."""
    cid = up.collection["id"]
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            stored_reports_ = list(stored_reports(conn, cid))
            stored_rows = [r.report_id for r in stored_reports_]
            ledger_rows = [charge["report_id"] for charge in charges_of(conn, cid)]
            per_device = Counter(r.client_id for r in stored_reports_)
            budgets = conn.execute(select(DeviceBudget).where(DeviceBudget.collection_id == cid)).all()
    finally:
        engine.dispose()
    stored = set(stored_rows)
    assert len(stored_rows) == len(stored), "a report is stored twice"
    ledger_rows = [rid for rid in ledger_rows if rid in up.sent]  # a release's own budget entry is not a report
    assert len(ledger_rows) == len(set(ledger_rows)) == len(stored_rows), "ledger rows ≠ reports"
    assert set(ledger_rows) == stored
    lost = up.acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged reports are not stored"
    assert stored <= up.sent, "a report nobody sent is stored"
    wrongly = {rid for rid in up.rejected if rid in stored}
    assert not wrongly, f"{len(wrongly)} reports answered 'rejected' are stored"
    over = {d: n for d, n in per_device.items() if n > cap_reports}
    assert not over, f"devices over their cap: {over}"
    for b in budgets:
        assert b.reports == per_device.get(b.client_id, 0) and b.reports <= cap_reports, b
    auditor = {"Authorization": f"Bearer {db.keys['auditor']}"}
    assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    verify = httpx.get(url + "/v1/audit/verify", params={"collection": cid}, headers=auditor, timeout=60)
    assert verify.status_code == 200 and verify.json()["ok"], verify.text
    result = {
        "sent": len(up.sent),
        "acknowledged": len(up.acknowledged),
        "stored": len(stored),
        "acknowledged_not_stored": len(lost),
        "stored_twice": len(stored_rows) - len(stored),
        "rejected": len(up.rejected),
        "rejected_reasons": sorted(set(up.rejected.values())),
        "retried_attempts": up.retries,
        "failed_attempts_5xx": up.server_errors,
        "overspent_devices": len(over),
        "max_reports_per_device": max(per_device.values(), default=0),
        "cap_reports": cap_reports,
        "ledger_ok": True,
    }
    return result


def _record(result: dict[str, Any]) -> None:
    """Append the measured numbers to $LDP_RELIABILITY_LOG (JSON lines), for docs/reliability.md."""
    target = os.environ.get("LDP_RELIABILITY_LOG")
    if target:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": test, **result}) + "\n")


# --- (a) SIGKILL a worker mid-upload ------------------------------------------------------------
def test_sigkill_of_a_gunicorn_worker_during_uploads_loses_nothing(tmp_path):
    with pg_database(tmp_path) as db, gunicorn(tmp_path, db.url) as server:
        col = create_collection(server.url, db.keys["admin"], epsilon=1.0, cap=3.0)
        up = Uploader(server.url, db.keys["client"], col)
        devices = [f"k{i}" for i in range(1500)]
        provision(db.url, db.keys["client"], devices)
        killed: list[int] = []
        done, faults_done = threading.Event(), threading.Event()

        def killer() -> None:
            # three kills, and more (up to ten) while none has yet cut an upload: a kill that
            # lands on an idle worker (a loaded machine's timing) tests nothing
            while not done.wait(0.7) and (len(killed) < 3 or (up.retries == 0 and len(killed) < 10)):
                pids = server.worker_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            faults_done.set()

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        try:
            up.run(threads=6, batches_per_thread=5, batch_size=100, devices=devices, until=faults_done)
        finally:
            done.set()
            th.join(10)
        assert len(killed) >= 2, killed
        assert up.retries > 0, "no upload was cut by the kills: the test did not test anything"
        server.wait_ready()
        result = check_invariants(db, server.url, up, cap_reports=3)
        result["workers_killed"] = len(killed)
        _record(result)
        assert result["acknowledged"] > 0


# --- (b) PostgreSQL restart (all connections cut, refused for a moment) -------------------------
def test_postgresql_connection_loss_during_uploads_loses_nothing(tmp_path):
    proxy = TcpProxy()
    try:
        with pg_database(tmp_path) as db, gunicorn(tmp_path, db.via(proxy.port)) as server:
            col = create_collection(server.url, db.keys["admin"], epsilon=1.0, cap=3.0)
            up = Uploader(server.url, db.keys["client"], col)
            devices = [f"p{i}" for i in range(1500)]
            provision(db.url, db.keys["client"], devices)
            cuts: list[int] = []
            done, faults_done = threading.Event(), threading.Event()

            def restarter() -> None:
                while not done.wait(0.7) and len(cuts) < 3:
                    cuts.append(proxy.restart(down=0.7))
                faults_done.set()

            th = threading.Thread(target=restarter, daemon=True)
            th.start()
            try:
                up.run(threads=6, batches_per_thread=5, batch_size=100, devices=devices, until=faults_done)
            finally:
                done.set()
                th.join(10)
            assert len(cuts) >= 2 and sum(cuts) > 0, cuts
            assert up.retries > 0, "no upload was hit by the outage: the test did not test anything"
            result = check_invariants(db, server.url, up, cap_reports=3)
            # the service answers again, through the proxy, after the "restart"
            auditor = {"Authorization": f"Bearer {db.keys['auditor']}"}
            summary = httpx.get(server.url + "/v1/audit/summary", params={"collection": col["id"]}, headers=auditor)
            assert summary.status_code == 200
            result["connections_cut"] = sum(cuts)
            _record(result)
    finally:
        proxy.close()


# --- (c) a client times out, but the batch was committed; it retries ----------------------------
def test_timeout_then_retry_of_a_committed_batch_counts_once(tmp_path):
    with pg_database(tmp_path) as db, gunicorn(tmp_path, db.url) as server:
        col = create_collection(server.url, db.keys["admin"], epsilon=1.0, cap=3.0)
        batch = make_reports(col, 2000, seed=3)
        provision(db.url, db.keys["client"], [r["client_id"] for r in batch])
        path = f"{server.url}/v1/collections/{col['id']}/reports"
        headers = {"Authorization": f"Bearer {db.keys['client']}"}
        # a read timeout far shorter than the commit of 2,000 reports: the client gives up
        timeouts = 0
        with httpx.Client(timeout=httpx.Timeout(10.0, read=0.02)) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post(
                    path,
                    json={"wire": 2, "reports": batch, "devices": proof(db.keys["client"], batch)},
                    headers=headers,
                )
            timeouts += 1
        # wait until the server has committed it (the device does not know)
        engine = make_engine(db.url)
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                with engine.connect() as conn:
                    n = stored_count(conn, col["id"])
                if n == len(batch):
                    break
                time.sleep(0.1)
        finally:
            engine.dispose()
        assert n == len(batch)
        up = Uploader(server.url, db.keys["client"], col)
        with httpx.Client(timeout=60) as client:
            up.post_until_ok(client, batch, time.monotonic() + 60)
            body = {"wire": 2, "reports": batch, "devices": proof(db.keys["client"], batch)}
            r = client.post(path, json=body, headers=headers)  # and once more
        body = r.json()
        assert r.status_code == 200 and body["duplicates"] == len(batch) and body["accepted"] == 0
        assert up.acknowledged == {x["report_id"] for x in batch} and not up.rejected
        result = check_invariants(db, server.url, up, cap_reports=3)
        assert result["stored"] == len(batch)
        result["client_timeouts"] = timeouts
        _record(result)


# --- (d) a release process SIGKILLed half way -----------------------------------------------------
CRASHING_RELEASE = r"""
import os, signal, sys
from ldpserver.services import release_store
stage = sys.argv[1]
def crash(at):
    if at == stage:
        os.kill(os.getpid(), signal.SIGKILL)
release_store.checkpoint = crash
from ldpserver.cli import main
main(["release", "--collection", sys.argv[2], "--epoch", sys.argv[3], "--force", "--json"])
"""


@pytest.mark.parametrize("stage", ["compacted", "counted", "released"])
def test_a_release_killed_half_way_leaves_no_partial_state_and_is_redone(tmp_path, stage):
    with pg_database(tmp_path) as db, gunicorn(tmp_path, db.url, workers=1) as server:
        col = create_collection(server.url, db.keys["admin"], epsilon=1.0, cap=3.0)
        up = Uploader(server.url, db.keys["client"], col)
        provision(db.url, db.keys["client"], [f"r{i}" for i in range(200)])
        up.run(threads=2, batches_per_thread=2, batch_size=50, devices=[f"r{i}" for i in range(200)])
        env = dict(server.env)
        epoch = str(col["current_epoch"])
        crashed = subprocess.run(
            [sys.executable, "-c", CRASHING_RELEASE, stage, col["id"], epoch],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        engine = make_engine(db.url)
        try:
            with engine.connect() as conn:
                count = select(func.count()).select_from(Release).where(Release.collection_id == col["id"])
                assert conn.execute(count).scalar_one() == 0
            analyst = {"Authorization": f"Bearer {db.keys['admin']}"}
            listed = httpx.get(f"{server.url}/v1/collections/{col['id']}/releases", headers=analyst, timeout=30)
            assert listed.status_code == 200 and listed.json()["items"] == []
            result = check_invariants(db, server.url, up, cap_reports=3)
            # redo: over HTTP this time
            redo = httpx.post(
                f"{server.url}/v1/collections/{col['id']}/releases",
                json={"epoch": int(epoch), "force": True},
                headers=analyst,
                timeout=120,
            )
            assert redo.status_code in (200, 201), redo.text
            with engine.connect() as conn:
                assert conn.execute(count).scalar_one() == 1
            again = httpx.post(
                f"{server.url}/v1/collections/{col['id']}/releases",
                json={"epoch": int(epoch), "force": True},
                headers=analyst,
                timeout=120,
            )
            assert again.status_code == 200, again.text  # idempotent: the existing release
            with engine.connect() as conn:
                assert conn.execute(count).scalar_one() == 1
            check_invariants(db, server.url, up, cap_reports=3)
            result["release_crash_stage"] = stage
            _record(result)
        finally:
            engine.dispose()
