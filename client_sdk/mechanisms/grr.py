"""GRR — generalised randomised response (k-RR, direct encoding).

Privacy: epsilon-LDP. For any two inputs v, v' and output y, P[y | v] / P[y | v'] is at
most p/q = e^epsilon (Warner 1965; Kairouz, Oh, Viswanath 2014; docs/algorithms.md).

Parameters ``p = e^ε/(e^ε + k − 1)``, ``q = 1/(e^ε + k − 1)``. A report is the value itself
with probability p, otherwise a uniform draw among the k − 1 other values.

>>> m = GRR(epsilon=1.0, domain_size=4)
>>> round(m.p_star, 6), round(m.q_star, 6), round(m.variance_approx_per_user, 6)
(0.475367, 0.174878, 1.598067)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ReportDecodeError
from client_sdk.mechanisms._base import WIRE_VERSION, FrequencyOracle, ReportBatch


class GRRReports(ReportBatch):
    """Reported values, one int per report."""

    mechanism = "grr"

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.values.shape[0])


def grr_probabilities(epsilon: float, k: int) -> tuple[float, float]:
    """(p, q) of GRR over k values, computed without overflow or cancellation."""
    # q = 1 / (e^eps + k - 1) = exp(-logaddexp(eps, log(k - 1)))
    log_denominator = float(np.logaddexp(epsilon, math.log(k - 1)))
    return math.exp(epsilon - log_denominator), math.exp(-log_denominator)


class GRR(FrequencyOracle[GRRReports]):
    name = "grr"
    wire_fields = frozenset({"v", "m", "y"})
    max_domain_size = 2**31

    def __init__(self, epsilon: float, domain_size: int) -> None:
        super().__init__(epsilon, domain_size)
        self._p, self._q = grr_probabilities(self.epsilon, self.domain_size)

    @property
    def p_star(self) -> float:
        return self._p

    @property
    def q_star(self) -> float:
        return self._q

    @property
    def report_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.domain_size)))

    def perturb(self, value: int) -> dict[str, Any]:
        v = self._check_value(value)
        if _random.bernoulli(self._p):
            y = v
        else:
            u = _random.uniform_int(self.domain_size - 1)
            y = u + (u >= v)
        return {"v": WIRE_VERSION, "m": self.name, "y": y}

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> GRRReports:
        v = self._check_values(values)
        keep = rng.random(v.size) < self._p
        other = rng.integers(0, self.domain_size - 1, size=v.size)
        other += other >= v
        return GRRReports(np.where(keep, v, other))

    def encode(self, batch: GRRReports) -> list[dict[str, Any]]:
        return [{"v": WIRE_VERSION, "m": self.name, "y": int(y)} for y in batch.values]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> GRRReports:
        out = np.empty(len(payloads), dtype=np.int64)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            out[i] = decode_index(payload.get("y"), self.domain_size, "y", i)
        return GRRReports(out)

    def _support_counts(self, batch: GRRReports) -> np.ndarray:
        return np.bincount(batch.values, minlength=self.domain_size)

    def output_distribution(self, value: int) -> dict[Any, float]:
        v = self._check_value(value)
        return {y: (self._p if y == v else self._q) for y in range(self.domain_size)}

    def channel_matrix(self) -> np.ndarray | None:
        if self.domain_size > 4096:
            return None  # the support-count EM below is exact for GRR as well
        return np.where(np.eye(self.domain_size, dtype=bool), self._p, self._q)


def decode_index(raw: Any, upper: int, field: str, index: int | None) -> int:
    """An integer field in [0, upper), or a ReportDecodeError naming the field."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ReportDecodeError("bad_type", f"field {field!r} must be an integer, got {raw!r}", index)
    if not 0 <= raw < upper:
        raise ReportDecodeError("out_of_range", f"field {field!r} = {raw} is outside [0, {upper})", index)
    return raw
