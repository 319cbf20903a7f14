"""The SDK's base install pulls no server dependency, and the CLI parses its arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client_sdk.cli import build_parser, coerce_value, main
from client_sdk.client.config import CollectionConfig
from tests.unit.test_client_runtime import OUE, public_config

REPO = Path(__file__).resolve().parents[2]
SERVER_MODULES = (
    "flask",
    "flask_openapi3",
    "werkzeug",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "pydantic_settings",
    "httpx",
    "opendp",
    "click",
    "structlog",
    "psycopg",
    "gunicorn",
    "redis",
    "ldpserver",
)

PROBE = r"""
import json, sys, tempfile
import client_sdk, client_sdk.client, client_sdk.cli
from client_sdk.client import Client
with Client("http://127.0.0.1:9", "k", tempfile.mkdtemp()) as c:
    c.status()
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def test_sdk_and_runtime_import_no_server_dependency() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert not loaded & set(SERVER_MODULES), sorted(loaded & set(SERVER_MODULES))
    assert "numpy" in loaded and "sqlite3" in loaded  # what the base install does use


def _cfg(config: dict) -> CollectionConfig:
    from client_sdk.canonical import config_hash

    return CollectionConfig.build("c", config, config_hash(config))


def test_cli_value_coercion() -> None:
    assert coerce_value(_cfg(public_config(OUE)), "17") == 17
    md = public_config({"mechanism": "smp", "epsilon": 1.0, "domain_sizes": [3, 4]}, kind="multidim")
    assert coerce_value(_cfg(md), "1,2") == (1, 2) == coerce_value(_cfg(md), "[1, 2]")
    with pytest.raises(ValueError):
        coerce_value(_cfg(public_config(OUE)), "blue")


def test_cli_needs_a_url_and_a_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDP_URL", raising=False)
    assert main(["--state-dir", "/tmp/x", "flush"]) == 2
    assert "LDP_URL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
