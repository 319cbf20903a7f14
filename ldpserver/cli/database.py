"""``ldp migrate``, ``ldp downgrade`` and ``ldp reports purge``: the schema and retention."""

from __future__ import annotations

import click

from ldpserver.cli.common import current_time, database_option, engine_for, main, settings_for


@main.command()
@database_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate(database_url: str | None, revision: str) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from ldpserver import schema

    settings = settings_for(database_url)
    schema.upgrade(settings.database_url, revision)
    engine = engine_for(database_url, check=False)
    click.echo(f"database {settings.redacted_database_url()} is at revision {schema.current_revision(engine)}")


@main.command()
@database_option
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm: a downgrade drops tables and their data.")
def downgrade(database_url: str | None, revision: str, yes: bool) -> None:
    """Downgrade the database schema to REVISION ("base" removes everything)."""
    from ldpserver import schema

    if not yes:
        raise click.UsageError("a downgrade destroys data; pass --yes to confirm")
    settings = settings_for(database_url)
    schema.downgrade(settings.database_url, revision)
    engine = engine_for(database_url, check=False)
    click.echo(f"database {settings.redacted_database_url()} is at revision {schema.current_revision(engine)}")


@main.group()
def reports() -> None:
    """Raw report storage."""


@reports.command("purge")
@database_option
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def reports_purge(database_url: str | None, dry_run: bool) -> None:
    """Delete raw reports older than LDP_REPORT_RETENTION_DAYS whose epoch no longer accepts reports.

    Only reports whose epoch is outside the acceptance window are purged, so a retried
    report can never be counted twice (it would be rejected as epoch_too_old).
    """
    from ldpserver.services.retention import purge_reports

    settings = settings_for(database_url)
    counts = purge_reports(engine_for(database_url), settings.report_retention_days, current_time(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for collection_id, n in sorted(counts.items()):
        click.echo(f"{collection_id}: {verb} {n} reports")
    click.echo(f"total: {verb} {sum(counts.values())} reports")
