"""SMP — sample one attribute and report it, with its index, at the full budget ε.

Baseline of Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021 (docs/multidim.md). Each
user draws ``j`` uniformly from the d attributes (independently of the data) and sends
``(j, FO_ε(v_j))``. The server estimates attribute j from the ``n_j`` users who sent j.

Privacy: ε-LDP at the **tuple** level, and exactly ε at the attribute level too (the
index carries no information about the data; the report on j is ε-LDP):
``privacy.epsilon == privacy.epsilon_tuple == privacy.epsilon_attribute == ε``. The
server does learn which attribute each user reported.

The per-attribute oracle is configurable as for SPL: ``oracle="grr"`` (default), ``"oue"``,
``"auto"``, or a list of names. Wire form: ``{"v": 1, "m": "smp", "j": j, "y": o}`` with
``o`` the oracle payload without its ``"v"`` field.

Variance: the estimate targets the frequency in the *whole* population, so besides the
oracle's noise on the n_j sampled users (``Var_FO(ε)`` with ``n_j`` reports) it carries the
sampling error of which users reported j: ``f(1 − f)(n − n_j) / (n_j (n − 1))``. Both terms
are in ``Estimate.variance``; ``Estimate.variance_approx`` is ``Var*_FO(ε)/n_j``
(≈ ``d·Var*_FO(ε)/n``, the RS+FD paper's approximation). An attribute no user sampled has no estimate
(``None``, listed in ``MultidimEstimate.missing``).

>>> import numpy as np
>>> m = SMP(epsilon=1.0, domain_sizes=[4, 4, 4])
>>> round(m.variance_approx_per_user[0], 6)
4.794202
>>> p = m.privacy
>>> p.epsilon, p.epsilon_attribute, p.epsilon_tuple
(1.0, 1.0, 1.0)
>>> r = m.perturb((0, 3, 2))
>>> sorted(r), r["j"] in (0, 1, 2)
(['j', 'm', 'v', 'y'], True)
>>> est = m.estimate(m.aggregate([r]))
>>> len(est.missing)
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ReportDecodeError
from client_sdk.mechanisms._base import WIRE_VERSION, Aggregate, Estimate, pure_variance
from client_sdk.mechanisms.grr import decode_index
from client_sdk.multidim._base import (
    MultidimAggregate,
    MultidimEstimate,
    MultidimReports,
    OracleBasedProtocol,
    decode_inner,
    inner_payload,
)


def sampling_variance(f: np.ndarray, n: int, n_j: float) -> np.ndarray:
    """Variance of the sampled users' frequency around the population's (hypergeometric)."""
    if n <= 1:
        return np.zeros_like(np.asarray(f, dtype=np.float64))
    f = np.asarray(f, dtype=np.float64)
    return f * (1 - f) * (n - n_j) / (n_j * (n - 1))


class SMP(OracleBasedProtocol):
    name = "smp"
    wire_fields = frozenset({"v", "m", "j", "y"})

    # --- privacy ----------------------------------------------------------------------
    @property
    def epsilon_tuple(self) -> float:
        return self.epsilon

    @property
    def epsilon_attribute(self) -> float:
        return self.epsilon

    def _parameters(self) -> dict[str, Any]:
        return {
            "sampling_rate": 1.0 / self.d,
            "attributes": [
                {"attribute": j, "domain_size": o.domain_size, "oracle": o.name, "epsilon": o.epsilon}
                | dict(o.privacy.parameters)
                for j, o in enumerate(self.oracles)
            ],
        }

    # --- perturbation -----------------------------------------------------------------
    def perturb(self, value: Sequence[int]) -> dict[str, Any]:
        v = self._check_tuple(value)  # the whole tuple is validated, whichever j is drawn
        j = _random.uniform_int(self.d)
        return {"v": WIRE_VERSION, "m": self.name, "j": j, "y": inner_payload(self.oracles[j].perturb(v[j]))}

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> MultidimReports:
        x = self._check_tuples(values)
        attribute = np.asarray(rng.integers(0, self.d, size=x.shape[0]))
        columns = [o.perturb_batch(x[attribute == j, j], rng) for j, o in enumerate(self.oracles)]
        return MultidimReports(columns, attribute)

    # --- wire form --------------------------------------------------------------------
    def encode(self, batch: MultidimReports) -> list[dict[str, Any]]:
        if batch.attribute is None:
            raise ValueError(f"a batch of {self.name} reports needs the attribute of each report")
        cols = [iter([inner_payload(p) for p in o.encode(c)]) for o, c in zip(self.oracles, batch.columns, strict=True)]
        return [{"v": WIRE_VERSION, "m": self.name, "j": int(j), "y": next(cols[j])} for j in batch.attribute]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> MultidimReports:
        attribute = np.empty(len(payloads), dtype=np.int64)
        inners: list[list[Any]] = [[] for _ in range(self.d)]
        where: list[list[int]] = [[] for _ in range(self.d)]
        for r, payload in enumerate(payloads):
            y = self._check_header(payload, r)
            j = decode_index(payload.get("j"), self.d, "j", r)
            if y is None:
                raise ReportDecodeError("bad_type", "field 'y' (the oracle payload) is missing", r)
            attribute[r] = j
            inners[j].append(y)
            where[j].append(r)
        columns = [decode_inner(o, inners[j], where[j], j) for j, o in enumerate(self.oracles)]
        return MultidimReports(columns, attribute)

    # --- aggregation and estimation ---------------------------------------------------
    def aggregate(self, reports: MultidimReports | Sequence[Mapping[str, Any]]) -> MultidimAggregate:
        batch = reports if isinstance(reports, MultidimReports) else self.decode(reports)
        if len(batch.columns) != self.d or batch.attribute is None:
            raise ValueError(f"a batch of {self.name} reports needs {self.d} columns and the sampled attributes")
        attribute_n = np.bincount(batch.attribute, minlength=self.d)
        counts = tuple(
            o.aggregate(c).counts if len(c) else np.zeros(o.domain_size, dtype=np.int64)
            for o, c in zip(self.oracles, batch.columns, strict=True)
        )
        return MultidimAggregate(self.config, len(batch), counts, tuple(int(m) for m in attribute_n))

    def estimate(self, aggregate: MultidimAggregate) -> MultidimEstimate:
        self._check_aggregate(aggregate)
        n = aggregate.n
        out: list[Estimate | None] = []
        for o, counts, n_j in zip(self.oracles, aggregate.counts, aggregate.attribute_n, strict=True):
            if n_j == 0:
                out.append(None)
                continue
            est = o.estimate(Aggregate(o.config, n_j, counts))
            extra = sampling_variance(np.clip(est.frequencies, 0.0, 1.0), n, n_j)
            out.append(Estimate(est.frequencies, est.variance + extra, est.variance_approx, n_j))
        return MultidimEstimate(tuple(out), n, self.name)

    def exact_variance(self, n: int, frequencies: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Oracle noise with the expected ``n_j = n/d`` reports plus the sampling term
        (exact to first order in d/n: ``E[1/n_j]`` is taken as ``d/n``)."""
        n_j = n / self.d
        out = []
        for o, f in zip(self.oracles, frequencies, strict=True):
            f = np.asarray(f, dtype=np.float64)
            out.append(pure_variance(o.p_star, o.q_star, n_j, f) + sampling_variance(f, n, n_j))  # type: ignore[arg-type]
        return out

    @property
    def variance_approx_per_user(self) -> list[float]:
        return [self.d * o.variance_approx_per_user for o in self.oracles]

    def output_distribution(self, value: Sequence[int]) -> dict[Any, float]:
        v = self._check_tuple(value)
        out: dict[Any, float] = {}
        for j, o in enumerate(self.oracles):
            for key, pr in o.output_distribution(v[j]).items():
                out[(j, key)] = pr / self.d
        return out
