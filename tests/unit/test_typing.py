"""The SDK type-checks: mypy in its default mode reports no error in client_sdk (the
configuration is pyproject.toml's [tool.mypy])."""

from __future__ import annotations

from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[2]


def test_client_sdk_has_no_mypy_error() -> None:
    cache = REPO / ".mypy_cache"  # incremental: a few seconds once warm
    stdout, stderr, status = api.run(
        ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache), str(REPO / "client_sdk")]
    )
    assert status == 0, stdout + stderr
    assert "Success: no issues found" in stdout
