"""The code type-checks and lints: mypy in its default mode reports no error in client_sdk,
ldpserver and ldp_tools (pyproject.toml's [tool.mypy] names the packages), and ruff finds
nothing (pyproject.toml's [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[2]


def test_the_packages_have_no_mypy_error() -> None:
    cache = REPO / ".mypy_cache"  # incremental: a few seconds once warm
    stdout, stderr, status = api.run(["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache)])
    assert status == 0, stdout + stderr
    assert "Success: no issues found" in stdout


def test_ruff_finds_nothing_and_everything_is_formatted() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run([str(ruff), *command, str(REPO)], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stdout + done.stderr
