"""Schema only through Alembic: upgrade an empty database to head and back; the app refuses otherwise."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect

from ldpserver import schema
from ldpserver.app import create_app
from ldpserver.cli import main as cli
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.models import Base
from ldpserver.schema import DatabaseNotMigrated
from tests.service.conftest import fresh_database

TABLES = {t.name for t in Base.metadata.sorted_tables}


def test_upgrade_empty_database_to_head_and_downgrade_back(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url, null_pool=True)
        try:
            assert schema.current_revision(engine) is None
            with pytest.raises(DatabaseNotMigrated, match="ldp migrate"):
                create_app(Settings(database_url=url, log_level="WARNING"), engine=engine)

            run = CliRunner().invoke(cli, ["migrate"], env={"DATABASE_URL": url})
            assert run.exit_code == 0, run.output
            assert f"is at revision {schema.head_revision()}" in run.output
            assert schema.current_revision(engine) == schema.head_revision()
            assert TABLES <= set(inspect(engine).get_table_names())
            with engine.connect() as conn:  # the models and the migrations describe the same schema
                assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            app = create_app(Settings(database_url=url, log_level="WARNING"), engine=engine)
            assert app.test_client().get("/readyz").get_json()["revision"] == schema.head_revision()

            refused = CliRunner().invoke(cli, ["downgrade", "base"], env={"DATABASE_URL": url})
            assert refused.exit_code != 0 and "--yes" in refused.output
            run = CliRunner().invoke(cli, ["downgrade", "base", "--yes"], env={"DATABASE_URL": url})
            assert run.exit_code == 0, run.output
            assert schema.current_revision(engine) is None
            assert not TABLES & set(inspect(engine).get_table_names())
            # and up again: migrations are repeatable
            schema.upgrade(url)
            assert schema.current_revision(engine) == schema.head_revision()
            # a stale running app reports not-ready when the schema moves away
            schema.downgrade(url, "base")
            ready = app.test_client().get("/readyz")
            assert ready.status_code == 503 and ready.mimetype == "application/problem+json"
        finally:
            engine.dispose()


def test_cli_commands_refuse_an_unmigrated_database(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        run = CliRunner().invoke(cli, ["keys", "list"], env={"DATABASE_URL": url})
        assert run.exit_code != 0 and "ldp migrate" in run.output


def test_key_device_counts_are_filled_from_the_devices(backend, tmp_path):
    """Migration 0010 gives every key the count of the devices it enrolled before."""
    from sqlalchemy import text

    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url, null_pool=True)
        try:
            schema.upgrade(url, "0009")
            with engine.begin() as conn:
                for key in ("k1", "k2"):
                    conn.execute(
                        text(
                            "INSERT INTO api_keys (id, name, role, key_hash, created_at) "
                            "VALUES (:id, '', 'client', :h, CURRENT_TIMESTAMP)"
                        ),
                        {"id": key, "h": key * 32},
                    )
                for i, key in enumerate(["k1", "k1", "k1", "k2"]):
                    conn.execute(
                        text("INSERT INTO devices VALUES (:c, :s, :k, '2026-12-07')"),
                        {"c": f"{i:032x}", "s": "0" * 64, "k": key},
                    )
            schema.upgrade(url)
            with engine.connect() as conn:
                counts = dict(conn.execute(text("SELECT id, devices_enrolled FROM api_keys")).all())
            assert counts == {"k1": 3, "k2": 1}
        finally:
            engine.dispose()


def test_reports_move_into_batch_rows_and_devices_remember_their_recent_ones(backend, tmp_path):
    """Migration 0011 moves per-report rows into report_batches (one row per collection,
    epoch and reception time) and gives each device, in ``recent``, its reports of the
    collection's last grace + 1 stored epochs that are not closed; downgrade splits them back."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from ldpserver.schemas.collections import CollectionCreate
    from ldpserver.services.collections import create_collection
    from ldpserver.services.device_budgets import legacy_digest, parse_recent
    from ldpserver.services.report_batches import stored_reports
    from tests.service.helpers import BASE_COLLECTION

    at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    rows = [  # report_id, client_id, epoch, payload, received_at: two uploads in epoch 6
        ("a0" * 16, "dev-a", 0, '{"b":"AAA="}', at),
        ("a5" * 16, "dev-a", 5, '{"b":"AQA="}', at + timedelta(hours=1)),
        ("a6" * 16, "dev-a", 6, '{"b":"AgA="}', at + timedelta(hours=2)),
        ("b6" * 16, "dev-b", 6, '{"b":"AwA="}', at + timedelta(hours=2)),
        ("c6" * 16, "dev-c", 6, '{"b":"BAA="}', at + timedelta(hours=3)),
    ]
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url, null_pool=True)
        try:
            schema.upgrade(url)
            cid = create_collection(engine, CollectionCreate.model_validate(BASE_COLLECTION), "test", at)["id"]
            schema.downgrade(url, "0010")
            with engine.begin() as conn:
                for rid, client, epoch, payload, received in rows:
                    conn.execute(
                        text("INSERT INTO reports VALUES (:r, :c, :cl, :e, NULL, :p, :t)"),
                        {"r": rid, "c": cid, "cl": client, "e": epoch, "p": payload, "t": received},
                    )
                for client in ("dev-a", "dev-b", "dev-c"):
                    conn.execute(
                        text(
                            "INSERT INTO device_budgets (collection_id, client_id, units, reports, memo_count, "
                            "window_index, window_units, prev_window_units, first_seen, last_seen) "
                            "VALUES (:c, :cl, 1, 1, 0, 6, 1, 0, :t, :t)"
                        ),
                        {"c": cid, "cl": client, "t": at},
                    )
                conn.execute(  # epoch 5 is closed: no retry can reach it
                    text("INSERT INTO epoch_closures VALUES (:c, 5, :t, 'released')"), {"c": cid, "t": at}
                )
            schema.upgrade(url)
            with engine.connect() as conn:
                stored = sorted(stored_reports(conn, cid))
                batches = conn.execute(text("SELECT epoch, n FROM report_batches ORDER BY epoch, n")).all()
                recent = dict(conn.execute(text("SELECT client_id, recent FROM device_budgets")).all())
            assert stored == sorted((r[0], r[1], r[2], r[3]) for r in rows)
            assert [tuple(b) for b in batches] == [(0, 1), (5, 1), (6, 1), (6, 2)]
            assert {cl: parse_recent(text_) for cl, text_ in recent.items()} == {
                "dev-a": {(6, "a6" * 16): legacy_digest('{"b":"AgA="}')},
                "dev-b": {(6, "b6" * 16): legacy_digest('{"b":"AwA="}')},
                "dev-c": {(6, "c6" * 16): legacy_digest('{"b":"BAA="}')},
            }
            schema.downgrade(url, "0010")
            with engine.connect() as conn:
                back = conn.execute(text("SELECT report_id, client_id, epoch, payload FROM reports")).all()
            assert sorted(map(tuple, back)) == sorted((r[0], r[1], r[2], r[3]) for r in rows)
        finally:
            engine.dispose()
