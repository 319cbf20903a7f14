"""Binary-tree continual counter: publishes running participation counts under central DP.

How many devices reported in each epoch is not protected by LDP, so the server publishes
participation only through this counter (DESIGN §7, ALGORITHMS §11.2).

Privacy: ε-DP at event level for a stream whose per-step values change by at most
``sensitivity`` between neighbouring inputs (Dwork, Naor, Pitassi, Rothblum, STOC 2010;
Chan, Shi, Song, ACM TISSEC 2011). Each step's value falls into exactly one dyadic node per
level; with ``L = ⌈log2 T⌉ + 1`` levels and noise of scale ``L·Δ/ε`` per node, the L noisy
nodes a step touches cost ε in total.

Release at step t: the sum of the noisy nodes of the dyadic decomposition of [1..t] (one
per 1-bit of t), so ``Var[count_t] = popcount(t)·Var[node noise]``; with continuous
Laplace noise that is ``popcount(t)·2(LΔ/ε)²`` (T25: T = 16, ε = 1, t = 7 → 150).

Noise comes from OpenDP's discrete Laplace (``make_laplace`` over integers, the library's
vetted sampler) in production; tests inject a seeded generator. Noise is drawn once per
node, when the node's interval completes, and stored, so every re-read of a release gives
the same numbers.

>>> counter = BinaryTreeCounter(epsilon=1.0, horizon=16, noise=ZeroNoise())
>>> [counter.append(x) for x in (3, 1, 4, 1)]
[3, 4, 8, 9]
>>> counter.levels, round(counter.node_scale, 6)
(5, 5.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class IntegerNoise(Protocol):
    """Adds noise of a given scale to an integer and reports the noise variance."""

    def add(self, value: int, scale: float) -> int: ...

    def variance(self, scale: float) -> float: ...


class OpenDPDiscreteLaplace:
    """Discrete Laplace noise from OpenDP (exact sampling from its CSPRNG)."""

    def __init__(self) -> None:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        self._dp = dp
        self._cache: dict[float, Any] = {}

    def add(self, value: int, scale: float) -> int:
        if scale not in self._cache:
            dp = self._dp
            self._cache[scale] = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
        return int(self._cache[scale](int(value)))

    def variance(self, scale: float) -> float:
        return discrete_laplace_variance(scale)


class SeededLaplace:
    """Continuous Laplace noise rounded to integers, from a seeded generator (tests only)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def add(self, value: int, scale: float) -> int:
        return int(value + self.rng.laplace(0.0, scale))

    def variance(self, scale: float) -> float:
        return 2 * scale**2 + 1 / 12  # rounding adds at most a uniform quantisation error


class ZeroNoise:
    """No noise at all: for examples and exactness tests, never for releases."""

    def add(self, value: int, scale: float) -> int:
        return int(value)

    def variance(self, scale: float) -> float:
        return 0.0


def discrete_laplace_variance(scale: float) -> float:
    """Variance of the discrete Laplace distribution P[z] ∝ exp(−|z|/scale)."""
    r = math.exp(-1.0 / scale)
    return 2 * r / (1 - r) ** 2


@dataclass
class BinaryTreeCounter:
    """Continual counter over at most ``horizon`` steps with ε-DP at event level."""

    epsilon: float
    horizon: int
    sensitivity: int = 1
    noise: IntegerNoise = field(default_factory=OpenDPDiscreteLaplace)
    #: noisy p-sums of completed dyadic nodes, keyed "level:index" (JSON-safe)
    nodes: dict[str, int] = field(default_factory=dict)
    #: exact running sums of the incomplete node on each level (server secret, never published)
    partial: list[int] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be finite and > 0, got {self.epsilon}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")
        if self.sensitivity < 1:
            raise ValueError(f"sensitivity must be at least 1, got {self.sensitivity}")
        if not self.partial:
            self.partial = [0] * self.levels

    @property
    def levels(self) -> int:
        """L = ⌈log2 T⌉ + 1."""
        return math.ceil(math.log2(self.horizon)) + 1 if self.horizon > 1 else 1

    @property
    def node_scale(self) -> float:
        return self.levels * self.sensitivity / self.epsilon

    def append(self, value: int) -> int:
        """Add step t's true value (0 <= value) and return the released count at t."""
        if self.steps >= self.horizon:
            raise ValueError(f"the counter's horizon of {self.horizon} steps is exhausted; start a new stream")
        if value < 0:
            raise ValueError("counter values must be non-negative")
        self.steps += 1
        t = self.steps
        for level in range(self.levels):
            self.partial[level] += int(value)
            width = 1 << level
            if t % width == 0:  # node (level, t/width − 1) covers [t − width + 1, t] and is complete
                key = f"{level}:{t // width - 1}"
                self.nodes[key] = self.noise.add(self.partial[level], self.node_scale)
                self.partial[level] = 0
        return self.released(t)

    def decomposition(self, t: int) -> list[tuple[int, int]]:
        """The dyadic nodes (level, index) whose intervals partition [1..t]."""
        out = []
        start = 0
        for level in reversed(range(self.levels)):
            width = 1 << level
            if t & width:
                out.append((level, start // width))
                start += width
        return out

    def released(self, t: int) -> int:
        """The published count at step t (1 <= t <= steps); identical on every call."""
        if not 1 <= t <= self.steps:
            raise ValueError(f"step {t} is outside [1, {self.steps}]")
        return int(sum(self.nodes[f"{level}:{index}"] for level, index in self.decomposition(t)))

    def variance(self, t: int) -> float:
        """Variance of the released count at step t."""
        return len(self.decomposition(t)) * self.noise.variance(self.node_scale)

    def state(self) -> dict[str, Any]:
        """Persistable state (the partial sums are secret: store, never publish)."""
        return {
            "epsilon": self.epsilon,
            "horizon": self.horizon,
            "sensitivity": self.sensitivity,
            "nodes": dict(self.nodes),
            "partial": list(self.partial),
            "steps": self.steps,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], noise: IntegerNoise | None = None) -> BinaryTreeCounter:
        return cls(
            epsilon=float(state["epsilon"]),
            horizon=int(state["horizon"]),
            sensitivity=int(state["sensitivity"]),
            noise=noise or OpenDPDiscreteLaplace(),
            nodes={str(k): int(v) for k, v in state["nodes"].items()},
            partial=[int(v) for v in state["partial"]],
            steps=int(state["steps"]),
        )
