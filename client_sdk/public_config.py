"""A collection's public config, typed: what the server publishes and a device runs by.

One place for the rules both sides apply — the server when it creates a collection and
ingests reports (``ldpserver/services/collections.py``), the device runtime when it
charges its budget (``client_sdk/client``), and ``ldp-client``:

* the config **version** (2: hashed as RFC 8785 canonical JSON, :mod:`client_sdk.canonical`);
* **epochs**: ``epoch = floor((now − epoch.start) / epoch.seconds)``, in whole microseconds
  (the floor division of ``timedelta``), and the accounting window ``epoch // window_epochs``;
* **budget units**: a charge is one unit of ``unit_epsilon`` — the per-report ``epsilon``,
  or ``budget.epsilon_per_memo`` (ε∞) for memoized collections, where only a new memo
  costs a unit — and a cap allows ``floor(cap / unit · (1 + 1e-9))`` units, so 3 × 0.1
  fits a cap of 0.3.

:class:`PublicConfig` reads the JSON a device receives (:meth:`PublicConfig.from_dict`)
and writes exactly the JSON the server hashes and serves (:meth:`PublicConfig.to_dict`).

>>> cfg = PublicConfig.from_dict({
...     "version": 2, "kind": "frequency", "epsilon": 0.1, "neighbouring": "record",
...     "mechanism": {"mechanism": "grr", "epsilon": 0.1, "domain_size": 4},
...     "epoch": {"seconds": 3600, "start": "2030-01-01T00:00:00Z", "grace": 1},
...     "release": {"windows": [1], "cumulative": True, "min_reports": 100},
...     "budget": {"cap_lifetime": 0.3, "cap_per_window": None, "window_epochs": 24,
...                "memoized": False, "epsilon_per_memo": None}})
>>> cfg.unit_epsilon, cfg.max_units_lifetime, cfg.max_units_window
(0.1, 3, None)
>>> cfg.epoch_at(datetime(2030, 1, 2, 1, 30, tzinfo=UTC)), cfg.window_of(25)
(25, 1)
>>> PublicConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from client_sdk.canonical import canonical_json, config_hash
from client_sdk.errors import ConfigError

__all__ = [
    "CONFIG_VERSION",
    "UNIT_SLACK",
    "BudgetRule",
    "EpochRule",
    "PublicConfig",
    "PublicConfigError",
    "UnsupportedConfigVersion",
    "epoch_boundary",
    "lifetime_units",
    "max_units",
    "parse_start",
    "to_microseconds",
]

#: version 2: hashed as RFC 8785 (JCS) canonical JSON; version 1 (Python json.dumps text) is refused
CONFIG_VERSION = 2
#: caps are compared as ``units · unit <= cap · (1 + UNIT_SLACK)``: 0.3 = 3 × 0.1 fits
UNIT_SLACK = 1e-9
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class PublicConfigError(ConfigError):
    """The public config lacks a field, or has one of the wrong type or range."""


class UnsupportedConfigVersion(PublicConfigError):
    """The config's version is not the one this SDK reads (the message names both)."""


@overload
def max_units(cap: float, unit: float) -> int: ...
@overload
def max_units(cap: None, unit: float) -> None: ...
@overload
def max_units(cap: float | None, unit: float) -> int | None: ...
def max_units(cap: float | None, unit: float) -> int | None:
    """How many charges of ``unit`` fit under ``cap`` (None: no cap)."""
    if cap is None:
        return None
    return math.floor(cap / unit * (1 + UNIT_SLACK))


def lifetime_units(cap_units: int, memo_limit: int | None) -> int:
    """The most units one device can ever spend in a memoized collection: its lifetime cap,
    or fewer when the protocol bounds the memos a device can hold (k values, g hash cells...)."""
    return cap_units if memo_limit is None else max(1, min(cap_units, memo_limit))


def to_microseconds(now: Any) -> int:
    """Microseconds since the Unix epoch of a clock reading (aware datetime, or seconds as a number)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return (now - _UNIX) // _MICROSECOND
    if isinstance(now, int | float) and not isinstance(now, bool):
        return round(now * 1_000_000)
    raise TypeError(f"the clock must return an aware datetime or Unix seconds, got {now!r}")


def parse_start(text: Any) -> int:
    """``epoch.start`` (an ISO 8601 timestamp with a zone) in Unix microseconds."""
    if not isinstance(text, str):
        raise PublicConfigError(f"epoch.start must be a timestamp string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PublicConfigError(f"epoch.start {text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise PublicConfigError(f"epoch.start {text!r} has no time zone")
    return to_microseconds(value)


def epoch_boundary(now: datetime, seconds: int) -> datetime:
    """The start of the epoch of length ``seconds`` holding ``now``, counted from the Unix epoch
    (a new collection's default ``epoch.start``)."""
    stamp = to_microseconds(now) // 1_000_000
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


def check_version(config: Mapping[str, Any], collection_id: str, accept: tuple[int, ...] = (CONFIG_VERSION,)) -> None:
    """Refuse a config of another version, naming it (the same message in every SDK). A server
    reading its own stored collections also accepts version 1 (``accept``); a device never does."""
    version = config.get("version")
    if version in accept and type(version) is int:
        return
    hint = ""
    if version == 1:
        hint = (
            "; version 1 configs were hashed as Python json.dumps text, version 2 as RFC 8785 canonical JSON: "
            "recreate the collection on a current server"
        )
    raise UnsupportedConfigVersion(
        f"collection {collection_id!r}: config version {version!r} is not supported "
        f"(this SDK reads {CONFIG_VERSION}){hint}"
    )


@dataclass(frozen=True)
class EpochRule:
    """``epoch``: epoch length, start of epoch 0 (its text as published, and in µs), grace."""

    seconds: int
    start: str
    grace: int = 1
    start_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int) or self.seconds < 1:
            raise PublicConfigError(f"epoch.seconds must be a positive integer, got {self.seconds!r}")
        object.__setattr__(self, "start_us", parse_start(self.start))

    @classmethod
    def starting(cls, start: datetime, seconds: int, grace: int) -> EpochRule:
        """The rule of epochs from ``start`` (whole seconds, written as ``...Z`` in UTC)."""
        return cls(seconds, start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), grace)

    def epoch_at(self, now: Any) -> int:
        """The epoch of a clock reading (aware datetime, or Unix seconds)."""
        return (to_microseconds(now) - self.start_us) // (self.seconds * 1_000_000)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "start": self.start, "grace": self.grace}


@dataclass(frozen=True)
class BudgetRule:
    """``budget``: lifetime and per-window caps (ε), the window length in epochs, memoization."""

    cap_lifetime: float
    cap_per_window: float | None = None
    window_epochs: int = 1
    memoized: bool = False
    epsilon_per_memo: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.window_epochs, bool) or not isinstance(self.window_epochs, int) or self.window_epochs < 1:
            raise PublicConfigError(f"budget.window_epochs must be a positive integer, got {self.window_epochs!r}")

    def unit_epsilon(self, epsilon: float) -> float:
        """Epsilon of one charge unit: per report (``epsilon``), or per new memo when memoized."""
        if self.memoized and self.epsilon_per_memo is not None:
            return self.epsilon_per_memo
        return epsilon

    def window_of(self, epoch: int) -> int:
        """The accounting window of an epoch."""
        return epoch // self.window_epochs

    def to_dict(self) -> dict[str, Any]:
        return {
            "cap_lifetime": self.cap_lifetime,
            "cap_per_window": self.cap_per_window,
            "window_epochs": self.window_epochs,
            "memoized": self.memoized,
            "epsilon_per_memo": self.epsilon_per_memo,
        }


@dataclass(frozen=True)
class PublicConfig:
    """What ``GET /v1/collections/{id}`` publishes as ``config`` (and what its hash covers).

    ``mechanism`` is the kind's SDK config (``from_config`` reads it); ``release`` is the
    server's release policy (windows, cumulative, min_reports, ε_release, δ), carried and
    hashed but not read by a device; ``parties`` is set for heavy-hitter collections only.
    """

    kind: str
    mechanism: dict[str, Any]
    epsilon: float
    neighbouring: str
    epoch: EpochRule
    budget: BudgetRule
    release: dict[str, Any] = field(default_factory=dict)
    parties: list[str] | None = None
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise PublicConfigError(f"epsilon must be positive and finite, got {self.epsilon!r}")

    # --- the arithmetic ----------------------------------------------------------------------
    @property
    def unit_epsilon(self) -> float:
        return self.budget.unit_epsilon(self.epsilon)

    @property
    def max_units_lifetime(self) -> int:
        return max_units(self.budget.cap_lifetime, self.unit_epsilon) or 0

    @property
    def max_units_window(self) -> int | None:
        return max_units(self.budget.cap_per_window, self.unit_epsilon)

    def epoch_at(self, now: Any) -> int:
        return self.epoch.epoch_at(now)

    def window_of(self, epoch: int) -> int:
        return self.budget.window_of(epoch)

    # --- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as published (its canonical JSON is what the hash covers)."""
        out: dict[str, Any] = {
            "version": self.version,
            "kind": self.kind,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "neighbouring": self.neighbouring,
            "epoch": self.epoch.to_dict(),
            "release": self.release,
            "budget": self.budget.to_dict(),
        }
        if self.parties is not None:
            out["parties"] = list(self.parties)
        return out

    def canonical(self) -> str:
        return canonical_json(self.to_dict())

    def config_hash(self) -> str:
        return config_hash(self.to_dict())

    @classmethod
    def from_dict(
        cls, config: Mapping[str, Any], collection_id: str = "?", *, accept: tuple[int, ...] = (CONFIG_VERSION,)
    ) -> PublicConfig:
        """Read a published config: the version first (:class:`UnsupportedConfigVersion`; one of
        ``accept``), then every field the rules use (:class:`PublicConfigError` naming the bad one)."""
        check_version(config, collection_id, accept)
        try:
            epoch = config["epoch"]
            budget = config["budget"]
            per_memo = budget.get("epsilon_per_memo")
            cap_window = budget.get("cap_per_window")
            parties = config.get("parties")
            return cls(
                kind=str(config["kind"]),
                mechanism=dict(config["mechanism"]),
                epsilon=float(config["epsilon"]),
                neighbouring=str(config.get("neighbouring", "record")),
                epoch=EpochRule(int(epoch["seconds"]), epoch["start"], int(epoch.get("grace", 1))),
                budget=BudgetRule(
                    cap_lifetime=float(budget["cap_lifetime"]),
                    cap_per_window=float(cap_window) if cap_window is not None else None,
                    window_epochs=int(budget.get("window_epochs", 1)),
                    memoized=bool(budget.get("memoized", False)),
                    epsilon_per_memo=float(per_memo) if per_memo is not None else None,
                ),
                release=dict(config.get("release") or {}),
                parties=[str(p) for p in parties] if parties is not None else None,
                version=int(config["version"]),
            )
        except PublicConfigError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PublicConfigError(f"config is missing or has a bad field ({type(exc).__name__}: {exc})") from None
