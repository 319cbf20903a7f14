"""The injectable clock: a callable returning an aware UTC datetime.

The app reads it from ``app.config["CLOCK"]`` so tests can move time deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values, as SQLite returns them, are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """Canonical text form: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeClock:
    """A settable clock for tests: ``clock()``, ``clock.set(dt)``, ``clock.advance(seconds=...)``."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def __call__(self) -> datetime:
        return self._now

    def set(self, value: datetime) -> None:
        self._now = as_utc(value)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now
