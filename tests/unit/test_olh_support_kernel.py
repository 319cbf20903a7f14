"""The blocked OLH support kernel (reports grouped by y, uint8 tallies folded every 255
blocks) counts exactly what the per-report hash says, whatever the block size."""

import numpy as np
import pytest

from client_sdk.mechanisms.olh import hash_values, support_counts


def naive_hits(seeds: np.ndarray, ys: np.ndarray, g: int, keys: np.ndarray) -> np.ndarray:
    return np.stack([hash_values(seeds, np.full(seeds.size, k, dtype=np.uint64), g) == ys for k in keys])


@pytest.mark.parametrize("g", [2, 8, 56, 1000])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_support_counts_match_the_hash_for_every_block_size(g, chunk):
    rng = np.random.default_rng(g + chunk)
    n, k = 900, 60
    seeds = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    ys = rng.integers(0, g, n)
    keys = rng.integers(0, 2**32, k, dtype=np.uint64)
    keys[:3] = [0, 1, 2**32 - 1]
    hits = naive_hits(seeds, ys, g, keys)
    assert np.array_equal(support_counts(seeds, ys, g, keys, chunk=chunk), hits.sum(axis=1))
    bound = 1 + k // g
    capped = hits.copy()
    capped[:, hits.sum(axis=0) > bound] = False
    assert np.array_equal(support_counts(seeds, ys, g, keys, chunk=chunk, max_per_report=bound), capped.sum(axis=1))


def test_tallies_do_not_wrap_past_255_blocks():
    """One key every report supports, 600 one-report blocks: the uint8 tally must be folded."""
    n, g = 600, 2
    seeds = np.arange(n, dtype=np.uint64)
    key = np.array([12345], dtype=np.uint64)
    ys = hash_values(seeds, np.full(n, 12345, dtype=np.uint64), g)  # every report supports the key
    assert support_counts(seeds, ys, g, key, chunk=1)[0] == n
