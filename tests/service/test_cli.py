"""The ldp command line: keys (shown once, stored hashed), listing, revocation, report retention."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from ldpserver.cli import main as cli
from ldpserver.models import ApiKey
from tests.service.helpers import make_reports


def test_keys_create_list_revoke(api, database_url, engine):
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    created = runner.invoke(cli, ["keys", "create", "--role", "analyst", "--name", "dash"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ldp_")
    key_id = key.split("_")[1]
    with engine.connect() as conn:
        row = conn.execute(select(ApiKey).where(ApiKey.id == key_id)).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in str(tuple(row))
    api.keys["cli-analyst"] = key
    assert api.get("/v1/collections", role="cli-analyst").status_code == 200

    listed = runner.invoke(cli, ["keys", "list", "--json"], env=env)
    entry = next(k for k in json.loads(listed.output) if k["id"] == key_id)
    assert entry["role"] == "analyst" and entry["name"] == "dash" and "key_hash" not in entry

    assert runner.invoke(cli, ["keys", "revoke", key_id], env=env).exit_code == 0
    assert api.get("/v1/collections", role="cli-analyst").status_code == 401
    again = runner.invoke(cli, ["keys", "revoke", key_id], env=env)
    assert again.exit_code != 0 and "no active key" in again.output
    bad_role = runner.invoke(cli, ["keys", "create", "--role", "superuser"], env=env)
    assert bad_role.exit_code != 0


def test_reports_purge_keeps_reports_that_could_still_be_retried(api, database_url, monkeypatch):
    col = api.create_collection()
    old = make_reports(col, 3, epoch=0, seed=1)
    assert api.upload(col, old).get_json()["accepted"] == 3
    env = {"DATABASE_URL": database_url, "LDP_REPORT_RETENTION_DAYS": "1"}
    from ldpserver.cli import database as cli_database

    # two days later: past retention, and epoch 0 is far outside the acceptance window
    later = api.clock() + timedelta(days=2)
    monkeypatch.setattr(cli_database, "current_time", lambda: later)
    dry = CliRunner().invoke(cli, ["reports", "purge", "--dry-run"], env=env)
    assert f"{col['id']}: would delete 3 reports" in dry.output
    run = CliRunner().invoke(cli, ["reports", "purge"], env=env)
    assert run.exit_code == 0 and f"{col['id']}: deleted 3 reports" in run.output
    assert api.counts(col["id"])["reports"] == 0
    # a late retry cannot be counted twice: its epoch is closed to uploads
    api.clock.advance(days=2)
    assert {r["reason"] for r in api.upload(col, old).get_json()["results"]} == {"epoch_too_old"}
    # recent reports are kept
    fresh = make_reports(col, 2, epoch=48, seed=2)
    assert api.upload(col, fresh).get_json()["accepted"] == 2
    CliRunner().invoke(cli, ["reports", "purge"], env=env)
    assert api.counts(col["id"])["reports"] == 2


def test_serve_leaves_the_worker_count_to_gunicorn_conf_unless_given(database_url, monkeypatch):
    """docs/operations.md: `ldp serve` binds --host/--port (127.0.0.1:8000) and, without
    --workers, lets gunicorn.conf.py choose (WEB_CONCURRENCY, LDP_WORKERS, min(2 × cores + 1, 8))."""
    import os

    commands: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda file, args: commands.append(list(args)))
    env = {"DATABASE_URL": database_url, "WEB_CONCURRENCY": ""}
    assert CliRunner().invoke(cli, ["serve"], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["serve", "--workers", "3", "--port", "9000"], env=env).exit_code == 0
    default, explicit = commands
    assert "-w" not in default and default[default.index("-b") + 1] == "127.0.0.1:8000"
    assert default[default.index("-c") + 1].endswith("gunicorn.conf.py")
    assert explicit[explicit.index("-w") + 1] == "3" and explicit[explicit.index("-b") + 1] == "127.0.0.1:9000"


def test_keys_create_with_scope_and_enrolment_limits(api, database_url):
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    mine, other = api.create_collection(), api.create_collection()
    args = ["keys", "create", "--role", "client", "--collections", mine["id"], "--max-devices", "1"]
    created = runner.invoke(cli, args, env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    listed = json.loads(runner.invoke(cli, ["keys", "list", "--json"], env=env).output)
    entry = next(k for k in listed if k["id"] == key.split("_")[1])
    assert entry["collections"] == [mine["id"]] and entry["max_devices"] == 1
    api.keys["cli-client"] = key
    assert api.get(f"/v1/collections/{mine['id']}", role="cli-client").status_code == 200
    assert api.get(f"/v1/collections/{other['id']}", role="cli-client").status_code == 403
    assert api.post("/v1/devices", role="cli-client", json={}).status_code == 201
    assert api.post("/v1/devices", role="cli-client", json={}).status_code == 403  # --max-devices 1
    for bad in (["--role", "admin", "--collections", mine["id"]], ["--role", "analyst", "--max-devices", "3"]):
        refused = runner.invoke(cli, ["keys", "create", *bad], env=env)
        assert refused.exit_code != 0 and "Error" in refused.output
