"""What every ``ldp`` command shares: the command group, the database option, the engine."""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy import Engine

from ldpserver.config import Settings


def settings_for(database_url: str | None) -> Settings:
    return Settings(database_url=database_url) if database_url else Settings()


def engine_for(database_url: str | None, *, check: bool = True) -> Engine:
    """An engine on the database (refused with a clear message unless migrated to the head)."""
    from ldpserver.db import make_engine
    from ldpserver.schema import DatabaseNotMigrated, check_at_head

    settings = settings_for(database_url)
    engine = make_engine(settings.database_url, null_pool=True, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if check:
        try:
            check_at_head(engine, settings.redacted_database_url())
        except DatabaseNotMigrated as exc:
            raise click.ClickException(str(exc)) from None
    return engine


def current_time() -> datetime:
    from ldpserver.clock import utc_now

    return utc_now()


database_option = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="SQLAlchemy URL (default: $DATABASE_URL or ./var SQLite).",
)


@click.group()
def main() -> None:
    """LDP analytics: server administration, audits, simulations and the demo."""
