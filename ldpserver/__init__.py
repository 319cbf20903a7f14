"""The LDP analytics server: collections, idempotent ingestion, budget ledger, releases.

``create_app`` (in :mod:`ldpserver.app`) is the application factory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ldpserver.app import create_app

        return create_app
    raise AttributeError(name)
