"""Releases are differentially private for their readers (issue 14, point 3).

* leak 3: a release no longer reveals a scope's exact report count n — neither by inverting
  the published variance nor by rational reconstruction of the frequencies C(v)/n;
* 30 vs 31 devices (the 31st a target), 200 repetitions each: the best threshold test on
  every number a reader can fetch gives an ε lower bound (Clopper–Pearson, 95 %) at most the
  declared ε_release; the same test on exact statistics (what main published) exceeds it;
* the published 95 % intervals (LDP + central noise) cover the truth 95 % ± 2 % of the time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from client_sdk import mechanisms
from ldpserver import release_noise
from ldpserver.kinds import ADAPTERS
from ldpserver.release_stats import ScopeInputs, noisy_scope
from ldpserver.services.release_policy import policy_of, sdk_of
from tests.service.test_release_leaks import GRR4, _runtime, n_from_frequencies, n_from_variance

# --- the distinguishing test ----------------------------------------------------------------------


def epsilon_lower_bound(x0: np.ndarray, x1: np.ndarray, delta: float, confidence: float = 0.95) -> float:
    """Best threshold test (both directions, every threshold) on one statistic: the largest
    ln((TPR_low − δ) / FPR_high) with one-sided Clopper–Pearson bounds, in both roles."""
    best = 0.0
    a, b = 1 - confidence, confidence
    for first, second in ((x0, x1), (x1, x0)):
        for tau in np.unique(np.concatenate([first, second])):
            for above in (True, False):
                hits1 = int(np.sum(second >= tau) if above else np.sum(second < tau))
                hits0 = int(np.sum(first >= tau) if above else np.sum(first < tau))
                n1, n0 = second.size, first.size
                tpr_low = beta.ppf(a, hits1, n1 - hits1 + 1) if hits1 > 0 else 0.0
                fpr_high = beta.ppf(b, hits0 + 1, n0 - hits0) if hits0 < n0 else 1.0
                if tpr_low - delta > 0 and fpr_high > 0:
                    best = max(best, math.log((tpr_low - delta) / fpr_high))
    return best


def _estimates(c, noisy, budget) -> dict:
    """A released scope's estimates, as the release computes them (the kind's adapter)."""
    return ADAPTERS[c.kind].estimate_scope(sdk_of(c), ScopeInputs(noisy, budget, release_noise.ZeroNoise()))


def _reader_view(c, policy, statistics: dict, noise) -> dict[str, float]:
    """Everything a reader can fetch about the (single-epoch) release, through the service's
    own functions: participation (count, variance, interval), the withheld decision, and every
    estimate field (frequencies, variance, intervals, Norm-Sub, counts), reduced to the
    statistics an attacker would test (the inversions of n, sums, the first value)."""
    budget = policy.budget
    tree = release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, noise=noise)
    tree.append(release_noise.flatten(statistics, budget.derived_n))
    noisy = noisy_scope(tree, statistics, 0, 1, budget.derived_n)
    part = noisy.participation()
    view = {"participation": part["count"], "ci_lower": part["ci_lower"], "withheld": 1.0}
    if noisy.n >= policy.min_reports:
        est = _estimates(c, noisy, budget)
        m = sdk_of(c)
        view |= {
            "withheld": 0.0,
            "n_from_variance": n_from_variance(m, est),
            "n_from_frequencies": n_from_frequencies(m, est),
            "counts_sum": float(np.sum(est["counts"])),
            "frequency_0": est["frequencies"][0],
            "variance_0": est["variance"][0],
            "postprocessed_0": est["postprocessed"][0],
        }
    return view


def test_thirty_versus_thirty_one_devices_is_bounded_by_epsilon_release(api):
    col = api.create_collection(**{**GRR4, "release": {**GRR4["release"], "min_reports": 30}})
    c = _runtime(api, col)
    policy = policy_of(c)
    m = mechanisms.from_config(col["config"]["mechanism"])
    # the strongest reader knows every other device's report: only the target's presence varies
    others = m.encode(m.perturb_batch(np.arange(30) % 4, rng=np.random.default_rng(30)))
    target = m.encode(m.perturb_batch(np.array([2]), rng=np.random.default_rng(31)))
    without = m.aggregate(others).to_dict()
    with_target = m.aggregate(others + target).to_dict()
    noise = release_noise.OpenDPDiscreteGaussian()  # the production sampler
    repetitions = 200
    views = [[_reader_view(c, policy, data, noise) for _ in range(repetitions)] for data in (without, with_target)]
    keys = set().union(*(v.keys() for side in views for v in side))
    bounds = {}
    for key in sorted(keys):
        x0 = np.array([v.get(key, -1e9) for v in views[0]], dtype=np.float64)  # absent: withheld
        x1 = np.array([v.get(key, -1e9) for v in views[1]], dtype=np.float64)
        bounds[key] = epsilon_lower_bound(x0, x1, policy.budget.delta)
    print("epsilon lower bounds per statistic:", {k: round(v, 3) for k, v in bounds.items()})
    assert max(bounds.values()) <= policy.budget.epsilon, bounds
    # the same test on the exact statistics (what main published) separates the two worlds
    exact = epsilon_lower_bound(np.full(repetitions, 30.0), np.full(repetitions, 31.0), policy.budget.delta)
    assert exact > policy.budget.epsilon


# --- coverage of the published intervals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mechanism", "k", "n", "epochs"), [("grr", 16, 10_000, 1), ("grr", 16, 2_000, 8), ("oue", 32, 5_000, 1)]
)
def test_published_intervals_cover_the_truth_95_percent_of_the_time(api, mechanism, k, n, epochs):
    col = api.create_collection(
        mechanism={"mechanism": mechanism, "epsilon": 1.0, "domain_size": k},
        release={"windows": [1], "min_reports": 1},
        budget={"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
    )
    c = _runtime(api, col)
    budget = policy_of(c).budget
    m = sdk_of(c)
    rng = np.random.default_rng(2026)
    weights = np.linspace(1, 4, k)
    values = rng.choice(k, size=n, p=weights / weights.sum())
    truth = np.bincount(values, minlength=k) / n  # every epoch: the same population
    covered = total = 0
    for _ in range(200 if epochs == 1 else 60):
        tree = release_noise.VectorTree(
            sigmas=budget.sigmas, dimension=budget.dimension, noise=release_noise.SeededGaussian(rng)
        )
        data = None
        for _ in range(epochs):
            data = m.aggregate(m.perturb_batch(values, rng=rng)).to_dict()
            tree.append(release_noise.flatten(data, budget.derived_n))
        noisy = noisy_scope(tree, data, 0, epochs, budget.derived_n)  # the cumulative scope
        est = _estimates(c, noisy, budget)
        inside = (np.asarray(est["ci_lower"]) <= truth) & (truth <= np.asarray(est["ci_upper"]))
        covered += int(inside.sum())
        total += k
    assert abs(covered / total - 0.95) <= 0.02, covered / total


def test_the_party_size_attack_works_on_exact_statistics(api, monkeypatch):
    """The leak-5 attack recovers every party's last-group size when the noise is off (what
    main published): the test in test_release_leaks.py can fail."""
    from tests.service.test_release_leaks import federated_group_size_hits

    api.use_release_noise(release_noise.ZeroNoise())
    assert federated_group_size_hits(api, repetitions=3, release_epsilon=10.0) == 3


def test_the_report_count_attack_works_on_exact_statistics(api, monkeypatch):
    from tests.service.test_release_leaks import report_count_hits

    api.use_release_noise(release_noise.ZeroNoise())
    assert report_count_hits(api, repetitions=3) == 3


# --- the creation-time statement and the config ---------------------------------------------------


def test_creation_tells_the_admin_what_the_central_noise_adds_at_min_reports(api):
    small = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 16},
        release={"min_reports": 100},
        budget={"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
    )
    large = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 16},
        release={"min_reports": 10_000},
        budget={"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
    )
    statement = large["privacy"]["release"]
    assert (statement["epsilon"], statement["delta"]) == (release_noise.DEFAULT_EPSILON, release_noise.DEFAULT_DELTA)
    assert release_noise.epsilon_of(statement["rho"], statement["delta"]) == pytest.approx(1.5, rel=1e-6)
    assert statement["sensitivity_l2"] == 1.0 and statement["max_epochs_per_device"] == 5
    assert statement["epsilon_per_device_lifetime"] == pytest.approx(
        release_noise.epsilon_of(5 * statement["rho"], 1e-7)
    )
    assert 0.01 < statement["expected_at_min_reports"]["ratio"] < 0.05  # ≤ 5 % at 10^4 reports
    assert small["privacy"]["release"]["expected_at_min_reports"]["ratio"] > 1  # dominated at 100: said so
    # a generous cap multiplies the noise: u = 5 reports per device-epoch
    loose = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 16}, budget={"cap_lifetime": 5.0}
    )
    assert loose["privacy"]["release"]["reports_per_device_epoch"] == 5
    assert loose["privacy"]["release"]["level_sigmas"][0] == pytest.approx(5 * statement["level_sigmas"][0])


@pytest.mark.parametrize(
    "release",
    [{"epsilon": 0}, {"epsilon": -1}, {"epsilon": 11}, {"delta": 0}, {"delta": 0.01}, {"epsilon": "1"}, {"eps": 1}],
)
def test_bad_release_budgets_are_refused(api, release):
    response = api.post("/v1/collections", json={**_base(api), "release": release})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


def _base(api) -> dict:
    from tests.service.helpers import BASE_COLLECTION

    return dict(BASE_COLLECTION)
