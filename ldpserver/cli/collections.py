"""``ldp collections``: create collections from files (the API's checks) and list them."""

from __future__ import annotations

import json

import click

from ldpserver.cli.common import current_time, database_option, engine_for, main


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

    from ldpserver.config_files import load_config_file
    from ldpserver.errors import ProblemError
    from ldpserver.schemas.collections import CollectionCreate
    from ldpserver.services.collections import CollectionCache, create_collection

    try:
        document = load_config_file(path)
    except Exception as exc:  # YAML and JSON parsers raise their own types
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
    engine = engine_for(database_url)
    cache = CollectionCache(engine)
    created = []
    for request in requests:
        now = current_time()
        try:
            collection_id = create_collection(engine, request, "cli", now)["id"]
        except ProblemError as exc:
            paths = ", ".join(e.get("path", "") for e in exc.errors or [])
            raise click.ClickException(f"{exc.slug}: {exc.detail}" + (f" ({paths})" if paths else "")) from None
        runtime = cache.get(collection_id)
        assert runtime is not None  # created just above
        view = runtime.public_view(now)
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

    now = current_time()
    compiled = CollectionCache(engine_for(database_url)).list(kind)
    if as_json:
        click.echo(json.dumps([c.public_view(now) for c in compiled], default=str, indent=2))
        return
    click.echo(f"{'id':<21} {'kind':<13} {'epsilon':>8} {'epoch s':>8} {'current':>8}  name")
    for c in compiled:
        click.echo(
            f"{c.id:<21} {c.kind:<13} {c.public.epsilon:>8.4g} {c.public.epoch.seconds:>8} "
            f"{c.epoch_at(now):>8}  {c.name}"
        )
