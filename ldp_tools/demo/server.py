"""The demo's server process: the real app (``create_app``) with a clock read from a file.

The demo moves time by writing Unix seconds to ``LDP_DEMO_CLOCK_FILE`` (an empty file
means the real time); the devices in the demo process read the same clock, so both sides
agree on the epoch (the same arrangement as ``tests/system/test_client_harness.py``).
Everything else is production: the same app, database code and settings.

* under gunicorn: ``gunicorn -c gunicorn.conf.py 'ldp_tools.demo.server:build_app()'``;
* without gunicorn: ``python -m ldp_tools.demo.server PORT`` (werkzeug, threaded; prints
  the port it listens on).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLOCK_ENV = "LDP_DEMO_CLOCK_FILE"


class FileClock:
    """A clock two processes share: Unix seconds in a file (empty or missing: the real time)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def set(self, when: float | datetime | None) -> None:
        if isinstance(when, datetime):
            when = when.timestamp()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("" if when is None else repr(float(when)), encoding="utf-8")
        os.replace(tmp, self.path)

    def __call__(self) -> datetime:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = ""
        if not text:
            return datetime.now(UTC)
        return datetime.fromtimestamp(float(text), UTC)


def build_app() -> Any:
    from ldpserver.app import create_app

    path = os.environ.get(CLOCK_ENV)
    if not path:
        raise RuntimeError(f"{CLOCK_ENV} is not set: the demo server needs the shared clock file")
    return create_app(clock=FileClock(path))


def main(argv: list[str]) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", int(argv[0]) if argv else 0, build_app(), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
