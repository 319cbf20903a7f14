"""The contract every frequency oracle fulfils (docs/architecture.md) and the "pure" estimator (docs/algorithms.md).

A frequency oracle is built from a validated configuration and holds its parameters,
its perturbation (one report from the OS CSPRNG, or a vectorised batch from an explicit
``numpy.random.Generator``), its additive aggregate and its unbiased estimator.

Every oracle here is *pure*: a report ``y`` supports a set of values, a holder of ``v`` is
in the support with probability ``p*`` and a holder of ``u != v`` with probability ``q*``,
so with ``C(v)`` the number of supporting reports (docs/algorithms.md)::

    f̂(v) = (C(v)/n - q*) / (p* - q*)
    Var[f̂(v)] = q*(1-q*) / (n (p*-q*)²) + f(v)(1 - p* - q*) / (n (p*-q*))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, ClassVar, Generic, TypeVar, cast

import numpy as np

from client_sdk.canonical import config_hash
from client_sdk.errors import AggregateMismatchError, ConfigError, ReportDecodeError
from client_sdk.wire_checks import is_version, refuse_unknown_fields

WIRE_VERSION = 1
EPSILON_MIN = 0.01  # below this p* - q* vanishes and estimates explode (docs/algorithms.md)
EPSILON_MAX = 20.0  # above this exp(eps) loses the q side to rounding; no useful privacy left


def validate_epsilon(epsilon: Any, name: str = "epsilon") -> float:
    """Return epsilon as a float or raise ConfigError saying what is allowed."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ConfigError(f"{name} must be a number, got {epsilon!r}")
    try:
        eps = float(epsilon)
    except OverflowError:  # an integer beyond the float range (10**400)
        raise ConfigError(f"{name} must lie in [{EPSILON_MIN}, {EPSILON_MAX}], got a larger integer") from None
    if not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {epsilon!r}")
    if eps < EPSILON_MIN or eps > EPSILON_MAX:
        raise ConfigError(f"{name} must lie in [{EPSILON_MIN}, {EPSILON_MAX}], got {eps}")
    return eps


def validate_domain_size(domain_size: Any, maximum: int, mechanism: str) -> int:
    """Return k as an int or raise ConfigError (k >= 2, at most the encoding's limit)."""
    if isinstance(domain_size, bool) or not isinstance(domain_size, int | np.integer):
        raise ConfigError(f"domain_size must be an integer, got {domain_size!r}")
    k = int(domain_size)
    if k < 2:
        raise ConfigError(f"domain_size must be at least 2, got {k}")
    if k > maximum:
        raise ConfigError(f"domain_size {k} is too large for {mechanism} (at most {maximum})")
    return k


@dataclass(frozen=True)
class PrivacyStatement:
    """What a mechanism guarantees: epsilon-LDP for the stated neighbouring notion."""

    epsilon: float
    neighbouring: str  # "record": any two values one user could hold
    mechanism: str
    parameters: Mapping[str, float | int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "neighbouring": self.neighbouring,
            "mechanism": self.mechanism,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True)
class Aggregate:
    """Additive sufficient statistics: ``aggregate(a) + aggregate(b) == aggregate(a + b)``.

    ``counts[v]`` is the support count C(v) of value v; ``n`` the number of reports;
    ``config`` the canonical configuration both sides were built from.
    """

    config: Mapping[str, Any]
    n: int
    counts: np.ndarray

    def __add__(self, other: Aggregate) -> Aggregate:
        if not isinstance(other, Aggregate):
            return NotImplemented
        self._check_same(other)
        return Aggregate(self.config, self.n + other.n, self.counts + other.counts)

    def __sub__(self, other: Aggregate) -> Aggregate:
        """``(a + b) − b == a``: a window of epochs is a difference of two cumulative sums."""
        if not isinstance(other, Aggregate):
            return NotImplemented
        self._check_same(other)
        return Aggregate(self.config, self.n - other.n, self.counts - other.counts)

    def _check_same(self, other: Aggregate) -> None:
        if dict(self.config) != dict(other.config) or self.counts.shape != other.counts.shape:
            raise AggregateMismatchError(
                f"cannot combine aggregates of different configurations: {dict(self.config)} vs {dict(other.config)}"
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Aggregate)
            and dict(self.config) == dict(other.config)
            and self.n == other.n
            and np.array_equal(self.counts, other.counts)
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (integers only), for storage and transport."""
        return {"config": dict(self.config), "n": int(self.n), "counts": [int(c) for c in self.counts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Aggregate:
        return cls(dict(data["config"]), int(data["n"]), np.asarray(data["counts"], dtype=np.int64))


@dataclass(frozen=True)
class Estimate:
    """Unbiased frequency estimates with their variance.

    ``frequencies`` is the raw unbiased vector (may be negative, need not sum to 1);
    ``variance`` the plug-in exact variance per value (the closed form evaluated at the
    clipped estimate); ``variance_approx`` is Var* (the closed form at f = 0).
    """

    frequencies: np.ndarray
    variance: np.ndarray
    variance_approx: float
    n: int
    method: str = "unbiased"

    @property
    def counts(self) -> np.ndarray:
        """Estimated counts n·f̂."""
        return self.frequencies * self.n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.variance)

    def confidence_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided normal-approximation interval per value (lower, upper)."""
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        z = NormalDist().inv_cdf(0.5 + level / 2)
        half = z * np.sqrt(self.variance)
        return self.frequencies - half, self.frequencies + half

    def postprocessed(self, method: str = "norm-sub", **options: Any) -> Estimate:
        """The same estimate after a post-processing method of ``client_sdk.postprocess``.

        Post-processing is free of privacy cost but biased; the variance fields keep the
        unbiased estimator's values (use them for intervals, not as the MSE of the result).
        """
        from client_sdk import postprocess

        adjusted = postprocess.apply(method, self.frequencies, variance_approx=self.variance_approx, **options)
        return Estimate(adjusted, self.variance, self.variance_approx, self.n, method)

    def to_dict(self, level: float = 0.95) -> dict[str, Any]:
        lower, upper = self.confidence_interval(level)
        return {
            "n": int(self.n),
            "method": self.method,
            "frequencies": self.frequencies.tolist(),
            "variance": self.variance.tolist(),
            "variance_approx": float(self.variance_approx),
            "ci_level": level,
            "ci_lower": lower.tolist(),
            "ci_upper": upper.tolist(),
        }


def pure_variance(p_star: float, q_star: float, n: int, f: np.ndarray | float) -> np.ndarray:
    """Exact variance of the pure estimator for fixed data (docs/algorithms.md)."""
    gap = p_star - q_star
    return q_star * (1 - q_star) / (n * gap**2) + np.asarray(f) * (1 - p_star - q_star) / (n * gap)


class ReportBatch:
    """A batch of reports as packed numpy arrays; each oracle defines its fields."""

    mechanism: ClassVar[str]

    def __len__(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


#: an oracle's own report batch type
B = TypeVar("B", bound=ReportBatch)


class FrequencyOracle(ABC, Generic[B]):
    """Base of every single-attribute frequency oracle (``B``: its report batch type)."""

    name: ClassVar[str]
    #: what a device's true value is: a value index in [0, domain_size)
    value_shape: ClassVar[str] = "index"
    #: largest domain the report encoding supports
    max_domain_size: ClassVar[int]

    def __init__(self, epsilon: float, domain_size: int) -> None:
        self.epsilon = validate_epsilon(epsilon)
        self.domain_size = validate_domain_size(domain_size, self.max_domain_size, self.name)

    @staticmethod
    def parse_value(text: str) -> int:
        """A true value typed as text (a command line): the value index."""
        return int(text)

    # --- parameters -------------------------------------------------------------------
    @property
    @abstractmethod
    def p_star(self) -> float:
        """P[v in Support(y) | user holds v]."""

    @property
    @abstractmethod
    def q_star(self) -> float:
        """P[v in Support(y) | user holds u != v]."""

    @property
    def variance_approx_per_user(self) -> float:
        """n·Var*: the variance of one value's estimate at f = 0, times n."""
        gap = self.p_star - self.q_star
        return self.q_star * (1 - self.q_star) / gap**2

    @property
    @abstractmethod
    def report_bits(self) -> int:
        """Size of one report's payload in bits (for the report-size limit of "auto")."""

    @property
    def config(self) -> dict[str, Any]:
        """The canonical configuration: everything both sides need, nothing else."""
        return {"mechanism": self.name, "epsilon": self.epsilon, "domain_size": self.domain_size}

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def privacy(self) -> PrivacyStatement:
        return PrivacyStatement(self.epsilon, "record", self.name, self._parameters())

    def _parameters(self) -> dict[str, float | int]:
        return {"p": self.p_star, "q": self.q_star}

    # --- perturbation -----------------------------------------------------------------
    def _check_value(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"value must be an integer in [0, {self.domain_size}), got {value!r}")
        v = int(value)
        if not 0 <= v < self.domain_size:
            raise ValueError(f"value {v} is outside the domain [0, {self.domain_size})")
        return v

    def _check_values(self, values: Any) -> np.ndarray:
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError("values must be a one-dimensional array of integers")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.domain_size):
            raise ValueError(f"values must lie in [0, {self.domain_size})")
        return arr

    @abstractmethod
    def perturb(self, value: int) -> dict[str, Any]:
        """One report's wire payload, drawn with the OS CSPRNG."""

    @abstractmethod
    def perturb_batch(self, values: Any, rng: np.random.Generator) -> B:
        """Vectorised perturbation for simulation and benchmarks (explicit generator)."""

    # --- wire form --------------------------------------------------------------------
    @abstractmethod
    def encode(self, batch: B) -> list[dict[str, Any]]:
        """Wire payloads of a batch (JSON-safe)."""

    #: every field of a wire payload ("v", "m" and the mechanism's own); any other is refused
    wire_fields: ClassVar[frozenset[str]]

    @abstractmethod
    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> B:
        """Parse wire payloads; raise ReportDecodeError (with the index) on the first bad one."""

    def _check_header(self, payload: Any, index: int | None) -> None:
        if not isinstance(payload, Mapping):
            raise ReportDecodeError("not_an_object", "payload must be a JSON object", index)
        if not is_version(payload.get("v"), WIRE_VERSION):
            raise ReportDecodeError(
                "bad_version", f"wire version must be the integer {WIRE_VERSION}, got {payload.get('v')!r}", index
            )
        if payload.get("m") != self.name:
            raise ReportDecodeError(
                "wrong_mechanism", f"payload is for mechanism {payload.get('m')!r}, expected {self.name!r}", index
            )
        refuse_unknown_fields(payload, self.wire_fields, index)

    def validate_payload(self, payload: Any) -> None:
        """Raise ReportDecodeError if one payload is malformed."""
        self.decode([payload])

    # --- aggregation and estimation ---------------------------------------------------
    @abstractmethod
    def _support_counts(self, batch: B) -> np.ndarray:
        """The additive statistics of a batch, vectorised: C(v) for every v in the domain
        unless the oracle overrides :meth:`support_from_counts` (Hadamard keeps its output
        histogram)."""

    def support_from_counts(self, counts: np.ndarray) -> np.ndarray:
        """C(v) for every v, from the aggregate's counts."""
        return counts

    @property
    def statistics_size(self) -> int:
        """Length of the aggregate's counts vector."""
        return self.domain_size

    def aggregate(self, reports: B | Sequence[Mapping[str, Any]]) -> Aggregate:
        """Additive statistics of a batch (a ReportBatch or a list of wire payloads)."""
        batch = cast(B, reports) if isinstance(reports, ReportBatch) else self.decode(reports)
        counts = self._support_counts(batch).astype(np.int64, copy=False)
        return Aggregate(self.config, len(batch), counts)

    def empty_aggregate(self) -> Aggregate:
        return Aggregate(self.config, 0, np.zeros(self.statistics_size, dtype=np.int64))

    def estimate(self, aggregate: Aggregate) -> Estimate:
        """Unbiased frequencies with plug-in exact variance (docs/algorithms.md)."""
        if dict(aggregate.config) != self.config:
            raise AggregateMismatchError(f"aggregate of {dict(aggregate.config)} given to {self.config}")
        n = aggregate.n
        if n <= 0:
            raise ValueError("cannot estimate from an empty aggregate (n = 0)")
        p, q = self.p_star, self.q_star
        freqs = (self.support_from_counts(aggregate.counts) / n - q) / (p - q)
        variance = pure_variance(p, q, n, np.clip(freqs, 0.0, 1.0))
        return Estimate(freqs, variance, self.variance_approx_per_user / n, n)

    def estimate_mle(self, aggregate: Aggregate, **options: Any) -> Estimate:
        """Maximum-likelihood estimate (EM where exact): a distribution with lower MSE."""
        return estimate_mle(self, aggregate, **options)

    def channel_matrix(self) -> np.ndarray | None:
        """A[y, x] = P[output y | value x] over the aggregate's outputs, where the aggregate
        is a histogram of whole reports (exact EM); None where reports support several
        values and the aggregate keeps support counts only."""
        return None

    def exact_variance(self, n: int, frequencies: np.ndarray) -> np.ndarray:
        """Closed-form variance for fixed true frequencies (for tests and benchmarks)."""
        return pure_variance(self.p_star, self.q_star, n, np.asarray(frequencies, dtype=np.float64))

    def output_distribution(self, value: int) -> dict[Any, float]:
        """Exact probability of every possible report for ``value`` (small domains only).

        Used by the empirical privacy check; oracles whose output space is too large
        raise NotImplementedError.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epsilon={self.epsilon}, domain_size={self.domain_size})"


def estimate_mle(mechanism: FrequencyOracle, aggregate: Aggregate, **options: Any) -> Estimate:
    """Maximum-likelihood estimate of a frequency oracle (docs/algorithms.md).

    Where the aggregate is a histogram of whole reports (GRR, Hadamard response) this is
    the exact likelihood, maximised by EM (iterative Bayesian update). Where it keeps
    support counts only (unary encoding, local hashing) it is the constrained composite
    likelihood, solved exactly by :func:`client_sdk.postprocess.mle_from_support`. The
    result is a distribution (biased, lower MSE); the variance fields are those of the
    unbiased estimator, for intervals.
    """
    from client_sdk.postprocess import ibu_from_histogram, mle_from_support

    unbiased = mechanism.estimate(aggregate)
    channel = mechanism.channel_matrix()
    if channel is not None:
        theta = ibu_from_histogram(aggregate.counts, channel, **options)
    else:
        support = mechanism.support_from_counts(aggregate.counts)
        theta = mle_from_support(support, aggregate.n, mechanism.p_star, mechanism.q_star)
    return Estimate(theta, unbiased.variance, unbiased.variance_approx, unbiased.n, "mle")
