"""Empirical privacy: output-probability ratios stay within e^ε (docs/algorithms.md, docs/privacy.md).

Two checks per oracle on small domains: the exact output distribution the implementation
declares, and frequencies measured from its own sampler (both paths), which must agree
with the declared probabilities, so the ratio bound holds up to sampling error.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from client_sdk import mechanisms
from client_sdk.mechanisms.olh import hash_value


@pytest.mark.parametrize("name", ["grr", "sue", "oue", "hr"])
@pytest.mark.parametrize("epsilon", [0.5, 1.0, 3.0])
def test_declared_distribution_ratio_is_at_most_e_epsilon(name: str, epsilon: float) -> None:
    k = 5
    m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
    dists = [m.output_distribution(v) for v in range(k)]
    for d in dists:
        assert sum(d.values()) == pytest.approx(1.0)
    worst = max(math.log(a[y] / b[y]) for a, b in itertools.permutations(dists, 2) for y in a)
    assert worst <= epsilon + 1e-9
    assert worst == pytest.approx(epsilon, rel=1e-9)  # the bound is tight: no budget wasted


def _sampled_frequencies(m, value: int, draws: int, batch: bool) -> dict:
    if batch:
        reports = m.encode(m.perturb_batch(np.full(draws, value), np.random.default_rng(value)))
    else:
        reports = [m.perturb(value) for _ in range(draws)]
    keys = [r.get("y", r.get("bits")) for r in reports]
    values, counts = np.unique(np.array(keys, dtype=object).astype(str), return_counts=True)
    return dict(zip(values, counts, strict=True))


def _key_of(m, y) -> str:
    if m.name in ("sue", "oue"):
        import base64

        bits = np.array([(y >> j) & 1 for j in range(m.domain_size)], dtype=np.uint8)
        return base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode()
    return str(y)


@pytest.mark.parametrize("name", ["grr", "oue", "sue", "hr"])
@pytest.mark.parametrize("batch", [False, True], ids=["csprng", "batch"])
def test_sampler_matches_declared_distribution(name: str, batch: bool) -> None:
    """Chi-square goodness of fit of both samplers against the exact output law."""
    k, epsilon = 3, 1.0
    m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
    draws = 6000 if not batch else 20000
    for value in range(k):
        declared = {_key_of(m, y): p for y, p in m.output_distribution(value).items()}
        observed = _sampled_frequencies(m, value, draws, batch)
        assert set(observed) <= set(declared)
        keys = sorted(declared)
        f_obs = np.array([observed.get(key, 0) for key in keys])
        f_exp = np.array([declared[key] for key in keys]) * draws
        pvalue = stats.chisquare(f_obs, f_exp).pvalue
        assert pvalue > 1e-6, (name, value, pvalue)


@pytest.mark.parametrize("name", ["grr", "oue", "olh", "hr"])
def test_empirical_ratio_within_e_epsilon(name: str) -> None:
    """Measured output frequencies of two inputs: ratio ≤ e^ε up to a 5-sigma error."""
    epsilon, k, draws = 1.0, 4, 200_000
    m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
    rng = np.random.default_rng(5)
    if name == "olh":
        # condition on a few public hash seeds: given the seed, the output is GRR over [g]
        for seed in (1, 2, 3):
            probs = []
            for v in range(k):
                x = hash_value(seed, v, m.g)
                keep = rng.random(draws) < m.p_star
                other = rng.integers(0, m.g - 1, draws)
                other += other >= x
                probs.append(np.bincount(np.where(keep, x, other), minlength=m.g) / draws)
            _check_ratios(np.array(probs), epsilon, draws)
        return
    reports = [m.perturb_batch(np.full(draws, v), rng) for v in range(k)]
    if name == "oue":
        # per-bit marginals: the ratio bound must hold for the distribution of each bit pair
        probs = np.array([r.unpacked().mean(axis=0) for r in reports])
        comp = 1 - probs
        pair = probs[:, :, None] * comp[:, None, :]  # P[bit a = 1, bit b = 0] (independent bits)
        _check_ratios(pair.reshape(k, -1), epsilon, draws)
        return
    size = m.K if name == "hr" else k
    probs = np.array([np.bincount(r.values, minlength=size) / draws for r in reports])
    _check_ratios(probs, epsilon, draws)


def _check_ratios(probs: np.ndarray, epsilon: float, draws: int) -> None:
    se = np.sqrt(probs * (1 - probs) / draws)
    for a, b in itertools.permutations(range(probs.shape[0]), 2):
        upper = probs[a] - 5 * se[a]
        lower = probs[b] + 5 * se[b]
        mask = lower > 0
        assert np.all(upper[mask] / lower[mask] <= math.exp(epsilon)), (a, b)
