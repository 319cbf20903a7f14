"""dBitFlipPM — Ding, Kulkarni, Yekhanin's memoized d-bit flipping over buckets.

Source: Ding, Kulkarni, Yekhanin, "Collecting Telemetry Data Privately", NeurIPS 2017;
formulas as implemented by Arcolezi (multi-freq-ldpy ``dBitFlipPM.py``, LOLOHA
``protocols.py``: third-party code, not the paper's authors'); docs/algorithms.md.

The domain [k] is cut into b buckets (``bucket(v) = ⌊v·b/k⌋``, i.e. ``⌊v/(k/b)⌋`` when b
divides k). Each device draws d distinct bucket indices **once** (its device state). Its
response is one bit per sampled index: 1 w.p. ``e^{ε/2}/(e^{ε/2}+1)`` if the index is the
value's bucket, else w.p. ``1/(e^{ε/2}+1)``. The response depends only on the *pattern*
(which sampled index, if any, holds the bucket: the memo key, in [0, d]) and is memoized
per pattern; there is no second round.

**Privacy guarantee.** Two values change at most two sampled bits, each by a factor
e^{ε/2}: every response is ε-LDP (ε/2 when d = 1), and resending a memoized response
leaks nothing more. A device has at most ``min(d+1, b)`` distinct patterns, so its
lifetime loss is at most ``min(d+1, b)·ε``: the ledger charges ε per new memo
(distinct response). Caveat: since responses are deterministic per pattern, the server
sees *when* the pattern changes.

Server, per bucket j, with ``e = e^{ε/2}``::

    f̂(j) = (b/(n·d)) · Σ_{reports that sampled j} (bit·(e + 1) − 1)/(e − 1)
    Var = (b/(nd))²·[n(1−f)(d/b)·e/(e−1)² + n·f((d/b)(e² − e + 1)/(e−1)² − (d/b)²)]
    Var* = (b/d)·e/(n(e − 1)²)

The estimate is over the b buckets (set b = k for per-value frequencies).

>>> m = DBitFlipPM(epsilon=2.0, domain_size=8, buckets=4, d=2)
>>> [round(w, 6) for w in m.bit_weights], round(m.variance_approx_per_user, 6)
([1.581977, -0.581977], 1.841347)
>>> m.privacy.max_memos, m.privacy.lifetime_bound
(3, 6.0)
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
    LongitudinalMechanism,
    LongitudinalPrivacy,
    MemoError,
    bit_pattern_distribution,
    bits_to_pattern,
    pack_bits,
    packed_from_base64,
    unpack_bits,
)
from client_sdk.mechanisms._base import (
    WIRE_VERSION,
    Aggregate,
    Estimate,
    ReportBatch,
    validate_domain_size,
    validate_epsilon,
)

MAX_BUCKETS = 1 << 16


class DBitFlipReports(ReportBatch):
    """Sampled bucket indices (n × d, ascending per row) and the response bits (n × d)."""

    mechanism = "dbitflip"

    def __init__(self, indices: np.ndarray, bits: np.ndarray) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.bits = np.asarray(bits, dtype=np.uint8)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _check_int(x: Any, name: str, low: int, high: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or not low <= int(x) <= high:
        raise ConfigError(f"dbitflip: {name} must be an integer in [{low}, {high}], got {x!r}")
    return int(x)


class DBitFlipPM(LongitudinalMechanism[DBitFlipReports]):
    """dBitFlipPM; see the module docstring."""

    name = "dbitflip"
    max_domain_size = 2**31
    needs_state = True
    _memo_dtype = np.uint8

    def __init__(self, epsilon: float, domain_size: int, buckets: int | None = None, d: int | None = None) -> None:
        self.epsilon = validate_epsilon(epsilon)
        self.domain_size = validate_domain_size(domain_size, self.max_domain_size, self.name)
        if buckets is None or d is None:
            raise ConfigError("dbitflip needs the number of buckets b and the number d of sampled buckets")
        self.buckets = _check_int(buckets, "buckets", 2, min(self.domain_size, MAX_BUCKETS))
        self.d = _check_int(d, "d", 1, self.buckets)
        half = math.exp(self.epsilon / 2)
        self._e = half
        self.p, self.q = half / (half + 1.0), 1.0 / (half + 1.0)
        self._privacy = LongitudinalPrivacy(
            mechanism=self.name,
            epsilon_first=self.epsilon,
            epsilon_first_actual=self.epsilon if self.d >= 2 else self.epsilon / 2,
            epsilon_perm=self.epsilon,
            charge_per_new_memo=self.epsilon,
            max_memos=min(self.d + 1, self.buckets),
            parameters={"p": self.p, "q": self.q, "buckets": self.buckets, "d": self.d},
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DBitFlipPM:
        return cls(config["epsilon"], config["domain_size"], config["buckets"], config["d"])

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mechanism": self.name,
            "epsilon": self.epsilon,
            "domain_size": self.domain_size,
            "buckets": self.buckets,
            "d": self.d,
        }

    @property
    def privacy(self) -> LongitudinalPrivacy:
        return self._privacy

    @property
    def key_space(self) -> int:
        return self.d + 1

    @property
    def memo_width(self) -> int:
        return self.d

    @property
    def bit_weights(self) -> tuple[float, float]:
        """Estimator weight of a 1 bit and of a 0 bit: ``e/(e−1)`` and ``−1/(e−1)``, e = e^{ε/2}."""
        e = self._e
        return e / (e - 1), -1 / (e - 1)

    def bucket_of(self, values: Any) -> np.ndarray:
        """Bucket of each value: ``⌊v·b/k⌋``."""
        return np.asarray(values, dtype=np.int64) * self.buckets // self.domain_size

    # --- device state: the sampled buckets ----------------------------------------------
    def _draw_state_fields(self) -> dict[str, Any]:
        pool = list(range(self.buckets))
        for i in range(self.d):  # partial Fisher–Yates with the CSPRNG
            j = i + _random.uniform_int(self.buckets - i)
            pool[i], pool[j] = pool[j], pool[i]
        return {"j": sorted(pool[: self.d])}

    def _parse_indices(self, raw: Any) -> np.ndarray | None:
        if not isinstance(raw, list) or len(raw) != self.d:
            return None
        if any(isinstance(x, bool) or not isinstance(x, int) for x in raw):
            return None
        arr = np.asarray(raw, dtype=np.int64)
        if arr[0] < 0 or arr[-1] >= self.buckets or np.any(np.diff(arr) <= 0):
            return None
        return arr

    def _parse_state_fields(self, record: Mapping[str, Any]) -> np.ndarray:
        arr = self._parse_indices(record.get("j"))
        if arr is None:
            raise MemoError(
                f"device state 'j' must list {self.d} distinct ascending buckets in [0, {self.buckets}), "
                f"got {record.get('j')!r}"
            )
        return arr

    def _state_batch(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = np.empty((n, self.d), dtype=np.int64)
        step = max(1, (1 << 21) // self.buckets)
        for start in range(0, n, step):
            rows = min(step, n - start)
            keys = rng.random((rows, self.buckets))
            chosen = np.argpartition(keys, self.d - 1, axis=1)[:, : self.d] if self.d < self.buckets else None
            if chosen is None:
                chosen = np.broadcast_to(np.arange(self.buckets), (rows, self.buckets))
            out[start : start + rows] = np.sort(chosen, axis=1)
        return {"sampled": out}

    def _state_arrays(self, parsed_states: Sequence[Any]) -> dict[str, np.ndarray]:
        return {"sampled": np.array(parsed_states, dtype=np.int64).reshape(len(parsed_states), self.d)}

    # --- one device -------------------------------------------------------------------
    def _memo_key_one(self, value: int, state: np.ndarray) -> int:
        hits = np.flatnonzero(state == value * self.buckets // self.domain_size)
        return int(hits[0]) if hits.size else self.d

    def _bit_probabilities(self, key: int) -> np.ndarray:
        probs = np.full(self.d, self.q)
        if key < self.d:
            probs[key] = self.p
        return probs

    def _draw_memo_one(self, key: int) -> str:
        return pack_bits(_random.bernoulli_vector(self._bit_probabilities(key)))

    def _parse_prr(self, prr: Any) -> np.ndarray:
        return unpack_bits(prr, self.d, "prr", None, memo=True)

    def _round2_one(self, prr: np.ndarray, state: np.ndarray) -> dict[str, Any]:
        # no second round: the memoized response itself is resent
        return {"v": WIRE_VERSION, "m": self.name, "j": [int(x) for x in state], "bits": pack_bits(prr)}

    # --- many devices -----------------------------------------------------------------
    def _memo_keys_batch(self, values: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray) -> np.ndarray:
        hits = state["sampled"][devices] == self.bucket_of(values)[:, None]
        return np.where(hits.any(axis=1), hits.argmax(axis=1), self.d)

    def _draw_memos_batch(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        uniform = rng.random((keys.size, self.d))
        bits = uniform < self.q
        hit = np.flatnonzero(keys < self.d)
        bits[hit, keys[hit]] = uniform[hit, keys[hit]] < self.p
        return bits.astype(np.uint8)

    def _round2_batch(
        self, memos: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray, rng: np.random.Generator
    ) -> DBitFlipReports:
        return DBitFlipReports(state["sampled"][devices], memos)

    # --- wire form ----------------------------------------------------------------------
    def encode(self, batch: DBitFlipReports) -> list[dict[str, Any]]:
        return [
            {"v": WIRE_VERSION, "m": self.name, "j": [int(x) for x in idx], "bits": pack_bits(bits)}
            for idx, bits in zip(batch.indices, batch.bits, strict=True)
        ]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> DBitFlipReports:
        if isinstance(payloads, Mapping) or not isinstance(payloads, Sequence):
            raise ReportDecodeError("not_a_list", "payloads must be a list of report objects")
        indices = np.empty((len(payloads), self.d), dtype=np.int64)
        bits = np.empty((len(payloads), self.d), dtype=np.uint8)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            self._check_fields(payload, {"j", "bits"}, i)
            arr = self._parse_indices(payload.get("j"))
            if arr is None:
                raise ReportDecodeError(
                    "bad_indices", f"field 'j' must list {self.d} distinct ascending buckets in [0, {self.buckets})", i
                )
            indices[i] = arr
            bits[i] = np.unpackbits(
                packed_from_base64(payload.get("bits"), self.d, "bits", i), count=self.d, bitorder="little"
            )
        return DBitFlipReports(indices, bits)

    def payload_outcome(self, payload: Mapping[str, Any]) -> int:
        return bits_to_pattern(unpack_bits(payload["bits"], self.d, "bits", None))

    @property
    def statistics_size(self) -> int:
        return 2 * self.buckets

    def _statistics(self, batch: DBitFlipReports) -> np.ndarray:
        """``[C_0..C_{b−1}, S_0..S_{b−1}]``: set bits and samples per bucket (additive)."""
        flat = batch.indices.ravel()
        ones = np.bincount(flat[batch.bits.ravel() == 1], minlength=self.buckets)
        sampled = np.bincount(flat, minlength=self.buckets)
        return np.concatenate([ones, sampled])

    # --- estimation ---------------------------------------------------------------------
    def estimate(self, aggregate: Aggregate) -> Estimate:
        """Unbiased bucket frequencies with plug-in variance (docs/algorithms.md)."""
        n = self._check_aggregate(aggregate)
        b, e = self.buckets, self._e
        ones = np.asarray(aggregate.counts[:b], dtype=np.float64)
        sampled = np.asarray(aggregate.counts[b:], dtype=np.float64)
        freqs = (b / (n * self.d)) * (ones * (e + 1) - sampled) / (e - 1)
        variance = self.exact_variance(n, np.clip(freqs, 0.0, 1.0))
        return Estimate(freqs, variance, self.variance_approx_per_user / n, n)

    def exact_variance(self, n: int, frequencies: Any) -> np.ndarray:
        f = np.asarray(frequencies, dtype=np.float64)
        b, d, e = self.buckets, self.d, self._e
        r = d / b
        inner = n * (1 - f) * r * e / (e - 1) ** 2 + n * f * (r * (e * e - e + 1) / (e - 1) ** 2 - r * r)
        return (b / (n * d)) ** 2 * inner

    @property
    def variance_approx_per_user(self) -> float:
        e = self._e
        return (self.buckets / self.d) * e / (e - 1) ** 2

    # --- exact laws (given the device's sampled buckets) ----------------------------------
    def memo_distribution(self, key: int) -> dict[Any, float]:
        return bit_pattern_distribution(self._bit_probabilities(key))

    def report_distribution(self, memo: Any) -> dict[Any, float]:
        return {memo: 1.0}
