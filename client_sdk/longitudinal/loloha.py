"""LOLOHA — longitudinal local hashing (OLOLOHA with the optimal g, BiLOLOHA with g = 2).

Source: Arcolezi, Pinzón, Palamidessi, Gambs, "Frequency Estimation of Evolving Data
Under Local Differential Privacy", EDBT 2023 (the authors' ``LDP/protocols.py`` and
``Appendix_LOLOHA_Analysis.ipynb``); docs/algorithms.md.

Each device draws **one** hash key for the whole horizon (its device state) and maps
its value to ``x = H_key(v) ∈ [g]`` (hash family ``olh-mas-v1`` of
:mod:`client_sdk.mechanisms.olh`). The memo is keyed by x: round 1 is GRR over [g] at ε∞,
stored; every epoch round 2 applies GRR over [g] with L-GRR's round-2 parameters for
k := g. The report carries the hash key and the round-2 output.

**Privacy guarantee.** The hash key is drawn independently of the data, so for any key
the memo is ε∞-LDP and one report is ε1-LDP (exactly the L-GRR bounds over g values; the
true one-report leakage is ``privacy.epsilon_first_actual``, below ε1 for g > 2 unless
``tight=True``). Values with the same hash share a memo, so the lifetime loss is at most
``min(g, k)·ε∞`` however many raw values a device cycles through: the ledger charges ε∞
per memoized hash value (docs/privacy.md). Caveats: the fixed key links a device's
reports across epochs; collisions are frequent (g is small).

Server: support counts ``C(v) = #{reports : H_key(v) = y}`` and the estimator of docs/longitudinal.md
with L-GRR's ``p1, p2, q2`` (k := g) and ``q1`` replaced by ``1/g``.

OLOLOHA's hash range, with ``α = ε1/ε∞`` and ``E = e^{ε∞}``::

    g = max(2, round((sqrt(E⁴ − 14E² − 12E^{2(α+1)} + 12E^{α+1} + 12E^{α+3} + 1)
                      − E² + 6E − 6E^α + 1) / (6(E − E^α))))

>>> m = LOLOHA(epsilon_perm=2.0, epsilon_first=1.0, domain_size=100)
>>> m.g, [round(x, 6) for x in (m.p1, m.q1, m.p2, m.q2, m.q1_server, m.variance_approx_per_user)]
(3, [0.786986, 0.106507, 0.671386, 0.164307, 0.333333, 4.199428])
>>> [ololoha_g(e, 0.5 * e) for e in (0.5, 1, 2, 3, 4, 5)]
[2, 2, 3, 4, 7, 11]
>>> state = m.new_device_state()
>>> m.memo_key(42, state) == m.memo_key(42, state) < m.g
True
>>> m.privacy.lifetime_bound
6.0
"""

from __future__ import annotations

import math
import string
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
    check_order,
    check_probabilities,
    decode_int,
)
from client_sdk.longitudinal.lgrr import grr_batch, grr_one, lgrr_one_report_ratio, lgrr_parameters, validate_budgets
from client_sdk.mechanisms._base import WIRE_VERSION, validate_domain_size
from client_sdk.mechanisms.olh import HASH_FAMILY, MAX_KEY, OLHReports, hash_value, hash_values, support_counts

MAX_G = 1 << 20
_HEX = set(string.hexdigits)


def ololoha_g_real(epsilon_perm: float, epsilon_first: float) -> float:
    """The real-valued optimum of OLOLOHA's hash range (before rounding)."""
    eps = epsilon_perm
    alpha = epsilon_first / epsilon_perm
    e = math.exp
    root = math.sqrt(
        e(4 * eps)
        - 14 * e(2 * eps)
        - 12 * e(2 * eps * (alpha + 1))
        + 12 * e(eps * (alpha + 1))
        + 12 * e(eps * (alpha + 3))
        + 1
    )
    return (root - e(2 * eps) + 6 * e(eps) - 6 * e(alpha * eps) + 1) / (6 * (e(eps) - e(alpha * eps)))


def ololoha_g(epsilon_perm: float, epsilon_first: float) -> int:
    """OLOLOHA's g = max(2, round(real optimum)), capped at 2^20 (docs/algorithms.md, T22)."""
    return int(min(max(2, round(ololoha_g_real(epsilon_perm, epsilon_first))), MAX_G))


def _parse_seed(raw: Any) -> int | None:
    if not isinstance(raw, str) or len(raw) != 16 or not set(raw) <= _HEX:
        return None
    return int(raw, 16)


class LOLOHA(PureLongitudinal[OLHReports]):
    """OLOLOHA (g optimal by default, or a given g); see the module docstring."""

    name = "loloha"
    max_domain_size = MAX_KEY
    needs_state = True

    def __init__(
        self,
        epsilon_perm: float,
        epsilon_first: float,
        domain_size: int,
        g: int | None = None,
        tight: bool = False,
    ) -> None:
        self.epsilon_perm, self.epsilon_first = validate_budgets(epsilon_perm, epsilon_first)
        self.domain_size = validate_domain_size(domain_size, self.max_domain_size, self.name)
        if g is None:
            g = ololoha_g(self.epsilon_perm, self.epsilon_first)
        if isinstance(g, bool) or not isinstance(g, int | np.integer) or not 2 <= int(g) <= MAX_G:
            raise ConfigError(f"{self.name}: hash range g must be an integer in [2, {MAX_G}], got {g!r}")
        if not isinstance(tight, bool):
            raise ConfigError(f"tight must be true or false, got {tight!r}")
        self.g, self.tight = int(g), tight
        self.p1, self.q1, self.p2, self.q2 = lgrr_parameters(self.epsilon_perm, self.epsilon_first, self.g, tight)
        check_probabilities(self.name, p1=self.p1, q1=self.q1, p2=self.p2, q2=self.q2)
        check_order(self.name, self.p1, self.q1_server, self.p2, self.q2)
        self._privacy = LongitudinalPrivacy(
            mechanism=self.name,
            epsilon_first=self.epsilon_first,
            epsilon_first_actual=math.log(lgrr_one_report_ratio(self.p1, self.q1, self.p2, self.q2, self.g)),
            epsilon_perm=self.epsilon_perm,
            charge_per_new_memo=self.epsilon_perm,
            max_memos=min(self.g, self.domain_size),
            parameters={**self._base_parameters(), "g": self.g, "q1_server": self.q1_server},
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LOLOHA:
        if config.get("hash", HASH_FAMILY) != HASH_FAMILY:
            raise ConfigError(f"unknown hash family {config.get('hash')!r}")
        return cls(
            config["epsilon_perm"],
            config["epsilon_first"],
            config["domain_size"],
            g=config.get("g"),
            tight=config.get("tight", False),
        )

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mechanism": self.name,
            "epsilon_perm": self.epsilon_perm,
            "epsilon_first": self.epsilon_first,
            "domain_size": self.domain_size,
            "g": self.g,
            "hash": HASH_FAMILY,
            "tight": self.tight,
        }

    @property
    def privacy(self) -> LongitudinalPrivacy:
        return self._privacy

    @property
    def q1_server(self) -> float:
        """The estimator's q1: a non-holder's hash collides with the report w.p. 1/g."""
        return 1.0 / self.g

    @property
    def key_space(self) -> int:
        return self.g

    # --- device state: the hash key ---------------------------------------------------------
    def _draw_state_fields(self) -> dict[str, Any]:
        return {"s": f"{_random.random_u64():016x}"}

    def _parse_state_fields(self, record: Mapping[str, Any]) -> int:
        seed = _parse_seed(record.get("s"))
        if seed is None:
            raise MemoError(f"device state 's' must be a 16-digit hexadecimal hash key, got {record.get('s')!r}")
        return seed

    def _state_batch(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"seeds": rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)}

    def _state_arrays(self, parsed_states: Sequence[Any]) -> dict[str, np.ndarray]:
        return {"seeds": np.array(parsed_states, dtype=np.uint64)}

    # --- one device -------------------------------------------------------------------
    def _memo_key_one(self, value: int, state: int) -> int:
        return hash_value(state, value, self.g)

    def _draw_memo_one(self, key: int) -> int:
        return grr_one(key, self.p1, self.g)

    def _parse_prr(self, prr: Any) -> int:
        if isinstance(prr, bool) or not isinstance(prr, int) or not 0 <= prr < self.g:
            raise MemoError(f"memo 'prr' must be an integer in [0, {self.g}), got {prr!r}")
        return prr

    def _round2_one(self, prr: int, state: int) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "m": self.name, "s": f"{state:016x}", "y": grr_one(prr, self.p2, self.g)}

    # --- many devices -----------------------------------------------------------------
    def _memo_keys_batch(self, values: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray) -> np.ndarray:
        return hash_values(state["seeds"][devices], values, self.g)

    def _draw_memos_batch(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return grr_batch(keys, self.p1, self.g, rng)[:, None]

    def _round2_batch(
        self, memos: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray, rng: np.random.Generator
    ) -> OLHReports:
        return OLHReports(state["seeds"][devices], grr_batch(memos[:, 0], self.p2, self.g, rng))

    # --- wire form ----------------------------------------------------------------------
    def encode(self, batch: OLHReports) -> list[dict[str, Any]]:
        return [
            {"v": WIRE_VERSION, "m": self.name, "s": f"{int(s):016x}", "y": int(y)}
            for s, y in zip(batch.seeds, batch.ys, strict=True)
        ]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> OLHReports:
        if isinstance(payloads, Mapping) or not isinstance(payloads, Sequence):
            raise ReportDecodeError("not_a_list", "payloads must be a list of report objects")
        seeds = np.empty(len(payloads), dtype=np.uint64)
        ys = np.empty(len(payloads), dtype=np.int64)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            self._check_fields(payload, {"s", "y"}, i)
            seed = _parse_seed(payload.get("s"))
            if seed is None:
                raise ReportDecodeError("bad_type", "field 's' must be a 16-digit hexadecimal hash key", i)
            seeds[i] = seed
            ys[i] = decode_int(payload.get("y"), self.g, "y", i)
        return OLHReports(seeds, ys)

    def payload_outcome(self, payload: Mapping[str, Any]) -> int:
        return int(payload["y"])

    def _statistics(self, batch: OLHReports) -> np.ndarray:
        return support_counts(batch.seeds, batch.ys, self.g, np.arange(self.domain_size, dtype=np.uint64))

    # --- exact laws (given the device's hash key) -----------------------------------------
    def memo_distribution(self, key: int) -> dict[Any, float]:
        return {y: (self.p1 if y == key else self.q1) for y in range(self.g)}

    def report_distribution(self, memo: Any) -> dict[Any, float]:
        return {y: (self.p2 if y == memo else self.q2) for y in range(self.g)}


class BiLOLOHA(LOLOHA):
    """BiLOLOHA: LOLOHA with g = 2 (lifetime loss at most 2·ε∞)."""

    name = "biloloha"

    def __init__(
        self, epsilon_perm: float, epsilon_first: float, domain_size: int, g: int | None = 2, tight: bool = False
    ) -> None:
        if g not in (None, 2):
            raise ConfigError(f"biloloha has g = 2, got g = {g!r}")
        super().__init__(epsilon_perm, epsilon_first, domain_size, g=2, tight=tight)
