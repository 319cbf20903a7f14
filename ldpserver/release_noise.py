"""Central differential privacy for release readers, on top of LDP.

LDP protects what a device *sends*; it does not hide *whether* and *how often* a device
sent, and the exact statistics behind an estimate reveal the report count ``n`` (through
the plug-in variance, or by rational reconstruction of ``C(v)/n``). So every number a
release reader sees is computed only from **noisy integer statistics**: each epoch's
aggregate vector ``s = (counts, n[, attribute_n])`` gets discrete Gaussian noise drawn
with OpenDP (``make_gaussian`` over integer vectors: the discrete Gaussian of Canonne,
Kamath and Steinke, NeurIPS 2020), and estimates, variances, intervals, participation
counts and withheld-or-not decisions are post-processing of the noisy vectors.

**Continual release.** The per-epoch vectors feed a binary-tree continual counter
(Dwork, Naor, Pitassi and Rothblum, STOC 2010; Chan, Shi and Song, TISSEC 2011) over
vectors: every dyadic node (level ``l`` covers ``2^l`` epochs) is noised once, when it
completes, and stored. The epoch scope reads its leaf; cumulative and window scopes read
the minimal dyadic cover of their epoch range (at most ``2·log2(w)`` nodes). Each epoch's
statistics enter exactly one node per level, so every scope is post-processing of the
same tree: no scope costs extra budget.

**Accounting (zCDP, Bun and Steinke, TCC 2016).** Node noise at level ``l`` has scale
``σ_l = Δ₂ / sqrt(2 ρ_l)`` (OpenDP's map: ``ρ_l = Δ₂² / (2 σ_l²)``) with
``ρ_l = ρ · w_l / Σ w``, ``w_l = 1 / (l + 1)²``: the leaves get the largest share (the
per-epoch scope needs the least noise), higher levels more noise, and since
``Σ_l 1/(l+1)² < π²/6`` the total stays bounded whatever the horizon, while a cumulative
scope over ``T`` epochs sums at most ``log2 T + 1`` nodes of variance ``∝ (l + 1)²``:
its central variance is ``O(log³ T)`` (error polylogarithmic in T, not √T). One device's
contribution to one epoch (**device-epoch**) changes one node per level by at most
``Δ₂`` in L2 norm, so the whole release stream is ``ρ``-zCDP per device-epoch, which
OpenDP converts to ``(ε_release, δ)``-DP (``make_zCDP_to_approxDP``; ``ρ`` is the largest
value whose conversion meets the declared ``ε_release`` at ``δ``). A device that reports
in ``m`` epochs is covered at ``m·ρ`` (zCDP composes additively), converted the same way.

**Sensitivity Δ₂** (the most one device can move one epoch's statistics vector, in L2):
``u × r`` where ``u`` is the most reports one device can have counted in one epoch under
the budget policy (the per-window cap, else the lifetime cap, in reports; 1 for memoized
collections, whose epoch statistics count one report per device) and ``r`` the largest L2
norm of one report's contribution: every entry of a single report's aggregate is 0 or 1
(verified for every kind in ``tests/unit/test_release_noise.py``), so ``r ≤ sqrt(D)`` for
a statistics vector of length ``D``; one-hot oracles (GRR, Hadamard response: exactly one
count per report, ``n = Σ counts``) have ``r = 1`` and their ``n`` is not a separate
coordinate (it is the sum of the noisy counts).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

#: defaults of ``release.epsilon`` / ``release.delta`` (justified in docs/benchmarks.md)
DEFAULT_EPSILON = 1.5
DEFAULT_DELTA = 1e-7
#: tree horizon (epochs): 2^16 hourly epochs is 7.5 years; 17 levels
DEFAULT_HORIZON = 1 << 16
#: mechanisms whose single report adds exactly one count (so n = Σ counts)
ONE_HOT = frozenset({"grr", "hr"})


def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@lru_cache(maxsize=256)
def epsilon_of(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ, by OpenDP's conversion (``make_zCDP_to_approxDP``)."""
    dp = _dp()
    scale = math.sqrt(1.0 / (2.0 * rho))
    meas = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=float), scale=scale)
    try:
        return float(dp.c.make_zCDP_to_approxDP(meas).map(1.0).epsilon(delta))
    except dp.OpenDPException as exc:
        # a huge ρ (e.g. a lifetime cap that allows millions of epochs) overflows the
        # conversion: no finite ε is worth stating, which is what inf says
        if "not finite" in str(exc) or "Overflow" in str(exc):
            return math.inf
        raise


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@lru_cache(maxsize=256)
def rho_for(epsilon: float, delta: float) -> float:
    """The largest ρ whose (ε, δ) conversion stays within ``epsilon`` (bisection, 60 steps)."""
    low, high = 1e-12, max(1.0, epsilon)
    while epsilon_of(high, delta) < epsilon:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        if epsilon_of(mid, delta) <= epsilon:
            low = mid
        else:
            high = mid
    return low


def levels_of(horizon: int) -> int:
    """L = ⌈log2 T⌉ + 1 levels cover a horizon of T epochs."""
    return math.ceil(math.log2(horizon)) + 1 if horizon > 1 else 1


def level_weights(levels: int) -> np.ndarray:
    """w_l = 1/(l+1)², normalised to sum 1 (the share of ρ each level gets)."""
    w = 1.0 / np.arange(1, levels + 1, dtype=np.float64) ** 2
    return w / w.sum()


def level_sigmas(rho: float, sensitivity: float, levels: int) -> list[float]:
    """σ_l = Δ₂ / sqrt(2 ρ_l) per level."""
    return [float(sensitivity / math.sqrt(2.0 * rho * w)) for w in level_weights(levels)]


def opendp_rho(sigmas: list[float], sensitivity: float) -> float:
    """ρ of one device-epoch (one node per level), as OpenDP's maps account it."""
    dp = _dp()
    total = 0.0
    for sigma in sigmas:
        meas = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=float), scale=sigma)
        total += float(meas.map(float(sensitivity)))
    return total


# --- noise sources ---------------------------------------------------------------------------


class VectorNoise(Protocol):
    """Adds integer noise of scale σ to an integer vector; picks the indices of the k largest
    values after Gumbel noise of the given scale (report-noisy-max, one-shot top-k)."""

    def add(self, values: np.ndarray, sigma: float) -> np.ndarray: ...

    def top_k(self, values: np.ndarray, k: int, scale: float) -> np.ndarray: ...


def exact_top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (ties: lower index first)."""
    return np.argsort(-np.asarray(values, dtype=np.int64), kind="stable")[:k]


def gumbel_top_k(values: np.ndarray, k: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k largest of ``values + Gumbel(0, scale)``, largest first: one-shot
    report-noisy-max top-k (McKenna & Sheldon, NeurIPS 2020), the law of OpenDP's
    ``make_noisy_top_k``."""
    noisy = np.asarray(values, dtype=np.float64) + rng.gumbel(0.0, scale, size=np.shape(values))
    k = min(int(k), noisy.size)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-noisy, k - 1)[:k]
    return top[np.argsort(-noisy[top], kind="stable")].astype(np.int64)


class OpenDPDiscreteGaussian:
    """Discrete Gaussian noise from OpenDP (exact sampling from its CSPRNG)."""

    def __init__(self) -> None:
        self._dp = _dp()
        self._cache: dict[float, Any] = {}

    def add(self, values: np.ndarray, sigma: float) -> np.ndarray:
        if sigma not in self._cache:
            dp = self._dp
            self._cache[sigma] = dp.m.make_gaussian(
                dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=float), scale=sigma
            )
        out = self._cache[sigma]([int(v) for v in values])
        return np.asarray(out, dtype=np.int64)

    def top_k(self, values: np.ndarray, k: int, scale: float) -> np.ndarray:
        """Noisy top-k with Gumbel noise in double precision, from a Philox generator keyed
        with 128 bits of the OS CSPRNG per call. OpenDP's exact sampler
        (``make_noisy_top_k``, whose privacy map sets the scale) draws the same law but takes
        about 40 µs per value at the scales releases use (30 s for the 760,000 buckets of a
        10^6-item dictionary); only the indices are released, never a noisy value, so the
        low-order bits that floating-point attacks on the Laplace mechanism read are not
        published."""
        rng = np.random.Generator(np.random.Philox(key=secrets.randbits(128)))
        return gumbel_top_k(values, k, scale, rng)


class SeededGaussian:
    """Rounded Gaussian noise from a seeded generator: tests and benchmarks only (same
    variance to within 1/12; OpenDP's sampler draws from the OS CSPRNG and cannot be seeded)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def add(self, values: np.ndarray, sigma: float) -> np.ndarray:
        values = np.asarray(values, dtype=np.int64)
        return values + np.rint(self.rng.normal(0.0, sigma, size=values.shape)).astype(np.int64)

    def top_k(self, values: np.ndarray, k: int, scale: float) -> np.ndarray:
        return gumbel_top_k(values, k, scale, self.rng)


class ZeroNoise:
    """No noise: for exactness tests of the plumbing, never for releases."""

    def add(self, values: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(values, dtype=np.int64).copy()

    def top_k(self, values: np.ndarray, k: int, scale: float) -> np.ndarray:
        return exact_top_k(values, k)


# --- the budget of one collection --------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseBudget:
    """ε_release, δ and what follows from them for one collection."""

    epsilon: float
    delta: float
    horizon: int
    reports_per_device_epoch: int  # u
    report_l2: float  # r
    dimension: int  # D: length of the noised statistics vector
    derived_n: bool  # n = Σ counts (one-hot oracles): not a separate coordinate
    tree_share: float = 1.0  # the share of ρ the tree gets (heavy hitters: the rest noises discovery)
    discovery_scopes: int = 0  # heavy hitters: how many scopes' discoveries one device-epoch enters

    @property
    def sensitivity(self) -> float:
        """Δ₂ = u × r."""
        return self.reports_per_device_epoch * self.report_l2

    @property
    def levels(self) -> int:
        return levels_of(self.horizon)

    @property
    def rho(self) -> float:
        return rho_for(self.epsilon, self.delta)

    @property
    def sigmas(self) -> list[float]:
        return level_sigmas(self.rho * self.tree_share, self.sensitivity, self.levels)

    @property
    def discovery_rho(self) -> float:
        """ρ of one scope's heavy-hitter discovery: the rest of ρ, split over the scopes one
        device-epoch enters (the epoch and every window that contains it)."""
        if not self.discovery_scopes:
            return 0.0
        return self.rho * (1.0 - self.tree_share) / self.discovery_scopes

    def epsilon_for_epochs(self, epochs: int) -> float:
        """(ε, δ) of a device that reports in ``epochs`` epochs (ρ composes additively)."""
        return epsilon_of(self.rho * max(1, epochs), self.delta)

    def statement(self, max_epochs: int | None) -> dict[str, Any]:
        """The release part of the privacy statement."""
        return {
            "mechanism": "discrete Gaussian (OpenDP make_gaussian) on each epoch's statistics vector, "
            "binary-tree continual release over epochs",
            "neighbouring": "device-epoch: one device's reports in one epoch (added or removed)",
            "epsilon": self.epsilon,
            "delta": self.delta,
            "rho": self.rho,
            "accounting": "rho-zCDP per device-epoch, converted to (epsilon, delta) by OpenDP "
            "(make_zCDP_to_approxDP); m epochs: m*rho",
            "sensitivity_l2": self.sensitivity,
            "reports_per_device_epoch": self.reports_per_device_epoch,
            "report_l2": self.report_l2,
            "statistics_dimension": self.dimension,
            "horizon": self.horizon,
            "levels": self.levels,
            "level_sigmas": self.sigmas,
            "tree_share_of_rho": self.tree_share,
            "discovery_rho_per_scope": self.discovery_rho if self.discovery_scopes else None,
            "max_epochs_per_device": max_epochs,
            # null: no lifetime bound (memoized, or one too large to convert to a finite ε)
            "epsilon_per_device_lifetime": _finite_or_none(
                None if max_epochs is None else self.epsilon_for_epochs(max_epochs)
            ),
        }


# --- the statistics vector of an aggregate -----------------------------------------------------


def flatten(data: dict[str, Any], derived_n: bool) -> np.ndarray:
    """An aggregate's JSON form as one integer vector: counts (concatenated per attribute),
    then n (unless derived), then attribute_n (multidim)."""
    counts = data["counts"]
    parts: list[np.ndarray] = []
    if counts and isinstance(counts[0], list):
        parts.extend(np.asarray(c, dtype=np.int64) for c in counts)
    else:
        parts.append(np.asarray(counts, dtype=np.int64))
    if not derived_n:
        parts.append(np.asarray([int(data["n"])], dtype=np.int64))
    if data.get("attribute_n") is not None:
        parts.append(np.asarray(data["attribute_n"], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def unflatten(template: dict[str, Any], vector: np.ndarray, derived_n: bool) -> dict[str, Any]:
    """The inverse of :func:`flatten` on the template's shapes (noisy integers)."""
    vector = np.asarray(vector, dtype=np.int64)
    counts = template["counts"]
    pos = 0
    out: dict[str, Any] = {"config": template["config"]}
    if counts and isinstance(counts[0], list):
        new = []
        for c in counts:
            new.append(vector[pos : pos + len(c)].tolist())
            pos += len(c)
        out["counts"] = new
        total = None
    else:
        out["counts"] = vector[pos : pos + len(counts)].tolist()
        pos += len(counts)
        total = int(vector[: len(counts)].sum())
    if derived_n:
        out["n"] = int(total if total is not None else 0)
    else:
        out["n"] = int(vector[pos])
        pos += 1
    if template.get("attribute_n") is not None:
        m = len(template["attribute_n"])
        out["attribute_n"] = vector[pos : pos + m].tolist()
        pos += m
    return out


# --- the continual counter over vectors --------------------------------------------------------


def cover(after: int, through: int, levels: int) -> list[tuple[int, int]]:
    """The minimal dyadic cover (level, index) of steps ``after+1 .. through`` (1-based);
    for ``after = 0`` the prefix decomposition of the binary-tree counter."""
    out = []
    start = after  # 0-based offset of the next uncovered step
    while start < through:
        level = levels - 1
        while level > 0 and (start % (1 << level) or start + (1 << level) > through):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


@dataclass
class VectorTree:
    """Binary-tree continual release of integer vectors with per-level noise scales.

    ``nodes`` hold the noisy sums of completed dyadic nodes (published through the scopes);
    ``partial`` the exact running sums of the incomplete node per level (secret: stored,
    never published). Nodes no future scope can use are dropped (``keep`` = the longest
    window in epochs)."""

    sigmas: list[float]
    dimension: int
    keep: int = 1
    noise: VectorNoise = field(default_factory=OpenDPDiscreteGaussian)
    nodes: dict[str, list[int]] = field(default_factory=dict)
    partial: list[list[int]] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        if not self.partial:
            self.partial = [[0] * self.dimension for _ in self.sigmas]

    @property
    def levels(self) -> int:
        return len(self.sigmas)

    @property
    def horizon(self) -> int:
        return 1 << (self.levels - 1)

    def append(self, vector: np.ndarray) -> None:
        """Add step t's exact statistics; noise every node that completes at t."""
        if self.steps >= self.horizon:
            raise ValueError(f"the release tree's horizon of {self.horizon} epochs is exhausted")
        vector = np.asarray(vector, dtype=np.int64)
        if vector.shape != (self.dimension,):
            raise ValueError(
                f"statistics vector of length {vector.shape} given to a tree of dimension {self.dimension}"
            )
        self.steps += 1
        t = self.steps
        for level in range(self.levels):
            acc = np.asarray(self.partial[level], dtype=np.int64) + vector
            width = 1 << level
            if t % width == 0:
                self.nodes[f"{level}:{t // width - 1}"] = self.noise.add(acc, self.sigmas[level]).tolist()
                acc = np.zeros(self.dimension, dtype=np.int64)
            self.partial[level] = acc.tolist()
        self._prune()

    def _prune(self) -> None:
        t = self.steps
        needed = set(cover(0, t, self.levels))
        for key in list(self.nodes):
            level, index = (int(x) for x in key.split(":"))
            if (level, index) not in needed and (index << level) < t - self.keep:
                del self.nodes[key]

    def span(self, after: int, through: int) -> tuple[np.ndarray, float]:
        """Noisy sum of steps ``after+1 .. through`` and its per-coordinate noise variance
        (Σ σ_l² over the cover; the discrete Gaussian's variance is at most σ²)."""
        if not 0 <= after < through <= self.steps:
            raise ValueError(f"span ({after}, {through}] outside the released steps 1..{self.steps}")
        total = np.zeros(self.dimension, dtype=np.int64)
        variance = 0.0
        for level, index in cover(after, through, self.levels):
            total += np.asarray(self.nodes[f"{level}:{index}"], dtype=np.int64)
            variance += self.sigmas[level] ** 2
        return total, variance

    def state(self) -> dict[str, Any]:
        return {
            "sigmas": list(self.sigmas),
            "dimension": self.dimension,
            "keep": self.keep,
            "nodes": dict(self.nodes),
            "partial": [list(p) for p in self.partial],
            "steps": self.steps,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], noise: VectorNoise | None = None) -> VectorTree:
        return cls(
            sigmas=[float(s) for s in state["sigmas"]],
            dimension=int(state["dimension"]),
            keep=int(state["keep"]),
            noise=noise or OpenDPDiscreteGaussian(),
            nodes={str(k): [int(x) for x in v] for k, v in state["nodes"].items()},
            partial=[[int(x) for x in p] for p in state["partial"]],
            steps=int(state["steps"]),
        )


# --- central variance of an estimate -------------------------------------------------------------


#: statistics vectors up to this length get the exact per-coordinate derivative loop
EXACT_JACOBIAN_LIMIT = 2048


def added_variance(
    estimate: Callable[[dict[str, Any]], np.ndarray],
    data: dict[str, Any],
    derived_n: bool,
    noise_variance: float,
) -> np.ndarray:
    """Variance the central noise adds to each estimated value: ``noise_variance ·
    Σ_j (∂f/∂s_j)²`` over the statistics coordinates (the delta method; exact for the
    counts, which every estimator uses linearly). Derivatives by unit steps.

    Up to :data:`EXACT_JACOBIAN_LIMIT` coordinates: one SDK estimate per coordinate (per
    coordinate, never per report). Longer vectors: the count coordinates are probed at once
    — when the estimator is separable up to a common term (value v depends on count v and
    on n, which a derived n couples to every count; checked with a random probe) four steps
    give every derivative exactly; otherwise Rademacher probes estimate Σ_j (∂f_v/∂s_j)²
    (Hutchinson: 256, or as few as 16 on vectors over 2^20 long, relative error √(2/probes)),
    inflated by three relative standard errors so intervals stay on the wide side — and the
    few other coordinates (n, attribute_n) one by one."""
    base_vec = flatten(data, derived_n)
    base = estimate(unflatten(data, base_vec, derived_n))

    def step(delta: np.ndarray) -> np.ndarray:
        return estimate(unflatten(data, base_vec + delta, derived_n)) - base

    total = np.zeros_like(base)
    size = base_vec.size
    if size <= EXACT_JACOBIAN_LIMIT:
        for j in range(size):
            unit = np.zeros(size, dtype=np.int64)
            unit[j] = 1
            total += step(unit) ** 2
        return noise_variance * total
    counts = data["counts"]
    width = sum(len(c) for c in counts) if counts and isinstance(counts[0], list) else len(counts)
    for j in range(width, size):  # n and attribute_n
        unit = np.zeros(size, dtype=np.int64)
        unit[j] = 1
        total += step(unit) ** 2
    if width == base.size and width >= 2:
        # separable up to a common term (a derived n = Σ counts moves every value):
        # ∂f_v/∂c_j = d_v·[v = j] + g_v. Balanced ±1 probes (Σ = 0) keep n fixed and give
        # d exactly; one unit step gives g; a random balanced probe checks the structure.
        def balanced(signs: np.ndarray) -> np.ndarray:
            out = np.zeros(size, dtype=np.int64)
            out[:width] = signs
            return out

        alternating = np.where(np.arange(width) % 2 == 0, 1, -1)
        if width % 2:
            alternating[-1] = 0
        diagonal = step(balanced(alternating)) * alternating
        if width % 2:
            last = np.zeros(width, dtype=np.int64)
            last[-1], last[0] = 1, -1
            diagonal[-1] = step(balanced(last))[-1]
        first, second = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        first[0], second[1] = 1, 1
        common = step(first)
        common[0] = step(second)[0]
        rng = np.random.default_rng(0)  # public randomness: only how the derivatives are probed
        check = rng.permutation(alternating)
        if np.allclose(step(balanced(check)), diagonal * check, rtol=1e-7, atol=1e-13):
            return noise_variance * (total + (diagonal + common) ** 2 + (width - 1) * common**2)
    rng = np.random.default_rng(0)
    squares = np.zeros_like(base)
    probes = int(np.clip((1 << 24) // size, 16, 256))  # fewer probes on huge vectors (each is one estimate)
    for _ in range(probes):
        signs = np.zeros(size, dtype=np.int64)
        signs[:width] = rng.choice(np.array([-1, 1]), width)
        squares += step(signs) ** 2
    inflation = 1.0 + 3.0 * math.sqrt(2.0 / probes)  # three relative standard errors: 1.27 at 256, 2.06 at 16
    return noise_variance * (total + inflation * squares / probes)
