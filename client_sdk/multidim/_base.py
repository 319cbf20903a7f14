"""The contract of every multidimensional protocol (docs/architecture.md, docs/multidim.md).

A user holds a tuple ``(v_1, …, v_d)`` of categorical values, attribute ``j`` taking values
in ``[0, k_j)``; the server wants one histogram per attribute. A protocol is built from a
validated configuration and holds its parameters, its perturbation (one report from the
OS CSPRNG, or a vectorised batch from an explicit ``numpy.random.Generator``), its
additive aggregate and its unbiased per-attribute estimators.

Privacy is stated for two neighbouring notions (docs/privacy.md, docs/multidim.md):

* ``"tuple"`` (the default, and the standard LDP definition): any two whole tuples a user
  could hold;
* ``"attribute"``: two tuples that differ in exactly one attribute (a weaker guarantee;
  use it only when product/legal adopt it explicitly).

``privacy.epsilon`` is what the budget ledger charges under the promised notion
(docs/privacy.md); ``privacy.epsilon_tuple`` and ``privacy.epsilon_attribute`` are the
exact worst-case privacy losses under each notion, so an auditor sees both. The
protocols are SPL, SMP and RS+FD of Arcolezi, Couchot, Al Bouna, Xiao, "Random Sampling
Plus Fake Data", CIKM 2021; RS+FD is ε-LDP only for one-attribute neighbours and costs
ε' = ln(d(e^ε − 1) + 1) for whole tuples (docs/multidim.md).

>>> import json
>>> from client_sdk.multidim import create_multidim
>>> m = create_multidim("rsfd-oue-z", epsilon=1.0, domain_sizes=[3, 2])
>>> agg = m.aggregate([m.perturb((2, 0)), m.perturb((1, 1))])
>>> restored = MultidimAggregate.from_dict(json.loads(json.dumps(agg.to_dict())))
>>> restored == agg, (agg + m.empty_aggregate()).n, agg.attribute_n
(True, 2, (2, 2))
>>> s = m.privacy
>>> s.neighbouring, round(s.epsilon, 6), round(s.epsilon_attribute, 6), round(s.epsilon_tuple, 6)
('tuple', 1.48988, 1.0, 1.48988)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from client_sdk.canonical import config_hash
from client_sdk.errors import AggregateMismatchError, ConfigError, ReportDecodeError
from client_sdk.mechanisms._base import WIRE_VERSION, Estimate, ReportBatch, validate_domain_size, validate_epsilon
from client_sdk.wire_checks import is_version, refuse_unknown_fields

NEIGHBOURING = ("tuple", "attribute")
MAX_ATTRIBUTES = 256
KIND = "multidim"


def validate_domain_sizes(domain_sizes: Any, maximum: int, mechanism: str) -> tuple[int, ...]:
    """Return the k_j as a tuple of ints, or raise ConfigError (1..256 attributes, each k >= 2)."""
    if isinstance(domain_sizes, str | bytes | Mapping) or not isinstance(domain_sizes, Sequence | np.ndarray):
        raise ConfigError(f"domain_sizes must be a list of integers, got {domain_sizes!r}")
    sizes = list(domain_sizes)
    if not 1 <= len(sizes) <= MAX_ATTRIBUTES:
        raise ConfigError(f"domain_sizes must list 1 to {MAX_ATTRIBUTES} attributes, got {len(sizes)}")
    out = []
    for j, k in enumerate(sizes):
        try:
            out.append(validate_domain_size(k, maximum, mechanism))
        except ConfigError as exc:
            raise ConfigError(f"attribute {j}: {exc}") from None
    return tuple(out)


def validate_neighbouring(neighbouring: Any) -> str:
    if neighbouring not in NEIGHBOURING:
        raise ConfigError(f"neighbouring must be one of {NEIGHBOURING}, got {neighbouring!r}")
    return str(neighbouring)


@dataclass(frozen=True)
class MultidimPrivacyStatement:
    """What a multidimensional protocol guarantees, under both neighbouring notions.

    * ``epsilon``: what the ledger charges per report under ``neighbouring`` (the promised
      notion): ``epsilon_tuple`` for "tuple"; for "attribute", the larger of the nominal
      epsilon and ``epsilon_attribute`` (never less than what docs/privacy.md lists, never less
      than the true loss).
    * ``epsilon_tuple``: exact worst-case loss over any two tuples.
    * ``epsilon_attribute``: exact worst-case loss over tuples differing in one attribute.
    * ``parameters``: the derived numbers (per attribute: oracle, epsilon used, p, q, ...).
    """

    epsilon: float
    epsilon_attribute: float
    epsilon_tuple: float
    neighbouring: str
    mechanism: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "epsilon_attribute": self.epsilon_attribute,
            "epsilon_tuple": self.epsilon_tuple,
            "neighbouring": self.neighbouring,
            "mechanism": self.mechanism,
            "parameters": _json_safe(self.parameters),
        }


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


class MultidimReports(ReportBatch):
    """A batch of multidimensional reports as per-attribute columns.

    ``columns[j]`` is a single-attribute report batch (``GRRReports``, ``UnaryReports``, ...)
    holding attribute j's part of the reports. For RS+FD and SPL every column has one row
    per report. For SMP, ``attribute[i]`` is the attribute report i carries and
    ``columns[j]`` holds, in order, only the reports with ``attribute == j``.
    """

    mechanism = KIND

    def __init__(self, columns: Sequence[ReportBatch], attribute: np.ndarray | None = None) -> None:
        self.columns = tuple(columns)
        self.attribute = None if attribute is None else np.asarray(attribute, dtype=np.int64)

    def __len__(self) -> int:
        if self.attribute is not None:
            return int(self.attribute.shape[0])
        return len(self.columns[0]) if self.columns else 0


@dataclass(frozen=True)
class MultidimAggregate:
    """Additive sufficient statistics of a multidimensional collection.

    ``counts[j][v]`` is attribute j's support count C_j(v); ``n`` the number of reports;
    ``attribute_n[j]`` the number of reports that inform attribute j (``n`` for RS+FD and
    SPL, the number of users who sampled j for SMP). ``a + b == aggregate(reports_a +
    reports_b)``.
    """

    config: Mapping[str, Any]
    n: int
    counts: tuple[np.ndarray, ...]
    attribute_n: tuple[int, ...]

    def __add__(self, other: MultidimAggregate) -> MultidimAggregate:
        if not isinstance(other, MultidimAggregate):
            return NotImplemented
        return self._combine(other, 1)

    def __sub__(self, other: MultidimAggregate) -> MultidimAggregate:
        """``(a + b) − b == a``: a window of epochs is a difference of two cumulative sums."""
        if not isinstance(other, MultidimAggregate):
            return NotImplemented
        return self._combine(other, -1)

    def _combine(self, other: MultidimAggregate, sign: int) -> MultidimAggregate:
        if dict(self.config) != dict(other.config) or [c.shape for c in self.counts] != [c.shape for c in other.counts]:
            raise AggregateMismatchError(
                f"cannot combine aggregates of different configurations: {dict(self.config)} vs {dict(other.config)}"
            )
        return MultidimAggregate(
            self.config,
            self.n + sign * other.n,
            tuple(a + sign * b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + sign * b for a, b in zip(self.attribute_n, other.attribute_n, strict=True)),
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MultidimAggregate)
            and dict(self.config) == dict(other.config)
            and self.n == other.n
            and tuple(self.attribute_n) == tuple(other.attribute_n)
            and len(self.counts) == len(other.counts)
            and all(np.array_equal(a, b) for a, b in zip(self.counts, other.counts, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (integers only), for storage and transport."""
        return {
            "config": dict(self.config),
            "n": int(self.n),
            "counts": [[int(c) for c in col] for col in self.counts],
            "attribute_n": [int(m) for m in self.attribute_n],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultidimAggregate:
        return cls(
            dict(data["config"]),
            int(data["n"]),
            tuple(np.asarray(col, dtype=np.int64) for col in data["counts"]),
            tuple(int(m) for m in data["attribute_n"]),
        )


@dataclass(frozen=True)
class MultidimEstimate:
    """One unbiased :class:`~client_sdk.mechanisms.Estimate` per attribute.

    ``attributes[j]`` is attribute j's estimate (its ``n`` is the number of reports that
    informed it), or ``None`` when no report informed it (SMP with ``n_j = 0``; listed in
    ``missing``). ``n`` is the total number of reports.
    """

    attributes: tuple[Estimate | None, ...]
    n: int
    mechanism: str

    def __getitem__(self, j: int) -> Estimate | None:
        return self.attributes[j]

    def __len__(self) -> int:
        return len(self.attributes)

    def __iter__(self) -> Iterator[Estimate | None]:
        return iter(self.attributes)

    @property
    def missing(self) -> list[int]:
        """Attributes without an estimate (no report informed them)."""
        return [j for j, e in enumerate(self.attributes) if e is None]

    @property
    def frequencies(self) -> list[np.ndarray | None]:
        return [None if e is None else e.frequencies for e in self.attributes]

    @property
    def variance(self) -> list[np.ndarray | None]:
        return [None if e is None else e.variance for e in self.attributes]

    def postprocessed(self, method: str = "norm-sub", **options: Any) -> MultidimEstimate:
        """Every attribute's estimate post-processed (free of privacy cost, biased)."""
        return MultidimEstimate(
            tuple(None if e is None else e.postprocessed(method, **options) for e in self.attributes),
            self.n,
            self.mechanism,
        )

    def to_dict(self, level: float = 0.95) -> dict[str, Any]:
        return {
            "n": int(self.n),
            "mechanism": self.mechanism,
            "attributes": [None if e is None else e.to_dict(level) for e in self.attributes],
        }


class MultidimProtocol(ABC):
    """Base of every multidimensional frequency protocol (SPL, SMP, RS+FD)."""

    name: ClassVar[str]
    #: what a device's true value is: a tuple of value indices, one per attribute
    value_shape: ClassVar[str] = "tuple"

    @staticmethod
    def parse_value(text: str) -> tuple[int, ...]:
        """A true tuple typed as text: ``[1, 2]`` (JSON) or ``1,2``."""
        raw = text.strip()
        parts = json.loads(raw) if raw.startswith("[") else raw.split(",")
        return tuple(int(p) for p in parts)

    #: every field of a wire payload; any other is refused
    wire_fields: ClassVar[frozenset[str]] = frozenset({"v", "m", "y"})
    #: largest domain per attribute the report encoding supports
    max_domain_size: ClassVar[int] = 1 << 16

    def __init__(self, epsilon: float, domain_sizes: Sequence[int], neighbouring: str = "tuple") -> None:
        self.epsilon = validate_epsilon(epsilon)
        self.domain_sizes = validate_domain_sizes(domain_sizes, self.max_domain_size, self.name)
        self.neighbouring = validate_neighbouring(neighbouring)

    @property
    def d(self) -> int:
        """Number of attributes."""
        return len(self.domain_sizes)

    # --- configuration and privacy ----------------------------------------------------
    def _options(self) -> dict[str, Any]:
        """Protocol-specific entries of the canonical config."""
        return {}

    @property
    def config(self) -> dict[str, Any]:
        """The canonical configuration (JSON-safe): everything both sides need."""
        return {
            "kind": KIND,
            "mechanism": self.name,
            "epsilon": self.epsilon,
            "domain_sizes": list(self.domain_sizes),
            "neighbouring": self.neighbouring,
            **self._options(),
        }

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    @abstractmethod
    def epsilon_tuple(self) -> float:
        """Exact worst-case privacy loss over any two tuples."""

    @property
    @abstractmethod
    def epsilon_attribute(self) -> float:
        """Exact worst-case privacy loss over tuples differing in one attribute."""

    @property
    def epsilon_charged(self) -> float:
        """What the ledger charges per report under the promised notion (docs/privacy.md)."""
        if self.neighbouring == "tuple":
            return self.epsilon_tuple
        return max(self.epsilon, self.epsilon_attribute)

    @abstractmethod
    def _parameters(self) -> dict[str, Any]:
        """Derived parameters for the privacy statement."""

    @property
    def privacy(self) -> MultidimPrivacyStatement:
        return MultidimPrivacyStatement(
            epsilon=self.epsilon_charged,
            epsilon_attribute=self.epsilon_attribute,
            epsilon_tuple=self.epsilon_tuple,
            neighbouring=self.neighbouring,
            mechanism=self.name,
            parameters=self._parameters(),
        )

    # --- input validation -------------------------------------------------------------
    def _check_tuple(self, value: Any) -> list[int]:
        """One user's tuple as a list of ints, or ValueError saying what is wrong."""
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | np.ndarray):
            raise ValueError(f"a report needs a tuple of {self.d} integers, got {value!r}")
        if isinstance(value, np.ndarray) and value.ndim != 1:
            raise ValueError(f"a report needs a one-dimensional tuple of {self.d} integers, got shape {value.shape}")
        items = list(value)
        if len(items) != self.d:
            raise ValueError(f"a report needs a tuple of {self.d} values (one per attribute), got {len(items)}")
        out = []
        for j, (v, k) in enumerate(zip(items, self.domain_sizes, strict=True)):
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise ValueError(f"attribute {j}: value must be an integer in [0, {k}), got {v!r}")
            if not 0 <= int(v) < k:
                raise ValueError(f"attribute {j}: value {int(v)} is outside the domain [0, {k})")
            out.append(int(v))
        return out

    def _check_tuples(self, values: Any) -> np.ndarray:
        """A batch of tuples as an (n, d) int64 array, or ValueError saying what is wrong."""
        arr = np.asarray(values)
        if arr.ndim != 2 or arr.shape[1] != self.d:
            raise ValueError(f"values must be a two-dimensional array of shape (n, {self.d}), got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"values must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size:
            low, high = arr.min(axis=0), arr.max(axis=0)
            for j, k in enumerate(self.domain_sizes):
                if low[j] < 0 or high[j] >= k:
                    raise ValueError(f"attribute {j}: values must lie in [0, {k}), got range [{low[j]}, {high[j]}]")
        return arr

    # --- perturbation -----------------------------------------------------------------
    @abstractmethod
    def perturb(self, value: Sequence[int]) -> dict[str, Any]:
        """One report's wire payload for one user's tuple, drawn with the OS CSPRNG."""

    @abstractmethod
    def perturb_batch(self, values: Any, rng: np.random.Generator) -> MultidimReports:
        """Vectorised perturbation of an (n, d) array (simulation and benchmarks)."""

    # --- wire form --------------------------------------------------------------------
    @abstractmethod
    def encode(self, batch: MultidimReports) -> list[dict[str, Any]]:
        """Wire payloads of a batch (JSON-safe)."""

    @abstractmethod
    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> MultidimReports:
        """Parse wire payloads; raise ReportDecodeError (with the index) on the first bad one."""

    def _check_header(self, payload: Any, index: int | None) -> list[Any]:
        """Check version and mechanism and return the per-attribute list ``y``."""
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
        return payload.get("y")  # type: ignore[return-value]

    def _check_y_list(self, y: Any, index: int | None) -> list[Any]:
        if not isinstance(y, list):
            raise ReportDecodeError("bad_type", f"field 'y' must be a list of {self.d} entries", index)
        if len(y) != self.d:
            raise ReportDecodeError(
                "bad_length", f"field 'y' has {len(y)} entries, expected {self.d} (one per attribute)", index
            )
        return y

    def validate_payload(self, payload: Any) -> None:
        """Raise ReportDecodeError if one payload is malformed."""
        self.decode([payload])

    # --- aggregation and estimation ---------------------------------------------------
    @abstractmethod
    def aggregate(self, reports: MultidimReports | Sequence[Mapping[str, Any]]) -> MultidimAggregate:
        """Additive statistics of a batch (a MultidimReports or a list of wire payloads)."""

    def empty_aggregate(self) -> MultidimAggregate:
        return MultidimAggregate(
            self.config, 0, tuple(np.zeros(k, dtype=np.int64) for k in self.domain_sizes), (0,) * self.d
        )

    def _check_aggregate(self, aggregate: MultidimAggregate) -> None:
        if not isinstance(aggregate, MultidimAggregate):
            raise TypeError(f"expected a MultidimAggregate, got {type(aggregate).__name__}")
        if dict(aggregate.config) != self.config:
            raise AggregateMismatchError(f"aggregate of {dict(aggregate.config)} given to {self.config}")
        if aggregate.n <= 0:
            raise ValueError("cannot estimate from an empty aggregate (n = 0)")

    @abstractmethod
    def estimate(self, aggregate: MultidimAggregate) -> MultidimEstimate:
        """Unbiased per-attribute frequencies with plug-in exact variances."""

    @abstractmethod
    def exact_variance(self, n: int, frequencies: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Closed-form variance of every estimate for a fixed data set of n users whose
        attribute j has true frequencies ``frequencies[j]`` (for tests and benchmarks)."""

    @property
    @abstractmethod
    def variance_approx_per_user(self) -> list[float]:
        """n·Var* per attribute: the variance of one value's estimate at f = 0, times n."""

    def output_distribution(self, value: Sequence[int]) -> dict[Any, float]:
        """Exact probability of every possible report for one tuple (small domains only).

        Keys are hashable reports: a tuple with one entry per attribute (an int for a
        value, an int bit pattern for a unary vector), or ``(j, y)`` for SMP. Used by the
        empirical privacy checks.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(epsilon={self.epsilon}, domain_sizes={list(self.domain_sizes)}, "
            f"neighbouring={self.neighbouring!r})"
        )


class OracleBasedProtocol(MultidimProtocol):
    """Shared set-up of SPL and SMP: one single-attribute oracle per attribute, each run at
    :meth:`oracle_epsilon` (``oracle`` is a name for all attributes or a list, one each)."""

    max_domain_size = 2**31  # each oracle applies its own limit

    def __init__(
        self,
        epsilon: float,
        domain_sizes: Sequence[int],
        neighbouring: str = "tuple",
        oracle: str | Sequence[str] = "grr",
    ) -> None:
        super().__init__(epsilon, domain_sizes, neighbouring)
        self.oracle = validate_oracle_option(oracle, self.d)
        self.oracles = build_oracles(self.oracle, self.oracle_epsilon, self.domain_sizes)

    @property
    def oracle_epsilon(self) -> float:
        """The epsilon each attribute's oracle runs at."""
        return self.epsilon

    def _options(self) -> dict[str, Any]:
        return {"oracle": self.oracle}


def unary_pattern_probability(pattern: int, probabilities: np.ndarray) -> float:
    """Probability of the bit pattern (bit i = (pattern >> i) & 1) with independent bits."""
    out = 1.0
    for i, pr in enumerate(probabilities):
        out *= pr if (pattern >> i) & 1 else 1.0 - pr
    return out


def log_ratio(a: float, b: float) -> float:
    return math.log(a) - math.log(b)


def decode_bits(raw: Any, k: int, field: str, index: int | None) -> bytes:
    """A base64 string of ceil(k/8) bytes holding k little-endian bits (padding bits zero),
    or a ReportDecodeError naming the field."""
    if not isinstance(raw, str):
        raise ReportDecodeError("bad_type", f"field {field!r} must be a base64 string of {k} packed bits", index)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ReportDecodeError("bad_encoding", f"field {field!r} is not valid base64", index) from None
    width = (k + 7) // 8
    if len(data) != width:
        raise ReportDecodeError(
            "bad_length", f"field {field!r} holds {len(data)} bytes, expected {width} for k={k}", index
        )
    spare = width * 8 - k
    if spare and data[-1] >> (8 - spare):
        raise ReportDecodeError("out_of_range", f"field {field!r}: padding bits beyond the domain must be zero", index)
    return data


def encode_bits(packed_row: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(packed_row, dtype=np.uint8).tobytes()).decode("ascii")


# --- per-attribute frequency oracles (SPL and SMP) -----------------------------------------


def validate_oracle_option(oracle: Any, d: int) -> str | list[str]:
    """The ``oracle`` option: one mechanism name for every attribute, or a list of d names."""
    if isinstance(oracle, str):
        return oracle.lower()
    if isinstance(oracle, list | tuple) and all(isinstance(o, str) for o in oracle):
        if len(oracle) != d:
            raise ConfigError(f"oracle lists {len(oracle)} mechanisms for {d} attributes")
        return [o.lower() for o in oracle]
    raise ConfigError(f"oracle must be a mechanism name or a list of {d} names, got {oracle!r}")


def build_oracles(oracle: str | list[str], epsilon: float, domain_sizes: Sequence[int]) -> tuple[Any, ...]:
    """One frequency oracle per attribute ("auto" picks per attribute from public parameters)."""
    from client_sdk import mechanisms

    names = [oracle] * len(domain_sizes) if isinstance(oracle, str) else list(oracle)
    out = []
    for j, (name, k) in enumerate(zip(names, domain_sizes, strict=True)):
        try:
            out.append(mechanisms.create(name, epsilon=epsilon, domain_size=k))
        except ConfigError as exc:
            raise ConfigError(f"attribute {j}: {exc}") from None
    return tuple(out)


def inner_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An oracle's wire payload without its version field (the outer report carries it)."""
    return {key: value for key, value in payload.items() if key != "v"}


def decode_inner(oracle: Any, inners: Sequence[Any], report_index: Sequence[int], attribute: int) -> ReportBatch:
    """Decode one attribute's inner payloads with its oracle; errors name the report and
    the attribute."""
    payloads = []
    for raw, r in zip(inners, report_index, strict=True):
        if not isinstance(raw, Mapping) or "v" in raw:
            raise ReportDecodeError(
                "bad_type", f"attribute {attribute}: entry must be an oracle payload object without 'v'", r
            )
        payloads.append({"v": WIRE_VERSION, **raw})
    try:
        return oracle.decode(payloads)
    except ReportDecodeError as exc:
        at = report_index[exc.index] if exc.index is not None else None
        raise ReportDecodeError(exc.reason, f"attribute {attribute}: {exc.detail}", at) from None
