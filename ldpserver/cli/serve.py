"""``ldp serve``, ``ldp release`` and ``ldp scheduler``: the API server and the releases."""

from __future__ import annotations

import json
import sys

import click

from ldpserver.cli.common import current_time, database_option, engine_for, main


def _gunicorn_config() -> str | None:
    """$LDP_GUNICORN_CONFIG, else gunicorn.conf.py at the repository root (a checkout), else the
    copy the server wheel ships inside the package (setup.py puts it there)."""
    import os
    from pathlib import Path

    explicit = os.environ.get("LDP_GUNICORN_CONFIG")
    if explicit:
        return explicit
    package = Path(__file__).resolve().parents[1]  # ldpserver/
    for candidate in (package.parent / "gunicorn.conf.py", package / "gunicorn.conf.py"):
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

    engine_for(None)  # refuse early, with the `ldp migrate` message, on an unmigrated database
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

    engine = engine_for(database_url)
    collection = CollectionCache(engine).get(collection_id)
    if collection is None:
        raise click.ClickException(f"no collection {collection_id!r}")
    try:
        outcome = request_release(engine, collection, current_time(), epoch=epoch, force=force, trigger="cli")
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
    from ldpserver.services.releases import ReleaseContext, run_scheduler_once

    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    if metrics_port is not None:
        _serve_scheduler_metrics(metrics_host, metrics_port)
    engine = engine_for(database_url)
    cache = CollectionCache(engine)
    context = ReleaseContext.default()
    while True:
        collections = cache.list()
        if collection_ids:
            collections = [c for c in collections if c.id in collection_ids]
        results = run_scheduler_once(engine, collections, current_time(), context)
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
