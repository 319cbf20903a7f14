"""The metrics listener: Prometheus scrapes its own bind, never the port devices upload to.

The exact counters of ``ldpserver/metrics.py`` move by one with a single device's upload,
so the public listener serves ``/metrics`` to the admin role only. Prometheus scrapes
this small HTTP server instead, started by gunicorn's master (``gunicorn.conf.py``,
``when_ready``); it merges every worker's samples exactly as ``/metrics`` does
(``PROMETHEUS_MULTIPROC_DIR``) and adds the scrape-time database gauges.

| variable | default | meaning |
| --- | --- | --- |
| ``LDP_METRICS_BIND`` | ``127.0.0.1:9464`` | ``host:port`` of the listener (loopback: this host only); ``off``: none |

It answers ``GET``/``HEAD /metrics`` only (404 elsewhere), logs nothing per request and
never fails the server: a bind error is logged and the API keeps serving. Workers close
their inherited copy of its socket right after the fork (``post_fork``).
"""

from __future__ import annotations

import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENV = "LDP_METRICS_BIND"
DEFAULT_BIND = "127.0.0.1:9464"
OFF = frozenset({"", "off", "none", "0", "false"})

log = logging.getLogger("ldpserver.metrics_listener")


def parse_bind(text: str | None) -> tuple[str, int] | None:
    """``host:port`` (IPv6 in brackets) → (host, port); None when disabled."""
    value = (DEFAULT_BIND if text is None else text).strip()
    if value.lower() in OFF:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{ENV} must be host:port or 'off', got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server's naming
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            body, status, content_type = b"not found: scrape /metrics\n", 404, "text/plain; charset=utf-8"
        else:
            from prometheus_client import CONTENT_TYPE_LATEST

            from ldpserver.metrics import render

            body, status, content_type = render(self.server.engine()), 200, CONTENT_TYPE_LATEST
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # no per-scrape log lines
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Any = None) -> None:
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self._engine: Any = engine
        self._engine_lock = threading.Lock()

    def engine(self) -> Any:
        """A pool-less engine, made at the first scrape: no connection outlives a scrape, so a
        worker forked meanwhile never inherits one."""
        with self._engine_lock:
            if self._engine is None:
                from ldpserver.config import Settings
                from ldpserver.db import make_engine

                self._engine = make_engine(Settings().database_url, null_pool=True)
            return self._engine


class MetricsListener:
    """The listener of one server process group (run it in gunicorn's master)."""

    def __init__(self, host: str, port: int, engine: Any = None) -> None:
        """``engine``: the database of the scrape-time gauges (default: ``DATABASE_URL``'s, made
        at the first scrape)."""
        self._server = _Server((host, port), engine)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ldp-metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsListener:
        self._thread.start()
        return self

    def close_inherited(self) -> None:
        """In a forked worker: drop the copy of the listening socket (the master serves it)."""
        self._server.socket.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_from_env(environ: dict[str, str] | None = None) -> MetricsListener | None:
    """Start the listener ``LDP_METRICS_BIND`` asks for (None: disabled, or the bind failed)."""
    env = os.environ if environ is None else environ
    bind = parse_bind(env.get(ENV))
    if bind is None:
        return None
    try:
        return MetricsListener(*bind).start()
    except OSError as exc:
        log.error("metrics listener could not bind %s:%s (%s); /metrics stays admin-only", bind[0], bind[1], exc)
        return None
