"""Multidimensional frequency estimation: one histogram per attribute of a user's tuple.

Protocols (docs/multidim.md), one module per family:

=================  =========================================================  ===================
name               what a user sends                                          tuple-level cost
=================  =========================================================  ===================
``"rsfd-grr"``     RS+FD[GRR]: sampled attribute by GRR at ε', fake elsewhere  ε' (see below)
``"rsfd-oue-z"``   RS+FD[OUE-z]: OUE at ε', zero-vector fake data              ε'
``"rsfd-oue-r"``   RS+FD[OUE-r]: OUE at ε', random one-hot fake data           ε'
``"rsfd-adp"``     RS+FD[ADP]: GRR or OUE-z per attribute, by variance         ε'
``"spl"``          every attribute with an oracle at ε/d                       ε
``"smp"``          one sampled attribute, with its index, at ε                 ε
=================  =========================================================  ===================

RS+FD (Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021) is ε-LDP only for tuples that differ
in **one attribute**, and only exactly so for equal domain sizes; for whole tuples — the
standard LDP notion and this SDK's default ``neighbouring="tuple"`` — it costs
``ε' = ln(d(e^ε − 1) + 1)`` (docs/multidim.md). Every protocol's ``privacy`` states the
charged ``epsilon`` for its promised notion, and the exact ``epsilon_tuple`` and
``epsilon_attribute``.

>>> import numpy as np
>>> from client_sdk import multidim
>>> m = multidim.create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[4, 2, 40])
>>> data = np.random.default_rng(0).integers(0, [4, 2, 40], size=(5000, 3))
>>> reports = m.perturb_batch(data, rng=np.random.default_rng(7))
>>> agg = m.aggregate(reports) + m.aggregate([m.perturb((1, 0, 39))])
>>> est = m.estimate(agg)
>>> est.n, [len(e.frequencies) for e in est]
(5001, [4, 2, 40])
>>> m.privacy.neighbouring, round(m.privacy.epsilon, 6)
('tuple', 1.81724)
>>> multidim.from_config(m.config).config_hash == m.config_hash
True
>>> eps = multidim.calibrate_epsilon("rsfd-grr", 1.0, domain_sizes=[4, 2, 40])  # tuple-level budget 1
>>> m1 = multidim.create_multidim("rsfd-grr", epsilon=eps, domain_sizes=[4, 2, 40])
>>> round(eps, 6), round(m1.privacy.epsilon, 6)
(0.452832, 1.0)
>>> multidim.create_multidim("smp", epsilon=1.0, domain_sizes=[4, 2], oracle="auto").config["oracle"]
'auto'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from client_sdk.errors import ConfigError
from client_sdk.mechanisms._base import EPSILON_MIN, validate_epsilon
from client_sdk.multidim._base import (
    MultidimAggregate,
    MultidimEstimate,
    MultidimPrivacyStatement,
    MultidimProtocol,
    MultidimReports,
)
from client_sdk.multidim.rsfd import (
    RSFD,
    RSFD_ADP,
    RSFD_GRR,
    RSFD_OUE_R,
    RSFD_OUE_Z,
    amplified_epsilon,
    epsilon_for_tuple_budget,
)
from client_sdk.multidim.smp import SMP
from client_sdk.multidim.spl import SPL

REGISTRY: dict[str, type[MultidimProtocol]] = {
    cls.name: cls for cls in (RSFD_GRR, RSFD_OUE_Z, RSFD_OUE_R, RSFD_ADP, SPL, SMP)
}

__all__ = [
    "RSFD",
    "RSFD_ADP",
    "RSFD_GRR",
    "RSFD_OUE_R",
    "RSFD_OUE_Z",
    "SMP",
    "SPL",
    "MultidimAggregate",
    "MultidimEstimate",
    "MultidimPrivacyStatement",
    "MultidimProtocol",
    "MultidimReports",
    "amplified_epsilon",
    "available",
    "calibrate_epsilon",
    "create_multidim",
    "epsilon_for_tuple_budget",
    "from_config",
]


def available() -> list[str]:
    """Names accepted by :func:`create_multidim`."""
    return list(REGISTRY)


def create_multidim(
    name: str,
    *,
    epsilon: float,
    domain_sizes: Sequence[int],
    neighbouring: str = "tuple",
    **options: Any,
) -> MultidimProtocol:
    """Build a multidimensional protocol by name.

    ``neighbouring`` is the promised privacy notion ("tuple", the default and the standard
    one, or "attribute"); it decides what ``privacy.epsilon`` (the ledger charge) is.
    Options: ``oracle`` for "spl" and "smp" (a mechanism name such as "grr", "oue", "auto",
    or a list of one name per attribute; default "grr").
    """
    if not isinstance(name, str):
        raise ConfigError(f"protocol name must be a string, got {name!r}")
    key = name.lower()
    if key not in REGISTRY:
        raise ConfigError(f"unknown multidimensional protocol {name!r}; available: {', '.join(available())}")
    allowed = {"oracle"} if key in ("spl", "smp") else set()
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"bad options for {key}: {sorted(unknown)} (allowed: {sorted(allowed) or 'none'})")
    return REGISTRY[key](epsilon=epsilon, domain_sizes=domain_sizes, neighbouring=neighbouring, **options)


def from_config(config: Mapping[str, Any]) -> MultidimProtocol:
    """Rebuild a protocol from its canonical ``config`` (the inverse of ``m.config``)."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping, got {config!r}")
    if config.get("kind", "multidim") != "multidim":
        raise ConfigError(f"not a multidimensional config (kind={config.get('kind')!r})")
    options = {
        k: v for k, v in config.items() if k not in ("kind", "mechanism", "epsilon", "domain_sizes", "neighbouring")
    }
    try:
        return create_multidim(
            config["mechanism"],
            epsilon=config["epsilon"],
            domain_sizes=config["domain_sizes"],
            neighbouring=config.get("neighbouring", "tuple"),
            **options,
        )
    except KeyError as exc:
        raise ConfigError(f"config lacks required field {exc.args[0]!r}") from None


def calibrate_epsilon(
    name: str,
    budget: float,
    *,
    domain_sizes: Sequence[int],
    neighbouring: str = "tuple",
    **options: Any,
) -> float:
    """The ``epsilon`` to build ``name`` with so that its ledger charge ``privacy.epsilon``
    under ``neighbouring`` equals ``budget``.

    SPL and SMP: ``budget`` itself. RS+FD at tuple level: ``ln(1 + (e^budget − 1)/d)`` in
    closed form; at attribute level: the ε whose exact attribute-level loss is ``budget``
    (bisection; the loss grows with ε).
    """
    target = validate_epsilon(budget, "budget")

    def charged(eps: float) -> float:
        return create_multidim(
            name, epsilon=eps, domain_sizes=domain_sizes, neighbouring=neighbouring, **options
        ).privacy.epsilon

    probe = create_multidim(name, epsilon=target, domain_sizes=domain_sizes, neighbouring=neighbouring, **options)
    if probe.privacy.epsilon <= target:  # charged(ε) >= ε for every protocol, so ε = budget
        return target
    if isinstance(probe, RSFD) and neighbouring == "tuple":
        return epsilon_for_tuple_budget(target, probe.d)
    low, high = EPSILON_MIN, target
    if charged(low) > target:
        raise ConfigError(f"{name} cannot be charged as little as {target} (its smallest epsilon costs more)")
    for _ in range(100):
        middle = 0.5 * (low + high)
        if charged(middle) > target:
            high = middle
        else:
            low = middle
        if high - low <= 1e-13 * high:
            break
    return low
