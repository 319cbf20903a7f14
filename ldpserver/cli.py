"""The ``ldp`` command line.

ldp migrate [--revision head]        upgrade the database (DATABASE_URL) to the migrations' head
ldp downgrade REVISION --yes         downgrade (e.g. to "base": drops everything)
ldp keys create --role ROLE [--name] [--collections A,B] [--max-devices N] [--enrol-per-hour N]
                                     create an API key (printed once), optionally scoped/limited
ldp keys list                        list keys (never the secrets)
ldp keys revoke ID                   revoke a key
ldp audit verify [--collection ID]   check the ledger's hash chains offline; exit 1 on tampering
ldp audit export [--format csv|json|jsonl] [--output FILE]   the ledger, to a file or stdout
ldp collections create --file FILE   create collection(s) from YAML/JSON (same checks as the API)
ldp collections list [--json]        list collections
ldp reports purge [--dry-run]        delete raw reports past retention (and past their epoch window)
ldp serve [--host --port --workers]  run the API with gunicorn (gunicorn.conf.py); --dev: werkzeug
ldp release --collection ID          close and release epochs now
ldp scheduler [--once]               release every due epoch, in a loop
ldp simulate --config F --data CSV --column C   a collection's devices + estimates in process
ldp demo                             the end-to-end demonstration (server, devices, releases, report)
"""

from __future__ import annotations

import json
import sys

import click


def _settings(database_url: str | None):
    from ldpserver.config import Settings

    return Settings(database_url=database_url) if database_url else Settings()


def _engine(database_url: str | None, *, check: bool = True):
    from ldpserver.db import make_engine
    from ldpserver.schema import DatabaseNotMigrated, check_at_head

    settings = _settings(database_url)
    engine = make_engine(settings.database_url, null_pool=True, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if check:
        try:
            check_at_head(engine, settings.redacted_database_url())
        except DatabaseNotMigrated as exc:
            raise click.ClickException(str(exc)) from None
    return engine


def _now():
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


@main.command()
@database_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate(database_url: str | None, revision: str) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from ldpserver import schema

    settings = _settings(database_url)
    schema.upgrade(settings.database_url, revision)
    engine = _engine(database_url, check=False)
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
    settings = _settings(database_url)
    schema.downgrade(settings.database_url, revision)
    engine = _engine(database_url, check=False)
    click.echo(f"database {settings.redacted_database_url()} is at revision {schema.current_revision(engine)}")


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
        key_id, key = create_key(_engine(database_url), role, name, _now(), collections=scope, limits=limits)
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

    rows = list_keys(_engine(database_url))
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

    if not revoke_key(_engine(database_url), key_id, _now()):
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")


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
    from ldpserver.services.ledger import snapshot, verify_all

    engine = _engine(database_url)
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

    settings = _settings(database_url)
    counts = purge_reports(_engine(database_url), settings.report_retention_days, _now(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for collection_id, n in sorted(counts.items()):
        click.echo(f"{collection_id}: {verb} {n} reports")
    click.echo(f"total: {verb} {sum(counts.values())} reports")


def _gunicorn_config() -> str | None:
    """$LDP_GUNICORN_CONFIG, else gunicorn.conf.py at the repository root (a checkout), else the
    copy the server wheel ships inside the package (setup.py puts it there)."""
    import os
    from pathlib import Path

    explicit = os.environ.get("LDP_GUNICORN_CONFIG")
    if explicit:
        return explicit
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "gunicorn.conf.py", here / "gunicorn.conf.py"):
        if candidate.is_file():
            return str(candidate)
    return None


NO_PROXY_WARNING = (
    "warning: serving WITHOUT a buffering reverse proxy (LDP_BEHIND_PROXY is not set): slow clients can "
    "stall the sync workers; production puts nginx in front (docker/nginx/, docs/operations.md)"
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=None,
    type=int,
    help="gunicorn workers (default: gunicorn.conf.py's: $WEB_CONCURRENCY, else $LDP_WORKERS, "
    "else min(2 × cores + 1, 8)).",
)
@click.option("--dev", is_flag=True, help="Development server (werkzeug, threaded) instead of gunicorn.")
@click.option("--reload", "reload_", is_flag=True, help="--dev only: restart when the code changes.")
def serve(host: str, port: int, workers: int | None, dev: bool, reload_: bool) -> None:
    """Run the API: gunicorn with gunicorn.conf.py (production), or --dev (settings from the environment)."""
    import os

    _engine(None)  # refuse early, with the `ldp migrate` message, on an unmigrated database
    if dev:
        from ldpserver.app import create_app

        click.echo(f"development server on http://{host}:{port} (not for production: use `ldp serve`)", err=True)
        click.echo(f"{NO_PROXY_WARNING} (the development server even more so)", err=True)
        create_app().run(host=host, port=port, threaded=True, use_reloader=reload_, debug=False)
        return
    if reload_:
        raise click.UsageError("--reload needs --dev")
    if os.environ.get("LDP_BEHIND_PROXY", "").strip() not in ("1", "true", "yes"):
        click.echo(NO_PROXY_WARNING, err=True)
    command = [sys.executable, "-m", "gunicorn"]
    config = _gunicorn_config()
    if config:
        command += ["-c", config]
    if workers is not None:  # else gunicorn.conf.py's rule, the one docs/operations.md states
        command += ["-w", str(workers)]
    command += ["-b", f"{host}:{port}", "ldpserver.wsgi:app"]
    os.execvp(sys.executable, command)


@main.command()
@click.option(
    "--data-dir",
    default="var/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo's SQLite database, server log and report go (emptied first).",
)
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 10.0),
    help="Multiplies the number of simulated devices (1.0: 12,500 devices).",
)
@click.option("--seed", default=None, type=int, help="Fix the simulation's randomness (the devices use the OS CSPRNG).")
@click.option(
    "--server",
    type=click.Choice(["gunicorn", "dev"]),
    default="gunicorn",
    show_default=True,
    help="Run the server under gunicorn (gunicorn.conf.py) or the development server.",
)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--threads", default=64, show_default=True, type=int, help="Devices reporting at once, per process.")
@click.option(
    "--processes", default=None, type=click.IntRange(1, 64), help="Device processes (default: min(2, cores))."
)
@click.option("--no-oracles", is_flag=True, help="Skip the in-process comparison of every frequency oracle.")
@click.option("--keep-devices", is_flag=True, help="Keep the simulated devices' state directories.")
@click.option("--oracles-only", is_flag=True, help="Only the in-process oracle comparison (no server).")
@click.option("--attribute", default="education", show_default=True, help="--oracles-only: the Adult attribute.")
@click.option("--epsilon", default=1.0, show_default=True, type=float, help="--oracles-only: epsilon.")
def demo(
    data_dir: str,
    scale: float,
    seed: int | None,
    server: str,
    workers: int,
    threads: int,
    processes: int | None,
    no_oracles: bool,
    keep_devices: bool,
    oracles_only: bool,
    attribute: str,
    epsilon: float,
) -> None:
    """The end-to-end demonstration on embedded defaults (SQLite): migrate, start the server,
    create keys and collections, run simulated SDK devices over HTTP for several epochs,
    release every epoch, print true vs estimated values and the budget audit, and write an
    HTML report with figures."""
    if oracles_only:
        from ldpserver.demo import run_oracle_demo

        run_oracle_demo(attribute=attribute, epsilon=epsilon, seed=seed)
        return
    from ldpserver.demo import run_demo

    try:
        run_demo(
            data_dir=data_dir,
            scale=scale,
            seed=seed,
            server=server,
            workers=workers,
            oracles=not no_oracles,
            keep_devices=keep_devices,
            threads=threads,
            processes=processes,
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


# --- continual release (ldpserver/services/releases.py, docs/releases.md) -----------------------


@main.command("release")
@database_option
@click.option("--collection", "collection_id", required=True, help="The collection to release.")
@click.option("--epoch", type=int, default=None, help="Close and release this past epoch (default: every due one).")
@click.option("--force", is_flag=True, help="Allow closing and releasing the current epoch.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def release_command(database_url: str | None, collection_id: str, epoch: int | None, force: bool, as_json: bool):
    """Close and release epochs now (idempotent: a released epoch returns its release)."""
    from ldpserver.errors import ProblemError
    from ldpserver.services.collections import CollectionCache
    from ldpserver.services.releases import request_release

    engine = _engine(database_url)
    collection = CollectionCache(engine).get(collection_id)
    if collection is None:
        raise click.ClickException(f"no collection {collection_id!r}")
    try:
        outcome = request_release(engine, collection, _now(), epoch=epoch, force=force, trigger="cli")
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from None
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2))
        return
    for item in outcome.releases:
        verb = "released" if item["number"] in outcome.created else "existing"
        click.echo(f"{verb:<9} #{item['number']} epoch {item['epoch']} sha256 {item['sha256']}")
    click.echo(f"{len(outcome.created)} release(s) created")


@main.command()
@database_option
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=60.0, show_default=True, type=float, help="Seconds between passes.")
@click.option("--collection", "collection_ids", multiple=True, help="Only these collections (repeatable).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="LDP_SCHEDULER_METRICS_PORT",
    help="Serve this process's Prometheus metrics (ldp_releases_total, ldp_release_duration_seconds) "
    "at http://HOST:PORT/metrics (default: not served).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="LDP_SCHEDULER_METRICS_HOST",
    help="Address of the metrics listener (0.0.0.0 in a container, for the scraper).",
)
def scheduler(
    database_url: str | None,
    once: bool,
    interval: float,
    collection_ids: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Release every due epoch (current > epoch + grace) of every collection, in a loop or once."""
    import signal
    import threading

    from ldpserver.services.collections import CollectionCache
    from ldpserver.services.releases import run_scheduler_once

    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    if metrics_port is not None:
        _serve_scheduler_metrics(metrics_host, metrics_port)
    engine = _engine(database_url)
    cache = CollectionCache(engine)
    while True:
        collections = cache.list()
        if collection_ids:
            collections = [c for c in collections if c.id in collection_ids]
        results = run_scheduler_once(engine, collections, _now())
        for collection_id, result in sorted(results.items()):
            if result.get("created") or "error" in result:
                click.echo(f"{collection_id}: {json.dumps(result)}")
        failed = any("error" in r for r in results.values())
        if once:
            sys.exit(1 if failed else 0)
        if stop.wait(interval):
            return


def _serve_scheduler_metrics(host: str, port: int) -> None:
    """The scheduler is one process that serves no HTTP API: its release metrics get their own
    small listener (a daemon thread), in this process's own registry — a multi-process
    directory (PROMETHEUS_MULTIPROC_DIR) belongs to the API's gunicorn workers, not to it."""
    import os

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # before prometheus_client is first imported
    from prometheus_client import start_http_server

    import ldpserver.metrics  # noqa: F401  (registers the release counter and histogram)

    server, _ = start_http_server(port, addr=host)
    click.echo(f"scheduler metrics on http://{host}:{server.server_port}/metrics", err=True)


# --- operations: collections from files, ledger export, offline simulation ------------------------


@main.group()
def collections() -> None:
    """Collections (immutable): create from a file, list."""


@collections.command("create")
@database_option
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML or JSON: one collection (the body of POST /v1/collections) or a list of them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the created collections' public views as JSON.")
def collections_create(database_url: str | None, path: str, as_json: bool) -> None:
    """Create collection(s) with the same validation and privacy checks as POST /v1/collections."""
    from pydantic import ValidationError

    from ldpserver.errors import ProblemError
    from ldpserver.schemas.collections import CollectionCreate
    from ldpserver.services.collections import CollectionCache, create_collection
    from ldpserver.simulate import load_config_file

    try:
        document = load_config_file(path)
    except Exception as exc:  # noqa: BLE001 - YAML and JSON parsers raise their own types
        raise click.ClickException(f"{path}: not valid YAML/JSON: {exc}") from None
    items = document if isinstance(document, list) else [document]
    requests = []
    for i, item in enumerate(items):
        where = f"{path}" if len(items) == 1 else f"{path} [{i}]"
        try:
            requests.append(CollectionCreate.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                "/" + "/".join(str(p) for p in e["loc"]) + f": {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise click.ClickException(f"{where}: {problems}") from None
    engine = _engine(database_url)
    cache = CollectionCache(engine)
    created = []
    for request in requests:
        now = _now()
        try:
            collection_id = create_collection(engine, request, "cli", now)["id"]
        except ProblemError as exc:
            paths = ", ".join(e.get("path", "") for e in exc.errors or [])
            raise click.ClickException(f"{exc.slug}: {exc.detail}" + (f" ({paths})" if paths else "")) from None
        view = cache.get(collection_id).public_view(now)
        created.append(view)
        if not as_json:
            click.echo(f"created {view['id']} {view['kind']:<13} {view['config_hash']}  {view['name']}")
    if as_json:
        click.echo(json.dumps(created if isinstance(document, list) else created[0], default=str, indent=2))


@collections.command("list")
@database_option
@click.option("--kind", default=None, type=click.Choice(["frequency", "multidim", "heavy_hitters", "longitudinal"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def collections_list(database_url: str | None, kind: str | None, as_json: bool) -> None:
    """List collections (id, kind, epsilon, epoch length, name)."""
    from ldpserver.services.collections import CollectionCache

    now = _now()
    views = [c.public_view(now) for c in CollectionCache(_engine(database_url)).list(kind)]
    if as_json:
        click.echo(json.dumps(views, default=str, indent=2))
        return
    click.echo(f"{'id':<21} {'kind':<13} {'epsilon':>8} {'epoch s':>8} {'current':>8}  name")
    for v in views:
        cfg = v["config"]
        click.echo(
            f"{v['id']:<21} {v['kind']:<13} {cfg['epsilon']:>8.4g} {cfg['epoch']['seconds']:>8} "
            f"{v['current_epoch']:>8}  {v['name']}"
        )


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
    engine = _engine(database_url)
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


@main.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Collection config (YAML/JSON, as for `ldp collections create`).",
)
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="CSV with a header row.")
@click.option(
    "--column",
    "columns",
    multiple=True,
    required=True,
    help="CSV column of true values (repeat for each multidim attribute, in order).",
)
@click.option(
    "--values",
    type=click.Choice(["auto", "index", "label"]),
    default="auto",
    show_default=True,
    help="Categorical values are indices 0..k-1, labels (numbered in sorted order), or auto.",
)
@click.option("--party-column", default=None, help="Federated heavy hitters: the CSV column of each row's party.")
@click.option("--seed", default=None, type=int, help="Seed of the simulation's generator (default: random).")
@click.option("--level", default=0.95, show_default=True, type=click.FloatRange(0.5, 0.999), help="Interval level.")
@click.option("--top", default=None, type=int, help="Print at most this many values per attribute.")
@click.option("--output", "-o", default=None, help="Write the estimates: .json (everything) or .csv (rows).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def simulate(
    config_path: str,
    data: str,
    columns: tuple[str, ...],
    values: str,
    party_column: str | None,
    seed: int | None,
    level: float,
    top: int | None,
    output: str | None,
    as_json: bool,
) -> None:
    """Run a collection's devices and aggregation in process on a CSV of true values (no server):
    perturb every row once (the SDK's perturb_batch), aggregate, estimate, and print the
    estimates with their intervals beside the CSV's true frequencies."""
    import secrets

    from ldpserver import simulate as sim

    seed = secrets.randbits(32) if seed is None else seed
    try:
        result = sim.run(
            sim.load_config_file(config_path),
            data,
            columns,
            seed=seed,
            values=values,
            party_column=party_column,
            level=level,
        )
    except sim.SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(sim.format_table(result, top=top))
    if output:
        sim.write_result(result, output)
        click.echo(f"estimates written to {output}", err=True)


if __name__ == "__main__":
    main()
