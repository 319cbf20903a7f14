"""Heavy hitters over an open domain (strings or integers) under ε-LDP: PEM, TreeHist and
the federated TAP/TAPS discover items; ``known`` estimates an analyst-supplied dictionary
(docs/heavy_hitters.md).

Privacy: every protocol here is ε-LDP per user with one report per user (TreeHist: two
ε/2 OLH reports, ε by sequential composition); the level group (and, for TAP/TAPS, the
public party) does not depend on the item, and the server side is pure post-processing
over stored reports. Ledger charge: ε per user (docs/privacy.md).

One object per collection holds both halves, built from a validated configuration::

    hh = heavy_hitters.create("pem", epsilon=4.0, k=16, domain={"type": "string", "max_bytes": 6})
    payload = hh.perturb("hello")                        # client: one JSON-safe report
    reports = hh.decode(payloads)                        # server: strict decoder
    result = hh.discover(reports)                        # any time, from stored reports
    result = heavy_hitters.discover(hh.config, reports)  # the same from the config alone

>>> import numpy as np
>>> from client_sdk import heavy_hitters
>>> hh = heavy_hitters.create("pem", epsilon=2.0, k=2, domain={"type": "integer", "bits": 8})
>>> rebuilt = heavy_hitters.from_config(hh.config)
>>> rebuilt.config == hh.config
True
>>> values = np.repeat([7, 200, 31], [5000, 3000, 2000])
>>> result = heavy_hitters.discover(hh.config, hh.perturb_batch(values, np.random.default_rng(3)))
>>> result.items
[7, 200]
>>> heavy_hitters.available()
['pem', 'treehist', 'tap', 'taps', 'known']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters._common import (
    DiscoveryResult,
    HeavyHitter,
    InsufficientReportsError,
    KeyCollisionWarning,
    PrefixReports,
)
from client_sdk.heavy_hitters.encoding import (
    AlphabetDomain,
    EncodedItems,
    IntegerDomain,
    ItemEncodingError,
    StringDomain,
    domain_from_config,
)
from client_sdk.heavy_hitters.known import KnownCandidates
from client_sdk.heavy_hitters.pem import PEM
from client_sdk.heavy_hitters.tap import TAP, TAPS
from client_sdk.heavy_hitters.treehist import TreeHist
from client_sdk.wire_checks import is_version

PROTOCOLS: dict[str, type] = {"pem": PEM, "treehist": TreeHist, "tap": TAP, "taps": TAPS, "known": KnownCandidates}

__all__ = [
    "PEM",
    "TAP",
    "TAPS",
    "DiscoveryResult",
    "EncodedItems",
    "HeavyHitter",
    "InsufficientReportsError",
    "IntegerDomain",
    "KnownCandidates",
    "ItemEncodingError",
    "KeyCollisionWarning",
    "PrefixReports",
    "StringDomain",
    "AlphabetDomain",
    "TreeHist",
    "available",
    "create",
    "discover",
    "domain_from_config",
    "from_config",
]

#: config fields that are derived (checked on rebuild, not passed to the constructor)
_DERIVED = ("protocol", "version", "fo", "key", "levels", "item_fo")


def available() -> list[str]:
    return list(PROTOCOLS)


def create(protocol: str, **options: Any) -> Any:
    """Build a heavy-hitter protocol by name: ``pem``, ``treehist``, ``tap``, ``taps``, ``known``.

    Common options: ``epsilon``, ``k``, ``domain`` (``{"type": "string", "max_bytes": L,
    "overflow": "truncate"|"reject"}`` or ``{"type": "integer", "bits": m}``), ``eta``,
    ``g``, ``prune_infeasible``; TAP/TAPS also ``parties`` (names) and the defaults of docs/heavy_hitters.md.
    """
    if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
        raise ConfigError(f"unknown heavy-hitter protocol {protocol!r}; available: {', '.join(PROTOCOLS)}")
    try:
        return PROTOCOLS[protocol.lower()](**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for {protocol}: {exc}") from None


def from_config(config: Mapping[str, Any]) -> Any:
    """Rebuild a protocol from its canonical ``config`` (the inverse of ``protocol.config``)."""
    if not isinstance(config, Mapping):
        raise ConfigError("config must be a mapping")
    if not is_version(config.get("version", 1), 1):
        raise ConfigError(f"unknown heavy-hitter config version {config.get('version')!r}")
    options = {k: v for k, v in config.items() if k not in _DERIVED}
    fo = config.get("fo")
    if isinstance(fo, Mapping):
        unknown = sorted(str(key) for key in fo if key not in ("mechanism", "hash", "g"))
        if unknown:
            raise ConfigError(f"unknown frequency-oracle fields {unknown}; allowed: ['g', 'hash', 'mechanism']")
        if fo.get("mechanism", "olh") != "olh" or fo.get("hash", "olh-mas-v1") != "olh-mas-v1":
            raise ConfigError(f"unsupported frequency oracle {dict(fo)!r}")
        if "g" in fo:
            options["g"] = fo["g"]
    if "protocol" not in config:
        raise ConfigError("config lacks required field 'protocol'")
    if str(config["protocol"]).lower() in ("pem", "tap", "taps") and "final_round" not in config:
        options["final_round"] = False  # a config written before the final estimation round existed
    protocol = create(config["protocol"], **options)
    built = protocol.config
    for key in ("levels", "key", "fo"):
        if key in config and config[key] != built[key]:
            raise ConfigError(f"config field {key!r} is {config[key]!r} but the parameters give {built[key]!r}")
    return protocol


def discover(
    config: Mapping[str, Any], reports: PrefixReports | Sequence[Mapping[str, Any]], **options: Any
) -> DiscoveryResult:
    """Server side in one call: rebuild the protocol from ``config`` and evaluate ``reports``
    (decoded arrays loaded from storage, or raw wire payloads). Options are passed to the
    protocol's ``discover`` (e.g. ``ci_level``; TAP: ``mode="R"``)."""
    return from_config(config).discover(reports, **options)
