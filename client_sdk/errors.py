"""Exceptions raised by the SDK. Every message says what was wrong and what is allowed."""

from __future__ import annotations


class LDPError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ConfigError(LDPError, ValueError):
    """A mechanism configuration the math cannot support (epsilon <= 0, k < 2, ...)."""


class ReportDecodeError(LDPError, ValueError):
    """A report payload that is malformed, of another mechanism or out of range."""

    def __init__(self, reason: str, detail: str, index: int | None = None) -> None:
        self.reason = reason  # stable machine-readable code, e.g. "out_of_range"
        self.detail = detail
        self.index = index
        where = f"report {index}: " if index is not None else ""
        super().__init__(f"{where}{detail} ({reason})")


class AggregateMismatchError(LDPError, ValueError):
    """Two aggregates of different mechanisms or configurations were combined."""


class BudgetExceededError(LDPError):
    """Perturbing would push the device past its privacy-budget cap."""
