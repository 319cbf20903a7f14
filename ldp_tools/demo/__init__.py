"""The main job, ``ldp demo``: the whole product end to end on embedded defaults.

* :mod:`ldp_tools.demo.run` — migrate a fresh SQLite database, start the real server
  (gunicorn, or the development server) as a subprocess, create keys and collections,
  drive simulated devices through the SDK ``Client`` over HTTP for several epochs on an
  accelerated clock, release every epoch through the API, and report;
* :mod:`ldp_tools.demo.server` — the server process: the real app with a clock read from
  a file, so the demo (and the devices) can move time;
* :mod:`ldp_tools.demo.devices` — the device fleet and the uploading relay;
* :mod:`ldp_tools.demo.report` — the figures (matplotlib, Agg) and the HTML report;
* :mod:`ldp_tools.demo.oracles` — every frequency oracle on UCI Adult, in process.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_demo", "run_oracle_demo"]


def run_oracle_demo(*args: Any, **kwargs: Any) -> Any:
    from ldp_tools.demo.oracles import run_oracle_demo as run

    return run(*args, **kwargs)


def run_demo(*args: Any, **kwargs: Any) -> Any:
    from ldp_tools.demo.run import run_demo as run

    return run(*args, **kwargs)
