"""Hadamard response (HR): O(log k) bits per report.

Privacy: epsilon-LDP. With K the smallest power of two above k, value x owns the half
``C_x = {y : H_K[x+1][y] = +1}`` of [K]; the report is uniform on C_x with probability
e^ε/(1+e^ε) and uniform on its complement otherwise, so every output's probability is
either 2e^ε/(K(1+e^ε)) or 2/(K(1+e^ε)): the ratio is at most e^ε (Acharya, Sun, Zhang,
AISTATS 2019; docs/algorithms.md).

Pure oracle with ``p* = e^ε/(1+e^ε)`` and ``q* = 1/2`` (rows of H_K are orthogonal, so
C_x and C_u share exactly K/4 elements). The server's support counts for all values come
from one fast Walsh–Hadamard transform of the output histogram.

>>> m = Hadamard(epsilon=1.0, domain_size=10)
>>> m.K, round(m.variance_approx_per_user, 6)
(16, 4.682694)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.mechanisms._base import WIRE_VERSION, FrequencyOracle, ReportBatch
from client_sdk.mechanisms.grr import decode_index


def fwht(values: np.ndarray) -> np.ndarray:
    """Fast Walsh–Hadamard transform (Sylvester order, unnormalised), O(K log K)."""
    out = np.array(values, dtype=np.float64)
    h = 1
    size = out.size
    while h < size:
        view = out.reshape(-1, 2, h)
        left = view[:, 0, :].copy()
        view[:, 0, :] += view[:, 1, :]
        view[:, 1, :] = left - view[:, 1, :]
        h *= 2
    return out


class HadamardReports(ReportBatch):
    mechanism = "hr"

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _in_half(row: np.ndarray | int, y: np.ndarray | int) -> np.ndarray | bool:
    """True where H[row][y] = +1, i.e. popcount(row AND y) is even."""
    bits = np.bitwise_and(row, y)
    return np.bitwise_count(np.asarray(bits, dtype=np.uint64)) % 2 == 0


class Hadamard(FrequencyOracle[HadamardReports]):
    name = "hr"
    wire_fields = frozenset({"v", "m", "y"})
    max_domain_size = 1 << 24

    def __init__(self, epsilon: float, domain_size: int) -> None:
        super().__init__(epsilon, domain_size)
        self.K = 1 << math.ceil(math.log2(self.domain_size + 1))
        e = math.exp(self.epsilon)
        self._p = e / (1 + e)

    @property
    def p_star(self) -> float:
        return self._p

    @property
    def q_star(self) -> float:
        return 0.5

    @property
    def report_bits(self) -> int:
        return int(math.log2(self.K))

    def _parameters(self) -> dict[str, float | int]:
        return {"p": self._p, "q": 0.5, "K": self.K}

    def perturb(self, value: int) -> dict[str, Any]:
        v = self._check_value(value)
        y1 = _random.uniform_int(self.K)
        y2 = y1 ^ (1 << ((v + 1).bit_length() - 1))  # exactly one of y1, y2 lies in C_v
        inside, outside = (y1, y2) if bool(_in_half(v + 1, y1)) else (y2, y1)
        y = inside if _random.bernoulli(self._p) else outside
        return {"v": WIRE_VERSION, "m": self.name, "y": int(y)}

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> HadamardReports:
        v = self._check_values(values)
        rows = v + 1
        high_bit = np.left_shift(1, np.floor(np.log2(rows)).astype(np.int64))
        y1 = rng.integers(0, self.K, size=v.size)
        y2 = y1 ^ high_bit
        first_inside = _in_half(rows, y1)
        inside = np.where(first_inside, y1, y2)
        outside = np.where(first_inside, y2, y1)
        return HadamardReports(np.where(rng.random(v.size) < self._p, inside, outside))

    def encode(self, batch: HadamardReports) -> list[dict[str, Any]]:
        return [{"v": WIRE_VERSION, "m": self.name, "y": int(y)} for y in batch.values]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> HadamardReports:
        out = np.empty(len(payloads), dtype=np.int64)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            out[i] = decode_index(payload.get("y"), self.K, "y", i)
        return HadamardReports(out)

    @property
    def statistics_size(self) -> int:
        return self.K

    def _support_counts(self, batch: HadamardReports) -> np.ndarray:
        # the aggregate keeps the output histogram (additive, K entries); supports follow
        return np.bincount(batch.values, minlength=self.K)

    def support_from_counts(self, counts: np.ndarray) -> np.ndarray:
        transformed = fwht(counts)  # (H h)[r] = #inside C_{r-1} − #outside
        inside = (counts.sum() + transformed[1 : self.domain_size + 1]) / 2
        return np.rint(inside).astype(np.int64)

    def channel_matrix(self) -> np.ndarray | None:
        if self.K * self.domain_size > 1 << 24:
            return None
        rows = np.arange(1, self.domain_size + 1)[None, :]
        inside = _in_half(rows, np.arange(self.K)[:, None])
        return np.where(inside, 2 * self._p / self.K, 2 * (1 - self._p) / self.K)

    def output_distribution(self, value: int) -> dict[Any, float]:
        v = self._check_value(value)
        inside = 2 * self._p / self.K
        outside = 2 * (1 - self._p) / self.K
        return {y: (inside if _in_half(v + 1, y) else outside) for y in range(self.K)}
