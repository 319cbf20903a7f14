"""What one release scope is computed from: its noisy statistics, and the interval rule.

Shared by the release computation (``ldpserver/services/release_compute.py``) and the kind
adapters (``ldpserver/kinds``), which turn a scope's noisy statistics into its estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from ldpserver import release_noise

CI_LEVEL = 0.95
Z = NormalDist().inv_cdf(0.5 + CI_LEVEL / 2)


def interval(count: float, variance: float) -> dict[str, Any]:
    half = Z * math.sqrt(variance)
    return {"count": count, "variance": variance, "ci_lower": count - half, "ci_upper": count + half}


@dataclass
class NoisyScope:
    """A scope's noisy statistics: the aggregate (JSON form, noisy integers) and the
    per-coordinate variance of its central noise."""

    data: dict[str, Any]
    noise_variance: float
    derived_n: bool

    @property
    def n(self) -> int:
        return int(self.data["n"])

    def participation(self) -> dict[str, Any]:
        """The noisy report count with its variance and normal-approximation interval
        (a derived n sums the noisy counts: one noise term per count)."""
        terms = len(self.data["counts"]) if self.derived_n else 1
        return interval(self.n, terms * self.noise_variance)


def noisy_scope(
    tree: release_noise.VectorTree, template: dict[str, Any], after: int, through: int, derived_n: bool
) -> NoisyScope:
    vector, variance = tree.span(after, through)
    return NoisyScope(release_noise.unflatten(template, vector, derived_n), variance, derived_n)


class Withheld(Exception):
    """A scope is published without estimates; the message is the public reason."""


@dataclass
class ScopeInputs:
    """Everything a kind adapter may read to estimate one scope (no database)."""

    noisy: NoisyScope
    budget: release_noise.ReleaseBudget
    noise: release_noise.VectorNoise  # the central noise source (discovery draws from it)
    raw: Any = None  # the scope's stored raw reports, for kinds that need them (decoded by the SDK)
    dictionary: Any = None  # a known-candidate collection's dictionary (the SDK's KnownDictionary), if uploaded
