"""A collection's public config on the device: hash check, epochs, budget units, perturbation.

The server serves ``GET /v1/collections/{id}`` with the public ``config`` and its
``config_hash`` (``sha256:`` of the canonical JSON, :func:`client_sdk.canonical.config_hash`).
The device recomputes the hash and refuses a mismatch; every report carries the hash.

The budget rules are the server's (``ldpserver/services/ingest.py``, ``collections.py``):

* a charge is counted in integer **units** of ``unit_epsilon``: the per-report epsilon
  (``config.epsilon``) for fresh reports, ``budget.epsilon_per_memo`` (ε∞) for memoized
  collections, where only a report that creates a memo costs a unit;
* a cap allows ``floor(cap / unit · (1 + 1e-9))`` units (so 3 × 0.1 fits a cap of 0.3);
* the accounting window of an epoch is ``epoch // budget.window_epochs``;
* ``epoch = floor((now − epoch.start) / epoch.seconds)``, computed in whole microseconds
  exactly like the server's ``timedelta`` floor division.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from client_sdk.canonical import canonical_json, config_hash
from client_sdk.client.errors import ConfigHashMismatchError, UnsupportedCollectionError

UNIT_SLACK = 1e-9
PRIVACY_TOLERANCE = 1e-9
#: version 2: hashed as RFC 8785 (JCS) canonical JSON; version 1 (Python json.dumps text) is refused
CONFIG_VERSION = 2
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: collection kind -> SDK package with ``from_config`` (the server's ldpserver/kinds)
KIND_MODULES = {
    "frequency": "client_sdk.mechanisms",
    "multidim": "client_sdk.multidim",
    "heavy_hitters": "client_sdk.heavy_hitters",
    "longitudinal": "client_sdk.longitudinal",
}

Clock = Callable[[], Any]


def max_units(cap: float | None, unit: float) -> int | None:
    """How many charges of ``unit`` fit under ``cap`` (None: no cap) — the server's rule."""
    if cap is None:
        return None
    return math.floor(cap / unit * (1 + UNIT_SLACK))


def to_microseconds(now: Any) -> int:
    """Microseconds since the Unix epoch of a clock reading (aware datetime, or seconds as a number)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return (now - _UNIX) // _MICROSECOND
    if isinstance(now, int | float) and not isinstance(now, bool):
        return round(now * 1_000_000)
    raise TypeError(f"the clock must return an aware datetime or Unix seconds, got {now!r}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _parse_start(text: Any) -> int:
    if not isinstance(text, str):
        raise UnsupportedCollectionError(f"epoch.start must be a timestamp string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UnsupportedCollectionError(f"epoch.start {text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise UnsupportedCollectionError(f"epoch.start {text!r} has no time zone")
    return to_microseconds(value)


@dataclass(frozen=True)
class BudgetPolicy:
    cap_lifetime: float
    cap_per_window: float | None
    window_epochs: int
    memoized: bool
    epsilon_per_memo: float | None
    #: epsilon of one charge unit (per report, or per new memo when memoized)
    unit_epsilon: float
    max_units_lifetime: int
    max_units_window: int | None

    @property
    def unit(self) -> str:
        return "memo" if self.memoized else "report"


def _check_version(collection_id: str, config: Mapping[str, Any]) -> None:
    version = config.get("version")
    if version == CONFIG_VERSION and type(version) is int:
        return
    hint = ""
    if version == 1:
        hint = (
            "; version 1 configs were hashed as Python json.dumps text, version 2 as RFC 8785 canonical JSON: "
            "recreate the collection on a current server"
        )
    raise UnsupportedCollectionError(
        f"collection {collection_id!r}: config version {version!r} is not supported "
        f"(this SDK reads {CONFIG_VERSION}){hint}"
    )


@dataclass
class CollectionConfig:
    """A verified public config, compiled for the device."""

    collection_id: str
    kind: str
    config: dict[str, Any]
    config_hash: str
    epoch_seconds: int
    epoch_start_us: int
    grace: int
    epsilon: float
    neighbouring: str
    budget: BudgetPolicy
    protocol: Any = field(repr=False)
    perturber: Any = field(repr=False)

    # --- construction ------------------------------------------------------------------
    @classmethod
    def from_server(cls, collection_id: str, body: Any) -> CollectionConfig:
        """From the JSON of ``GET /v1/collections/{id}``: refuses a hash that does not match."""
        if not isinstance(body, Mapping):
            raise UnsupportedCollectionError(f"collection {collection_id!r}: the server's answer is not an object")
        if body.get("id") not in (None, collection_id):
            raise UnsupportedCollectionError(
                f"asked for collection {collection_id!r}, the server answered for {body.get('id')!r}"
            )
        config = body.get("config")
        claimed = body.get("config_hash")
        if not isinstance(config, Mapping) or not isinstance(claimed, str):
            raise UnsupportedCollectionError(f"collection {collection_id!r}: the answer lacks config / config_hash")
        return cls.build(collection_id, dict(config), claimed)

    @classmethod
    def build(cls, collection_id: str, config: dict[str, Any], claimed_hash: str) -> CollectionConfig:
        # the version decides how the hash is computed, so it is checked first (a clear error,
        # not a hash mismatch, for a collection created by an older server)
        _check_version(collection_id, config)
        try:
            actual = config_hash(config)
        except (TypeError, ValueError) as exc:
            detail = f"collection {collection_id!r}: config is not canonical JSON ({exc})"
            raise ConfigHashMismatchError(detail) from None
        if not hmac.compare_digest(actual, claimed_hash):
            raise ConfigHashMismatchError(
                f"collection {collection_id!r}: the config hashes to {actual}, but the server claims {claimed_hash}; "
                "refusing to report under a config whose hash does not match"
            )
        return cls._compile(collection_id, config, actual)

    @classmethod
    def _compile(cls, collection_id: str, config: dict[str, Any], digest: str) -> CollectionConfig:
        def fail(detail: str) -> UnsupportedCollectionError:
            return UnsupportedCollectionError(f"collection {collection_id!r}: {detail}")

        _check_version(collection_id, config)
        kind = config.get("kind")
        if kind not in KIND_MODULES:
            raise fail(f"collection kind {kind!r} is not supported; known: {', '.join(KIND_MODULES)}")
        try:
            epoch = config["epoch"]
            seconds = int(epoch["seconds"])
            start_us = _parse_start(epoch["start"])
            grace = int(epoch.get("grace", 1))
            budget = config["budget"]
            epsilon = float(config["epsilon"])
            memoized = bool(budget.get("memoized", False))
            per_memo = budget.get("epsilon_per_memo")
            per_memo = float(per_memo) if per_memo is not None else None
            cap_lifetime = float(budget["cap_lifetime"])
            cap_window = budget.get("cap_per_window")
            cap_window = float(cap_window) if cap_window is not None else None
            window_epochs = int(budget.get("window_epochs", 1))
            mechanism = config["mechanism"]
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(f"config is missing or has a bad field ({type(exc).__name__}: {exc})") from None
        if seconds < 1 or window_epochs < 1 or not (epsilon > 0 and math.isfinite(epsilon)):
            raise fail("epoch.seconds, budget.window_epochs and epsilon must be positive")
        unit = (per_memo if per_memo is not None else epsilon) if memoized else epsilon
        policy = BudgetPolicy(
            cap_lifetime=cap_lifetime,
            cap_per_window=cap_window,
            window_epochs=window_epochs,
            memoized=memoized,
            epsilon_per_memo=per_memo,
            unit_epsilon=unit,
            max_units_lifetime=max_units(cap_lifetime, unit) or 0,
            max_units_window=max_units(cap_window, unit),
        )
        try:
            module = importlib.import_module(KIND_MODULES[kind])
        except ImportError as exc:
            raise fail(f"the SDK package for kind {kind!r} cannot be imported ({exc})") from None
        try:
            protocol = module.from_config(dict(mechanism))
        except Exception as exc:  # the SDK refuses the mechanism config: say why
            raise fail(f"the SDK refuses the mechanism config: {exc}") from None

        from client_sdk.client.perturb import perturber_for

        perturber = perturber_for(kind, protocol, memoized, fail)
        # The device is the real guard: never charge less than the mechanism's own loss.
        needed = perturber.charge_floor()
        if unit < needed * (1 - PRIVACY_TOLERANCE):
            what = "epsilon_per_memo" if memoized else "epsilon"
            raise fail(
                f"the config charges {what} = {unit:g} per {policy.unit}, below the mechanism's own loss "
                f"{needed!r}; this device refuses to under-count its budget"
            )
        return cls(
            collection_id=collection_id,
            kind=kind,
            config=config,
            config_hash=digest,
            epoch_seconds=seconds,
            epoch_start_us=start_us,
            grace=grace,
            epsilon=epsilon,
            neighbouring=str(config.get("neighbouring", "record")),
            budget=policy,
            protocol=protocol,
            perturber=perturber,
        )

    # --- epochs ---------------------------------------------------------------------------
    def epoch_at(self, now: Any) -> int:
        return (to_microseconds(now) - self.epoch_start_us) // (self.epoch_seconds * 1_000_000)

    def window_of(self, epoch: int) -> int:
        return epoch // self.budget.window_epochs

    def canonical(self) -> str:
        return canonical_json(self.config)


def memo_digest(secret: bytes, collection_id: str, config_hash_: str, key_text: str) -> str:
    """The stored key of a memo: HMAC-SHA256 with the device secret, never the value itself."""
    message = json.dumps([collection_id, config_hash_, key_text], separators=(",", ":")).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
