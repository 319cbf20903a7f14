"""SPL — split the budget: every attribute reported with a frequency oracle at ε/d.

Baseline of Arcolezi, Couchot, Al Bouna, Xiao, CIKM 2021 (docs/multidim.md).
Each user sends ``FO_{ε/d}(v_j)`` for every attribute ``j``; the server runs the oracle's
standard estimator per attribute with all ``n`` reports.

Privacy: ε-LDP at the **tuple** level (sequential composition of d reports at ε/d each),
so ``privacy.epsilon_tuple == ε`` and the ledger charges ε (docs/privacy.md). Two tuples
that differ in one attribute differ in one oracle report only, so the exact
attribute-level loss is ``ε/d`` (``privacy.epsilon_attribute``); the ledger still charges
the nominal ε under ``neighbouring="attribute"`` (conservative; docs/algorithms.md, "What the ledger charges").

The per-attribute oracle is configurable: ``oracle="grr"`` (default), ``"oue"``, ``"olh"``,
``"auto"`` (lowest-variance choice per attribute from public parameters, docs/algorithms.md),
or a list with one name per attribute. Wire form: ``{"v": 1, "m": "spl", "y": [o_1, …,
o_d]}`` where ``o_j`` is attribute j's oracle payload without its ``"v"`` field (so it keeps
the oracle's name ``"m"``, checked on decode).

Variance per attribute: the oracle's ``Var`` at ε/d with n reports (exact for fixed data).

>>> import numpy as np
>>> m = SPL(epsilon=1.0, domain_sizes=[4, 4, 4])
>>> round(m.variance_approx_per_user[0], 6)
21.69593
>>> p = m.privacy
>>> round(p.epsilon, 6), round(p.epsilon_attribute, 6), p.neighbouring
(1.0, 0.333333, 'tuple')
>>> r = m.perturb((0, 3, 2))
>>> r["m"], len(r["y"]), r["y"][0]["m"]
('spl', 3, 'grr')
>>> est = m.estimate(m.aggregate([r]) + m.empty_aggregate())
>>> est.n
1
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk.mechanisms._base import WIRE_VERSION, Aggregate
from client_sdk.multidim._base import (
    MultidimAggregate,
    MultidimEstimate,
    MultidimReports,
    OracleBasedProtocol,
    decode_inner,
    inner_payload,
)


class SPL(OracleBasedProtocol):
    name = "spl"

    @property
    def oracle_epsilon(self) -> float:
        return self.epsilon / self.d  # the budget is split over the d attributes

    # --- privacy ----------------------------------------------------------------------
    @property
    def epsilon_tuple(self) -> float:
        # sequential composition of d reports at ε/d each: exactly the nominal ε
        return self.epsilon

    @property
    def epsilon_attribute(self) -> float:
        return max(o.epsilon for o in self.oracles)

    def _parameters(self) -> dict[str, Any]:
        return {
            "epsilon_per_attribute": self.epsilon / self.d,
            "attributes": [
                {"attribute": j, "domain_size": o.domain_size, "oracle": o.name, "epsilon": o.epsilon}
                | dict(o.privacy.parameters)
                for j, o in enumerate(self.oracles)
            ],
        }

    # --- perturbation -----------------------------------------------------------------
    def perturb(self, value: Sequence[int]) -> dict[str, Any]:
        v = self._check_tuple(value)
        return {
            "v": WIRE_VERSION,
            "m": self.name,
            "y": [inner_payload(o.perturb(x)) for o, x in zip(self.oracles, v, strict=True)],
        }

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> MultidimReports:
        x = self._check_tuples(values)
        return MultidimReports([o.perturb_batch(x[:, j], rng) for j, o in enumerate(self.oracles)])

    # --- wire form --------------------------------------------------------------------
    def encode(self, batch: MultidimReports) -> list[dict[str, Any]]:
        cols = [[inner_payload(p) for p in o.encode(c)] for o, c in zip(self.oracles, batch.columns, strict=True)]
        return [{"v": WIRE_VERSION, "m": self.name, "y": list(row)} for row in zip(*cols, strict=True)]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> MultidimReports:
        rows = [self._check_y_list(self._check_header(p, r), r) for r, p in enumerate(payloads)]
        index = list(range(len(rows)))
        return MultidimReports(
            [decode_inner(o, [row[j] for row in rows], index, j) for j, o in enumerate(self.oracles)]
        )

    # --- aggregation and estimation ---------------------------------------------------
    def aggregate(self, reports: MultidimReports | Sequence[Mapping[str, Any]]) -> MultidimAggregate:
        batch = reports if isinstance(reports, MultidimReports) else self.decode(reports)
        if len(batch.columns) != self.d or batch.attribute is not None:
            raise ValueError(f"a batch of {self.name} reports needs {self.d} columns")
        counts = tuple(o.aggregate(c).counts for o, c in zip(self.oracles, batch.columns, strict=True))
        n = len(batch)
        return MultidimAggregate(self.config, n, counts, (n,) * self.d)

    def estimate(self, aggregate: MultidimAggregate) -> MultidimEstimate:
        self._check_aggregate(aggregate)
        n = aggregate.n
        return MultidimEstimate(
            tuple(o.estimate(Aggregate(o.config, n, c)) for o, c in zip(self.oracles, aggregate.counts, strict=True)),
            n,
            self.name,
        )

    def exact_variance(self, n: int, frequencies: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [
            o.exact_variance(n, np.asarray(f, dtype=np.float64)) for o, f in zip(self.oracles, frequencies, strict=True)
        ]

    @property
    def variance_approx_per_user(self) -> list[float]:
        return [o.variance_approx_per_user for o in self.oracles]

    def output_distribution(self, value: Sequence[int]) -> dict[Any, float]:
        v = self._check_tuple(value)
        parts = [o.output_distribution(x) for o, x in zip(self.oracles, v, strict=True)]
        if math.prod(len(p) for p in parts) > 200_000:
            raise NotImplementedError("output space too large to enumerate")
        return {
            tuple(key for key, _ in combo): math.prod(pr for _, pr in combo)
            for combo in itertools.product(*[list(p.items()) for p in parts])
        }
