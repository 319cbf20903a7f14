"""Alembic glue: where the migrations are, which revision the database is at, upgrade/downgrade.

The migrations live in ``migrations/`` at the repository root and are shipped inside the
server distribution as the package ``ldpserver.migrations`` (setup.py maps the folder); this
module finds them through ``importlib.resources``, so ``ldp migrate`` works from any working
directory, in a checkout and from an installed wheel alike.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import ldpserver.models_release  # noqa: F401  (complete metadata wherever the schema is checked)


def _migrations_dir() -> Path:
    """``ldpserver.migrations`` (installed or editable), else ``migrations/`` beside this package
    (a checkout run without installing)."""
    try:
        resource = importlib.resources.files("ldpserver.migrations")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "migrations"
    # Alembic needs a real directory: installed wheels and editable installs both give one
    return Path(str(resource))


MIGRATIONS_DIR = _migrations_dir()


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
