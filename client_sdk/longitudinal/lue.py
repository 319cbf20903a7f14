"""L-UE family — longitudinal unary encoding: L-OSUE, L-SUE (basic RAPPOR), L-OUE, RAPPOR.

Sources: Arcolezi et al., Digital Communications and Networks 2022 (Sec. 4.3, Eq. 14–15:
L-OSUE, L-SUE, L-OUE); Erlingsson, Pihur, Korolova, "RAPPOR: Randomized Aggregatable
Privacy-Preserving Ordinal Response", CCS 2014 (the PRR/IRR construction; Google's
parameterisation via its reference code); docs/algorithms.md.

The value is one-hot encoded into k bits. Round 1 (memoized per value): bit i of the
memo is 1 w.p. ``p1`` if the value's bit is 1, else ``q1``. Round 2 (every report): bit i
is 1 w.p. ``p2`` if the memo bit is 1, else ``q2``.

**Privacy guarantee.** Two values differ in two bits, so the memo is ε∞-LDP with
``ε∞ = ln[p1(1−q1)/((1−p1)q1)]``: any number of reports of one memo leak at most ε∞. One
report is exactly ``ε1 = ln[p*(1−q*)/((1−p*)q*)]``-LDP with the chain's
``p* = p1p2 + (1−p1)q2``, ``q* = q1p2 + (1−q1)q2``. The ledger charges ε∞ per memo, at
most k·ε∞ per device (docs/privacy.md).

* ``l-osue`` (Arcolezi et al. 2022's recommended variant): OUE then SUE, ``p1 = 1/2``,
  ``q1 = 1/(e^{ε∞}+1)``, ``p2/q2 = (e^{ε∞+ε1} − 1)/(e^{ε∞} − e^{ε1})``, ``q2 = 1 − p2``.
* ``l-sue`` (= basic one-time RAPPOR used longitudinally): SUE in both rounds,
  ``p1 = e^{ε∞/2}/(e^{ε∞/2}+1)``; p2 has the closed form ``(σ(ε1/2) + p1 − 1)/(2p1 − 1)``
  (σ the logistic function; equal to the root Arcolezi et al. 2023 and the bisection find).
* ``l-oue``: OUE in both rounds, ``p2 = 1/2``, q2 by bisection on the ε1 formula.
* ``rappor``: Google's ``(f, p, q)`` on a one-hot encoding (h = 1; no Bloom filter):
  ``p1 = 1 − f/2``, ``q1 = f/2`` (PRR), ``p2 = q``, ``q2 = p`` (IRR). A true bit is
  cleared by the PRR w.p. f/2 — never reported as 1 with certainty (docs/longitudinal.md).

Memo key: the value. Memo ``"prr"`` and wire ``"bits"``: k bits packed little-endian, base64.

>>> m = LOSUE(epsilon_perm=2.0, epsilon_first=1.0, domain_size=8)
>>> [round(x, 6) for x in (m.p1, m.q1, m.p2, m.q2, m.variance_approx_per_user)]
[0.5, 0.119203, 0.803388, 0.196612, 3.682694]
>>> s = LSUE(epsilon_perm=2.0, epsilon_first=1.0, domain_size=8)
>>> [round(x, 6) for x in (s.p1, s.q1, s.p2, s.q2, s.privacy.epsilon_first_actual)]
[0.731059, 0.268941, 0.764996, 0.235004, 1.0]
>>> {k: round(v, 6) for k, v in rappor_privacy(f=0.5, p=0.5, q=0.75, h=2).items()}
{'q_star': 0.6875, 'p_star': 0.5625, 'epsilon_first': 1.074286, 'epsilon_perm': 4.394449}
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.longitudinal._base import (
    KIND,
    LongitudinalPrivacy,
    PureLongitudinal,
    bisect_increasing,
    bit_pattern_distribution,
    bits_to_pattern,
    chain_probabilities,
    check_order,
    check_probabilities,
    irr_epsilon,
    pack_bits,
    packed_from_base64,
    unpack_bits,
)
from client_sdk.longitudinal.lgrr import validate_budgets
from client_sdk.mechanisms._base import WIRE_VERSION, validate_domain_size
from client_sdk.mechanisms.unary import UnaryReports, count_set_bits


def ue_epsilon(p: float, q: float) -> float:
    """ln[p(1−q)/((1−p)q)]: the exact ε of a per-bit channel over one-hot encodings."""
    return math.log(p) + math.log1p(-q) - math.log1p(-p) - math.log(q)


def rappor_privacy(f: float, p: float, q: float, h: int = 1) -> dict[str, float]:
    """Google RAPPOR's guarantees in its own notation (docs/algorithms.md, T19).

    ``q* = f(p+q)/2 + (1−f)q`` (P[report 1 | true 1]), ``p* = f(p+q)/2 + (1−f)p``,
    ``ε1 = h·ln[q*(1−p*)/(p*(1−q*))]``, ``ε∞ = 2h·ln[(1−f/2)/(f/2)]`` for h hash functions.
    """
    q_star = f * (p + q) / 2 + (1 - f) * q
    p_star = f * (p + q) / 2 + (1 - f) * p
    return {
        "q_star": q_star,
        "p_star": p_star,
        "epsilon_first": h * math.log(q_star * (1 - p_star) / (p_star * (1 - q_star))),
        "epsilon_perm": 2 * h * math.log((1 - f / 2) / (f / 2)),
    }


class LUE(PureLongitudinal[UnaryReports]):
    """The per-bit two-round chain; subclasses derive (p1, q1, p2, q2)."""

    max_domain_size = 1 << 16  # 8 KiB per report, as the one-shot unary oracles
    epsilon_perm: float
    epsilon_first: float

    def _setup(self, domain_size: int, p1: float, q1: float, p2: float, q2: float) -> None:
        self.domain_size = validate_domain_size(domain_size, self.max_domain_size, self.name)
        check_probabilities(self.name, p1=p1, q1=q1, p2=p2, q2=q2)
        check_order(self.name, p1, q1, p2, q2)
        self.p1, self.q1, self.p2, self.q2 = p1, q1, p2, q2
        p_star, q_star = chain_probabilities(p1, q1, p2, q2)
        # the configured budgets (RAPPOR: derived from f, p, q), equal to the exact ones to rounding
        self._privacy = LongitudinalPrivacy(
            mechanism=self.name,
            epsilon_first=self.epsilon_first,
            epsilon_first_actual=ue_epsilon(p_star, q_star),
            epsilon_perm=self.epsilon_perm,
            charge_per_new_memo=self.epsilon_perm,
            max_memos=self.domain_size,
            parameters=self._base_parameters(),
        )

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mechanism": self.name,
            "epsilon_perm": self.epsilon_perm,
            "epsilon_first": self.epsilon_first,
            "domain_size": self.domain_size,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LUE:
        # every subclass but RAPPOR (which overrides this) takes (epsilon_perm, epsilon_first, domain_size)
        build = cast("Callable[[float, float, int], LUE]", cls)
        return build(config["epsilon_perm"], config["epsilon_first"], config["domain_size"])

    @property
    def privacy(self) -> LongitudinalPrivacy:
        return self._privacy

    @property
    def key_space(self) -> int:
        return self.domain_size

    @property
    def memo_width(self) -> int:
        return (self.domain_size + 7) // 8

    _memo_dtype = np.uint8

    def _probabilities(self, bits: np.ndarray, p: float, q: float) -> np.ndarray:
        return np.where(np.asarray(bits, dtype=bool), p, q)

    def _one_hot(self, key: int) -> np.ndarray:
        bits = np.zeros(self.domain_size, dtype=np.uint8)
        bits[key] = 1
        return bits

    # --- one device -------------------------------------------------------------------
    def _memo_key_one(self, value: int, state: Any) -> int:
        return value

    def _draw_memo_one(self, key: int) -> str:
        probs = self._probabilities(self._one_hot(key), self.p1, self.q1)
        return pack_bits(_random.bernoulli_vector(probs))

    def _parse_prr(self, prr: Any) -> np.ndarray:
        return unpack_bits(prr, self.domain_size, "prr", None, memo=True)

    def _round2_one(self, prr: np.ndarray, state: Any) -> dict[str, Any]:
        bits = _random.bernoulli_vector(self._probabilities(prr, self.p2, self.q2))
        return {"v": WIRE_VERSION, "m": self.name, "bits": pack_bits(bits)}

    # --- many devices -----------------------------------------------------------------
    def _memo_keys_batch(self, values: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray) -> np.ndarray:
        return values

    def _chunk_rows(self) -> int:
        return max(1, (1 << 21) // self.domain_size)

    def _draw_memos_batch(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((keys.size, self.memo_width), dtype=np.uint8)
        step = self._chunk_rows()
        for start in range(0, keys.size, step):
            part = keys[start : start + step]
            uniform = rng.random((part.size, self.domain_size))
            bits = uniform < self.q1
            rows = np.arange(part.size)
            bits[rows, part] = uniform[rows, part] < self.p1
            out[start : start + step] = np.packbits(bits, axis=1, bitorder="little")
        return out

    def _round2_batch(
        self, memos: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray, rng: np.random.Generator
    ) -> UnaryReports:
        out = np.empty((memos.shape[0], self.memo_width), dtype=np.uint8)
        step = self._chunk_rows()
        for start in range(0, memos.shape[0], step):
            prr = np.unpackbits(memos[start : start + step], axis=1, count=self.domain_size, bitorder="little")
            bits = rng.random(prr.shape) < np.where(prr == 1, self.p2, self.q2)
            out[start : start + step] = np.packbits(bits, axis=1, bitorder="little")
        return UnaryReports(out, self.domain_size)

    # --- wire form ----------------------------------------------------------------------
    def encode(self, batch: UnaryReports) -> list[dict[str, Any]]:
        return [
            {"v": WIRE_VERSION, "m": self.name, "bits": base64.b64encode(row.tobytes()).decode("ascii")}
            for row in batch.packed
        ]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> UnaryReports:
        if isinstance(payloads, Mapping) or not isinstance(payloads, Sequence):
            raise ReportDecodeError("not_a_list", "payloads must be a list of report objects")
        out = np.empty((len(payloads), self.memo_width), dtype=np.uint8)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            self._check_fields(payload, {"bits"}, i)
            out[i] = packed_from_base64(payload.get("bits"), self.domain_size, "bits", i)
        return UnaryReports(out, self.domain_size)

    def payload_outcome(self, payload: Mapping[str, Any]) -> int:
        return bits_to_pattern(unpack_bits(payload["bits"], self.domain_size, "bits", None))

    def _statistics(self, batch: UnaryReports) -> np.ndarray:
        return count_set_bits(batch.packed, self.domain_size)

    # --- exact laws (patterns Σ bit_j·2^j, k ≤ 12) ----------------------------------------
    def memo_distribution(self, key: int) -> dict[Any, float]:
        return bit_pattern_distribution(self._probabilities(self._one_hot(key), self.p1, self.q1))

    def report_distribution(self, memo: Any) -> dict[Any, float]:
        bits = (int(memo) >> np.arange(self.domain_size)) & 1
        return bit_pattern_distribution(self._probabilities(bits, self.p2, self.q2))


class LOSUE(LUE):
    """L-OSUE: OUE (round 1) then SUE (round 2)."""

    name = "l-osue"

    def __init__(self, epsilon_perm: float, epsilon_first: float, domain_size: int) -> None:
        self.epsilon_perm, self.epsilon_first = validate_budgets(epsilon_perm, epsilon_first)
        eps_irr = irr_epsilon(self.epsilon_perm, self.epsilon_first)
        p2 = math.exp(eps_irr - float(np.logaddexp(0.0, eps_irr)))  # e^a/(1+e^a)
        q2 = math.exp(-float(np.logaddexp(0.0, eps_irr)))
        self._setup(domain_size, 0.5, 1.0 / (math.exp(self.epsilon_perm) + 1.0), p2, q2)


class LSUE(LUE):
    """L-SUE: SUE in both rounds (basic one-time RAPPOR made longitudinal)."""

    name = "l-sue"

    def __init__(self, epsilon_perm: float, epsilon_first: float, domain_size: int) -> None:
        self.epsilon_perm, self.epsilon_first = validate_budgets(epsilon_perm, epsilon_first)
        half = math.exp(self.epsilon_perm / 2)
        p1 = half / (half + 1.0)
        # SUE∘SUE: q* = 1 − p*, so ε1 = 2 ln(p*/(1 − p*)), i.e. p* = σ(ε1/2), linear in p2
        p_star = 1.0 / (1.0 + math.exp(-self.epsilon_first / 2))
        p2 = (p_star + p1 - 1.0) / (2 * p1 - 1.0)
        self._setup(domain_size, p1, 1.0 / (half + 1.0), p2, 1.0 - p2)


def lsue_p2_by_bisection(epsilon_perm: float, epsilon_first: float) -> float:
    """L-SUE's p2 by bisection on p2 ∈ (1/2, 1) until the ε1 formula holds (a cross-check)."""
    half = math.exp(epsilon_perm / 2)
    p1, q1 = half / (half + 1.0), 1.0 / (half + 1.0)

    def leak(p2: float) -> float:
        return ue_epsilon(*chain_probabilities(p1, q1, p2, 1.0 - p2))

    return bisect_increasing(leak, epsilon_first, 0.5 + 1e-15, 1.0 - 1e-15)


class LOUE(LUE):
    """L-OUE: OUE in both rounds (p2 = 1/2, q2 by bisection)."""

    name = "l-oue"

    def __init__(self, epsilon_perm: float, epsilon_first: float, domain_size: int) -> None:
        self.epsilon_perm, self.epsilon_first = validate_budgets(epsilon_perm, epsilon_first)
        p1, q1 = 0.5, 1.0 / (math.exp(self.epsilon_perm) + 1.0)

        def leak(shift: float) -> float:  # q2 = 1/2 − shift; increasing in shift
            return ue_epsilon(*chain_probabilities(p1, q1, 0.5, 0.5 - shift))

        largest = leak(0.5 - 1e-15)
        if not self.epsilon_first < largest:
            raise ConfigError(
                f"l-oue cannot reach epsilon_first = {self.epsilon_first} with epsilon_perm = {self.epsilon_perm} "
                f"(at most {largest:.6f}); use l-osue"
            )
        q2 = 0.5 - bisect_increasing(leak, self.epsilon_first, 0.0, 0.5 - 1e-15)
        self._setup(domain_size, p1, q1, 0.5, q2)


class RAPPOR(LUE):
    """RAPPOR in Google's ``(f, p, q)`` parameterisation on a one-hot encoding (h = 1).

    ``epsilon_perm`` and ``epsilon_first`` are derived (docs/algorithms.md), not given.
    """

    name = "rappor"

    def __init__(self, domain_size: int, f: float, p: float, q: float) -> None:
        for label, x in (("f", f), ("p", p), ("q", q)):
            if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < float(x) < 1:
                raise ConfigError(f"rappor: {label} must be a number in (0, 1), got {x!r}")
        self.f, self.p, self.q = float(f), float(p), float(q)
        if not self.q > self.p:
            raise ConfigError(f"rappor: the IRR needs q > p (P[1 | PRR bit 1] > P[1 | PRR bit 0]), got p={p} q={q}")
        guarantees = rappor_privacy(self.f, self.p, self.q, h=1)
        self.epsilon_perm = guarantees["epsilon_perm"]
        self.epsilon_first = guarantees["epsilon_first"]
        self._setup(domain_size, 1 - self.f / 2, self.f / 2, self.q, self.p)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mechanism": self.name,
            "domain_size": self.domain_size,
            "f": self.f,
            "p": self.p,
            "q": self.q,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RAPPOR:
        return cls(config["domain_size"], config["f"], config["p"], config["q"])
