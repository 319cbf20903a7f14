"""Leaks 3 and 5 of issue 14, attacked through the HTTP API as a release reader would.

They fail on the code before central DP for the leak itself (they need nothing new: the
seeded noise is used only where the server has it, so on the old code the production
release runs and the attacks succeed): a release revealed its scope's exact report count n
(inverting the plug-in variance, or rational reconstruction of the frequencies C(v)/n), and
federated heavy hitters revealed each party's level-group sizes (rational reconstruction of
a party's frequencies). With the central noise, a noisy count equals the exact one only
with probability ≈ 1/(σ·sqrt(2π)) (about 5 % here).
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from client_sdk import mechanisms
from client_sdk.mechanisms._base import pure_variance
from ldpserver.services import releases as service
from tests.service.release_helpers import at_epoch, upload_ok, wire


def _seeded_noise(api, seed: int) -> None:
    """Seed the central noise where the server has it (release_noise.SeededGaussian)."""
    noise = importlib.import_module("ldpserver.release_noise")
    api.use_release_noise(noise.SeededGaussian(np.random.default_rng(seed)))


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


def report_count_hits(api, repetitions: int) -> int:
    """In how many of ``repetitions`` single-epoch releases a reader recovers the exact n."""
    exact = 0
    for rep in range(repetitions):
        at_epoch(api, 0)
        col = api.create_collection(**GRR4)
        m = mechanisms.from_config(col["config"]["mechanism"])
        n = 40 + rep
        payloads = m.encode(m.perturb_batch(np.arange(n) % 4, rng=np.random.default_rng(rep)))
        upload_ok(api, col, wire(col, payloads, 0))
        at_epoch(api, 2)
        service.release_due(api.engine, _runtime(api, col), api.clock(), context=api.releases)
        body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data)
        scope = next(s for s in body["scopes"] if s["scope"] == "epoch")
        assert scope["status"] == "released"
        est = scope["estimates"]
        recovered = {n_from_variance(m, est), n_from_frequencies(m, est), scope["participation"]["count"]}
        exact += n in recovered
    return exact


def test_a_release_does_not_reveal_the_exact_report_count(api, monkeypatch):
    """Before central DP: 12 of 12. Now a noisy count equals n with probability ≈ 5 %."""
    _seeded_noise(api, 14)
    exact = report_count_hits(api, 12)
    assert exact <= 3, f"n recovered exactly in {exact} of 12 releases"


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


def federated_group_size_hits(api, repetitions: int, release_epsilon: float | None = None) -> int:
    """In how many of ``repetitions`` federated releases a reader recovers a party's exact
    last level-group size from its published frequencies (``release_epsilon``: the
    collection's ε_release; only significant items are published, central noise included)."""
    from client_sdk import heavy_hitters

    mechanism = heavy_hitters.create(
        "tap", epsilon=4.0, k=2, domain={"type": "integer", "bits": 8}, eta=2, parties=["eu", "us"]
    ).config
    exact = 0
    for rep in range(repetitions):
        at_epoch(api, 0)
        col = api.create_collection(
            kind="heavy_hitters",
            mechanism=mechanism,
            parties=["eu", "us"],
            release={"windows": [1], "cumulative": False, "min_reports": 50}
            | ({} if release_epsilon is None else {"epsilon": release_epsilon}),
            budget={"cap_lifetime": 8.0, "cap_per_window": 4.0},
        )
        hh = heavy_hitters.from_config(col["config"]["mechanism"])
        eu = 2100 + 13 * rep  # enough that eu's items are significant (one batch ≤ 5,000)
        items = [7] * (eu // 2) + [9] * (eu - eu // 2) + [200] * 900 + [31] * 1050
        parties = ["eu"] * eu + ["us"] * 1950
        reports = hh.perturb_batch(np.asarray(items), np.random.default_rng(rep), parties=parties)
        upload_ok(api, col, wire(col, hh.encode(reports), 0))
        at_epoch(api, 2)
        service.release_due(api.engine, _runtime(api, col), api.clock(), context=api.releases)
        body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data)
        hitters = body["scopes"][0]["estimates"]["parties"]["eu"]
        group = int(np.sum((reports.parties == 0) & (reports.levels == hh.groups)))
        exact += _party_group_size(hh.olh, hitters) == group
    return exact


def test_federated_releases_do_not_reveal_party_sizes(api, monkeypatch):
    """Before central DP: 4 of 4. Now: at most 1 (a noisy count equal to the exact one)."""
    _seeded_noise(api, 55)
    exact = federated_group_size_hits(api, 4)
    assert exact <= 1, f"a party's group size recovered exactly in {exact} of 4 releases"
