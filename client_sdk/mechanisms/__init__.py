"""Frequency oracles: one module per mechanism (parameters, perturbation, aggregate, estimator).

>>> import numpy as np
>>> from client_sdk import mechanisms
>>> m = mechanisms.create("oue", epsilon=1.0, domain_size=100)
>>> reports = m.perturb_batch(np.zeros(1000, dtype=int), rng=np.random.default_rng(7))
>>> agg = m.aggregate(reports)
>>> est = m.estimate(agg + m.empty_aggregate())
>>> est.n
1000
>>> m.privacy.epsilon, m.privacy.neighbouring
(1.0, 'record')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from client_sdk.errors import ConfigError
from client_sdk.mechanisms._base import Aggregate, Estimate, FrequencyOracle, PrivacyStatement, ReportBatch
from client_sdk.mechanisms.auto import choose
from client_sdk.mechanisms.grr import GRR
from client_sdk.mechanisms.hadamard import Hadamard
from client_sdk.mechanisms.olh import BLH, OLH
from client_sdk.mechanisms.unary import OUE, SUE

REGISTRY: dict[str, type[FrequencyOracle]] = {cls.name: cls for cls in (GRR, SUE, OUE, OLH, BLH, Hadamard)}

__all__ = [
    "Aggregate",
    "Estimate",
    "FrequencyOracle",
    "PrivacyStatement",
    "ReportBatch",
    "available",
    "create",
    "from_config",
]


def available() -> list[str]:
    """Names accepted by :func:`create` ("auto" included)."""
    return [*REGISTRY, "auto"]


def create(name: str, *, epsilon: float, domain_size: int, **options: Any) -> FrequencyOracle:
    """Build a frequency oracle by name; ``"auto"`` picks the lowest-variance one.

    Options: ``g`` for OLH; ``max_report_bits`` for auto.
    """
    if not isinstance(name, str):
        raise ConfigError(f"mechanism name must be a string, got {name!r}")
    key = name.lower()
    if key == "auto":
        unknown = set(options) - {"max_report_bits"}
        if unknown:
            raise ConfigError(f"bad options for auto: {sorted(unknown)}")
        return choose(epsilon, domain_size, options.get("max_report_bits"))
    if key not in REGISTRY:
        raise ConfigError(f"unknown mechanism {name!r}; available: {', '.join(available())}")
    try:
        return REGISTRY[key](epsilon=epsilon, domain_size=domain_size, **options)
    except TypeError as exc:
        raise ConfigError(f"bad options for {key}: {exc}") from None


def from_config(config: Mapping[str, Any]) -> FrequencyOracle:
    """Rebuild a mechanism from its canonical ``config`` (the inverse of ``m.config``)."""
    options = {k: v for k, v in config.items() if k not in ("mechanism", "epsilon", "domain_size", "hash")}
    if config.get("hash", "olh-mas-v1") != "olh-mas-v1":
        raise ConfigError(f"unknown hash family {config.get('hash')!r}")
    try:
        return create(config["mechanism"], epsilon=config["epsilon"], domain_size=config["domain_size"], **options)
    except KeyError as exc:
        raise ConfigError(f"config lacks required field {exc.args[0]!r}") from None
