"""``ldp demo`` and ``ldp simulate`` (the code lives in ``ldp_tools``, outside the server)."""

from __future__ import annotations

import json

import click

from ldpserver.cli.common import main


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
    try:
        import httpx  # noqa: F401 - the demo's devices speak HTTP through it (the demo extra)
    except ImportError:
        raise click.ClickException("the demo needs the demo extra: pip install 'ldp-analytics-server[demo]'") from None
    if oracles_only:
        from ldp_tools.demo import run_oracle_demo

        run_oracle_demo(attribute=attribute, epsilon=epsilon, seed=seed)
        return
    from ldp_tools.demo import run_demo

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
@click.option(
    "--dictionary",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Known-candidate heavy hitters: the candidate items, one per line (default: the CSV's distinct items).",
)
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
    dictionary: str | None,
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

    from ldp_tools import simulate as sim
    from ldpserver.config_files import load_config_file

    seed = secrets.randbits(32) if seed is None else seed
    try:
        result = sim.run(
            load_config_file(config_path),
            data,
            columns,
            seed=seed,
            values=values,
            party_column=party_column,
            level=level,
            dictionary=dictionary,
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
