"""Binary-tree continual counter (ALGORITHMS §11.2, T25)."""

from __future__ import annotations

import numpy as np
import pytest

from ldpserver.continual_counter import (
    BinaryTreeCounter,
    OpenDPDiscreteLaplace,
    SeededLaplace,
    ZeroNoise,
    discrete_laplace_variance,
)


def test_t25_levels_and_variances():
    counter = BinaryTreeCounter(epsilon=1.0, horizon=16, noise=SeededLaplace(np.random.default_rng(0)))
    assert counter.levels == 5 and counter.node_scale == 5.0
    for _ in range(16):
        counter.append(1)
    continuous = {t: counter.variance(t) - len(counter.decomposition(t)) / 12 for t in (7, 15, 16)}
    assert continuous == pytest.approx({7: 150.0, 15: 200.0, 16: 50.0})


def test_without_noise_releases_the_exact_running_sum():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 1000, 100)
    counter = BinaryTreeCounter(epsilon=1.0, horizon=128, noise=ZeroNoise())
    released = [counter.append(int(v)) for v in values]
    assert released == np.cumsum(values).tolist()
    for t in range(1, 101):  # every interval decomposition partitions [1..t]
        spans = sorted((index << level, (index + 1) << level) for level, index in counter.decomposition(t))
        assert spans[0][0] == 0 and spans[-1][1] == t
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_error_matches_the_closed_form_over_many_runs():
    rng = np.random.default_rng(2026)
    runs, horizon = 400, 32
    values = rng.integers(0, 50, horizon)
    truth = np.cumsum(values)
    errors = np.empty((runs, horizon))
    for r in range(runs):
        counter = BinaryTreeCounter(epsilon=0.5, horizon=horizon, noise=SeededLaplace(rng))
        errors[r] = [counter.append(int(v)) for v in values] - truth
    expected = np.array([counter.variance(t) for t in range(1, horizon + 1)])
    # unbiased within 4 standard errors; empirical variance within the chi-square band
    assert np.all(np.abs(errors.mean(axis=0)) <= 4 * np.sqrt(expected / runs))
    ratio = errors.var(axis=0, ddof=1) / expected
    assert 0.75 <= ratio.min() and ratio.max() <= 1.3, ratio


def test_opendp_noise_has_the_discrete_laplace_variance():
    noise = OpenDPDiscreteLaplace()
    draws = np.array([noise.add(100, 3.0) - 100 for _ in range(4000)])
    expected = discrete_laplace_variance(3.0)
    assert abs(draws.mean()) < 5 * np.sqrt(expected / draws.size)
    assert 0.85 <= draws.var() / expected <= 1.15


def test_released_numbers_are_stable_and_state_round_trips():
    counter = BinaryTreeCounter(epsilon=1.0, horizon=64)
    first = [counter.append(v) for v in (5, 7, 9, 11, 13)]
    again = BinaryTreeCounter.from_state(counter.state())
    assert [again.released(t) for t in range(1, 6)] == first == [counter.released(t) for t in range(1, 6)]
    again.append(3)
    counter.append(3)
    assert again.steps == 6


def test_refuses_past_the_horizon_and_bad_parameters():
    counter = BinaryTreeCounter(epsilon=1.0, horizon=2, noise=ZeroNoise())
    counter.append(1)
    counter.append(1)
    with pytest.raises(ValueError, match="horizon"):
        counter.append(1)
    with pytest.raises(ValueError):
        BinaryTreeCounter(epsilon=0.0, horizon=4)
    with pytest.raises(ValueError):
        counter.released(5)
