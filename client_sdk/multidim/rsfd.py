"""RS+FD — random sampling plus fake data (Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021).

Each user samples one attribute ``j`` uniformly (never sent), perturbs ``v_j`` with a local
randomiser at the amplified budget ``ε' = ln(d(e^ε − 1) + 1)``, and sends *fake data* for
every other attribute, so the server cannot tell which attribute is real (docs/multidim.md).

==============  =====================================  ==========================================
variant         sampled attribute                      other attributes (fake data)
==============  =====================================  ==========================================
``rsfd-grr``    GRR(v_j, k_j, ε')                      uniform value in [k_i]
``rsfd-oue-z``  OUE(one-hot(v_j), ε')                  OUE of the all-zero vector
``rsfd-oue-r``  OUE(one-hot(v_j), ε')                  OUE of one-hot(uniform value in [k_i])
``rsfd-adp``    per attribute, GRR or OUE-z, whichever has the lower variance (docs/multidim.md)
==============  =====================================  ==========================================

Privacy (read this): the paper (Arcolezi et al. 2021, Thm. 1) states ε-LDP. Exhaustive enumeration
(docs/multidim.md, finding [DV]; re-checked by this package's tests) shows that

* for two tuples differing in **one attribute** the loss is ε only for RS+FD[OUE-z], and
  for RS+FD[GRR] with equal domain sizes. With unequal ``k_j``, RS+FD[GRR] (and the GRR
  attributes of RS+FD[ADP]) lose ``max_j ln[(p_j k_j + S_{−j}) / (q_j k_j + S_{−j})]``,
  ``S_{−j} = Σ_{i≠j} q_i k_i`` — far above ε when the sizes are very unequal (UCI Adult,
  k from 2 to 42, ε = 1: 1.52). RS+FD[OUE-r] exceeds ε as soon as d ≥ 2 and some
  ``k_j ≥ 3``, even with equal sizes (d = 3, k = 3, ε = 1: 1.199), because its fake vectors rarely have a single
  bit set; this goes beyond the published analysis (docs/multidim.md) and is confirmed by exhaustive enumeration
  in the tests. ``privacy.epsilon_attribute`` is the exact value for every variant;
* for two **whole tuples** (the standard LDP notion, and this SDK's default) the loss is
  exactly ``ε'``, for every variant: ``privacy.epsilon_tuple``.

The ledger charges ``ε'`` under the default ``neighbouring="tuple"``, and
``max(ε, epsilon_attribute)`` only when the collection explicitly promises the weaker
``neighbouring="attribute"`` notion (docs/privacy.md). To spend a *tuple-level* budget
``B``, build the protocol with ``epsilon=epsilon_for_tuple_budget(B, d)``
(``multidim.calibrate_epsilon`` does this for any protocol and either notion).

The sampled attribute must not leak: :meth:`RSFD.perturb` makes the same random draws,
in the same order, and runs the same code for every attribute whichever is sampled; the
real and fake parts are merged by arithmetic selection.

Estimator for attribute j with ``N(v)`` supporting reports, ``b`` the probability that a
fake report supports a given value (``1/k``, ``q``, ``(p + (k−1)q)/k`` for GRR, OUE-z, OUE-r)::

    f̂(v) = (d·N(v)/n − q − (d − 1)·b) / (p − q)                     (Arcolezi et al. 2021, Eq. 4, 8, 10)
    Var    = d²·δ(1 − δ) / (n (p − q)²),  δ = (q + f(p − q) + (d − 1)b)/d   (Arcolezi et al. 2021; conservative)

``Estimate.variance_approx`` is the RS+FD paper's formula at ``f = 0`` (Var*), ``Estimate.variance`` the
exact fixed-data variance ``d² Σ_users δ_u(1 − δ_u) / (n² (p − q)²)`` at the clipped
estimate (the RS+FD paper's formula treats every user as the same Bernoulli(δ) and is slightly larger).

Worked example (docs/multidim.md, T9–T12):

>>> m = RSFD_GRR(epsilon=1.0, domain_sizes=[4, 4, 4])
>>> round(m.epsilon_amplified, 6)
1.81724
>>> a = m.attribute_parameters[0]
>>> round(a.p, 6), round(a.q, 6), round(m.variance_approx_per_user[0], 6)
(0.672305, 0.109232, 4.593997)
>>> p = m.privacy
>>> p.neighbouring, round(p.epsilon, 6), round(p.epsilon_attribute, 6), round(p.epsilon_tuple, 6)
('tuple', 1.81724, 1.0, 1.81724)
>>> import numpy as np
>>> data = np.zeros((2000, 3), dtype=int)
>>> est = m.estimate(m.aggregate(m.perturb_batch(data, rng=np.random.default_rng(1))))
>>> [e.n for e in est], est[0].frequencies.shape
([2000, 2000, 2000], (4,))
>>> round(RSFD_ADP(epsilon=1.0, domain_sizes=[4, 2, 40]).privacy.epsilon_tuple, 6)
1.81724
>>> [a.oracle for a in RSFD_ADP(epsilon=1.0, domain_sizes=[4, 2, 40]).attribute_parameters]
['grr', 'grr', 'oue']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError
from client_sdk.mechanisms._base import EPSILON_MAX, WIRE_VERSION, Estimate, validate_epsilon
from client_sdk.mechanisms.grr import GRRReports, decode_index, grr_probabilities
from client_sdk.mechanisms.unary import UnaryReports, count_set_bits
from client_sdk.multidim._base import (
    MultidimAggregate,
    MultidimEstimate,
    MultidimProtocol,
    MultidimReports,
    decode_bits,
    encode_bits,
    unary_pattern_probability,
)

#: fake-data generators: uniform value (GRR), all-zero vector (OUE-z), random one-hot (OUE-r)
FAKE_UNIFORM, FAKE_ZERO, FAKE_ONE_HOT = "uniform", "zero", "one-hot"


def amplified_epsilon(epsilon: float, d: int) -> float:
    """ε' = ln(d(e^ε − 1) + 1): the per-report budget of the sampled attribute (Arcolezi et al. 2021, Thm. 1)."""
    return math.log1p(d * math.expm1(epsilon))


def epsilon_for_tuple_budget(epsilon_tuple: float, d: int) -> float:
    """The ε to build RS+FD with so that its tuple-level cost ε' equals ``epsilon_tuple``.

    >>> round(epsilon_for_tuple_budget(1.81724, 3), 5)
    1.0
    """
    eps = validate_epsilon(epsilon_tuple, "epsilon_tuple")
    return math.log1p(math.expm1(eps) / d)


@dataclass(frozen=True)
class AttributeParameters:
    """One attribute's randomiser under RS+FD (all numbers derived from public config)."""

    k: int
    oracle: str  # "grr" or "oue"
    fake: str  # FAKE_UNIFORM, FAKE_ZERO or FAKE_ONE_HOT
    epsilon: float  # ε', the budget of the local randomiser
    p: float  # P[report supports v | sampled attribute holds v]
    q: float  # P[report supports v | sampled attribute holds u != v]
    fake_support: float  # b = P[fake report supports a given value]

    def delta(self, f: np.ndarray | float, d: int) -> np.ndarray:
        """the RS+FD paper's δ: P[report supports v] for a population with frequency f of v."""
        return (self.q + np.asarray(f) * (self.p - self.q) + (d - 1) * self.fake_support) / d

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain_size": self.k,
            "oracle": self.oracle,
            "fake": self.fake,
            "epsilon": self.epsilon,
            "p": self.p,
            "q": self.q,
            "fake_support": self.fake_support,
        }

    # ratios r(y | x) = P_real(y | x) / P_fake(y), which decide the privacy loss (docs/multidim.md)
    def ratio_min(self) -> float:
        """Smallest r(y | x) over outputs y and inputs x."""
        if self.oracle == "grr":
            return self.k * self.q
        b, a = self.p / self.q, (1 - self.p) / (1 - self.q)
        if self.fake == FAKE_ZERO:
            return a
        return a * self.k / ((self.k - 1) * b + a)  # one-hot fake, y with k-1 bits set, x not among them

    def ratio_pair(self) -> tuple[float, float]:
        """(r(y | x), r(y | x')) for the same y maximising the one-attribute loss."""
        if self.oracle == "grr":
            return self.k * self.p, self.k * self.q
        b, a = self.p / self.q, (1 - self.p) / (1 - self.q)
        if self.fake == FAKE_ZERO:
            return b, a
        denominator = b + (self.k - 1) * a  # y with exactly one bit set, at x
        return b * self.k / denominator, a * self.k / denominator


def _grr_attribute(k: int, eps_amp: float) -> AttributeParameters:
    p, q = grr_probabilities(eps_amp, k)
    return AttributeParameters(k, "grr", FAKE_UNIFORM, eps_amp, p, q, 1.0 / k)


def _oue_attribute(k: int, eps_amp: float, fake: str) -> AttributeParameters:
    p, q = 0.5, 1.0 / (math.exp(eps_amp) + 1.0)
    b = q if fake == FAKE_ZERO else (p + (k - 1) * q) / k
    return AttributeParameters(k, "oue", fake, eps_amp, p, q, b)


def _variance_at_zero(a: AttributeParameters, d: int) -> float:
    """n·Var* of the RS+FD paper's formula at f = 0."""
    delta = float(a.delta(0.0, d))
    return d * d * delta * (1 - delta) / (a.p - a.q) ** 2


class RSFD(MultidimProtocol):
    """Shared code of the RS+FD variants; subclasses choose each attribute's randomiser."""

    name: ClassVar[str] = "rsfd"

    def __init__(self, epsilon: float, domain_sizes: Sequence[int], neighbouring: str = "tuple") -> None:
        super().__init__(epsilon, domain_sizes, neighbouring)
        self.epsilon_amplified = amplified_epsilon(self.epsilon, self.d)
        if self.epsilon_amplified > EPSILON_MAX:
            raise ConfigError(
                f"the amplified budget ε' = ln(d(e^ε − 1) + 1) = {self.epsilon_amplified:.3f} exceeds {EPSILON_MAX}; "
                "lower epsilon"
            )
        self.attribute_parameters: tuple[AttributeParameters, ...] = tuple(
            self._attribute(k, self.epsilon_amplified) for k in self.domain_sizes
        )
        for a in self.attribute_parameters:
            if not (0 < a.q < a.p < 1):
                raise ConfigError(f"derived probabilities p={a.p}, q={a.q} are unusable (need 0 < q < p < 1)")
        self._is_grr = np.array([a.oracle == "grr" for a in self.attribute_parameters])
        # OUE attributes share one vector of bit probabilities: q everywhere, one "hot" bit each
        sizes = [a.k if a.oracle == "oue" else 0 for a in self.attribute_parameters]
        self._bit_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._bit_base = np.concatenate(
            [np.full(a.k, a.q) for a in self.attribute_parameters if a.oracle == "oue"] or [np.zeros(0)]
        )

    def _attribute(self, k: int, eps_amp: float) -> AttributeParameters:
        raise NotImplementedError

    # --- privacy ----------------------------------------------------------------------
    @property
    def epsilon_tuple(self) -> float:
        # P[y | x] = (1/d)·Π_i P_fake_i(y_i)·Σ_j r_j(y_j | x_j); every r_j(y|x)/r_j(y|x') <= e^ε',
        # with equality for all j at once when x and x' differ everywhere (docs/multidim.md): exactly ε'.
        return self.epsilon_amplified

    @property
    def epsilon_attribute(self) -> float:
        # Only the changed attribute m's term differs: ratio (A + r_hi)/(A + r_lo), largest
        # when the other terms A = Σ_{i≠m} r_i are smallest (docs/multidim.md, generalised to OUE).
        minima = [a.ratio_min() for a in self.attribute_parameters]
        total = math.fsum(minima)
        worst = 0.0
        for a, r_min in zip(self.attribute_parameters, minima, strict=True):
            rest = total - r_min
            hi, lo = a.ratio_pair()
            worst = max(worst, math.log((rest + hi) / (rest + lo)))
        return worst

    def _parameters(self) -> dict[str, Any]:
        return {
            "epsilon_amplified": self.epsilon_amplified,
            "sampling_rate": 1.0 / self.d,
            "attributes": [{"attribute": j, **a.to_dict()} for j, a in enumerate(self.attribute_parameters)],
        }

    # --- perturbation -----------------------------------------------------------------
    def perturb(self, value: Sequence[int]) -> dict[str, Any]:
        """One report from the OS CSPRNG.

        Every attribute makes the same draws whether or not it is the sampled one; the
        sampled flag ``s`` only enters arithmetic selections ``s·real + (1 − s)·fake``.
        """
        v = self._check_tuple(value)
        j = _random.uniform_int(self.d)
        values: list[int] = []
        hot_positions: list[int] = []
        hot_probabilities: list[float] = []
        for i, a in enumerate(self.attribute_parameters):
            s = int(i == j)
            if a.oracle == "grr":
                keep = int(_random.bernoulli(a.p))
                other = _random.uniform_int(a.k - 1)
                other += int(other >= v[i])
                real = keep * v[i] + (1 - keep) * other
                fake = _random.uniform_int(a.k)
                values.append(s * real + (1 - s) * fake)
            else:
                fake_hot = _random.uniform_int(a.k)
                fake_probability = a.p if a.fake == FAKE_ONE_HOT else a.q
                hot_positions.append(s * v[i] + (1 - s) * fake_hot)
                hot_probabilities.append(s * a.p + (1 - s) * fake_probability)
                values.append(-1)
        probabilities = self._bit_base.copy()
        oue_offsets = self._bit_offsets[:-1][~self._is_grr]
        probabilities[oue_offsets + np.asarray(hot_positions, dtype=np.int64)] = hot_probabilities
        bits = _random.bernoulli_vector(probabilities).astype(np.uint8)
        y: list[Any] = []
        for i, a in enumerate(self.attribute_parameters):
            if a.oracle == "grr":
                y.append(values[i])
            else:
                start = self._bit_offsets[i]
                y.append(encode_bits(np.packbits(bits[start : start + a.k], bitorder="little")))
        return {"v": WIRE_VERSION, "m": self.name, "y": y}

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> MultidimReports:
        """Vectorised reports of an (n, d) array: one pass per attribute, none per report."""
        x = self._check_tuples(values)
        n = x.shape[0]
        sampled_attribute = rng.integers(0, self.d, size=n)
        columns: list[GRRReports | UnaryReports] = []
        for i, a in enumerate(self.attribute_parameters):
            sampled = sampled_attribute == i
            v = x[:, i]
            if a.oracle == "grr":
                keep = rng.random(n) < a.p
                other = rng.integers(0, a.k - 1, size=n)
                other += other >= v
                fake = rng.integers(0, a.k, size=n)
                columns.append(GRRReports(np.where(sampled, np.where(keep, v, other), fake)))
            else:
                if a.fake == FAKE_ONE_HOT:
                    hot_rows = np.ones(n, dtype=bool)
                    hot_index = np.where(sampled, v, rng.integers(0, a.k, size=n))
                else:
                    hot_rows, hot_index = sampled, v
                columns.append(UnaryReports(_unary_bits(n, a, hot_rows, hot_index, rng), a.k))
        return MultidimReports(columns)

    # --- wire form --------------------------------------------------------------------
    def encode(self, batch: MultidimReports) -> list[dict[str, Any]]:
        cols: list[list[Any]] = []
        for a, column in zip(self.attribute_parameters, batch.columns, strict=True):
            if a.oracle == "grr":
                cols.append(cast(GRRReports, column).values.tolist())
            else:
                cols.append([encode_bits(row) for row in cast(UnaryReports, column).packed])
        return [{"v": WIRE_VERSION, "m": self.name, "y": list(row)} for row in zip(*cols, strict=True)]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> MultidimReports:
        n = len(payloads)
        grr_cols = {
            i: np.empty(n, dtype=np.int64) for i, a in enumerate(self.attribute_parameters) if a.oracle == "grr"
        }
        oue_cols = {
            i: np.empty((n, (a.k + 7) // 8), dtype=np.uint8)
            for i, a in enumerate(self.attribute_parameters)
            if a.oracle == "oue"
        }
        for r, payload in enumerate(payloads):
            y = self._check_y_list(self._check_header(payload, r), r)
            for i, a in enumerate(self.attribute_parameters):
                if a.oracle == "grr":
                    grr_cols[i][r] = decode_index(y[i], a.k, f"y[{i}]", r)
                else:
                    oue_cols[i][r] = np.frombuffer(decode_bits(y[i], a.k, f"y[{i}]", r), dtype=np.uint8)
        return MultidimReports(
            [
                GRRReports(grr_cols[i]) if a.oracle == "grr" else UnaryReports(oue_cols[i], a.k)
                for i, a in enumerate(self.attribute_parameters)
            ]
        )

    # --- aggregation and estimation ---------------------------------------------------
    def aggregate(self, reports: MultidimReports | Sequence[Mapping[str, Any]]) -> MultidimAggregate:
        batch = reports if isinstance(reports, MultidimReports) else self.decode(reports)
        if len(batch.columns) != self.d or batch.attribute is not None:
            raise ValueError(f"a batch of {self.name} reports needs {self.d} columns")
        counts = []
        for a, column in zip(self.attribute_parameters, batch.columns, strict=True):
            if a.oracle == "grr":
                counts.append(np.bincount(cast(GRRReports, column).values, minlength=a.k).astype(np.int64))
            else:
                counts.append(count_set_bits(cast(UnaryReports, column).packed, a.k).astype(np.int64))
        n = len(batch)
        return MultidimAggregate(self.config, n, tuple(counts), (n,) * self.d)

    def estimate(self, aggregate: MultidimAggregate) -> MultidimEstimate:
        self._check_aggregate(aggregate)
        n, d = aggregate.n, self.d
        out = []
        for a, counts in zip(self.attribute_parameters, aggregate.counts, strict=True):
            freqs = (d * counts / n - a.q - (d - 1) * a.fake_support) / (a.p - a.q)
            variance = self._exact_variance(a, n, np.clip(freqs, 0.0, 1.0))
            out.append(Estimate(freqs, variance, _variance_at_zero(a, d) / n, n))
        return MultidimEstimate(tuple(out), n, self.name)

    def _exact_variance(self, a: AttributeParameters, n: int, f: np.ndarray) -> np.ndarray:
        d = self.d
        holder = a.delta(1.0, d)  # δ of a user who holds v
        other = a.delta(0.0, d)  # δ of a user who does not
        mixed = f * holder * (1 - holder) + (1 - f) * other * (1 - other)
        return d * d * mixed / (n * (a.p - a.q) ** 2)

    def exact_variance(self, n: int, frequencies: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Exact fixed-data variance ``d² Σ_users δ_u(1 − δ_u) / (n² (p − q)²)`` per value."""
        return [
            self._exact_variance(a, n, np.asarray(f, dtype=np.float64))
            for a, f in zip(self.attribute_parameters, frequencies, strict=True)
        ]

    def variance_s1(self, n: int, frequencies: Sequence[np.ndarray]) -> list[np.ndarray]:
        """the RS+FD paper's closed form ``d²·δ(1 − δ) / (n (p − q)²)`` per value (conservative)."""
        out = []
        for a, f in zip(self.attribute_parameters, frequencies, strict=True):
            delta = a.delta(np.asarray(f, dtype=np.float64), self.d)
            out.append(self.d**2 * delta * (1 - delta) / (n * (a.p - a.q) ** 2))
        return out

    @property
    def variance_approx_per_user(self) -> list[float]:
        return [_variance_at_zero(a, self.d) for a in self.attribute_parameters]

    # --- exact output distribution (privacy checks) -----------------------------------
    def _attribute_outputs(self, a: AttributeParameters, v: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Outputs of one attribute with P_real(y | v) and P_fake(y)."""
        if a.oracle == "grr":
            outputs = list(range(a.k))
            real = np.array([a.p if y == v else a.q for y in outputs])
            return outputs, real, np.full(a.k, 1.0 / a.k)
        if a.k > 12:
            raise NotImplementedError("output distribution enumerated for k <= 12 only")
        outputs = list(range(1 << a.k))

        def probs(hot: int | None) -> np.ndarray:
            pr = np.full(a.k, a.q)
            if hot is not None:
                pr[hot] = a.p
            return pr

        real = np.array([unary_pattern_probability(y, probs(v)) for y in outputs])
        if a.fake == FAKE_ZERO:
            fake = np.array([unary_pattern_probability(y, probs(None)) for y in outputs])
        else:
            fake = np.mean([[unary_pattern_probability(y, probs(u)) for y in outputs] for u in range(a.k)], axis=0)
        return outputs, real, fake

    def output_distribution(self, value: Sequence[int]) -> dict[Any, float]:
        v = self._check_tuple(value)
        parts = [self._attribute_outputs(a, v[i]) for i, a in enumerate(self.attribute_parameters)]
        if math.prod(len(p[0]) for p in parts) > 200_000:
            raise NotImplementedError("output space too large to enumerate")
        out: dict[Any, float] = {}
        for combo in itertools.product(*[range(len(p[0])) for p in parts]):
            fake = [parts[i][2][c] for i, c in enumerate(combo)]
            total = 0.0
            for j in range(self.d):
                term = parts[j][1][combo[j]]
                for i in range(self.d):
                    if i != j:
                        term *= fake[i]
                total += term
            out[tuple(parts[i][0][c] for i, c in enumerate(combo))] = total / self.d
        return out


def _unary_bits(
    n: int, a: AttributeParameters, hot_rows: np.ndarray, hot_index: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Packed OUE bit vectors: every bit is 1 w.p. q, except bit ``hot_index[i]`` of the
    rows with ``hot_rows[i]``, which is 1 w.p. p."""
    width = (a.k + 7) // 8
    packed = np.empty((n, width), dtype=np.uint8)
    q32, p32 = np.float32(a.q), np.float32(a.p)
    chunk = max(1, (1 << 21) // a.k)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # float32 uniforms: probabilities realised to 2**-24, ample for simulation
        uniform = rng.random((stop - start, a.k), dtype=np.float32)
        bits = uniform < q32
        rows = np.nonzero(hot_rows[start:stop])[0]
        cols = hot_index[start:stop][rows]
        bits[rows, cols] = uniform[rows, cols] < p32
        packed[start:stop] = np.packbits(bits, axis=1, bitorder="little")
    return packed


class RSFD_GRR(RSFD):  # the paper's name
    """RS+FD[GRR]: GRR on the sampled attribute, uniform fake values elsewhere."""

    name = "rsfd-grr"
    max_domain_size = 2**31

    def _attribute(self, k: int, eps_amp: float) -> AttributeParameters:
        return _grr_attribute(k, eps_amp)


class RSFD_OUE_Z(RSFD):
    """RS+FD[OUE-z]: OUE on the sampled attribute, OUE of the zero vector elsewhere."""

    name = "rsfd-oue-z"

    def _attribute(self, k: int, eps_amp: float) -> AttributeParameters:
        return _oue_attribute(k, eps_amp, FAKE_ZERO)


class RSFD_OUE_R(RSFD):
    """RS+FD[OUE-r]: OUE on the sampled attribute, OUE of a random one-hot vector elsewhere."""

    name = "rsfd-oue-r"

    def _attribute(self, k: int, eps_amp: float) -> AttributeParameters:
        return _oue_attribute(k, eps_amp, FAKE_ONE_HOT)


class RSFD_ADP(RSFD):
    """RS+FD[ADP]: per attribute, GRR if its variance at f = 0 is at most OUE-z's (Arcolezi et al. 2021, Eq. 12)."""

    name = "rsfd-adp"

    def _attribute(self, k: int, eps_amp: float) -> AttributeParameters:
        grr, oue = _grr_attribute(k, eps_amp), _oue_attribute(k, eps_amp, FAKE_ZERO)
        return grr if _variance_at_zero(grr, self.d) <= _variance_at_zero(oue, self.d) else oue
