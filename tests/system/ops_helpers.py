"""Helpers of the operations system tests: server processes, a stoppable TCP proxy, reports."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(database_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        LDP_LOG_LEVEL="WARNING",
        LDP_GUNICORN_LOG_LEVEL="warning",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / f"prom-{secrets.token_hex(3)}"),
        LDP_METRICS_BIND="off",  # no fixed port on a shared machine; tests that scrape pick a free one
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        PATH=str(BIN) + os.pathsep + env.get("PATH", ""),
    )
    env.update(extra)
    return env


class Proc:
    """A server process in its own process group; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # closed in stop()
        self.port = port
        self.proc = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=self._log, start_new_session=True, cwd=str(REPO)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            with suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.url}{path} never answered 200:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to the process (gunicorn's master shuts down gracefully); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing of the group may outlive the test
        self._log.close()
        return self.proc.returncode


def gunicorn(env: dict[str, str], log: Path, workers: int = 2, app: str = "ldpserver.wsgi:app") -> Proc:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py")]
    command += ["-w", str(workers), "-b", f"127.0.0.1:{port}", app]
    return Proc(command, env, log, port)


def ldp(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ldpserver.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def make_keys(database_url: str) -> dict[str, str]:
    from ldpserver.db import make_engine
    from ldpserver.services.keys import create_key

    engine = make_engine(database_url, null_pool=True)
    try:
        now = datetime.now(UTC)
        return {
            role: create_key(engine, role, f"test {role}", now)[1] for role in ("admin", "client", "analyst", "auditor")
        }
    finally:
        engine.dispose()


def provision(database_url: str, key: str, client_ids: Any) -> dict[str, str]:
    """Test set-up: enrol devices with chosen names under ``key`` (straight into the table
    ``POST /v1/devices`` writes; tests/service/helpers.py); returns the ``devices`` map."""
    from ldpserver.db import make_engine
    from tests.service.helpers import provision_devices

    engine = make_engine(database_url, null_pool=True)
    try:
        return provision_devices(engine, key, client_ids)
    finally:
        engine.dispose()


def proof(key: str, reports: list[dict[str, Any]]) -> dict[str, str]:
    """The ``devices`` map of an upload whose devices were provisioned under ``key``."""
    from tests.service.helpers import device_secret_for

    return {r["client_id"]: device_secret_for(key, r["client_id"]) for r in reports}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wire_reports(collection: dict[str, Any], values: Any, seed: int, prefix: str) -> list[dict[str, Any]]:
    """Wire reports of a frequency collection for ``values`` (one device each), deterministic."""
    from client_sdk import mechanisms

    m = mechanisms.from_config(collection["config"]["mechanism"])
    rng = np.random.default_rng(seed)
    payloads = m.encode(m.perturb_batch(np.asarray(values), rng=rng))
    ids = rng.bytes(16 * len(payloads))
    return [
        {
            "report_id": ids[16 * i : 16 * (i + 1)].hex(),
            "client_id": f"{prefix}-{i}",
            "config_hash": collection["config_hash"],
            "epoch": collection["current_epoch"],
            "payload": payload,
        }
        for i, payload in enumerate(payloads)
    ]


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        metric_name, _, rest = key.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``; ``stop()`` closes the listener and
    every open connection (the database "goes down"), ``start()`` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()
