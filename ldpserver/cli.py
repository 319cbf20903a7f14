"""The ``ldp`` command line."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """LDP analytics: server administration, audits, simulations and the demo."""


@main.command()
@click.option("--attribute", default="education", show_default=True, help="Adult attribute for the oracle part.")
@click.option("--epsilon", default=1.0, show_default=True, type=float)
@click.option("--seed", default=None, type=int, help="Fix the simulation's randomness.")
def demo(attribute: str, epsilon: float, seed: int | None) -> None:
    """Run the end-to-end demonstration on embedded defaults."""
    from ldpserver.demo import run_oracle_demo

    run_oracle_demo(attribute=attribute, epsilon=epsilon, seed=seed)


if __name__ == "__main__":
    main()
