"""Alembic glue: where the migrations are, which revision the database is at, upgrade/downgrade.

The migrations live in ``migrations/`` at the repository root; this module finds them
from its own location, so ``ldp migrate`` works from any working directory.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import ldpserver.models_release  # noqa: F401  (complete metadata wherever the schema is checked)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseNotMigrated(RuntimeError):
    """The database is missing tables or is at another revision than this code expects."""


def alembic_config(database_url: str) -> Config:
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise RuntimeError(f"migrations not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = database_url
    return cfg


@functools.cache
def head_revision() -> str:
    """The migrations' single head (read once per process)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return heads[0] if heads else None


def check_at_head(engine: Engine, redacted_url: str) -> None:
    """Raise DatabaseNotMigrated with the fix (``ldp migrate``) unless the database is at head."""
    head = head_revision()
    current = current_revision(engine)
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}"
        raise DatabaseNotMigrated(
            f"database {redacted_url} {state}, this server needs revision {head}: "
            "run `ldp migrate` (with the same DATABASE_URL) first"
        )


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
