"""Multidimensional protocols: parameter and estimator vectors (docs/multidim.md, docs/algorithms.md T9–T13),
privacy statements (docs/multidim.md) and configuration handling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from client_sdk.errors import ConfigError
from client_sdk.multidim import (
    MultidimAggregate,
    amplified_epsilon,
    available,
    calibrate_epsilon,
    create_multidim,
    epsilon_for_tuple_budget,
    from_config,
)

# values are printed to 6 decimals: relative 1e-6, or the rounding (abs 1e-6) for small ones, as test_vectors.py
approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-6)  # noqa: E731

RSFD = ["rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp"]
ALL = [*RSFD, "spl", "smp"]


def estimate_from_counts(m, counts_per_attribute, n):
    counts = tuple(np.asarray(c, dtype=np.int64) for c in counts_per_attribute)
    return m.estimate(MultidimAggregate(m.config, n, counts, (n,) * m.d))


@pytest.mark.parametrize(
    ("d", "eps", "expected"), [(3, 1.0, 1.817240), (2, 1.0, 1.489880), (5, 0.5, 1.445413), (10, 1.0, 2.900477)]
)
def test_t9_amplification(d, eps, expected):
    assert amplified_epsilon(eps, d) == approx(expected)
    assert create_multidim("rsfd-grr", epsilon=eps, domain_sizes=[4] * d).epsilon_amplified == approx(expected)
    # the sampling lemma inverted: ln(1 + (e^ε' − 1)/d) = ε
    assert math.log1p(math.expm1(expected) / d) == pytest.approx(eps, rel=1e-5)
    assert epsilon_for_tuple_budget(amplified_epsilon(eps, d), d) == approx(eps)


# docs/algorithms.md: d = 3, ε = 1, attribute with k = 4, n = 1000, true f(v) = 0.4
@pytest.mark.parametrize(
    ("name", "p", "q", "expected_count", "count", "f_hat", "n_var"),
    [
        ("rsfd-grr", 0.672305, 0.109232, 278.154, 278, 0.399181, 4.593997),  # T10
        ("rsfd-oue-z", 0.5, 0.139765, 187.797, 188, 0.401693, 8.338508),  # T11
        ("rsfd-oue-r", 0.5, 0.139765, 247.836, 248, 0.401367, 11.088508),  # T12
    ],
)
def test_t10_t12_rsfd_worked_example(name, p, q, expected_count, count, f_hat, n_var):
    m = create_multidim(name, epsilon=1.0, domain_sizes=[4, 4, 4])
    a = m.attribute_parameters[0]
    assert (a.p, a.q, a.epsilon) == (approx(p), approx(q), approx(1.817240))
    assert 1000 * float(a.delta(0.4, 3)) == pytest.approx(expected_count, abs=5e-4)
    est = estimate_from_counts(m, [[count, 0, 0, 0]] * 3, 1000)
    assert est[0].frequencies[0] == approx(f_hat)
    assert m.variance_approx_per_user[0] == approx(n_var)
    assert est[0].variance_approx == approx(n_var / 1000)


def test_rsfd_estimators_match_the_papers_closed_forms():
    """The shared form (d·N/n − q − (d−1)b)/(p − q) equals Eq. 4, 8 and 10 of Arcolezi et al. 2021 as printed."""
    d, n, k = 3, 1000, 4
    counts = np.array([278, 190, 301, 231])
    grr, ouez, ouer = (create_multidim(x, epsilon=1.0, domain_sizes=[k] * d) for x in RSFD[:3])
    p, q = grr.attribute_parameters[0].p, grr.attribute_parameters[0].q
    eq4 = (counts * d * k - n * (d - 1 + q * k)) / (n * k * (p - q))
    assert estimate_from_counts(grr, [counts] * 3, n)[0].frequencies.tolist() == approx(eq4.tolist())
    p, q = ouez.attribute_parameters[0].p, ouez.attribute_parameters[0].q
    eq8 = d * (counts - n * q) / (n * (p - q))
    assert estimate_from_counts(ouez, [counts] * 3, n)[0].frequencies.tolist() == approx(eq8.tolist())
    eq10 = (counts * d * k - n * (q * k + (p - q) * (d - 1) + q * k * (d - 1))) / (n * k * (p - q))
    assert estimate_from_counts(ouer, [counts] * 3, n)[0].frequencies.tolist() == approx(eq10.tolist())


def test_rsfd_grr_estimates_sum_to_one():
    m = create_multidim("rsfd-grr", epsilon=1.0, domain_sizes=[4, 7])
    est = estimate_from_counts(m, [[100, 400, 250, 250], [1, 2, 3, 4, 5, 6, 979]], 1000)
    assert [e.frequencies.sum() for e in est] == [approx(1.0), approx(1.0)]


def test_adp_choice():
    m = create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[4, 4, 4])
    assert [a.oracle for a in m.attribute_parameters] == ["grr"] * 3  # 4.594 <= 8.339 (docs/algorithms.md)
    grr = create_multidim("rsfd-grr", epsilon=1.0, domain_sizes=[4, 4, 4])
    assert m.variance_approx_per_user == approx(grr.variance_approx_per_user)
    mixed = create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[2, 64, 4])
    assert [a.oracle for a in mixed.attribute_parameters] == ["grr", "oue", "grr"]
    assert mixed.attribute_parameters[1].fake == "zero"
    per_variant = {
        v: create_multidim(v, epsilon=1.0, domain_sizes=[2, 64, 4]).variance_approx_per_user
        for v in ("rsfd-grr", "rsfd-oue-z")
    }
    assert mixed.variance_approx_per_user == approx(np.minimum(*per_variant.values()).tolist())


def test_t13_smp_spl():
    smp = create_multidim("smp", epsilon=1.0, domain_sizes=[4, 4, 4])
    spl = create_multidim("spl", epsilon=1.0, domain_sizes=[4, 4, 4])
    assert smp.variance_approx_per_user == approx([4.794202] * 3)
    assert spl.variance_approx_per_user == approx([21.695930] * 3)
    assert [o.epsilon for o in spl.oracles] == approx([1 / 3] * 3)
    assert [o.epsilon for o in smp.oracles] == [1.0] * 3


def test_exact_variance_is_below_s1_and_equal_at_zero():
    m = create_multidim("rsfd-oue-r", epsilon=1.0, domain_sizes=[4, 6])
    f = [np.array([0.0, 0.2, 0.3, 0.5]), np.array([0.0, 0.5, 0.5, 0.0, 0.0, 0.0])]
    exact, s1 = m.exact_variance(1000, f), m.variance_s1(1000, f)
    for e, s, fj in zip(exact, s1, f, strict=True):
        assert np.all(e <= s + 1e-15)
        assert e[fj == 0] == approx(s[fj == 0])
    assert exact[0][0] * 1000 == approx(m.variance_approx_per_user[0])


# --- privacy statements ---------------------------------------------------------------------

SECTION_8_6 = [  # (variant, ε, k, ε', attribute-level, tuple-level) — docs/multidim.md table
    ("rsfd-grr", 1.0, [2, 2], 1.489880, 1.0, 1.489880),
    ("rsfd-grr", 1.0, [3, 3, 3], 1.817240, 1.0, 1.817240),
    ("rsfd-grr", 0.5, [4, 2], 0.831797, 0.542031, 0.831797),
    ("rsfd-oue-z", 1.0, [2, 2], 1.489880, 1.0, 1.489880),
]


@pytest.mark.parametrize(("name", "eps", "ks", "eps_amp", "attr", "tup"), SECTION_8_6)
def test_section_8_6_privacy_values(name, eps, ks, eps_amp, attr, tup):
    m = create_multidim(name, epsilon=eps, domain_sizes=ks)
    assert m.epsilon_amplified == approx(eps_amp)
    p = m.privacy
    assert (p.epsilon_attribute, p.epsilon_tuple) == (approx(attr), approx(tup))
    assert p.neighbouring == "tuple" and p.epsilon == approx(tup)  # the safe default charges ε'
    q = create_multidim(name, epsilon=eps, domain_sizes=ks, neighbouring="attribute").privacy
    assert q.neighbouring == "attribute" and q.epsilon == approx(max(eps, attr))


def test_attribute_level_loss_of_unequal_domains_is_reported_not_hidden():
    ks = [9, 16, 7, 15, 6, 5, 2, 42, 2]  # UCI Adult
    grr = create_multidim("rsfd-grr", epsilon=1.0, domain_sizes=ks, neighbouring="attribute").privacy
    assert grr.epsilon_attribute > 1.5 and grr.epsilon == grr.epsilon_attribute
    # the attribute-level loss formula of docs/multidim.md, written out
    eps_amp = amplified_epsilon(1.0, len(ks))
    p = [math.exp(eps_amp) / (math.exp(eps_amp) + k - 1) for k in ks]
    q = [1 / (math.exp(eps_amp) + k - 1) for k in ks]
    s_total = sum(qi * k for qi, k in zip(q, ks, strict=True))
    worst = max(
        math.log((pj * k + s_total - qj * k) / (qj * k + s_total - qj * k)) for pj, qj, k in zip(p, q, ks, strict=True)
    )
    assert grr.epsilon_attribute == approx(worst)
    assert create_multidim("rsfd-oue-z", epsilon=1.0, domain_sizes=ks).privacy.epsilon_attribute == approx(1.0)


def test_privacy_statement_contents():
    m = create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[2, 64, 4])
    p = m.privacy
    d = json.loads(json.dumps(p.to_dict()))
    assert d["mechanism"] == "rsfd-adp" and d["neighbouring"] == "tuple"
    assert d["parameters"]["epsilon_amplified"] == approx(1.817240)
    attrs = d["parameters"]["attributes"]
    assert [a["oracle"] for a in attrs] == ["grr", "oue", "grr"]
    assert all({"p", "q", "epsilon", "domain_size", "fake"} <= set(a) for a in attrs)
    for name, eps_attr in (("spl", 1 / 3), ("smp", 1.0)):
        s = create_multidim(name, epsilon=1.0, domain_sizes=[4, 4, 4]).privacy
        assert (s.epsilon, s.epsilon_tuple, s.epsilon_attribute) == (1.0, 1.0, approx(eps_attr))
        a = create_multidim(name, epsilon=1.0, domain_sizes=[4, 4, 4], neighbouring="attribute").privacy
        assert a.epsilon == 1.0  # SPL and SMP are charged ε (docs/multidim.md)
        assert [x["p"] for x in s.parameters["attributes"]] and json.dumps(s.to_dict())


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("neighbouring", ["tuple", "attribute"])
def test_calibrate_epsilon(name, neighbouring):
    ks = [9, 16, 7, 2, 42]
    eps = calibrate_epsilon(name, 1.0, domain_sizes=ks, neighbouring=neighbouring)
    charged = create_multidim(name, epsilon=eps, domain_sizes=ks, neighbouring=neighbouring).privacy.epsilon
    assert charged == pytest.approx(1.0, rel=1e-9) and charged <= 1.0 + 1e-12


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_config_roundtrip_and_hash(name):
    m = create_multidim(name, epsilon=0.7, domain_sizes=[3, 5], neighbouring="attribute")
    cfg = json.loads(json.dumps(m.config))
    assert cfg["kind"] == "multidim" and cfg["mechanism"] == name and cfg["neighbouring"] == "attribute"
    again = from_config(cfg)
    assert type(again) is type(m) and again.config == m.config and again.config_hash == m.config_hash
    assert m.config_hash.startswith("sha256:")
    other = create_multidim(name, epsilon=0.7, domain_sizes=[3, 5])
    assert other.config_hash != m.config_hash


def test_oracle_option():
    m = create_multidim("spl", epsilon=1.0, domain_sizes=[2, 100], oracle="auto")
    assert [o.name for o in m.oracles] == ["grr", "oue"]
    m = create_multidim("smp", epsilon=1.0, domain_sizes=[2, 100], oracle=["grr", "olh"])
    assert [o.name for o in m.oracles] == ["grr", "olh"] and m.config["oracle"] == ["grr", "olh"]
    assert from_config(m.config).config_hash == m.config_hash
    assert sorted(available()) == sorted(ALL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "nope"}, "unknown multidimensional protocol"),
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"epsilon": float("nan")}, "epsilon"),
        ({"epsilon": "1"}, "epsilon"),
        ({"domain_sizes": []}, "domain_sizes"),
        ({"domain_sizes": [4, 1]}, "attribute 1"),
        ({"domain_sizes": [4, 2.5]}, "attribute 1"),
        ({"domain_sizes": "44"}, "domain_sizes"),
        ({"domain_sizes": [4, 1 << 17]}, "too large"),
        ({"neighbouring": "record"}, "neighbouring"),
        ({"oracle": "grr"}, "bad options"),
        ({"epsilon": 19.0, "domain_sizes": [2] * 100}, "amplified"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    args = {"name": "rsfd-oue-z", "epsilon": 1.0, "domain_sizes": [4, 4]} | kwargs
    name = args.pop("name")
    with pytest.raises(ConfigError, match=message):
        create_multidim(name, **args)


def test_bad_oracle_options_are_refused():
    with pytest.raises(ConfigError, match="unknown mechanism"):
        create_multidim("spl", epsilon=1.0, domain_sizes=[4, 4], oracle="rappor")
    with pytest.raises(ConfigError, match="2 attributes"):
        create_multidim("smp", epsilon=1.0, domain_sizes=[4, 4], oracle=["grr"])
    with pytest.raises(ConfigError, match="lacks"):
        from_config({"kind": "multidim", "mechanism": "spl", "epsilon": 1.0})
    with pytest.raises(ConfigError, match="not a multidimensional"):
        from_config({"kind": "frequency", "mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
