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
