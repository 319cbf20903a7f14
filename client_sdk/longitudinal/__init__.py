"""Longitudinal collection: memoized protocols for devices that report every epoch.

A fresh ε-LDP report every epoch leaks t·ε after t epochs (the server can average them).
Memoization (docs/algorithms.md) stores a permanent randomized response per memo key and
re-randomizes it each epoch: reports of one value leak at most ε∞ in total, one report at
most ε1, and the budget ledger charges ε∞ per memo created (docs/privacy.md).

===============  ===========================================  =============  ==================
name             protocol (module)                            memo key       lifetime bound
===============  ===========================================  =============  ==================
``"l-grr"``      GRR → GRR (:mod:`.lgrr`; DCN 2022)        the value      k·ε∞
``"l-osue"``     OUE → SUE (:mod:`.lue`; DCN 2022)                   the value      k·ε∞
``"l-sue"``      SUE → SUE = basic RAPPOR (:mod:`.lue`)        the value      k·ε∞
``"l-oue"``      OUE → OUE (:mod:`.lue`)                       the value      k·ε∞
``"rappor"``     Google (f, p, q), one-hot (:mod:`.lue`)       the value      k·ε∞
``"loloha"``     OLOLOHA, optimal g (:mod:`.loloha`; EDBT 23)  hash value     min(g, k)·ε∞
``"biloloha"``   LOLOHA with g = 2 (:mod:`.loloha`)            hash value     2·ε∞
``"dbitflip"``   dBitFlipPM (:mod:`.dbitflip`; NeurIPS 17)     pattern        min(d+1, b)·ε
===============  ===========================================  =============  ==================

>>> import numpy as np
>>> from client_sdk import longitudinal
>>> m = longitudinal.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=16)
>>> store = longitudinal.InMemoryMemoStore()          # the runtime backs this with SQLite
>>> outcome = m.report(5, store, "collection-1")      # memo created and persisted, charged ε∞
>>> outcome.new_memo, outcome.charge, sorted(outcome.payload)
(True, 2.0, ['bits', 'm', 'v'])
>>> m.report(5, store, "collection-1").charge         # same value: same memo, no charge
0.0
>>> m.ledger_charge(store.count("collection-1")), m.privacy.lifetime_bound
(2.0, 32.0)
>>> sim = m.simulate_epochs(np.full((1000, 3), 5), rng=np.random.default_rng(1))
>>> est = m.estimate(sum((m.aggregate(b) for b in sim.reports), m.empty_aggregate()))
>>> est.n, bool(abs(est.frequencies[5] - 1) < 0.2), set(sim.memos.memo_counts().tolist())
(3000, True, {1})
>>> longitudinal.from_config(m.config).config_hash == m.config_hash
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from client_sdk.errors import ConfigError
from client_sdk.longitudinal._base import (
    EpochSimulation,
    InMemoryMemoStore,
    LongitudinalMechanism,
    LongitudinalPrivacy,
    MemoError,
    MemoStore,
    MemoTable,
    PureLongitudinal,
    ReportOutcome,
    binary_leakage,
    irr_epsilon,
)
from client_sdk.longitudinal.dbitflip import DBitFlipPM
from client_sdk.longitudinal.lgrr import LGRR
from client_sdk.longitudinal.loloha import LOLOHA, BiLOLOHA, ololoha_g
from client_sdk.longitudinal.lue import LOSUE, LOUE, LSUE, LUE, RAPPOR, rappor_privacy

REGISTRY: dict[str, type[LongitudinalMechanism]] = {
    cls.name: cls for cls in (LGRR, LOSUE, LSUE, LOUE, RAPPOR, LOLOHA, BiLOLOHA, DBitFlipPM)
}

__all__ = [
    "LGRR",
    "LOLOHA",
    "LOSUE",
    "LOUE",
    "LSUE",
    "LUE",
    "RAPPOR",
    "BiLOLOHA",
    "DBitFlipPM",
    "EpochSimulation",
    "InMemoryMemoStore",
    "LongitudinalMechanism",
    "LongitudinalPrivacy",
    "MemoError",
    "MemoStore",
    "MemoTable",
    "PureLongitudinal",
    "ReportOutcome",
    "available",
    "binary_leakage",
    "create_longitudinal",
    "from_config",
    "irr_epsilon",
    "ololoha_g",
    "rappor_privacy",
]

_OPTIONS: dict[str, set[str]] = {
    "l-grr": {"tight"},
    "loloha": {"g", "tight"},
    "biloloha": {"g", "tight"},
    "dbitflip": {"buckets", "d"},
    "rappor": {"f", "p", "q"},
}


def available() -> list[str]:
    """Names accepted by :func:`create_longitudinal`."""
    return list(REGISTRY)


def create_longitudinal(
    name: str,
    *,
    epsilon_perm: float | None = None,
    epsilon_first: float | None = None,
    domain_size: int,
    **options: Any,
) -> LongitudinalMechanism:
    """Build a memoized protocol by name.

    ``epsilon_perm`` is ε∞ (the memo's budget, charged per new memo) and ``epsilon_first``
    ε1 < ε∞ (one report). Options: ``tight`` (l-grr, loloha, biloloha: exact one-report
    p2); ``g`` (loloha; default the OLOLOHA optimum); ``buckets`` and ``d`` (dbitflip,
    which takes only ``epsilon_perm`` = the ε of each response); ``f``, ``p``, ``q``
    (rappor, which derives both epsilons from them).
    """
    if not isinstance(name, str):
        raise ConfigError(f"protocol name must be a string, got {name!r}")
    key = name.lower()
    if key not in REGISTRY:
        raise ConfigError(f"unknown longitudinal protocol {name!r}; available: {', '.join(available())}")
    allowed = _OPTIONS.get(key, set())
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"bad options for {key}: {sorted(unknown)} (allowed: {sorted(allowed) or 'none'})")
    if key == "rappor":
        if epsilon_perm is not None or epsilon_first is not None:
            raise ConfigError("rappor derives epsilon_perm and epsilon_first from f, p, q; do not give them")
        missing = {"f", "p", "q"} - set(options)
        if missing:
            raise ConfigError(f"rappor needs {sorted(missing)}")
        return RAPPOR(domain_size=domain_size, **options)
    if epsilon_perm is None:
        raise ConfigError(f"{key} needs epsilon_perm")
    if key == "dbitflip":
        if epsilon_first is not None and epsilon_first != epsilon_perm:
            raise ConfigError("dbitflip has one epsilon per response (epsilon_perm); epsilon_first does not apply")
        return DBitFlipPM(epsilon=epsilon_perm, domain_size=domain_size, **options)
    if epsilon_first is None:
        raise ConfigError(f"{key} needs epsilon_first (< epsilon_perm)")
    # the two-budget protocols (every one but RAPPOR and dBitFlipPM, handled above) take these keywords
    build = cast("Callable[..., LongitudinalMechanism]", REGISTRY[key])
    return build(epsilon_perm=epsilon_perm, epsilon_first=epsilon_first, domain_size=domain_size, **options)


def from_config(config: Mapping[str, Any]) -> LongitudinalMechanism:
    """Rebuild a protocol from its canonical ``config`` (the inverse of ``m.config``)."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping, got {config!r}")
    if config.get("kind", "longitudinal") != "longitudinal":
        raise ConfigError(f"not a longitudinal config (kind={config.get('kind')!r})")
    name = config.get("mechanism")
    if name not in REGISTRY:
        raise ConfigError(f"unknown longitudinal protocol {name!r}; available: {', '.join(available())}")
    try:
        m = REGISTRY[name].from_config(config)  # type: ignore[attr-defined]
    except KeyError as exc:
        raise ConfigError(f"config lacks required field {exc.args[0]!r}") from None
    extra = set(config) - set(m.config)
    if extra:
        raise ConfigError(f"unexpected fields for {name}: {sorted(extra)}")
    return m
