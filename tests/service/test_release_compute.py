"""The release computation on its own: hand-made inputs → the release document, with no
database in the computation (``release_compute.compute``). The collection is created through
the API only to get its runtime; everything else is built here."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ldpserver import release_noise
from ldpserver.services.release_compute import ReleaseInputs, Scope, compute
from ldpserver.services.release_policy import policy_of, sdk_of

FREQUENCY = {
    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 8},
    "release": {"windows": [1, 2], "cumulative": True, "min_reports": 50},
    "budget": {"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
}


def _runtime(api):
    col = api.create_collection(**FREQUENCY)
    return api.client.application.extensions["ldp"].collections.get(col["id"])


def _inputs(c, policy, noise, reports: int, seed: int = 3) -> ReleaseInputs:
    """The first release of a stream: epoch 0 with ``reports`` perturbed reports."""
    sdk = sdk_of(c)
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 8, reports)
    epoch_sum = json.loads(json.dumps(sdk.aggregate(sdk.perturb_batch(values, rng=rng)).to_dict()))
    budget = policy.budget
    tree = release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, keep=2, noise=noise)
    scopes = [
        Scope("epoch", 1, 0, 0, True, epoch_sum),
        Scope("cumulative", None, 0, 0, True, epoch_sum),
        Scope("window", 2, 0, 0, False, epoch_sum),
    ]
    return ReleaseInputs(
        epoch=0,
        number=1,
        stream_releases=None,
        first=0,
        tree=tree,
        budget=budget,
        partials=1,
        epoch_sum=epoch_sum,
        cumulative=epoch_sum,
        scopes=scopes,
        statistics=epoch_sum,
    )


def test_compute_is_the_sdk_estimator_on_the_noisy_statistics(api):
    c = _runtime(api)
    policy = policy_of(c)
    inputs = _inputs(c, policy, release_noise.ZeroNoise(), 400)
    plan = compute(c, inputs, policy, api.clock(), "test", release_noise.ZeroNoise())
    body = json.loads(plan.body)
    assert plan.sha256 == hashlib.sha256(plan.body.encode()).hexdigest()
    assert inputs.tree.steps == 1 and plan.participation == 400
    assert [s["scope"] for s in body["scopes"]] == ["epoch", "cumulative", "window"]
    sdk = sdk_of(c)
    expected = sdk.estimate(type(sdk.empty_aggregate()).from_dict(inputs.epoch_sum))
    for scope in body["scopes"]:
        assert scope["status"] == "released" and scope["participation"]["count"] == 400
        np.testing.assert_allclose(scope["estimates"]["frequencies"], expected.frequencies, rtol=0, atol=1e-12)
    assert body["postprocessing"]["method"] == "norm-sub"
    assert plan.summary["scopes"][0] == {"scope": "epoch", "window": 1, "n": 400}


def test_compute_withholds_below_min_reports_on_the_noisy_count(api):
    c = _runtime(api)
    policy = policy_of(c)
    plan = compute(c, _inputs(c, policy, release_noise.ZeroNoise(), 30), policy, api.clock(), "test",
                   release_noise.ZeroNoise())  # fmt: skip
    for scope in json.loads(plan.body)["scopes"]:
        assert scope["status"] == "withheld" and scope["estimates"] is None
        assert scope["reason"] == "fewer than min_reports (50) reports (noisy count)"


def test_compute_is_deterministic_given_its_noise_and_differs_without_it(api):
    c = _runtime(api)
    policy = policy_of(c)

    def body(seed: int) -> str:
        noise = release_noise.SeededGaussian(np.random.default_rng(seed))
        return compute(c, _inputs(c, policy, noise, 400), policy, api.clock(), "test", noise).body

    assert body(5) == body(5)
    assert body(5) != body(6)
