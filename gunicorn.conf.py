"""gunicorn settings for the LDP server: ``gunicorn -c gunicorn.conf.py ldpserver.wsgi:app``.

``ldp serve`` and ``docker/entrypoint.sh`` use this file; every value can be set from the
environment (the app's own settings — DATABASE_URL, LDP_* — are read by ldpserver.config).

| variable | default | meaning |
| --- | --- | --- |
| ``LDP_BIND`` (or ``PORT``) | ``0.0.0.0:8000`` (``0.0.0.0:$PORT``) | listen address(es), comma-separated |
| ``WEB_CONCURRENCY`` / ``LDP_WORKERS`` | ``min(2 × cores + 1, 8)`` | worker processes |
| ``LDP_THREADS`` | 1 | threads per worker (> 1 switches to the gthread worker) |
| ``LDP_WORKER_TIMEOUT`` | 60 | seconds a worker may stay silent before the master restarts it |
| ``LDP_GRACEFUL_TIMEOUT`` | 30 | seconds in-flight requests get to finish after SIGTERM |
| ``LDP_KEEPALIVE`` | 5 | seconds an idle keep-alive connection is kept |
| ``LDP_MAX_REQUESTS`` | 0 (off) | recycle a worker after this many requests (± 10 % jitter) |
| ``LDP_ACCESS_LOG`` | off | ``-`` for an access log on stdout (the app logs every request itself) |
| ``LDP_FORWARDED_ALLOW_IPS`` | ``127.0.0.1`` | proxies whose X-Forwarded-* headers are trusted |
| ``PROMETHEUS_MULTIPROC_DIR`` | a fresh temporary directory | where workers write their metrics |
| ``LDP_METRICS_BIND`` | ``127.0.0.1:9464`` | the metrics listener Prometheus scrapes (``off``: none) |
| ``LDP_GUNICORN_CONTROL_SOCKET`` | off | path of gunicorn's control socket (``gunicornc``), if wanted |
| ``LDP_BEHIND_PROXY`` | off | ``1``: a buffering reverse proxy (nginx) is in front; otherwise a warning at start |

**Graceful shutdown**: SIGTERM (what ``docker stop`` and Kubernetes send) stops accepting
connections, lets in-flight requests finish for ``graceful_timeout`` seconds, then exits.
An upload is one database transaction, so a request cut short is rolled back and the
device's retry is idempotent.

**Workers die with their master**: each worker asks Linux for ``SIGKILL`` when its parent
dies (``prctl(PR_SET_PDEATHSIG)`` in ``post_fork``), so a master killed with ``SIGKILL`` (OOM
killer, ``kill -9``) leaves no orphan holding the listening socket: a restarted master finds
its port free at once (tests/system/test_edges.py). SIGKILL, not SIGTERM: an orphan blocked
reading a slow client would sit out a SIGTERM; an upload cut short is rolled back and retried.

**Prometheus in several processes**: ``PROMETHEUS_MULTIPROC_DIR`` must be set before any
worker imports ``prometheus_client``. If it is not set this file creates a temporary
directory (removed at exit); either way stale files of a previous run are deleted when the
master starts, and ``child_exit`` marks a dead worker's live gauges as gone.
``/metrics`` merges every worker's samples (``ldpserver/metrics.py``). It is served without
a key only by the **metrics listener** the master starts when ready (``LDP_METRICS_BIND``,
loopback by default; ``ldpserver/metrics_listener.py``); on the public bind it needs an
admin key.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import signal
import sys
import tempfile


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _default_workers() -> int:
    return min(2 * (os.cpu_count() or 1) + 1, 8)


# --- sockets and workers ----------------------------------------------------------------------
_port = os.environ.get("PORT", "").strip()
bind = [b.strip() for b in os.environ.get("LDP_BIND", f"0.0.0.0:{_port or 8000}").split(",") if b.strip()]
workers = _int("WEB_CONCURRENCY", _int("LDP_WORKERS", _default_workers()))
threads = _int("LDP_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("LDP_WORKER_TIMEOUT", 60)
graceful_timeout = _int("LDP_GRACEFUL_TIMEOUT", 30)
keepalive = _int("LDP_KEEPALIVE", 5)
max_requests = _int("LDP_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# each worker builds its own app, engine and connection pool after the fork
preload_app = False
forwarded_allow_ips = os.environ.get("LDP_FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn >= 25 opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl):
# off by default (several servers on one host would fight over it; $HOME may be read-only)
_control = os.environ.get("LDP_GUNICORN_CONTROL_SOCKET", "").strip()
control_socket_disable = not _control
if _control:
    control_socket = _control
if os.path.isdir("/dev/shm"):  # the heartbeat file: tmpfs avoids stalls on slow container disks
    worker_tmp_dir = "/dev/shm"

# --- logging: the app writes structured JSON request logs itself --------------------------------
accesslog = os.environ.get("LDP_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LDP_GUNICORN_LOG_LEVEL", "info")
proc_name = "ldpserver"

# --- Prometheus multiprocess mode and the metrics listener -------------------------------------------
_created_multiproc_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _created_multiproc_dir = tempfile.mkdtemp(prefix="ldp-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _created_multiproc_dir
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ['PROMETHEUS_MULTIPROC_DIR']}"]


def on_starting(server) -> None:
    """Master start: an empty metrics directory (files of a previous run would be summed in)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)
    server.log.info("prometheus multiprocess directory: %s", directory)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the master died between fork() and prctl(): nobody will signal us
        os._exit(1)
    return True


from ldpserver.metrics_listener import parse_bind as _parse_metrics_bind  # noqa: E402

_metrics_bind = _parse_metrics_bind(os.environ.get("LDP_METRICS_BIND"))  # a bad value stops the start here
_metrics_listener = None


def when_ready(server) -> None:
    """Master ready: start the metrics listener (its own bind, never the public one), and say
    when gunicorn faces clients directly (docs/operations.md, "Serving topology")."""
    global _metrics_listener
    from ldpserver.metrics_listener import start_from_env

    if os.environ.get("LDP_BEHIND_PROXY", "").strip() not in ("1", "true", "yes"):
        server.log.warning(
            "serving WITHOUT a buffering reverse proxy: two slow clients can stall two sync workers; "
            "production puts nginx in front (docker/nginx/, docs/operations.md) and sets LDP_BEHIND_PROXY=1"
        )
    if _metrics_bind is None:
        server.log.info("metrics listener off (LDP_METRICS_BIND); /metrics needs an admin key")
        return
    _metrics_listener = start_from_env()
    if _metrics_listener is not None:
        host, port = _metrics_listener.address
        server.log.info("metrics listener on http://%s:%s/metrics", host, port)


def post_fork(server, worker) -> None:
    """A new worker: it must not outlive its master (an orphan would keep the port), and it
    closes its inherited copy of the metrics listener's socket."""
    if not _die_with_parent(worker.ppid):
        server.log.warning("worker %s cannot follow its master's death (no PR_SET_PDEATHSIG here)", worker.pid)
    if _metrics_listener is not None:
        _metrics_listener.close_inherited()


def child_exit(server, worker) -> None:
    """A worker is gone (exited, killed or recycled): drop its live gauge samples."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_abort(worker) -> None:
    worker.log.warning("worker %s timed out (LDP_WORKER_TIMEOUT=%s) and is being restarted", worker.pid, timeout)


def on_exit(server) -> None:
    if _metrics_listener is not None:
        _metrics_listener.stop()
    if _created_multiproc_dir:
        shutil.rmtree(_created_multiproc_dir, ignore_errors=True)
