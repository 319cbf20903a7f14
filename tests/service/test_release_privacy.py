"""Releases are differentially private for their readers (issue 14, point 3).

* leak 3: a release no longer reveals a scope's exact report count n — neither by inverting
  the published variance nor by rational reconstruction of the frequencies C(v)/n;
* 30 vs 31 devices (the 31st a target), 200 repetitions each: the best threshold test on
  every number a reader can fetch gives an ε lower bound (Clopper–Pearson, 95 %) at most the
  declared ε_release; the same test on exact statistics (what main published) exceeds it;
* the published 95 % intervals (LDP + central noise) cover the truth 95 % ± 2 % of the time.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import beta

from client_sdk import mechanisms
from client_sdk.mechanisms._base import pure_variance
from ldpserver import release_noise
from ldpserver.services import releases as service
from tests.service.release_helpers import at_epoch, upload_ok, wire

GRR4 = {
    "mechanism": {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4},
    "release": {"windows": [1], "cumulative": True, "min_reports": 1},
    "budget": {"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
}


def _runtime(api, col):
    return api.client.application.extensions["ldp"].collections.get(col["id"])


def n_from_variance(m, est: dict) -> int:
    """Invert the SDK's plug-in variance Var = pure_variance(p*, q*, n, f) for n."""
    f = np.clip(np.asarray(est["frequencies"]), 0.0, 1.0)
    unit = pure_variance(m.p_star, m.q_star, 1, f)
    return int(round(float(np.median(unit / np.asarray(est["variance"])))))


def n_from_frequencies(m, est: dict, limit: int = 400) -> int:
    """Rational reconstruction: the smallest n for which every n·C(v)/n is an integer."""
    ratio = np.asarray(est["frequencies"]) * (m.p_star - m.q_star) + m.q_star  # C(v)/n
    for n in range(1, limit):
        scaled = ratio * n
        if np.all(np.abs(scaled - np.rint(scaled)) < 1e-6):
            return n
    return -1


def test_a_release_does_not_reveal_the_exact_report_count(api, monkeypatch):
    """On main both inversions return the exact n in every repetition."""
    monkeypatch.setattr(service, "_noise", release_noise.SeededGaussian(np.random.default_rng(14)))
    exact = 0
    repetitions = 12
    for rep in range(repetitions):
        at_epoch(api, 0)
        col = api.create_collection(**GRR4)
        m = mechanisms.from_config(col["config"]["mechanism"])
        n = 40 + rep
        payloads = m.encode(m.perturb_batch(np.arange(n) % 4, rng=np.random.default_rng(rep)))
        upload_ok(api, col, wire(col, payloads, 0))
        at_epoch(api, 2)
        service.release_due(api.engine, _runtime(api, col), api.clock())
        body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data)
        scope = next(s for s in body["scopes"] if s["scope"] == "epoch")
        assert scope["status"] == "released"
        est = scope["estimates"]
        recovered = {n_from_variance(m, est), n_from_frequencies(m, est), scope["participation"]["count"]}
        exact += n in recovered
    # a noisy count equals n with probability ≈ 1/(σ_n·sqrt(2π)) ≈ 5 % here; on main: 12 of 12
    assert exact <= 3, f"n recovered exactly in {exact} of {repetitions} releases"


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


def _reader_view(c, policy, statistics: dict, noise) -> dict[str, float]:
    """Everything a reader can fetch about the (single-epoch) release, through the service's
    own functions: participation (count, variance, interval), the withheld decision, and every
    estimate field (frequencies, variance, intervals, Norm-Sub, counts), reduced to the
    statistics an attacker would test (the inversions of n, sums, the first value)."""
    budget = policy.budget
    tree = release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, noise=noise)
    tree.append(release_noise.flatten(statistics, budget.derived_n))
    noisy = service.noisy_scope(tree, statistics, 0, 1, budget.derived_n)
    part = noisy.participation()
    view = {"participation": part["count"], "ci_lower": part["ci_lower"], "withheld": 1.0}
    if noisy.n >= policy.min_reports:
        est = service._estimate_aggregate(c, noisy)
        m = service._sdk(c)
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
    policy = service.policy_of(c)
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
    budget = service.policy_of(c).budget
    m = service._sdk(c)
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
        noisy = service.noisy_scope(tree, data, 0, epochs, budget.derived_n)  # the cumulative scope
        est = service._estimate_aggregate(c, noisy)
        inside = (np.asarray(est["ci_lower"]) <= truth) & (truth <= np.asarray(est["ci_upper"]))
        covered += int(inside.sum())
        total += k
    assert abs(covered / total - 0.95) <= 0.02, covered / total


# --- leak 5: party sizes of federated heavy hitters ----------------------------------------------


def _party_group_size(olh, hitters: list[dict], limit: int = 3000) -> int:
    """Rational reconstruction of the last level group's size from a party's published
    frequencies f = (C/N − q*)/(p* − q*): the smallest N with every N·(f(p*−q*) + q*) an integer."""
    ratio = np.array([h["frequency"] for h in hitters]) * (olh.p_star - olh.q_star) + olh.q_star
    for n in range(1, limit):
        scaled = ratio * n
        if np.all(np.abs(scaled - np.rint(scaled)) < 1e-6):
            return n
    return -1


@pytest.mark.parametrize("noise", ["zero", "seeded"])
def test_federated_releases_do_not_reveal_party_sizes(api, monkeypatch, noise):
    """With the noise off (what main published) the per-party frequencies give the party's
    exact last-group size in every release; with the central noise, essentially never."""
    from client_sdk import heavy_hitters

    rng = np.random.default_rng(55)
    monkeypatch.setattr(
        service, "_noise", release_noise.ZeroNoise() if noise == "zero" else release_noise.SeededGaussian(rng)
    )
    mechanism = heavy_hitters.create(
        "tap", epsilon=4.0, k=2, domain={"type": "integer", "bits": 8}, eta=2, parties=["eu", "us"]
    ).config
    exact = 0
    repetitions = 4
    for rep in range(repetitions):
        at_epoch(api, 0)
        col = api.create_collection(
            kind="heavy_hitters",
            mechanism=mechanism,
            parties=["eu", "us"],
            release={"windows": [1], "cumulative": False, "min_reports": 50},
            budget={"cap_lifetime": 8.0, "cap_per_window": 4.0},
        )
        hh = heavy_hitters.from_config(col["config"]["mechanism"])
        eu = 700 + 13 * rep
        items = [7] * (eu // 2) + [9] * (eu - eu // 2) + [200] * 300 + [31] * 350
        parties = ["eu"] * eu + ["us"] * 650
        reports = hh.perturb_batch(np.asarray(items), np.random.default_rng(rep), parties=parties)
        upload_ok(api, col, wire(col, hh.encode(reports), 0))
        at_epoch(api, 2)
        service.release_due(api.engine, _runtime(api, col), api.clock())
        body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data)
        hitters = body["scopes"][0]["estimates"]["parties"]["eu"]
        group = int(np.sum((reports.parties == 0) & (reports.levels == hh.groups)))
        exact += _party_group_size(hh.olh, hitters) == group
    if noise == "zero":
        assert exact == repetitions  # the attack works on exact statistics
    else:
        assert exact <= 1, f"a party's group size recovered exactly in {exact} of {repetitions} releases"


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
