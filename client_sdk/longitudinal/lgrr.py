"""L-GRR — longitudinal GRR: GRR at ε∞ memoized per value, then GRR again every epoch.

Source: Arcolezi et al., "Improving the utility of locally differentially private
protocols for longitudinal and multidimensional frequency estimates", Digital
Communications and Networks 2022 (Sec. 4.2, Eq. 12–13); docs/algorithms.md.

**Privacy guarantee.** The memo (round 1, GRR with ``p1 = e^{ε∞}/(e^{ε∞}+k−1)``) is
ε∞-LDP, so any number of reports derived from it leak at most ε∞. One report leaks at
most ε1: round 2 is GRR with ``ε_IRR = ln[(e^{ε∞+ε1} − 1)/(e^{ε∞} − e^{ε1})]``, chosen so
that the k = 2 one-report ratio is exactly e^{ε1}. For k > 2 the true one-report leakage
is *below* ε1 (``privacy.epsilon_first_actual``; 0.901483 at k = 4, ε∞ = 2, ε1 = 1);
``tight=True`` instead solves the exact k-ary one-report ratio
``(p1p2 + (1−p1)q2)/(q1p2 + p1q2 + (k−2)q1q2) = e^{ε1}`` for p2 by bisection, which spends
exactly ε1 and gives lower variance. A new value costs a new memo: the ledger charges ε∞
per memo, at most k·ε∞ per device (docs/privacy.md).

Memo key: the value. Memo record ``{"v": 1, "m": "l-grr", "h": <config hash>, "key": v,
"prr": y1}``; wire payload ``{"v": 1, "m": "l-grr", "y": y2}``.

>>> m = LGRR(epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
>>> [round(x, 6) for x in (m.p1, m.q1, m.p2, m.q2, m.epsilon_irr, m.variance_approx_per_user)]
[0.711235, 0.096255, 0.57664, 0.14112, 1.407606, 2.084551]
>>> round(m.privacy.epsilon_first_actual, 6), m.privacy.charge_per_new_memo, m.privacy.lifetime_bound
(0.901483, 2.0, 8.0)
>>> from client_sdk.longitudinal import InMemoryMemoStore
>>> store = InMemoryMemoStore()
>>> [m.report(3, store, "c").charge for _ in range(3)], store.count("c")
([2.0, 0.0, 0.0], 1)
>>> tight = LGRR(epsilon_perm=2.0, epsilon_first=1.0, domain_size=4, tight=True)
>>> round(tight.privacy.epsilon_first_actual, 6), tight.variance_approx_per_user < m.variance_approx_per_user
(1.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.longitudinal._base import (
    KIND,
    LongitudinalPrivacy,
    MemoError,
    PureLongitudinal,
    bisect_increasing,
    check_order,
    check_probabilities,
    decode_int,
    irr_epsilon,
)
from client_sdk.mechanisms._base import WIRE_VERSION, validate_domain_size, validate_epsilon
from client_sdk.mechanisms.grr import GRRReports, grr_probabilities


def validate_budgets(epsilon_perm: Any, epsilon_first: Any) -> tuple[float, float]:
    """(ε∞, ε1) as floats, each a valid epsilon, with ε1 < ε∞."""
    eps_perm = validate_epsilon(epsilon_perm, "epsilon_perm")
    eps_first = validate_epsilon(epsilon_first, "epsilon_first")
    if not eps_first < eps_perm:
        raise ConfigError(f"epsilon_first ({eps_first}) must be smaller than epsilon_perm ({eps_perm})")
    return eps_perm, eps_first


def lgrr_one_report_ratio(p1: float, q1: float, p2: float, q2: float, k: int) -> float:
    """Exact worst one-report output ratio of the GRR→GRR chain over k values [DV]."""
    return (p1 * p2 + (k - 1) * q1 * q2) / (q1 * p2 + p1 * q2 + (k - 2) * q1 * q2)


def lgrr_parameters(epsilon_perm: float, epsilon_first: float, k: int, tight: bool = False) -> tuple[float, ...]:
    """(p1, q1, p2, q2) of L-GRR over k values (docs/algorithms.md).

    Arcolezi et al. 2022's round 2 is GRR at ``ε_IRR`` (equal to Eq. 13's p2, computed without overflow);
    ``tight=True`` bisects p2 ∈ (1/k, 1) until the exact one-report ratio is e^{ε1}.
    """
    p1, q1 = grr_probabilities(epsilon_perm, k)
    if tight:

        def log_ratio(p2: float) -> float:
            q2 = (1 - p2) / (k - 1)
            return math.log(lgrr_one_report_ratio(p1, q1, p2, q2, k))

        p2 = bisect_increasing(log_ratio, epsilon_first, 1.0 / k, 1.0)
        q2 = (1 - p2) / (k - 1)
    else:
        p2, q2 = grr_probabilities(irr_epsilon(epsilon_perm, epsilon_first), k)
    return p1, q1, p2, q2


def grr_one(x: int, p: float, k: int) -> int:
    """GRR over [k] on x with keep-probability p, from the OS CSPRNG."""
    if _random.bernoulli(p):
        return x
    u = _random.uniform_int(k - 1)
    return u + (u >= x)


def grr_batch(x: np.ndarray, p: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """GRR over [k] on every entry of x (explicit generator)."""
    x = np.asarray(x, dtype=np.int64)
    keep = rng.random(x.size) < p
    other = rng.integers(0, k - 1, size=x.size)
    other += other >= x
    return np.where(keep, x, other)


class LGRR(PureLongitudinal[GRRReports]):
    """L-GRR over ``domain_size`` values; see the module docstring."""

    name = "l-grr"
    max_domain_size = 2**31

    def __init__(self, epsilon_perm: float, epsilon_first: float, domain_size: int, tight: bool = False) -> None:
        self.epsilon_perm, self.epsilon_first = validate_budgets(epsilon_perm, epsilon_first)
        self.domain_size = validate_domain_size(domain_size, self.max_domain_size, self.name)
        if not isinstance(tight, bool):
            raise ConfigError(f"tight must be true or false, got {tight!r}")
        self.tight = tight
        self.p1, self.q1, self.p2, self.q2 = lgrr_parameters(
            self.epsilon_perm, self.epsilon_first, self.domain_size, tight
        )
        check_probabilities(self.name, p1=self.p1, q1=self.q1, p2=self.p2, q2=self.q2)
        check_order(self.name, self.p1, self.q1, self.p2, self.q2)
        k = self.domain_size
        self._privacy = LongitudinalPrivacy(
            mechanism=self.name,
            epsilon_first=self.epsilon_first,
            epsilon_first_actual=math.log(lgrr_one_report_ratio(self.p1, self.q1, self.p2, self.q2, k)),
            epsilon_perm=self.epsilon_perm,
            charge_per_new_memo=self.epsilon_perm,
            max_memos=k,
            parameters={**self._base_parameters(), "epsilon_irr": self.epsilon_irr},
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LGRR:
        return cls(config["epsilon_perm"], config["epsilon_first"], config["domain_size"], config.get("tight", False))

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mechanism": self.name,
            "epsilon_perm": self.epsilon_perm,
            "epsilon_first": self.epsilon_first,
            "domain_size": self.domain_size,
            "tight": self.tight,
        }

    @property
    def privacy(self) -> LongitudinalPrivacy:
        return self._privacy

    @property
    def epsilon_irr(self) -> float:
        """Round 2's own GRR parameter ln(p2/q2)."""
        return math.log(self.p2 / self.q2)

    @property
    def key_space(self) -> int:
        return self.domain_size

    # --- one device -------------------------------------------------------------------
    def _memo_key_one(self, value: int, state: Any) -> int:
        return value

    def _draw_memo_one(self, key: int) -> int:
        return grr_one(key, self.p1, self.domain_size)

    def _parse_prr(self, prr: Any) -> int:
        if isinstance(prr, bool) or not isinstance(prr, int) or not 0 <= prr < self.domain_size:
            raise MemoError(f"memo 'prr' must be an integer in [0, {self.domain_size}), got {prr!r}")
        return prr

    def _round2_one(self, prr: int, state: Any) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "m": self.name, "y": grr_one(prr, self.p2, self.domain_size)}

    # --- many devices -----------------------------------------------------------------
    def _memo_keys_batch(self, values: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray) -> np.ndarray:
        return values

    def _draw_memos_batch(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return grr_batch(keys, self.p1, self.domain_size, rng)[:, None]

    def _round2_batch(
        self, memos: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray, rng: np.random.Generator
    ) -> GRRReports:
        return GRRReports(grr_batch(memos[:, 0], self.p2, self.domain_size, rng))

    # --- wire form ----------------------------------------------------------------------
    def encode(self, batch: GRRReports) -> list[dict[str, Any]]:
        return [{"v": WIRE_VERSION, "m": self.name, "y": int(y)} for y in batch.values]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> GRRReports:
        if isinstance(payloads, Mapping) or not isinstance(payloads, Sequence):
            raise ReportDecodeError("not_a_list", "payloads must be a list of report objects")
        out = np.empty(len(payloads), dtype=np.int64)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            self._check_fields(payload, {"y"}, i)
            out[i] = decode_int(payload.get("y"), self.domain_size, "y", i)
        return GRRReports(out)

    def payload_outcome(self, payload: Mapping[str, Any]) -> int:
        return int(payload["y"])

    def _statistics(self, batch: GRRReports) -> np.ndarray:
        return np.bincount(batch.values, minlength=self.domain_size)

    # --- exact laws -------------------------------------------------------------------
    def memo_distribution(self, key: int) -> dict[Any, float]:
        return {y: (self.p1 if y == key else self.q1) for y in range(self.domain_size)}

    def report_distribution(self, memo: Any) -> dict[Any, float]:
        return {y: (self.p2 if y == memo else self.q2) for y in range(self.domain_size)}
