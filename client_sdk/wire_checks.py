"""Strict wire-payload checks shared by every decoder (frequency oracles, multidim,
heavy hitters, longitudinal).

A payload is exactly the fields its protocol defines: an unknown field is refused (a
third-party client must not be able to ship the true value, or megabytes of junk, next to
the perturbed report), and the version is the JSON integer itself — ``1.0`` and ``true``
compare equal to 1 in Python but are not version 1 (docs/api.md, "Strictness").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from client_sdk.errors import ReportDecodeError


def is_version(value: Any, version: int) -> bool:
    """True only for the integer ``version`` (not a float, not a bool, not a numpy scalar)."""
    return type(value) is int and value == version


def refuse_unknown_fields(payload: Mapping[str, Any], allowed: Collection[str], index: int | None) -> None:
    """Raise ``unknown_field`` if the payload carries a key its protocol does not define."""
    extra = [key for key in payload if key not in allowed]
    if extra:
        shown = sorted(str(key) for key in extra)[:5]
        raise ReportDecodeError("unknown_field", f"unexpected fields {shown}", index)
