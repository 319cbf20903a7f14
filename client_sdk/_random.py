"""Exact sampling from the operating system's CSPRNG.

Device-side perturbation must never use a seedable PRNG whose state an observer could
reproduce (docs/algorithms.md). Every draw here comes from ``os.urandom`` (the same source as
``secrets``). A Bernoulli(p) draw compares a uniform 64-bit integer with ``round(p * 2**64)``,
so each probability is realised to within 2**-64, far below float precision (2**-53).
"""

from __future__ import annotations

import os
import secrets

import numpy as np

_TWO64 = 1 << 64


def probability_threshold(p: float) -> int:
    """The integer t with P[U < t] = t / 2**64 closest to p, for U uniform on [0, 2**64)."""
    return min(max(round(p * _TWO64), 0), _TWO64)


def bernoulli(p: float) -> bool:
    """One exact Bernoulli(p) draw (to 2**-64) from the OS CSPRNG."""
    return secrets.randbits(64) < probability_threshold(p)


def bernoulli_vector(probabilities: np.ndarray) -> np.ndarray:
    """Independent Bernoulli draws, one per entry, from the OS CSPRNG (vectorised)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    uniform = np.frombuffer(os.urandom(8 * probabilities.size), dtype=np.uint64)
    # Thresholds in uint64 cannot hold 2**64; p == 1 never occurs for a valid config.
    thresholds = np.minimum(np.round(probabilities * 2.0**64), 2.0**64 - 2048).astype(np.uint64)
    return (uniform < thresholds.ravel()).reshape(probabilities.shape)


def uniform_int(upper: int) -> int:
    """Uniform integer in [0, upper) from the OS CSPRNG."""
    return secrets.randbelow(upper)


def random_u64() -> int:
    """Uniform 64-bit integer from the OS CSPRNG."""
    return secrets.randbits(64)
