"""Exact vectors T15–T22 of docs/algorithms.md for the longitudinal protocols (rel. tol. 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import longitudinal as L
from client_sdk.errors import ConfigError
from client_sdk.longitudinal.lgrr import lgrr_parameters
from client_sdk.longitudinal.loloha import ololoha_g_real
from client_sdk.longitudinal.lue import lsue_p2_by_bisection
from client_sdk.mechanisms import Aggregate

approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-6)  # noqa: E731


def test_t15_lgrr() -> None:
    m = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    assert (m.p1, m.q1, m.p2, m.q2) == (approx(0.711235), approx(0.096255), approx(0.576640), approx(0.141120))
    assert m.epsilon_irr == approx(1.407606)
    assert m.variance_approx_per_user == approx(2.084551)
    counts = np.array([300, 250, 250, 200])
    est = m.estimate(Aggregate(m.config, 1000, counts))
    assert est.frequencies[0] == approx(0.436682)
    assert est.variance_approx == approx(2.084551 / 1000)
    assert m.privacy.epsilon_first_actual == approx(0.901483)
    # the enumerated one-report law agrees with the closed form
    assert m.exact_leakage(reports=1) == approx(0.901483)


def test_t15_p2_matches_the_literal_formula_of_s3() -> None:
    """Eq. 13 of Arcolezi et al. 2022 as printed, against the overflow-safe ε_IRR form used in the code."""
    for k, e_inf, e_1 in [(4, 2.0, 1.0), (10, 4.0, 1.0), (2, 0.5, 0.1), (50, 3.0, 2.5)]:
        E1, Einf = math.exp(e_1), math.exp(e_inf)
        literal = (math.exp(e_1 + e_inf) - 1) / (-k * E1 + (k - 1) * Einf + E1 + math.exp(e_1 + e_inf) - 1)
        p1, q1, p2, q2 = lgrr_parameters(e_inf, e_1, k)
        assert p2 == pytest.approx(literal, rel=1e-12)
        assert q2 == pytest.approx((1 - literal) / (k - 1), rel=1e-12)
        assert q1 == pytest.approx((1 - p1) / (k - 1), rel=1e-12)


def test_lgrr_true_one_report_leakage_second_example() -> None:
    m = L.create_longitudinal("l-grr", epsilon_perm=4.0, epsilon_first=1.0, domain_size=10)
    assert m.privacy.epsilon_first_actual == approx(0.919574)


def test_lgrr_tight_solves_the_exact_ratio() -> None:
    loose = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    tight = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4, tight=True)
    assert tight.privacy.epsilon_first_actual == pytest.approx(1.0, abs=1e-12)
    assert tight.exact_leakage(reports=1) == pytest.approx(1.0, abs=1e-9)
    assert tight.p2 > loose.p2 and tight.p1 == loose.p1
    assert tight.variance_approx_per_user < loose.variance_approx_per_user
    assert tight.config["tight"] is True and tight.config_hash != loose.config_hash
    # for k = 2 the ratio of Arcolezi et al. 2022 is exact, so both rules agree
    a = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=2)
    b = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=2, tight=True)
    assert a.p2 == pytest.approx(b.p2, rel=1e-12)


def test_t16_losue() -> None:
    m = L.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=8)
    assert (m.p1, m.q1, m.p2, m.q2) == (approx(0.5), approx(0.119203), approx(0.803388), approx(0.196612))
    assert m.variance_approx_per_user == approx(3.682694)
    # the closed form of Arcolezi et al. 2022 for p2
    E1, Einf = math.exp(1.0), math.exp(2.0)
    assert m.p2 == pytest.approx((1 - E1 * Einf) / (E1 - Einf - E1 * Einf + 1), rel=1e-12)
    assert m.privacy.epsilon_first_actual == pytest.approx(1.0, abs=1e-12)
    assert m.privacy.epsilon_perm == pytest.approx(2.0, abs=1e-12)


def test_t17_lsue_and_bisection_cross_check() -> None:
    m = L.create_longitudinal("l-sue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=8)
    assert (m.p1, m.q1, m.p2, m.q2) == (approx(0.731059), approx(0.268941), approx(0.764996), approx(0.235004))
    for e_inf, e_1 in [(2.0, 1.0), (1.0, 0.3), (5.0, 4.0)]:
        closed = L.create_longitudinal("l-sue", epsilon_perm=e_inf, epsilon_first=e_1, domain_size=4).p2
        assert closed == pytest.approx(lsue_p2_by_bisection(e_inf, e_1), rel=1e-10)


def test_t18_binary_leakage_formula_and_enumeration() -> None:
    expected = {1: 1.0, 2: 1.641664, 3: 1.899151, 5: 1.993653, 10: 1.999994}
    for t, value in expected.items():
        assert L.binary_leakage(2.0, 1.407606, t) == approx(value)
        assert L.binary_leakage(2.0, 1.407606, t) <= min(2.0, t * 1.407606) + 1e-12
    # exact enumeration of t reports of binary L-GRR (ε∞ = 2, ε1 = 1, so ε_IRR = 1.407606)
    m = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=2)
    assert m.epsilon_irr == approx(1.407606)
    for t in (1, 2, 3, 5):
        assert m.exact_leakage(reports=t) == pytest.approx(L.binary_leakage(2.0, m.epsilon_irr, t), rel=1e-9)


def test_t19_rappor() -> None:
    g = L.rappor_privacy(f=0.5, p=0.5, q=0.75, h=2)
    assert (g["q_star"], g["p_star"]) == (approx(0.6875), approx(0.5625))
    assert (g["epsilon_first"], g["epsilon_perm"]) == (approx(1.074286), approx(4.394449))
    # the one-hot (h = 1) mechanism: chain probabilities equal Google's q*, p*; epsilons halve
    m = L.create_longitudinal("rappor", domain_size=4, f=0.5, p=0.5, q=0.75)
    assert (m.p_star, m.q_star) == (approx(0.6875), approx(0.5625))
    assert m.privacy.epsilon_first == approx(1.074286 / 2)
    assert m.privacy.epsilon_perm == approx(4.394449 / 2)
    assert m.exact_leakage(reports=1) == approx(1.074286 / 2)
    assert m.exact_leakage(round1=True) == approx(4.394449 / 2)


def test_t20_dbitflip() -> None:
    m = L.create_longitudinal("dbitflip", epsilon_perm=2.0, domain_size=4, buckets=4, d=2)
    assert m.bit_weights == (approx(1.581977), approx(-0.581977))
    assert m.variance_approx_per_user == approx(1.841347)
    assert m.exact_variance(1000, 0.0) == approx(1.841347 / 1000)
    assert (m.privacy.max_memos, m.privacy.lifetime_bound) == (3, approx(6.0))


def test_t21_loloha() -> None:
    m = L.create_longitudinal("loloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=50)
    assert ololoha_g_real(2.0, 1.0) == approx(2.791797)
    assert m.g == 3
    assert (m.p1, m.q1, m.p2, m.q2) == (approx(0.786986), approx(0.106507), approx(0.671386), approx(0.164307))
    assert m.q1_server == approx(1 / 3)
    assert m.variance_approx_per_user == approx(4.199428)
    assert m.q_star == approx(1 / 3)
    b = L.create_longitudinal("biloloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=50)
    assert b.g == 2 and b.privacy.lifetime_bound == approx(4.0)


@pytest.mark.parametrize(
    "alpha,expected", [(0.5, [2, 2, 3, 4, 7, 11]), (0.4, [2, 2, 2, 3, 5, 8])], ids=["alpha0.5", "alpha0.4"]
)
def test_t22_ololoha_optimal_g(alpha: float, expected: list[int]) -> None:
    got = [L.ololoha_g(e, alpha * e) for e in (0.5, 1.0, 2.0, 3.0, 4.0, 5.0)]
    assert got == expected
    for e, g in zip((0.5, 1.0, 2.0, 3.0, 4.0, 5.0), expected, strict=True):
        m = L.create_longitudinal("loloha", epsilon_perm=e, epsilon_first=alpha * e, domain_size=100)
        assert m.g == g and m.config["g"] == g


@pytest.mark.parametrize("name", ["l-grr", "l-osue", "l-sue", "l-oue", "loloha", "biloloha"])
def test_budgets_are_validated(name: str) -> None:
    for eps_perm, eps_first in [(1.0, 1.0), (1.0, 2.0), (0.0, -1.0), (float("nan"), 0.5), (2.0, None), (None, 1.0)]:
        with pytest.raises(ConfigError):
            L.create_longitudinal(name, epsilon_perm=eps_perm, epsilon_first=eps_first, domain_size=4)
    with pytest.raises(ConfigError):
        L.create_longitudinal(name, epsilon_perm=2.0, epsilon_first=1.0, domain_size=1)


def test_invalid_derived_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="q > p"):
        L.create_longitudinal("rappor", domain_size=4, f=0.5, p=0.75, q=0.5)  # p2 < q2
    for bad in (0.0, 1.0, 1.5, True):
        with pytest.raises(ConfigError):
            L.create_longitudinal("rappor", domain_size=4, f=bad, p=0.25, q=0.75)
    with pytest.raises(ConfigError, match="cannot reach"):
        L.create_longitudinal("l-oue", epsilon_perm=2.0, epsilon_first=1.9, domain_size=4)
    with pytest.raises(ConfigError):
        L.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=8, buckets=4, d=5)
    with pytest.raises(ConfigError):
        L.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=8, buckets=16, d=2)
    with pytest.raises(ConfigError):
        L.create_longitudinal("dbitflip", epsilon_perm=1.0, epsilon_first=0.5, domain_size=8, buckets=4, d=2)
    with pytest.raises(ConfigError):
        L.create_longitudinal("loloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=8, g=1)
    with pytest.raises(ConfigError):
        L.create_longitudinal("biloloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=8, g=3)


def test_parameters_are_sane_over_a_grid() -> None:
    """p1 > q1, p2 > q2, all in (0, 1), ε1 actual ≤ ε1, for every protocol on a grid."""
    for e_inf in (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0):
        for frac in (0.05, 0.5, 0.95):
            e_1 = frac * e_inf
            if e_1 < 0.01:
                continue
            for name in ("l-grr", "l-osue", "l-sue", "loloha", "biloloha"):
                m = L.create_longitudinal(name, epsilon_perm=e_inf, epsilon_first=e_1, domain_size=6)
                assert 0 < m.q2 < m.p2 < 1 and 0 < m.q1 < m.p1 < 1, (name, e_inf, e_1)
                assert m.privacy.epsilon_first_actual <= e_1 + 1e-9, (name, e_inf, e_1)
                assert m.p_star > m.q_star


def test_loue_q2_matches_the_closed_form_of_s2() -> None:
    """The authors' ``L_OUE.py`` writes q2 in closed form (1.11803398874989 = √5/2); bisection agrees."""
    for e_inf, e_1 in [(2.0, 1.0), (1.0, 0.3), (4.0, 1.0), (3.0, 2.0)]:
        E1, Ep = math.exp(e_1), math.exp(e_inf)
        root = math.sqrt(
            0.1 * E1 + 0.05 * E1**2 + 0.3 * Ep + 0.45 * Ep**2 - E1 * Ep - 0.7 * E1 * Ep**2 + 0.3 * E1**2 * Ep
            + 0.45 * E1**2 * Ep**2 + 0.05
        )  # fmt: skip
        q2 = (-math.sqrt(5) / 2 * root - 0.25 * E1 - 0.25 * Ep + 0.75 * E1 * Ep - 0.25) / Ep / (E1 - 1.0)
        m = L.create_longitudinal("l-oue", epsilon_perm=e_inf, epsilon_first=e_1, domain_size=4)
        assert (m.p1, m.p2) == (0.5, 0.5)
        assert m.q2 == pytest.approx(q2, rel=1e-9)
        assert m.privacy.epsilon_first_actual == pytest.approx(e_1, abs=1e-12)
