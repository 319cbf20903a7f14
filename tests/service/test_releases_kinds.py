"""Releases of every collection kind equal the SDK's estimates on the same reports:
multidim marginals, heavy hitters (PEM; federated TAP per party), longitudinal histograms.

The central noise is switched off here (``ZeroNoise``) to compare with the SDK exactly; the
variance then still carries the central noise's declared variance on top of the SDK's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldpserver import kinds as protocols
from ldpserver import release_noise
from tests.service.release_helpers import at_epoch, hh_payloads, upload_ok, wire

CLOSE = {"rtol": 0, "atol": 1e-12}
Z = 1.959963984540054


@pytest.fixture(autouse=True)
def _zero_noise(api):
    api.use_release_noise(release_noise.ZeroNoise())


def _need(kind: str) -> None:
    if not protocols.ADAPTERS[kind].available():
        pytest.skip(f"the SDK package for {kind!r} is not importable")


def _release_all(api, col, through: int) -> dict:
    at_epoch(api, through + 2)
    response = api.post(f"/v1/collections/{col['id']}/releases", json={})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _body(api, col, number: int) -> dict:
    return json.loads(api.get(f"/v1/collections/{col['id']}/releases/{number}", role="analyst").data)


def _scope(body: dict, name: str, window: int | None = None) -> dict:
    return next(s for s in body["scopes"] if s["scope"] == name and (window is None or s["window"] == window))


def _keys(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _keys(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _keys(value)


def _same_histogram(published: dict, reference) -> None:
    np.testing.assert_allclose(published["frequencies"], reference.frequencies, **CLOSE)
    variance = np.asarray(published["variance"])
    assert np.all(variance > np.asarray(reference.variance))  # LDP plug-in + central noise
    half = Z * np.sqrt(variance)
    np.testing.assert_allclose(published["ci_lower"], reference.frequencies - half, **CLOSE)
    np.testing.assert_allclose(published["ci_upper"], reference.frequencies + half, **CLOSE)
    np.testing.assert_allclose(published["postprocessed"], reference.postprocessed("norm-sub").frequencies, **CLOSE)


def test_multidim_release_publishes_every_attributes_marginal(api):
    _need("multidim")
    from client_sdk import multidim

    col = api.create_collection(
        kind="multidim",
        mechanism={"mechanism": "rsfd-adp", "epsilon": 1.0, "domain_sizes": [4, 2, 6]},
        release={"windows": [1, 2], "min_reports": 20},
        budget={"cap_lifetime": 10.0},
    )
    m = multidim.from_config(col["config"]["mechanism"])
    by_epoch = {}
    for epoch, count in {0: 80, 1: 60}.items():
        at_epoch(api, epoch)
        rng = np.random.default_rng(epoch)
        by_epoch[epoch] = m.encode(m.perturb_batch(rng.integers(0, [4, 2, 6], size=(count, 3)), rng=rng))
        upload_ok(api, col, wire(col, by_epoch[epoch], epoch))
    assert _release_all(api, col, 1)["created"] == [1, 2]

    body = _body(api, col, 2)
    expected = {
        "epoch": m.estimate(m.aggregate(by_epoch[1])),
        "cumulative": m.estimate(m.aggregate(by_epoch[0] + by_epoch[1])),
    }
    for name, reference in expected.items():
        est = _scope(body, name)["estimates"]
        assert est["type"] == "marginals" and len(est["attributes"]) == 3
        for j, attribute in enumerate(est["attributes"]):
            assert attribute["attribute"] == j and attribute["status"] == "estimated"
            _same_histogram(attribute, reference[j])
    assert "n" not in set(_keys(body)) and "attribute_n" not in set(_keys(body))

    series = api.get(
        f"/v1/collections/{col['id']}/timeseries?item=5&attribute=2&scope=cumulative", role="analyst"
    ).get_json()
    assert [p["release"] for p in series["points"]] == [1, 2]
    assert series["points"][1]["frequency"] == pytest.approx(expected["cumulative"][2].frequencies[5], abs=1e-12)
    missing = api.get(f"/v1/collections/{col['id']}/timeseries?item=5", role="analyst")
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["path"] == "/attribute"
    out_of_range = api.get(f"/v1/collections/{col['id']}/timeseries?item=2&attribute=1", role="analyst")
    assert out_of_range.status_code == 422 and out_of_range.get_json()["errors"][0]["path"] == "/item"


def test_heavy_hitters_release_top_items_per_epoch_and_window(api):
    _need("heavy_hitters")
    from client_sdk import heavy_hitters

    mechanism = {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2}
    col = api.create_collection(
        kind="heavy_hitters",
        mechanism=mechanism,
        release={"windows": [1, 2], "min_reports": 50, "epsilon": 10.0},  # σ small enough to test here,
        budget={"cap_lifetime": 8.0},
    )
    hh = heavy_hitters.from_config(col["config"]["mechanism"])
    # enough reports that both items are significant with the central noise included
    by_epoch = {0: hh_payloads(col, [7] * 1600 + [200] * 1000 + [31] * 400, seed=1)}
    by_epoch[1] = hh_payloads(col, [200] * 2000 + [7] * 800 + [31] * 600, seed=2)
    for epoch, payloads in by_epoch.items():
        at_epoch(api, epoch)
        upload_ok(api, col, wire(col, payloads, epoch))
    _release_all(api, col, 1)

    body = _body(api, col, 2)
    assert body["postprocessing"]["method"] == "hierarchical-consistency"
    assert [s["scope"] for s in body["scopes"]] == ["epoch", "cumulative", "window"]
    assert _scope(body, "cumulative")["status"] == "withheld"  # discovery needs raw reports: no cumulative HH
    assert "cumulative" in _scope(body, "cumulative")["reason"]
    for scope, payloads in (("epoch", by_epoch[1]), ("window", by_epoch[0] + by_epoch[1])):
        reference = hh.discover(hh.decode(payloads), ci_level=0.95)
        published = _scope(body, scope, 2 if scope == "window" else None)["estimates"]
        assert [h["item"] for h in published["heavy_hitters"]] == reference.items
        assert [h["rank"] for h in published["heavy_hitters"]] == [1, 2]
        for h, ref in zip(published["heavy_hitters"], reference.heavy_hitters, strict=True):
            assert h["frequency"] == pytest.approx(ref.frequency, abs=1e-12)
            assert h["variance"] > ref.variance  # + the central noise's variance (zero draws here)
            half = Z * h["variance"] ** 0.5
            assert (h["ci_lower"], h["ci_upper"]) == pytest.approx((h["frequency"] - half, h["frequency"] + half))
            assert h["consistent_frequency"] == (
                None if ref.consistent_frequency is None else pytest.approx(ref.consistent_frequency, abs=0.05)
            )
            # the p-value includes the central noise: never smaller than the noiseless one
            assert ref.p_value - 1e-12 <= h["p_value"] <= 0.05
        sig = published["significance"]
        assert sig["correction"] == "holm" and sig["tested"] == reference.significance["tested"]
        assert sig["tested"] == sig["published"] + sig["withheld"]
    assert set(_scope(body, "epoch")["estimates"]) == {"type", "protocol", "k", "heavy_hitters", "significance"}
    assert _scope(_body(api, col, 1), "epoch")["estimates"]["heavy_hitters"][0]["item"] == 7

    latest = api.get(f"/v1/collections/{col['id']}/heavy-hitters?scope=epoch", role="analyst").get_json()
    assert latest["release"] == 2 and [r["item"] for r in latest["items"]] == [200, 7]
    series = api.get(f"/v1/collections/{col['id']}/timeseries?item=200", role="analyst").get_json()
    assert [(p["release"], p["rank"]) for p in series["points"]] == [(1, 2), (2, 1)]
    absent = api.get(f"/v1/collections/{col['id']}/timeseries?item=99", role="analyst").get_json()
    assert {p["status"] for p in absent["points"]} == {"not_in_top"}
    frequency = api.create_collection()
    assert api.get(f"/v1/collections/{frequency['id']}/heavy-hitters", role="analyst").status_code == 404


def test_heavy_hitter_scopes_whose_raw_reports_are_gone_are_withheld(api):
    _need("heavy_hitters")
    from sqlalchemy import text

    mechanism = {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2}
    col = api.create_collection(
        kind="heavy_hitters",
        mechanism=mechanism,
        release={"windows": [2], "min_reports": 50},
        budget={"cap_lifetime": 8.0},
    )
    for epoch in (0, 1):
        at_epoch(api, epoch)
        upload_ok(api, col, wire(col, hh_payloads(col, [7] * 300 + [200] * 100, seed=epoch), epoch))
    with api.engine.begin() as conn:  # as a retention purge would (aggregates and the ledger are kept)
        conn.execute(text("DELETE FROM report_batches WHERE collection_id = :c AND epoch = 0"), {"c": col["id"]})
    _release_all(api, col, 1)
    first, second = _body(api, col, 1), _body(api, col, 2)
    assert _scope(first, "epoch")["status"] == "withheld" and "retention" in _scope(first, "epoch")["reason"]
    assert _scope(second, "epoch")["status"] == "released"
    assert _scope(second, "window", 2)["status"] == "withheld"


def test_heavy_hitter_discovery_is_not_decided_on_exact_level_group_sizes(api):
    """An empty level group no longer withholds the scope (that was a decision on exact
    counts): discovery runs on the noisy group counts."""
    _need("heavy_hitters")
    mechanism = {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2}
    col = api.create_collection(
        kind="heavy_hitters", mechanism=mechanism, release={"min_reports": 1}, budget={"cap_lifetime": 8.0}
    )
    at_epoch(api, 0)
    upload_ok(api, col, wire(col, hh_payloads(col, [7], seed=3), 0))
    _release_all(api, col, 0)
    own = _scope(_body(api, col, 1), "epoch")
    assert own["status"] == "released" and own["reason"] is None
    assert own["estimates"]["type"] == "heavy_hitters"


def test_federated_heavy_hitters_release_global_and_per_party_lists(api):
    _need("heavy_hitters")
    from client_sdk import heavy_hitters

    mechanism = heavy_hitters.create(
        "tap", epsilon=4.0, k=2, domain={"type": "integer", "bits": 8}, eta=2, parties=["eu", "us"]
    ).config
    col = api.create_collection(
        kind="heavy_hitters",
        mechanism=mechanism,
        parties=["eu", "us"],
        release={"windows": [1], "cumulative": False, "min_reports": 50, "epsilon": 10.0},
        budget={"cap_lifetime": 8.0},
    )
    hh = heavy_hitters.from_config(col["config"]["mechanism"])
    items = [7] * 2000 + [9] * 1000 + [200] * 1200 + [31] * 1400  # significant with the central noise too
    parties = ["eu"] * 3000 + ["us"] * 2600
    payloads = hh_payloads(col, items, seed=5, parties=parties)
    at_epoch(api, 0)
    upload_ok(api, col, wire(col, payloads, 0))
    _release_all(api, col, 0)

    body = _body(api, col, 1)
    assert [s["scope"] for s in body["scopes"]] == ["epoch"]
    published = body["scopes"][0]["estimates"]
    reference = hh.discover(hh.decode(payloads), ci_level=0.95)
    assert [h["item"] for h in published["heavy_hitters"]] == reference.items
    assert sorted(published["parties"]) == ["eu", "us"]
    for party, hitters in published["parties"].items():
        assert [h["item"] for h in hitters] == [h.item for h in reference.local[party]]
        assert [h["frequency"] for h in hitters] == pytest.approx([h.frequency for h in reference.local[party]])
        assert all("count" not in h for h in hitters)  # party sizes are participation counts: not published
    assert not {"n", "party_sizes", "diagnostics", "local"} & set(_keys(body))
    eu = api.get(f"/v1/collections/{col['id']}/heavy-hitters?party=eu", role="analyst").get_json()["items"]
    assert {r["party"] for r in eu} == {"eu"} and [r["item"] for r in eu] == [h.item for h in reference.local["eu"]]
    series = api.get(f"/v1/collections/{col['id']}/timeseries?item=7&party=eu", role="analyst").get_json()
    assert series["points"][0]["party"] == "eu" and series["points"][0]["status"] == "released"
    bad = api.get(f"/v1/collections/{col['id']}/timeseries?item=7&party=asia", role="analyst")
    assert bad.status_code == 422


def test_longitudinal_release_uses_its_estimator_and_counts_devices(api):
    _need("longitudinal")
    from client_sdk import longitudinal

    m = longitudinal.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=8)
    col = api.create_collection(
        kind="longitudinal",
        mechanism=m.config,
        release={"windows": [1], "min_reports": 20},
        budget={"cap_lifetime": 50.0, "memoized": True},
    )
    m = longitudinal.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(11)
    values = rng.integers(0, 8, 60)
    memos = m.new_memo_table(values.size, rng)
    by_epoch = {}
    for epoch in (0, 1):
        at_epoch(api, epoch)
        by_epoch[epoch] = m.encode(m.perturb_batch(values, rng, memos=memos))
        reports = wire(col, by_epoch[epoch], epoch, prefix="dev")
        for i, report in enumerate(reports):
            report["client_id"] = f"dev-{i}"  # the same 60 devices every epoch
        upload_ok(api, col, reports)
    _release_all(api, col, 1)
    body = _body(api, col, 2)
    assert (
        body["participation"]["unit"].startswith("devices") and body["participation"]["reports_per_device_epoch"] == 1
    )
    _same_histogram(_scope(body, "epoch")["estimates"], m.estimate(m.aggregate(by_epoch[1])))
    _same_histogram(_scope(body, "cumulative")["estimates"], m.estimate(m.aggregate(by_epoch[0] + by_epoch[1])))


class _PlusFive:
    """Noise that always adds 5 (a noisy count can pass min_reports for an empty scope)."""

    def add(self, values, sigma):
        return np.asarray(values, dtype=np.int64) + 5


def test_heavy_hitter_scope_without_reports_but_a_passing_noisy_count_is_withheld(api, monkeypatch):
    _need("heavy_hitters")
    api.use_release_noise(_PlusFive())
    mechanism = {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2}
    col = api.create_collection(
        kind="heavy_hitters", mechanism=mechanism, release={"min_reports": 1}, budget={"cap_lifetime": 8.0}
    )
    _release_all(api, col, 0)  # epoch 0 has no report; its noisy count is 5 per level group
    own = _scope(_body(api, col, 1), "epoch")
    assert own["participation"]["count"] >= 1
    assert own["status"] == "withheld" and own["reason"] == "insufficient reports for discovery"
