"""``ldp audit verify`` and ``ldp audit export``: the ledger, offline."""

from __future__ import annotations

import json
import sys

import click

from ldpserver.cli.common import database_option, engine_for, main


@main.group()
def audit() -> None:
    """Offline audits against the database."""


@audit.command("verify")
@database_option
@click.option("--collection", default=None, help="Check one collection's chain only.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(database_url: str | None, collection: str | None, as_json: bool) -> None:
    """Verify the budget ledger's hash chains; exit 1 naming the first bad row if tampered."""
    import time

    from ldpserver.db import read_transaction
    from ldpserver.services.ledger_verify import snapshot, verify_all

    engine = engine_for(database_url)
    started = time.perf_counter()
    with read_transaction(engine) as conn:
        snapshot(conn)  # one snapshot: rows streamed in constant memory, no time limit
        chains, _ = verify_all(conn, collection)
    seconds = time.perf_counter() - started
    if collection is not None and not chains:
        raise click.ClickException(f"no collection {collection!r}")
    ok = all(chain.ok for chain in chains)
    rows = sum(chain.rows for chain in chains)
    rate = rows / max(seconds, 1e-9)
    if as_json:
        stats = {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rate, 1)}
        click.echo(json.dumps({"ok": ok, "chains": [c.to_dict() for c in chains], **stats}, indent=2))
    else:
        for chain in chains:
            if chain.ok:
                click.echo(
                    f"ok       {chain.collection_id}: {chain.rows} rows, head {chain.head_seq} {chain.head_hash}"
                )
            else:
                bad = chain.first_bad or {}
                click.echo(
                    f"TAMPERED {chain.collection_id}: first bad row seq={bad.get('seq')} "
                    f"({bad.get('problem')}): {bad.get('detail')}"
                )
        click.echo(
            f"{len(chains)} chain(s) checked: {'all intact' if ok else 'TAMPERING DETECTED'} "
            f"({rows} rows in {seconds:.1f} s, {rate:,.0f} rows/s)"
        )
    if not ok:
        sys.exit(1)


@audit.command("export")
@database_option
@click.option("--collection", default=None, help="One collection's chain only.")
@click.option("--client-id", default=None, help="One device's charges only.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    default=None,
    help="Default: from --output's extension, else csv.",
)
@click.option("--output", "-o", default="-", show_default=True, help="File to write ('-' = stdout).")
@click.option("--page-size", default=5000, show_default=True, type=click.IntRange(1, 100_000))
def audit_export(
    database_url: str | None,
    collection: str | None,
    client_id: str | None,
    fmt: str | None,
    output: str,
    page_size: int,
) -> None:
    """Export the budget ledger (the rows GET /v1/audit/ledger serves, in chain order) as CSV, a JSON
    array or JSON lines, streamed page by page. Check it with `ldp audit verify` (or the API)."""
    import csv

    from ldpserver.csv_cells import safe_row
    from ldpserver.db import read_transaction
    from ldpserver.services.audit import LEDGER_COLUMNS, ledger_page

    if fmt is None:
        suffix = output.rsplit(".", 1)[-1].lower() if "." in output else ""
        fmt = suffix if suffix in ("csv", "json", "jsonl") else "csv"
    engine = engine_for(database_url)
    if collection is not None:
        from ldpserver.services.collections import CollectionCache

        if CollectionCache(engine).get(collection) is None:
            raise click.ClickException(f"no collection {collection!r}")
    stream = click.open_file(output, "w", encoding="utf-8", lazy=False)
    rows = 0
    try:
        writer = None
        if fmt == "csv":
            writer = csv.DictWriter(stream, fieldnames=LEDGER_COLUMNS, lineterminator="\n")
            writer.writeheader()
        elif fmt == "json":
            stream.write("[")
        cursor = None
        while True:
            with read_transaction(engine) as conn:
                items, cursor = ledger_page(conn, collection, client_id, cursor, page_size)
            for item in items:
                if writer is not None:
                    writer.writerow(safe_row(item, LEDGER_COLUMNS))
                elif fmt == "json":
                    stream.write(("," if rows else "") + "\n  " + json.dumps(item, default=str))
                else:
                    stream.write(json.dumps(item, default=str) + "\n")
                rows += 1
            if cursor is None:
                break
        if fmt == "json":
            stream.write("\n]\n" if rows else "]\n")
    finally:
        if output != "-":
            stream.close()
    if output != "-":
        click.echo(f"{rows} ledger rows written to {output} ({fmt})", err=True)
