"""OLH — optimised local hashing (and BLH, its g = 2 case).

Privacy: epsilon-LDP. Each report draws a fresh hash function H_s: domain -> [g] that does
not depend on the data, then applies GRR over [g]; GRR is epsilon-LDP and the hash key is
independent of the value (Wang, Blocki, Li, Jha, USENIX Security 2017; docs/algorithms.md).

``g = round(e^ε) + 1`` (OLH) or ``g = 2`` (BLH). Server: ``C(v) = #{i : H_{s_i}(v) = y_i}``,
``p* = e^ε/(e^ε + g − 1)``, ``q* = 1/g``.

**Hash family** (versioned as ``olh-mas-v1``; pinned by test vectors). A report's 64-bit
seed ``s`` expands with SplitMix64 into ``a = mix(s + φ)`` and ``b = mix(s + 2φ)``; a 32-bit
key ``x`` (the value itself for a frequency oracle) hashes to

    h(x) = ((a·x + b) mod 2^64) >> 32          (Dietzfelbinger's multiply-add-shift:
                                                 strongly universal on 32-bit keys)
    H_s(x) = (h(x) · g) >> 32                   (in [g], bins equal to within 2^-32)

so two distinct keys collide with probability 1/g up to 2^-32, and q* = 1/g is exact for
the estimator. The server never evaluates H per report in Python: for a whole batch,
``H_s(x) = y`` is the single unsigned comparison ``(a·x + b − L_y) mod 2^64 < W_y`` with
``L_y = ceil(y·2^32/g)·2^32`` and ``W_y = L_{y+1} − L_y``, so support counting costs one
multiply, one add and one compare per (report, candidate), in numpy over cache-sized blocks.

>>> m = OLH(epsilon=1.0, domain_size=100)
>>> m.g, round(m.p_star, 6), round(m.variance_approx_per_user, 6)
(4, 0.475367, 3.691655)
>>> hash_value(seed=1, key=42, g=4)
2
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.mechanisms._base import WIRE_VERSION, FrequencyOracle, ReportBatch
from client_sdk.mechanisms.grr import decode_index, grr_probabilities

HASH_FAMILY = "olh-mas-v1"
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MAX_KEY = 1 << 32


def splitmix64(x: int) -> int:
    """SplitMix64's output function on one 64-bit integer (Steele, Lea, Flood 2014)."""
    z = x & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64_array(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function, vectorised (uint64 arithmetic wraps modulo 2^64)."""
    z = np.asarray(x, dtype=np.uint64).copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def expand_seed(seed: int) -> tuple[int, int]:
    """The multiplier a and offset b of the hash function named by a 64-bit seed."""
    return splitmix64((seed + GOLDEN) & MASK64), splitmix64((seed + 2 * GOLDEN) & MASK64)


def expand_seeds(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seeds = np.asarray(seeds, dtype=np.uint64)
    return (
        splitmix64_array(seeds + np.uint64(GOLDEN)),
        splitmix64_array(seeds + np.uint64((2 * GOLDEN) & MASK64)),
    )


def hash_value(seed: int, key: int, g: int) -> int:
    """H_seed(key) in [0, g) for one 32-bit key (the client's side)."""
    a, b = expand_seed(seed)
    h32 = ((a * key + b) & MASK64) >> 32
    return (h32 * g) >> 32


def hash_values(seeds: np.ndarray, keys: np.ndarray, g: int) -> np.ndarray:
    """H_{seeds[i]}(keys[i]) for paired arrays (vectorised client side)."""
    a, b = expand_seeds(seeds)
    h32 = (a * np.asarray(keys, dtype=np.uint64) + b) >> np.uint64(32)
    return ((h32 * np.uint64(g)) >> np.uint64(32)).astype(np.int64)


def _bin_bounds(g: int) -> tuple[np.ndarray, np.ndarray]:
    """L_y and W_y of the module docstring, for y in [0, g)."""
    lows = [-(-y * MAX_KEY // g) << 32 for y in range(g + 1)]  # ceil(y·2^32/g)·2^32
    widths = [lows[y + 1] - lows[y] for y in range(g)]
    return np.array(lows[:g], dtype=np.uint64), np.array(widths, dtype=np.uint64)


#: reports whose hash functions are expanded at once in :func:`support_counts`
EXPAND_BLOCK = 1 << 14
#: (report, key) pairs evaluated per numpy step of :func:`support_counts` (512 KB of
#: uint64: the step's operands stay in the core's cache)
STEP_PAIRS = 1 << 16
#: from this many keys on, :func:`support_counts` lays a step out reports-major
WIDE_KEYS = 512


def support_counts(
    seeds: np.ndarray,
    ys: np.ndarray,
    g: int,
    keys: np.ndarray,
    chunk: int = 4096,
    max_per_report: int | None = None,
) -> np.ndarray:
    """C(x) = #{i : H_{seeds[i]}(x) = ys[i]} for every key x, vectorised.

    Memory stays at about ``max(len(keys), 2^16)`` words plus ``EXPAND_BLOCK`` expanded
    hash functions, whatever the number of reports: each step evaluates a block of at
    most ``chunk`` reports × every key (about ``STEP_PAIRS`` pairs, in the core's cache),
    laid out so that numpy's inner loops are long — keys-major for few keys, reports-major
    from ``WIDE_KEYS`` keys on — and both counts (per key and, for ``max_per_report``, per
    report) are reductions of one 0/1 byte matrix into 16-bit sums. ``max_per_report``
    drops a report that supports more keys than that (it then bounds one report's
    contribution for central DP on the counts; an honest report supports about
    ``1 + len(keys)/g`` keys).

    >>> int(support_counts(np.array([1, 2], dtype=np.uint64), np.array([2, 0]), 4, np.array([42]))[0])
    1
    """
    keys = np.asarray(keys, dtype=np.uint64)
    counts = np.zeros(keys.size, dtype=np.int64)
    n = len(seeds)
    if keys.size == 0 or n == 0:
        return counts
    lows, widths = _bin_bounds(g)
    rows = int(max(1, min(chunk, STEP_PAIRS // keys.size, 0xFFFF)))
    wide = keys.size >= WIDE_KEYS  # reports-major: one row of keys per report
    shape = (min(rows, n), keys.size) if wide else (keys.size, min(rows, n))
    buffer = np.empty(shape, dtype=np.uint64)
    hits = np.empty(shape, dtype=bool)
    per_report = np.uint16 if keys.size <= 0xFFFF else np.uint32
    key_axis = 1 if wide else 0  # the axis of ``hits`` along which one report's keys lie
    keys_b = keys[None, :] if wide else keys[:, None]
    for block in range(0, n, EXPAND_BLOCK):
        block_seeds = np.asarray(seeds[block : block + EXPAND_BLOCK], dtype=np.uint64)
        block_ys = np.asarray(ys[block : block + EXPAND_BLOCK], dtype=np.intp)
        a, b = expand_seeds(block_seeds)
        offset = b - lows[block_ys]  # wraps modulo 2^64 by design
        width = widths[block_ys]
        if wide:
            a, offset, width = a[:, None], offset[:, None], width[:, None]
        else:
            a, offset, width = a[None, :], offset[None, :], width[None, :]
        size = a.shape[1 - key_axis]
        for start in range(0, size, rows):
            part = slice(start, min(start + rows, size))
            step = (part, slice(None)) if wide else (slice(None), part)
            t = buffer[: part.stop - start] if wide else buffer[:, : part.stop - start]
            h = hits[: part.stop - start] if wide else hits[:, : part.stop - start]
            np.multiply(a[step], keys_b, out=t)
            t += offset[step]
            np.less(t, width[step], out=h)
            h8 = h.view(np.uint8)
            if max_per_report is not None:
                over = np.add.reduce(h8, axis=key_axis, dtype=per_report) > max_per_report
                if over.any():
                    h8[(over, slice(None)) if wide else (slice(None), over)] = 0
            counts += np.add.reduce(h8, axis=1 - key_axis, dtype=np.uint16)
    return counts


def optimal_g(epsilon: float) -> int:
    """g = round(e^ε) + 1 (docs/algorithms.md); Python's round is to even at exact halves."""
    return int(round(math.exp(epsilon))) + 1


class OLHReports(ReportBatch):
    """Hash seeds (uint64) and hashed-then-randomised values y in [g]."""

    mechanism = "olh"

    def __init__(self, seeds: np.ndarray, ys: np.ndarray) -> None:
        self.seeds = np.asarray(seeds, dtype=np.uint64)
        self.ys = np.asarray(ys, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.seeds.shape[0])


class OLH(FrequencyOracle[OLHReports]):
    name = "olh"
    wire_fields = frozenset({"v", "m", "s", "y"})
    max_domain_size = MAX_KEY

    def __init__(self, epsilon: float, domain_size: int, g: int | None = None) -> None:
        super().__init__(epsilon, domain_size)
        if g is None:
            g = optimal_g(self.epsilon)
        if isinstance(g, bool) or not isinstance(g, int | np.integer) or not 2 <= int(g) <= 1 << 20:
            raise ConfigError(f"hash range g must be an integer in [2, 2^20], got {g!r}")
        self.g = int(g)
        self._p, self._q_rep = grr_probabilities(self.epsilon, self.g)

    @property
    def p_star(self) -> float:
        return self._p

    @property
    def q_star(self) -> float:
        return 1.0 / self.g

    @property
    def report_bits(self) -> int:
        return 64 + max(1, math.ceil(math.log2(self.g)))

    @property
    def config(self) -> dict[str, Any]:
        return {**super().config, "g": self.g, "hash": HASH_FAMILY}

    def _parameters(self) -> dict[str, float | int]:
        return {"p": self._p, "q": self._q_rep, "q_star": self.q_star, "g": self.g}

    def perturb(self, value: int) -> dict[str, Any]:
        return self.perturb_key(self._check_value(value))

    def perturb_key(self, key: int) -> dict[str, Any]:
        """One report of an arbitrary 32-bit key (used by the heavy-hitter protocols)."""
        seed = _random.random_u64()
        x = hash_value(seed, key, self.g)
        if _random.bernoulli(self._p):
            y = x
        else:
            u = _random.uniform_int(self.g - 1)
            y = u + (u >= x)
        return self._payload(seed, y)

    def _payload(self, seed: int, y: int) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "m": self.name, "s": f"{seed:016x}", "y": y}

    def perturb_batch(self, values: Any, rng: np.random.Generator) -> OLHReports:
        return self.perturb_keys(self._check_values(values), rng)

    def perturb_keys(self, keys: np.ndarray, rng: np.random.Generator) -> OLHReports:
        """Vectorised reports of 32-bit keys."""
        keys = np.asarray(keys, dtype=np.uint64)
        seeds = rng.integers(0, 2**64, size=keys.size, dtype=np.uint64, endpoint=False)
        x = hash_values(seeds, keys, self.g)
        keep = rng.random(keys.size) < self._p
        other = rng.integers(0, self.g - 1, size=keys.size)
        other += other >= x
        return OLHReports(seeds, np.where(keep, x, other))

    def encode(self, batch: OLHReports) -> list[dict[str, Any]]:
        return [self._payload(int(s), int(y)) for s, y in zip(batch.seeds, batch.ys, strict=True)]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> OLHReports:
        seeds = np.empty(len(payloads), dtype=np.uint64)
        ys = np.empty(len(payloads), dtype=np.int64)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            raw = payload.get("s")
            if not isinstance(raw, str) or len(raw) != 16:
                raise ReportDecodeError("bad_type", "field 's' must be a 16-digit hexadecimal seed", i)
            if not _HEX16.fullmatch(raw):  # int(raw, 16) alone would accept signs, '0x', '_', spaces
                raise ReportDecodeError("bad_encoding", "field 's' is not hexadecimal", i)
            seeds[i] = int(raw, 16)
            ys[i] = decode_index(payload.get("y"), self.g, "y", i)
        return OLHReports(seeds, ys)

    def _support_counts(self, batch: OLHReports) -> np.ndarray:
        return support_counts(batch.seeds, batch.ys, self.g, np.arange(self.domain_size, dtype=np.uint64))


class BLH(OLH):
    """Binary local hashing: OLH with g = 2."""

    name = "blh"

    def __init__(self, epsilon: float, domain_size: int, g: int | None = 2) -> None:
        if g not in (None, 2):
            raise ConfigError(f"BLH has g = 2, got g = {g!r}")
        super().__init__(epsilon, domain_size, g=2)
