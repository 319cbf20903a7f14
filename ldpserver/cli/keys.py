"""``ldp keys``: API keys (one role each, the secret printed once, stored hashed)."""

from __future__ import annotations

import json

import click

from ldpserver.cli.common import current_time, database_option, engine_for, main


@main.group()
def keys() -> None:
    """API keys: one role each (client, analyst, auditor, admin)."""


@keys.command("create")
@database_option
@click.option("--role", required=True, type=click.Choice(["client", "analyst", "auditor", "admin"]))
@click.option("--name", default="", help="A label for the key.")
@click.option(
    "--collections",
    "collections",
    default=None,
    help="Comma-separated collection ids this key is limited to (client, analyst, auditor). Default: all.",
)
@click.option("--max-devices", type=click.IntRange(min=0), default=None, help="Client keys: enrolment cap.")
@click.option("--enrol-per-hour", type=click.IntRange(min=0), default=None, help="Client keys: enrolments per hour.")
@click.option(
    "--enrol-per-address-hour",
    type=click.IntRange(min=0),
    default=None,
    help="Client keys: enrolments per source address per hour.",
)
def keys_create(
    database_url: str | None,
    role: str,
    name: str,
    collections: str | None,
    max_devices: int | None,
    enrol_per_hour: int | None,
    enrol_per_address_hour: int | None,
) -> None:
    """Create a key and print it once (only its SHA-256 is stored)."""
    from ldpserver.services.keys import KeyLimits, create_key

    scope = [c.strip() for c in collections.split(",") if c.strip()] if collections is not None else None
    limits = KeyLimits(max_devices, enrol_per_hour, enrol_per_address_hour)
    try:
        key_id, key = create_key(engine_for(database_url), role, name, current_time(), collections=scope, limits=limits)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"id:   {key_id}", err=True)
    click.echo(f"role: {role}", err=True)
    if scope is not None:
        click.echo(f"collections: {', '.join(sorted(set(scope)))}", err=True)
    click.echo("key (shown once; store it now):", err=True)
    click.echo(key)


@keys.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keys_list(database_url: str | None, as_json: bool) -> None:
    """List keys (id, role, name, created, revoked)."""
    from ldpserver.services.keys import list_keys

    rows = list_keys(engine_for(database_url))
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    click.echo(f"{'id':<14} {'role':<8} {'created':<26} {'revoked':<26} name")
    for row in rows:
        revoked = str(row["revoked_at"] or "-")
        click.echo(f"{row['id']:<14} {row['role']:<8} {str(row['created_at']):<26} {revoked:<26} {row['name']}")


@keys.command("revoke")
@database_option
@click.argument("key_id")
def keys_revoke(database_url: str | None, key_id: str) -> None:
    """Revoke key KEY_ID (takes effect on the next request)."""
    from ldpserver.services.keys import revoke_key

    if not revoke_key(engine_for(database_url), key_id, current_time()):
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")
