"""The serving edges (issue 15, findings 1 and 6), with real processes on loopback.

* **Slow clients**: bare gunicorn (2 sync workers) stops answering ``/healthz`` while two
  connections send their request headers one line per second — the finding; the production
  topology (docker/nginx/ldp-proxy.conf in front of the same gunicorn, built here from
  Debian's nginx on free ports with a temporary prefix) keeps ``/healthz`` p99 < 1 s with
  200 such connections open.
* **413 for chunked bodies** over ``LDP_MAX_BODY_BYTES``, from gunicorn and from nginx, as
  ``application/problem+json``.
* nginx's own refusals speak the API's format: 503 problem with ``Retry-After`` when no app
  server answers.
* **Workers die with their master**: after ``SIGKILL`` of the gunicorn master no worker is
  left holding the port, and a new master binds the same port at once.

Every loop is bounded (a fixed number of rounds with timeouts); every socket is on 127.0.0.1.
``LDP_RELIABILITY_LOG`` (a file path) receives the figures as JSON lines (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
import yaml

from ldpserver import schema
from tests.system.ops_helpers import REPO, Proc, base_env, free_port, gunicorn, make_keys, stopping

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.timeout(240)

PROXY_CONF = REPO / "docker" / "nginx" / "ldp-proxy.conf"
SLOW_CONNECTIONS = 200


def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def _record(**figures: object) -> None:
    target = os.environ.get("LDP_RELIABILITY_LOG")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(figures) + "\n")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / f'edges-{secrets.token_hex(3)}.sqlite3'}"
    schema.upgrade(url)
    return url


class SlowClients:
    """``count`` connections that each send a request line, then one header line per second,
    and never finish their header (a slow-loris client). Bounded: ``tick()`` is called by the
    test for a fixed number of rounds; ``close()`` ends every connection."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            with suppress(BlockingIOError):
                s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.sockets.append(s)
        self._line = 0

    def tick(self) -> None:
        self._line += 1
        for s in self.sockets:
            with suppress(BlockingIOError, OSError):
                s.send(f"X-Slow-{self._line}: {'a' * 8}\r\n".encode())

    def still_open(self) -> int:
        """Connections the server has not closed (a non-blocking peek sees no EOF)."""
        open_ = 0
        for s in self.sockets:
            try:
                open_ += s.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
        return open_

    def close(self) -> None:
        for s in self.sockets:
            with suppress(OSError):
                s.close()


def _probe(
    url: str, rounds: int, interval: float, slow: SlowClients, timeout: float = 2.0, until: float | None = None
) -> list[float | None]:
    """``rounds`` GET /healthz on fresh connections, ``interval`` apart (stopping early at the
    monotonic time ``until``), the slow clients sending a line every second meanwhile; each
    latency in seconds, or None when it did not answer 200."""
    latencies: list[float | None] = []
    next_tick = time.monotonic() + 1.0
    for _ in range(rounds):
        if until is not None and time.monotonic() >= until:
            break
        started = time.monotonic()
        try:
            ok = httpx.get(url + "/healthz", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append(time.monotonic() - started if ok else None)
        while time.monotonic() >= next_tick:
            slow.tick()
            next_tick += 1.0
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return latencies


def _p99(latencies: list[float | None]) -> float:
    values = sorted(float("inf") if v is None else v for v in latencies)
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


@contextmanager
def nginx_in_front(upstream_port: int, tmp: Path, wait_for_app: bool = True) -> Iterator[int]:
    """Debian's nginx as a non-daemon with a temporary prefix, on a free port, proxying to
    gunicorn with docker/nginx/ldp-proxy.conf included verbatim (the production settings)."""
    binary = _nginx()
    if binary is None:
        message = "nginx is not installed (python3 dev.py test installs Debian's nginx-light as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = tmp / f"nginx-{secrets.token_hex(3)}"
    for sub in ("logs", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True)
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""  # root: workers need the temporary prefix
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream ldp_app {{ server 127.0.0.1:{upstream_port}; }}
    server {{
        listen 127.0.0.1:{port};
        include {PROXY_CONF};
    }}
}}
"""
    )
    log = open(prefix / "logs" / "stderr.log", "ab")  # closed below
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "error.log")],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (prefix / "logs" / "error.log").read_text(errors="replace")
            with suppress(httpx.HTTPError):
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                if status == 200 or not wait_for_app:
                    break
            assert time.monotonic() < end, "nginx never proxied /healthz"
            time.sleep(0.1)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_the_production_topology_answers_healthz_while_slow_clients_hold_connections(database_url, tmp_path):
    env = base_env(database_url, tmp_path, LDP_BEHIND_PROXY="1")
    server = gunicorn(env, tmp_path / "gunicorn.log", workers=2)
    with stopping(server):
        server.wait_ready()

        # the finding: bare gunicorn, two slow-header connections, two sync workers
        bare_slow = SlowClients(server.port, 2)
        try:
            time.sleep(0.5)  # both are accepted, one per worker
            bare = _probe(server.url, rounds=10, interval=1.0, slow=bare_slow, timeout=1.0)
        finally:
            bare_slow.close()
        bare_answered = sum(v is not None for v in bare)
        assert bare_answered <= 2, f"bare gunicorn answered {bare_answered}/10 probes: the finding did not reproduce"

        server.wait_ready(path="/healthz")  # the workers are free again once the slow sockets close
        with nginx_in_front(server.port, tmp_path) as port:
            opened = time.monotonic()
            slow = SlowClients(port, SLOW_CONNECTIONS)
            try:
                time.sleep(0.5)
                # up to 100 probes over ~6 s, and never later than 7.5 s after the first slow
                # connection: inside client_header_timeout (10 s), so every slow connection is
                # still open while the probes run (a loaded machine gets fewer probes, not a
                # window in which nginx has already dropped the slow clients)
                latencies = _probe(
                    f"http://127.0.0.1:{port}", rounds=100, interval=0.06, slow=slow, timeout=5.0, until=opened + 7.5
                )
                open_after = slow.still_open()
            finally:
                slow.close()
        answered = [v for v in latencies if v is not None]
        p99, p50 = _p99(latencies), sorted(answered)[len(answered) // 2] if answered else float("inf")
        _record(
            test="slow_clients",
            bare_gunicorn_answered=f"{bare_answered}/10",
            proxied_answered=f"{len(answered)}/{len(latencies)}",
            slow_connections=SLOW_CONNECTIONS,
            slow_still_open_after_probes=open_after,
            p50_ms=round(p50 * 1000, 1),
            p99_ms=round(p99 * 1000, 1),
            max_ms=round(max(answered) * 1000, 1) if answered else None,
        )
        assert len(latencies) >= 30, f"only {len(latencies)} probes fitted in the window"
        assert len(answered) == len(latencies), f"{len(latencies) - len(answered)} probes failed through nginx"
        assert p99 < 1.0, f"p99 {p99:.3f} s with {SLOW_CONNECTIONS} slow connections"
        assert open_after >= SLOW_CONNECTIONS * 0.95, f"only {open_after} slow connections were still open"


def _chunked_upload(port: int, key: str, size: int) -> tuple[int, str, str]:
    """POST a chunked JSON-ish body of ``size`` bytes; (status, content type, body) of the answer."""
    head = (
        f"POST /v1/collections/nope/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.encode())
        chunk = b" " * 65536
        with suppress(OSError):  # the server may answer and close before the body is complete
            for _ in range(size // len(chunk)):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        data = b""
        with suppress(OSError):
            while chunk := s.recv(65536):
                data += chunk
    head_text, _, body = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers.get("content-type", ""), body.decode("utf-8", "replace")


def test_an_over_limit_chunked_body_gets_413_from_gunicorn_and_from_nginx(database_url, tmp_path):
    keys = make_keys(database_url)
    env = base_env(database_url, tmp_path, LDP_MAX_BODY_BYTES=str(1024 * 1024))
    server = gunicorn(env, tmp_path / "gunicorn.log", workers=1)
    with stopping(server):
        server.wait_ready()
        status, content_type, body = _chunked_upload(server.port, keys["client"], 3 * 1024 * 1024)
        assert status == 413, body
        assert content_type.startswith("application/problem+json")
        assert json.loads(body)["type"].endswith("/payload-too-large")
        # under the limit the body is read whole (400: it is not JSON), not refused as too large
        status, _, body = _chunked_upload(server.port, keys["client"], 512 * 1024)
        assert status == 400, body
        with nginx_in_front(server.port, tmp_path) as port:
            status, content_type, body = _chunked_upload(port, keys["client"], 10 * 1024 * 1024)
            assert status == 413, body
            assert content_type.startswith("application/problem+json")
            assert json.loads(body)["status"] == 413


def test_nginx_answers_503_problem_with_retry_after_when_no_app_server_answers(tmp_path):
    with nginx_in_front(free_port(), tmp_path, wait_for_app=False) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/v1/collections", timeout=10)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["type"].endswith("/unavailable")


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_gunicorn_workers_die_with_their_master_so_a_restart_finds_the_port_free(database_url, tmp_path):
    env = base_env(database_url, tmp_path)
    first = gunicorn(env, tmp_path / "first.log", workers=2)
    port = first.port
    with stopping(first):
        first.wait_ready()
        end = time.monotonic() + 10
        while len(workers := _children(first.proc.pid)) < 2 and time.monotonic() < end:
            time.sleep(0.1)
        assert len(workers) == 2, workers
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        end = time.monotonic() + 5
        while (alive := [w for w in workers if _alive(w)]) and time.monotonic() < end:
            time.sleep(0.05)
        orphans = len(alive)
        for pid in alive:  # the test cleans up whatever outlived its master
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not orphans, f"{orphans} workers outlived their SIGKILLed master (they hold port {port})"

        command = [
            *first.proc.args[:-3],
            "-b",
            f"127.0.0.1:{port}",
            first.proc.args[-1],
        ]
        second = Proc(command, env, tmp_path / "second.log", port)
        with stopping(second):
            started = time.monotonic()
            second.wait_ready(timeout=30)
            restart_s = time.monotonic() - started
        _record(
            test="orphan_workers", workers=2, orphans_after_master_sigkill=orphans, restart_ready_s=round(restart_s, 2)
        )


def test_the_compose_file_serves_through_nginx_only():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    app, proxy = compose["services"]["app"], compose["services"]["proxy"]
    assert "ports" not in app, "gunicorn's sync workers must not be published: a slow client would hold one"
    assert app["environment"]["LDP_BEHIND_PROXY"] == "1"
    assert any(v.startswith("./nginx/ldp-proxy.conf:") for v in proxy["volumes"])
    assert any(v.startswith("./nginx/default.conf:") for v in proxy["volumes"])
    assert proxy["ports"] and proxy["depends_on"]["app"]["condition"] == "service_healthy"
    conf = PROXY_CONF.read_text()
    for directive in (
        "client_header_timeout",
        "client_body_timeout",
        "client_max_body_size",
        "proxy_request_buffering on",
    ):
        assert directive in conf, directive


def test_ldp_serve_says_when_it_runs_without_a_proxy(database_url, tmp_path):
    port = free_port()
    env = base_env(database_url, tmp_path)
    env.pop("LDP_BEHIND_PROXY", None)
    ldp = str(Path(env["PATH"].split(os.pathsep)[0]) / "ldp")
    server = Proc([ldp, "serve", "--port", str(port), "--workers", "1"], env, tmp_path / "serve.log", port)
    with stopping(server):
        server.wait_ready()
        assert "WITHOUT a buffering reverse proxy" in server.log()
    env["LDP_BEHIND_PROXY"] = "1"
    port = free_port()
    quiet = Proc([ldp, "serve", "--port", str(port), "--workers", "1"], env, tmp_path / "quiet.log", port)
    with stopping(quiet):
        quiet.wait_ready()
        assert "WITHOUT a buffering reverse proxy" not in quiet.log()
