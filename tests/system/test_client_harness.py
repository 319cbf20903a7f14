"""A live ``ldpserver`` process for the client runtime's system tests (and its own smoke test).

The server is the real app (``ldpserver.app.create_app``) on a temporary SQLite database,
migrated with ``ldp migrate`` and with keys made by ``ldp keys create``; it runs in a
separate process under werkzeug on 127.0.0.1. Its clock is injected: it reads a Unix time
from a file (empty file: the real time), and the tests give the same :class:`FileClock` to
the ``Client``, so both sides agree on the epoch and the tests can move time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("flask")
pytest.importorskip("ldpserver.app")

REPO = Path(__file__).resolve().parents[2]
ROLES = ("admin", "client", "auditor")
# every test device enrols from 127.0.0.1: lift the per-address default (20 an hour) for the client key
_LIMITS = {"admin": (), "auditor": (), "client": ("--enrol-per-address-hour", "100000")}

SERVER_SCRIPT = r"""
import os, sys
from datetime import datetime, timezone
from werkzeug.serving import make_server
from ldpserver.app import create_app

CLOCK_FILE = os.environ["LDP_TEST_CLOCK_FILE"]

def clock():
    try:
        with open(CLOCK_FILE, encoding="utf-8") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        text = ""
    if not text:
        return datetime.now(timezone.utc)
    return datetime.fromtimestamp(float(text), timezone.utc)

releases = None
if os.environ.get("LDP_TEST_RELEASE_NOISE") == "off":  # test harness only: exact releases for plumbing checks
    from ldpserver.release_noise import ZeroNoise
    from ldpserver.services.releases import ReleaseContext

    releases = ReleaseContext(ZeroNoise(), ReleaseContext.default().settings)

app = create_app(clock=clock, releases=releases)
server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


class FileClock:
    """A clock both processes read: Unix seconds in a file (empty: real time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def set(self, when: float | datetime | None) -> None:
        if isinstance(when, datetime):
            when = when.timestamp()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("" if when is None else repr(float(when)))
        os.replace(tmp, self.path)

    def __call__(self) -> datetime:
        text = self.path.read_text().strip()
        if not text:
            return datetime.now(UTC)
        return datetime.fromtimestamp(float(text), UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ldp_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ldpserver.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_http(url: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server at {url} did not come up")


@dataclass
class LiveServer:
    workdir: Path
    env: dict[str, str]
    clock: FileClock
    admin_key: str = ""
    client_key: str = ""
    auditor_key: str = ""
    port: int = 0
    proc: subprocess.Popen | None = None
    mode: str = "werkzeug"
    log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def setup(self) -> LiveServer:
        ldp_cli(self.env, "migrate")
        with ThreadPoolExecutor(3) as pool:  # three `ldp keys create` processes at once
            create = ("keys", "create", "--role")
            keys = list(pool.map(lambda role: ldp_cli(self.env, *create, role, *_LIMITS[role]), ROLES))
        self.admin_key, self.client_key, self.auditor_key = keys
        return self

    def start(self) -> None:
        """Start (or restart, on the same port) the server process."""
        assert self.proc is None or self.proc.poll() is not None
        self.log = open(self.workdir / "server.log", "ab")
        if self.mode == "gunicorn":
            self.port = self.port or free_port()
            cmd = [sys.executable, "-m", "ldpserver.cli", "serve", "--port", str(self.port), "--workers", "2"]
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        else:
            cmd = [sys.executable, "-c", SERVER_SCRIPT, str(self.port)]
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=self.log, text=True)
            assert self.proc.stdout is not None
            self.port = int(self.proc.stdout.readline().strip())
        wait_http(self.url)

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.mode == "gunicorn":
            os.killpg(self.proc.pid, signal.SIGTERM)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.log:
            self.log.close()

    # --- API helpers ----------------------------------------------------------------------
    def _get(self, key: str, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def create_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(
            self.url + "/v1/collections", json=body, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10
        )
        assert r.status_code == 201, r.text
        return r.json()

    def summary(self, collection_id: str) -> dict[str, Any]:
        return self._get(self.auditor_key, "/v1/audit/summary", collection=collection_id)

    def ledger(self, collection_id: str, client_id: str) -> list[dict[str, Any]]:
        return self._get(
            self.auditor_key, "/v1/audit/ledger", collection=collection_id, client_id=client_id, limit=10000
        )["items"]

    def verify(self, collection_id: str) -> bool:
        return bool(self._get(self.auditor_key, "/v1/audit/verify", collection=collection_id)["ok"])


@contextlib.contextmanager
def live_server(
    tmp: Path, mode: str = "werkzeug", release_noise: bool = True, **extra_env: str
) -> Iterator[LiveServer]:
    """The real server in a subprocess; ``release_noise=False`` (werkzeug mode) switches the
    releases' central noise off, for tests that check release plumbing on a handful of devices;
    ``extra_env``: more settings (e.g. ``LDP_CORS_ORIGINS``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'server.sqlite3'}",
        LDP_TEST_CLOCK_FILE=str(tmp / "clock.txt"),
        LDP_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        **extra_env,
    )
    if not release_noise:
        env["LDP_TEST_RELEASE_NOISE"] = "off"
    server = LiveServer(tmp, env, FileClock(tmp / "clock.txt"), mode=mode).setup()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class FaultProxy:
    """An HTTP proxy in front of the live server that can answer 503 (with Retry-After),
    drop the response after forwarding, or forward normally. Records what it saw."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.plan: list[str] = []  # per report upload: "503", "drop" (forward, then close without answer), "pass"
        self.retry_after = "1"
        self.seen: list[tuple[str, str]] = []  # (method or "ENROL", action)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upload = self.command == "POST" and self.path.split("?")[0].endswith("/reports")  # not enrolment
                with proxy.lock:
                    action = proxy.plan.pop(0) if (upload and proxy.plan) else "pass"
                    method = "ENROL" if self.command == "POST" and not upload else self.command
                    proxy.seen.append((method, action))
                if action == "503":
                    data = b'{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"maintenance"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/problem+json")
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30)
                if action == "drop":  # the server committed the batch; the device never hears back
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(r.status_code)
                for name in ("Content-Type", "Retry-After"):
                    if name in r.headers:
                        self.send_header(name, r.headers[name])
                self.send_header("Content-Length", str(len(r.content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = _relay
            do_POST = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def frequency_collection(**budget: Any) -> dict[str, Any]:
    return {
        "name": "colour",
        "kind": "frequency",
        "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 128},
        "epoch": {"seconds": 3600, "grace": 1},
        "budget": {"cap_lifetime": 1000.0, **budget},
    }
