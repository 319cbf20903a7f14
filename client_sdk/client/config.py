"""A collection's public config on the device: hash check, compiled protocol and perturber.

The server serves ``GET /v1/collections/{id}`` with the public ``config`` and its
``config_hash`` (``sha256:`` of the canonical JSON, :func:`client_sdk.canonical.config_hash`).
The device recomputes the hash and refuses a mismatch; every report carries the hash.

The epoch and budget rules (units, caps, windows, the config version) are the typed
:class:`client_sdk.public_config.PublicConfig`'s, the same object the server builds the
config with (``ldpserver/services/collections.py``); this module adds what only a device
does with it: verify the hash, build the protocol and the perturber, and refuse a config
that would charge less than the mechanism's own loss.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from client_sdk.canonical import canonical_json, config_hash
from client_sdk.client.errors import ConfigHashMismatchError, UnsupportedCollectionError
from client_sdk.public_config import (
    CONFIG_VERSION,
    UNIT_SLACK,
    PublicConfig,
    PublicConfigError,
    check_version,
    max_units,
    to_microseconds,
)
from client_sdk.public_config import parse_start as _parse_start

__all__ = [
    "BudgetPolicy",
    "Clock",
    "CollectionConfig",
    "KIND_MODULES",
    "memo_digest",
    "utc_now",
    # the public config's rules, importable from here as before
    "CONFIG_VERSION",
    "UNIT_SLACK",
    "_parse_start",
    "max_units",
    "to_microseconds",
]

PRIVACY_TOLERANCE = 1e-9

#: collection kind -> SDK package with ``from_config`` (the server's ldpserver/kinds)
KIND_MODULES = {
    "frequency": "client_sdk.mechanisms",
    "multidim": "client_sdk.multidim",
    "heavy_hitters": "client_sdk.heavy_hitters",
    "longitudinal": "client_sdk.longitudinal",
}

Clock = Callable[[], Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BudgetPolicy:
    """The budget rules of a config, with the charge units worked out for the device."""

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

    @classmethod
    def of(cls, public: PublicConfig) -> BudgetPolicy:
        b = public.budget
        return cls(
            cap_lifetime=b.cap_lifetime,
            cap_per_window=b.cap_per_window,
            window_epochs=b.window_epochs,
            memoized=b.memoized,
            epsilon_per_memo=b.epsilon_per_memo,
            unit_epsilon=public.unit_epsilon,
            max_units_lifetime=public.max_units_lifetime,
            max_units_window=public.max_units_window,
        )


def _check_version(collection_id: str, config: Mapping[str, Any]) -> None:
    try:
        check_version(config, collection_id)
    except PublicConfigError as exc:
        raise UnsupportedCollectionError(str(exc)) from None


@dataclass
class CollectionConfig:
    """A verified public config, compiled for the device."""

    collection_id: str
    kind: str
    config: dict[str, Any]
    config_hash: str
    public: PublicConfig
    budget: BudgetPolicy
    protocol: Any = field(repr=False)
    perturber: Any = field(repr=False)

    @property
    def epoch_seconds(self) -> int:
        return self.public.epoch.seconds

    @property
    def epoch_start_us(self) -> int:
        return self.public.epoch.start_us

    @property
    def grace(self) -> int:
        return self.public.epoch.grace

    @property
    def epsilon(self) -> float:
        return self.public.epsilon

    @property
    def neighbouring(self) -> str:
        return self.public.neighbouring

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
            public = PublicConfig.from_dict(config, collection_id)
        except PublicConfigError as exc:
            raise fail(str(exc)) from None
        policy = BudgetPolicy.of(public)
        unit = policy.unit_epsilon
        memoized = policy.memoized
        mechanism = public.mechanism
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
            public=public,
            budget=policy,
            protocol=protocol,
            perturber=perturber,
        )

    # --- epochs ---------------------------------------------------------------------------
    def epoch_at(self, now: Any) -> int:
        return self.public.epoch_at(now)

    def window_of(self, epoch: int) -> int:
        return self.public.window_of(epoch)

    def canonical(self) -> str:
        return canonical_json(self.config)


def memo_digest(secret: bytes, collection_id: str, config_hash_: str, key_text: str) -> str:
    """The stored key of a memo: HMAC-SHA256 with the device secret, never the value itself."""
    message = json.dumps([collection_id, config_hash_, key_text], separators=(",", ":")).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
