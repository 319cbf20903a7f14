"""Unbiasedness and variance of every oracle against the closed form (docs/algorithms.md).

Fixed seeds, R = 60 repetitions. Accept when |mean(f̂) − f| ≤ 4·sqrt(Var/R) for every value
and 0.6 ≤ var(f̂)/Var ≤ 1.5 (averaged over values), as docs/algorithms.md prescribes.
"""

from __future__ import annotations

import numpy as np
import pytest

from client_sdk import mechanisms

ORACLES = ["grr", "sue", "oue", "olh", "blh", "hr"]
R = 60


def _true_values(n: int, k: int) -> np.ndarray:
    # a skewed, fixed dataset: f decreasing, one value absent
    weights = np.arange(k, 0, -1, dtype=float) ** 1.5
    weights[-1] = 0.0
    counts = np.floor(weights / weights.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    return np.repeat(np.arange(k), counts)


@pytest.mark.parametrize("name", ORACLES)
@pytest.mark.parametrize("epsilon,k", [(1.0, 8), (2.0, 20)])
def test_unbiased_with_closed_form_variance(name: str, epsilon: float, k: int) -> None:
    m = mechanisms.create(name, epsilon=epsilon, domain_size=k)
    n = 4000
    values = _true_values(n, k)
    f = np.bincount(values, minlength=k) / n
    rng = np.random.default_rng([2026, k, ORACLES.index(name)])
    estimates = np.array([m.estimate(m.aggregate(m.perturb_batch(values, rng))).frequencies for _ in range(R)])
    expected_var = m.exact_variance(n, f)
    bias_bound = 4 * np.sqrt(expected_var / R)
    assert np.all(np.abs(estimates.mean(axis=0) - f) <= bias_bound), (estimates.mean(axis=0) - f) / bias_bound
    ratio = estimates.var(axis=0, ddof=1).mean() / expected_var.mean()
    assert 0.6 <= ratio <= 1.5, ratio


@pytest.mark.parametrize("name", ORACLES)
def test_plug_in_variance_tracks_exact_variance(name: str) -> None:
    m = mechanisms.create(name, epsilon=1.0, domain_size=8)
    n = 20_000
    values = _true_values(n, 8)
    est = m.estimate(m.aggregate(m.perturb_batch(values, np.random.default_rng(3))))
    exact = m.exact_variance(n, np.bincount(values, minlength=8) / n)
    assert np.allclose(est.variance, exact, rtol=0.1)
    assert est.variance_approx == pytest.approx(m.variance_approx_per_user / n)


def test_confidence_interval_coverage() -> None:
    m = mechanisms.create("oue", epsilon=1.0, domain_size=16)
    n = 3000
    values = _true_values(n, 16)
    f = np.bincount(values, minlength=16) / n
    rng = np.random.default_rng(11)
    covered = []
    for _ in range(100):
        lo, hi = m.estimate(m.aggregate(m.perturb_batch(values, rng))).confidence_interval(0.9)
        covered.append((lo <= f) & (f <= hi))
    coverage = np.mean(covered)
    # 1600 interval checks; binomial sd at 0.9 is 0.0075 (values are correlated, allow ~5 sd)
    assert 0.86 <= coverage <= 0.94, coverage
