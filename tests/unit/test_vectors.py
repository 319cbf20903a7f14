"""Exact parameter and estimator vectors of docs/algorithms.md (relative tolerance 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import mechanisms, postprocess
from client_sdk.mechanisms import Aggregate
from client_sdk.mechanisms.auto import choose

approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-6)  # noqa: E731


def estimate_from_counts(m, counts, n):
    agg = Aggregate(m.config, n, np.asarray(counts, dtype=np.int64))
    return m.estimate(agg)


def test_t1_t2_grr():
    m = mechanisms.create("grr", epsilon=1.0, domain_size=4)
    assert (m.p_star, m.q_star, m.variance_approx_per_user) == (approx(0.475367), approx(0.174878), approx(1.598067))
    est = estimate_from_counts(m, [400, 250, 200, 150], 1000)
    assert est.frequencies.tolist() == approx([0.749186, 0.25, 0.083605, -0.082791])
    assert est.frequencies.sum() == approx(1.0)
    assert est.variance_approx == approx(0.00159807)


def test_t3_sue():
    m = mechanisms.create("sue", epsilon=1.0, domain_size=8)
    assert (m.p_star, m.q_star, m.variance_approx_per_user) == (approx(0.622459), approx(0.377541), approx(3.917698))


def test_t4_oue():
    m = mechanisms.create("oue", epsilon=1.0, domain_size=4)
    assert m.q_star == approx(0.268941)
    assert m.variance_approx_per_user == approx(3.682694)
    est = estimate_from_counts(m, [300, 0, 0, 0], 1000)
    assert est.frequencies[0] == approx(0.134419)


def test_t5_t6_olh():
    m = mechanisms.create("olh", epsilon=1.0, domain_size=4)
    assert (m.g, m.p_star, m.q_star) == (4, approx(0.475367), 0.25)
    assert m.variance_approx_per_user == approx(3.691655)
    assert estimate_from_counts(m, [300, 0, 0, 0], 1000).frequencies[0] == approx(0.221860)
    assert mechanisms.create("olh", epsilon=2.0, domain_size=4).g == 8
    assert mechanisms.create("olh", epsilon=3.0, domain_size=4).g == 21
    assert mechanisms.create("blh", epsilon=1.0, domain_size=4).g == 2


def test_olh_variance_equals_oue_at_real_valued_g():
    eps = 1.3
    g_real = math.exp(eps) + 1
    var = (math.exp(eps) - 1 + g_real) ** 2 / ((math.exp(eps) - 1) ** 2 * (g_real - 1))
    assert var == approx(4 * math.exp(eps) / math.expm1(eps) ** 2)


def test_t7_hadamard():
    m = mechanisms.create("hr", epsilon=1.0, domain_size=10)
    assert m.variance_approx_per_user == approx(4.682694)
    # the aggregate is the output histogram over K = 16; value 0 owns the even outputs,
    # so 75 reports on each even and 50 on each odd output give S_0 = 0.6
    histogram = [75 if y % 2 == 0 else 50 for y in range(16)]
    assert estimate_from_counts(m, histogram, 1000).frequencies[0] == approx(0.432791)


def test_t8_adaptive_rule():
    threshold = 3 * math.e + 2
    assert threshold == approx(10.154845)
    assert choose(1.0, 10).name == "grr"
    assert choose(1.0, 11).name in ("oue", "olh", "hr")
    for eps in (0.5, 1.0, 2.0, 4.0):
        boundary = 3 * math.exp(eps) + 2
        for k in range(2, 200):
            m = choose(eps, k)
            assert (m.name == "grr") == (k <= boundary), (eps, k, m.name)


def test_t26_postprocessing():
    f = np.array([0.6, 0.3, 0.25, -0.05])
    assert postprocess.base_pos(f).tolist() == approx([0.6, 0.3, 0.25, 0])
    assert postprocess.norm(f).tolist() == approx([0.575, 0.275, 0.225, -0.075])
    assert postprocess.norm_mul(f).tolist() == approx([0.521739, 0.260870, 0.217391, 0])
    assert postprocess.norm_sub(f).tolist() == approx([0.55, 0.25, 0.2, 0])
    assert postprocess.project_simplex(f).tolist() == approx([0.55, 0.25, 0.2, 0])
    assert postprocess.norm_cut(f).tolist() == approx([0.521739, 0.260870, 0.217391, 0])
    assert postprocess.norm_sub(np.array([0.5, 0.4, 0.2, -0.1])).tolist() == approx([0.466667, 0.366667, 0.166667, 0])
    assert postprocess.norm_sub(np.array([0.6, 0.5, 0.05, -0.15])).tolist() == approx([0.55, 0.45, 0, 0])


def test_t27_base_cut_threshold():
    m = mechanisms.create("grr", epsilon=1.0, domain_size=4)
    var = m.variance_approx_per_user / 10_000
    assert math.sqrt(var) == approx(0.012641)
    assert postprocess.base_cut_threshold(4, var, 0.05) == pytest.approx(0.028335, abs=2e-6)


def test_t28_tree_consistency():
    kids = [[1, 2], [3, 4], [5, 6], [], [], [], []]
    out = postprocess.tree_consistency([10, 4, 2, 3, 0, 1, 2], [1.0] * 7, kids)
    assert out.tolist() == approx([8.285714, 4.809524, 3.476190, 3.904762, 0.904762, 1.238095, 2.238095])
    two = postprocess.tree_consistency([10, 3, 5], [1, 1, 1], [[1, 2], [], []])
    assert two.tolist() == approx([9.333333, 3.666667, 5.666667])
    unequal = postprocess.tree_consistency([10, 3, 5], [4, 1, 1], [[1, 2], [], []])
    assert unequal.tolist() == approx([8.666667, 3.333333, 5.333333])


def test_ibu_is_a_distribution_and_lowers_error_at_small_epsilon():
    rng = np.random.default_rng(12)
    k, n = 50, 20_000
    zipf = 1 / np.arange(1, k + 1) ** 1.1
    values = rng.choice(k, n, p=zipf / zipf.sum())
    f = np.bincount(values, minlength=k) / n
    for name in ("grr", "oue", "olh", "hr"):
        m = mechanisms.create(name, epsilon=0.5, domain_size=k)
        raw, mle = [], []
        for _ in range(4):
            agg = m.aggregate(m.perturb_batch(values, rng))
            theta = m.estimate_mle(agg).frequencies
            assert theta.min() >= 0 and theta.sum() == pytest.approx(1.0)
            raw.append(np.mean((m.estimate(agg).frequencies - f) ** 2))
            mle.append(np.mean((theta - f) ** 2))
        assert np.mean(mle) < 0.8 * np.mean(raw), name
