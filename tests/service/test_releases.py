"""Continual release on SQLite and PostgreSQL with an injected clock: one release per closed
epoch, cumulative and window scopes equal to the SDK on the same reports, the minimum batch
size, immutability, late reports, interrupted releases, and the release tree's budget.

The plumbing tests run with the central noise switched off (``ZeroNoise``) so that every
published number can be compared with the SDK on the same reports; the noise itself is
tested in ``tests/service/test_release_privacy.py`` and ``tests/unit/test_release_noise.py``."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from sqlalchemy import func, select, text

from client_sdk import mechanisms
from client_sdk.canonical import canonical_json
from ldpserver import release_noise
from ldpserver.models import EpochClosure
from ldpserver.models_release import EpochAggregate, Release, ReleaseStream
from ldpserver.services import release_store
from ldpserver.services import releases as service
from ldpserver.services.audit import charges_of
from ldpserver.services.ledger_verify import verify_chain
from ldpserver.services.release_compute import STREAM_CLIENT_ID
from ldpserver.services.release_policy import ReleaseSettings
from tests.service.helpers import statuses
from tests.service.release_helpers import at_epoch, upload_ok, wire

Z = 1.959963984540054


@pytest.fixture(autouse=True)
def _zero_noise(api):
    """Exactness of the plumbing: the release tree adds no noise in these tests."""
    api.use_release_noise(release_noise.ZeroNoise())


COUNTS = {0: 60, 1: 45, 2: 5, 3: 70, 4: 50}  # epoch 2 is below min_reports (10)
FREQUENCY = {
    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 8},
    "release": {"windows": [1, 3], "cumulative": True, "min_reports": 10},
    "budget": {"cap_lifetime": 5.0, "cap_per_window": 1.0, "window_epochs": 1},
}


def _payloads(m, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    weights = np.linspace(1, 3, m.domain_size)
    values = rng.choice(m.domain_size, size=count, p=weights / weights.sum())
    return m.encode(m.perturb_batch(values, rng=rng))


def _run(api, epochs=COUNTS, release_every_step=True):
    """Reports for each epoch (uploaded while it is current), the scheduler run as time passes."""
    col = api.create_collection(**FREQUENCY)
    m = mechanisms.from_config(col["config"]["mechanism"])
    by_epoch: dict[int, list] = {}
    for epoch, count in epochs.items():
        at_epoch(api, epoch)
        by_epoch[epoch] = _payloads(m, count, seed=100 + epoch)
        upload_ok(api, col, wire(col, by_epoch[epoch], epoch))
        if release_every_step:
            collection = api.client.application.extensions["ldp"].collections.get(col["id"])
            service.release_due(api.engine, collection, api.clock(), context=api.releases)
    at_epoch(api, max(epochs) + 2)  # current = last + 2 > last + grace: every epoch is due
    collection = api.client.application.extensions["ldp"].collections.get(col["id"])
    service.release_due(api.engine, collection, api.clock(), context=api.releases)
    return col, m, by_epoch


def _body(api, col, number: int) -> dict:
    response = api.get(f"/v1/collections/{col['id']}/releases/{number}", role="analyst")
    assert response.status_code == 200, response.get_json()
    return json.loads(response.data)


def _scope(body: dict, name: str, window: int | None = None) -> dict:
    found = [s for s in body["scopes"] if s["scope"] == name and (window is None or s["window"] == window)]
    assert len(found) == 1, (name, window, [s["scope"] for s in body["scopes"]])
    return found[0]


def _check_histogram(est: dict, reference, participation: dict) -> None:
    """With the noise off, the published histogram equals the SDK's estimate on the same
    reports (to 1e-12); the variance adds the central noise's declared variance, and the
    interval is built from the total."""
    close = {"rtol": 0, "atol": 1e-12}
    np.testing.assert_allclose(est["frequencies"], reference.frequencies, **close)
    variance = np.asarray(est["variance"])
    assert np.all(variance > np.asarray(reference.variance))  # LDP plug-in + central noise
    half = Z * np.sqrt(variance)
    np.testing.assert_allclose(est["ci_lower"], reference.frequencies - half, **close)
    np.testing.assert_allclose(est["ci_upper"], reference.frequencies + half, **close)
    np.testing.assert_allclose(est["postprocessed"], reference.postprocessed("norm-sub").frequencies, **close)
    assert est["postprocessed"] == pytest.approx(np.clip(est["postprocessed"], 0, None).tolist())
    assert sum(est["postprocessed"]) == pytest.approx(1.0)
    scale = max(0, int(participation["count"]))
    np.testing.assert_allclose(est["counts"], np.asarray(reference.frequencies) * scale, **close)


def _walk_keys(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _walk_keys(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk_keys(value)


def test_one_release_per_closed_epoch_with_epoch_cumulative_and_window_scopes(api):
    col, m, by_epoch = _run(api)
    listing = api.get(f"/v1/collections/{col['id']}/releases", role="analyst").get_json()
    assert [(r["number"], r["epoch"]) for r in listing["items"]] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert all(r["trigger"] == "scheduler" and r["config_hash"] == col["config_hash"] for r in listing["items"])

    for number, epoch in [(n, n - 1) for n in range(1, 6)]:
        body = _body(api, col, number)
        assert (body["release"], body["epoch"], body["config_hash"]) == (number, epoch, col["config_hash"])
        assert body["postprocessing"]["method"] == "norm-sub"
        assert "n" not in set(_walk_keys(body))  # exact counts are never published

        # per epoch (withheld below min_reports, with the threshold as the reason, not the count)
        own = _scope(body, "epoch")
        assert (own["from_epoch"], own["to_epoch"], own["window"], own["complete"]) == (epoch, epoch, 1, True)
        if COUNTS[epoch] < 10:
            assert own["status"] == "withheld" and own["estimates"] is None
            assert own["reason"] == "fewer than min_reports (10) reports (noisy count)"
        else:
            reference = m.estimate(m.aggregate(by_epoch[epoch]))
            _check_histogram(own["estimates"], reference, own["participation"])

        # cumulative: the merge of every epoch so far, as the SDK computes it from the same reports
        cumulative = _scope(body, "cumulative")
        assert (cumulative["from_epoch"], cumulative["to_epoch"], cumulative["status"]) == (0, epoch, "released")
        everything = [p for e in range(epoch + 1) for p in by_epoch[e]]
        merged = sum((m.aggregate(by_epoch[e]) for e in range(epoch + 1)), m.empty_aggregate())
        assert merged == m.aggregate(everything)
        _check_histogram(cumulative["estimates"], m.estimate(merged), cumulative["participation"])

        # window of 3: exactly the last 3 epochs, fewer (and complete: false) at the start
        window = _scope(body, "window", 3)
        start = max(0, epoch - 2)
        assert (window["from_epoch"], window["to_epoch"], window["epochs"]) == (start, epoch, epoch - start + 1)
        assert window["complete"] is (epoch >= 2)
        inside = [p for e in range(start, epoch + 1) for p in by_epoch[e]]
        _check_histogram(window["estimates"], m.estimate(m.aggregate(inside)), window["participation"])

    # compaction: one stored aggregate per released epoch, cumulative = previous + epoch
    with api.engine.connect() as conn:
        rows = conn.execute(
            select(EpochAggregate).where(EpochAggregate.collection_id == col["id"]).order_by(EpochAggregate.epoch)
        ).all()
    assert [(r.epoch, r.n) for r in rows] == sorted(COUNTS.items())
    assert [r.cumulative_n for r in rows] == np.cumsum([COUNTS[e] for e in sorted(COUNTS)]).tolist()
    stored = [json.loads(r.aggregate) for r in rows]
    assert stored[3]["counts"] == m.aggregate(by_epoch[3]).to_dict()["counts"]


SCOPES = [("epoch", None), ("cumulative", None), ("window", 2)]


def test_min_reports_withholds_the_window_and_cumulative_scopes_too(api):
    col = api.create_collection(**{**FREQUENCY, "release": {"windows": [2], "min_reports": 30}})
    m = mechanisms.from_config(col["config"]["mechanism"])
    for epoch, count in {0: 25, 1: 4, 2: 20, 3: 40}.items():
        at_epoch(api, epoch)
        upload_ok(api, col, wire(col, _payloads(m, count, seed=epoch), epoch))
    at_epoch(api, 5)
    created = api.post(f"/v1/collections/{col['id']}/releases", json={}).get_json()
    assert created["created"] == [1, 2, 3, 4]
    table = {n: [_scope(_body(api, col, n), *key)["status"][0] for key in SCOPES] for n in (1, 2, 3, 4)}
    # (epoch, cumulative, window of 2) for n = 25, 4, 20, 40 reports per epoch and min_reports = 30
    assert table == {1: list("www"), 2: list("www"), 3: list("wrw"), 4: list("rrr")}
    # a withheld scope still publishes its (central-DP) participation count, never estimates
    withheld = _scope(_body(api, col, 1), "epoch")
    assert withheld["estimates"] is None and set(withheld["participation"]) == {
        "count",
        "variance",
        "ci_lower",
        "ci_upper",
    }


def test_rereads_are_byte_identical_and_the_hash_matches(api):
    col, _m, _ = _run(api, {0: 30, 1: 20}, release_every_step=False)
    path = f"/v1/collections/{col['id']}/releases/2"
    first, second = api.get(path, role="analyst"), api.get(path, role="auditor")
    assert first.data == second.data
    digest = hashlib.sha256(first.data).hexdigest()
    assert first.headers["X-Release-SHA256"] == digest and first.headers["ETag"] == f'"{digest}"'
    listed = api.get(f"/v1/collections/{col['id']}/releases", role="analyst").get_json()["items"][1]
    assert listed["sha256"] == digest
    with api.engine.connect() as conn:
        row = conn.execute(select(Release).where(Release.collection_id == col["id"], Release.number == 2)).one()
    assert row.body.encode() == first.data and row.sha256 == digest and row.config_hash == col["config_hash"]
    inputs = json.loads(row.inputs)  # exact counts are stored for the record, not served
    assert [s["n"] for s in inputs["scopes"]] == [20, 50, 50] and inputs["participation"] == 20
    # canonical JSON: RFC 8785 (JCS), as config hashes (docs/wire.md)
    document = json.loads(first.data)
    assert first.data.decode() == canonical_json(document)
    assert api.get(path, role="analyst", headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    # releases are immutable in the database too
    with pytest.raises(Exception, match="immutable"), api.engine.begin() as conn:
        conn.execute(text("UPDATE releases SET trigger = 'x' WHERE collection_id = :c"), {"c": col["id"]})


def test_late_reports_are_rejected_and_the_published_release_never_changes(api):
    col = api.create_collection(**FREQUENCY)
    m = mechanisms.from_config(col["config"]["mechanism"])
    at_epoch(api, 0)
    upload_ok(api, col, wire(col, _payloads(m, 30, seed=1), 0))
    # the current epoch needs force; the future never
    current = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 0})
    assert current.status_code == 409 and "force" in current.get_json()["detail"]
    future = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 1, "force": True})
    assert future.status_code == 422 and future.get_json()["errors"][0]["code"] == "epoch_in_future"
    at_epoch(api, 1)  # epoch 0 is past but still inside its grace period: an admin may close it early
    created = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 0})
    assert created.status_code == 201 and created.get_json()["created"] == [1]
    before = api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data

    late = api.upload(col, wire(col, _payloads(m, 5, seed=2), 0, prefix="late"))
    assert statuses(late) == [("rejected", "epoch_closed")] * 5
    again = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 0})
    assert again.status_code == 200 and again.get_json() == {"created": [], "releases": created.get_json()["releases"]}
    assert api.post(f"/v1/collections/{col['id']}/releases", json={}).get_json()["created"] == []  # nothing due
    at_epoch(api, 5)
    service.release_due(
        api.engine,
        api.client.application.extensions["ldp"].collections.get(col["id"]),
        api.clock(),
        context=api.releases,
    )
    assert api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data == before
    numbers = [r["epoch"] for r in api.get(f"/v1/collections/{col['id']}/releases", role="analyst").get_json()["items"]]
    assert numbers == [0, 1, 2, 3]  # every epoch once, in order, each its own release
    before_stream = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": -1})
    assert before_stream.status_code == 422


@pytest.mark.parametrize("stage", ["compacted", "counted", "released"])
def test_an_interrupted_release_leaves_no_partial_state_and_can_be_redone(api, monkeypatch, stage):
    col = api.create_collection(**FREQUENCY)
    m = mechanisms.from_config(col["config"]["mechanism"])
    payloads = _payloads(m, 40, seed=7)
    at_epoch(api, 0)
    upload_ok(api, col, wire(col, payloads, 0))
    collection = api.client.application.extensions["ldp"].collections.get(col["id"])
    ledger_before = api.counts(col["id"])["ledger"]

    def crash(at: str) -> None:
        if at == stage:
            raise RuntimeError(f"simulated crash after {at}")

    monkeypatch.setattr(release_store, "checkpoint", crash)
    at_epoch(api, 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        service.release_due(api.engine, collection, api.clock(), context=api.releases)
    with api.engine.connect() as conn:
        for table in (Release, EpochAggregate, ReleaseStream):
            count = select(func.count()).select_from(table).where(table.collection_id == col["id"])
            assert conn.execute(count).scalar_one() == 0, table.__tablename__
        assert verify_chain(conn, col["id"], col["config_hash"]).ok
    assert api.counts(col["id"])["ledger"] == ledger_before  # the stream's budget entry was rolled back too
    assert api.get(f"/v1/collections/{col['id']}/releases", role="analyst").get_json()["items"] == []
    # the epoch stays closed to uploads: the next attempt resumes from there
    with api.engine.connect() as conn:
        closed = conn.execute(select(EpochClosure.epoch).where(EpochClosure.collection_id == col["id"])).scalars()
        assert list(closed) == [0]

    monkeypatch.setattr(release_store, "checkpoint", lambda at: None)
    outcome = service.release_due(api.engine, collection, api.clock(), context=api.releases)
    assert outcome.created == [1, 2]  # epochs 0 and 1 are due at epoch 3
    body = _body(api, col, 1)
    _check_histogram(
        _scope(body, "epoch")["estimates"], m.estimate(m.aggregate(payloads)), _scope(body, "epoch")["participation"]
    )
    assert api.counts(col["id"])["ledger"] == ledger_before + 1
    with api.engine.connect() as conn:
        assert verify_chain(conn, col["id"], col["config_hash"]).ok


def test_participation_counts_are_the_noisy_n_of_the_release_tree(api):
    col, _m, _ = _run(api)
    with api.engine.connect() as conn:
        stream = conn.execute(select(ReleaseStream).where(ReleaseStream.collection_id == col["id"])).one()
        entries = charges_of(conn, col["id"], STREAM_CLIENT_ID)
        assert verify_chain(conn, col["id"], col["config_hash"]).ok
    # ε_release is recorded once in the collection's ledger (δ is in the hashed config the chain starts from)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["client_id"], entry["epsilon"], entry["neighbouring"], entry["units"]) == (
        "_stream:release",
        release_noise.DEFAULT_EPSILON,
        "device-epoch",
        0,
    )
    assert col["config"]["release"]["epsilon"] == release_noise.DEFAULT_EPSILON
    assert col["config"]["release"]["delta"] == release_noise.DEFAULT_DELTA
    # u = 1: a device may spend 1 (one report of ε = 1) per accounting window of one epoch
    assert (stream.sensitivity, stream.unit, stream.epsilon, stream.horizon) == (1, "reports", 1.5, 1 << 16)
    state = json.loads(stream.counter_state)
    tree = release_noise.VectorTree.from_state(state["tree"], noise=release_noise.ZeroNoise())
    assert tree.steps == len(COUNTS) and tree.levels == 17
    sigmas = tree.sigmas
    for t in range(1, len(COUNTS) + 1):
        body = _body(api, col, t)
        header = body["participation"]
        assert (header["step"], header["levels"], header["epsilon"]) == (t, 17, 1.5)
        assert header["sensitivity_l2"] == pytest.approx(math.sqrt(9))  # OUE k=8: 8 counts + n
        assert header["level_sigmas"] == pytest.approx(sigmas)
        # zero noise: the published count is the exact count, its variance the tree's
        cumulative = _scope(body, "cumulative")["participation"]
        assert cumulative["count"] == sum(COUNTS[e] for e in range(t))
        cover = release_noise.cover(0, t, 17)
        assert cumulative["variance"] == pytest.approx(sum(sigmas[lv] ** 2 for lv, _ in cover))
        half = Z * math.sqrt(cumulative["variance"])
        assert (cumulative["ci_lower"], cumulative["ci_upper"]) == pytest.approx(
            (cumulative["count"] - half, cumulative["count"] + half)
        )
        own = _scope(body, "epoch")["participation"]  # the leaf alone
        assert own["count"] == COUNTS[t - 1] and own["variance"] == pytest.approx(sigmas[0] ** 2)
        window = _scope(body, "window", 3)["participation"]
        assert window["count"] == sum(COUNTS[e] for e in range(max(0, t - 3), t))


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({"cap_lifetime": 3.0}, (3, "reports")),
        ({"cap_lifetime": 10.0, "cap_per_window": 2.0, "window_epochs": 4}, (2, "reports")),
        ({"cap_lifetime": 4.0, "memoized": True}, (1, "devices")),
    ],
)
def test_sensitivity_follows_the_budget_policy(api, budget, expected):
    values = np.array([0, 1, 2, 3, 0, 1])
    if budget.get("memoized"):  # memoized collections are longitudinal (a second randomisation round)
        from client_sdk import longitudinal

        lgrr = longitudinal.create_longitudinal("l-grr", epsilon_perm=1.0, epsilon_first=0.5, domain_size=4)
        col = api.create_collection(
            kind="longitudinal", mechanism=lgrr.config, budget=budget, release={"min_reports": 1}
        )
        lm = longitudinal.from_config(col["config"]["mechanism"])
        rng = np.random.default_rng(0)
        payloads = lm.encode(lm.perturb_batch(values, rng, memos=lm.new_memo_table(values.size, rng)))
    else:
        col = api.create_collection(
            mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4}, budget=budget, release={"min_reports": 1}
        )
        m = mechanisms.from_config(col["config"]["mechanism"])
        payloads = m.encode(m.perturb_batch(values, rng=np.random.default_rng(0)))
    at_epoch(api, 0)
    reports = wire(col, payloads, 0)
    for i, report in enumerate(reports):
        report["client_id"] = f"dev-{i % 3}"  # three devices, two reports each
    upload_ok(api, col, reports)
    at_epoch(api, 2)
    collection = api.client.application.extensions["ldp"].collections.get(col["id"])
    service.release_due(api.engine, collection, api.clock(), context=api.releases)
    with api.engine.connect() as conn:
        stream = conn.execute(select(ReleaseStream).where(ReleaseStream.collection_id == col["id"])).one()
        aggregate = conn.execute(select(EpochAggregate).where(EpochAggregate.collection_id == col["id"])).one()
    assert (stream.sensitivity, stream.unit) == expected
    # memoized: one report per device and epoch enters the statistics (free re-reports do not)
    assert aggregate.participation == (3 if expected[1] == "devices" else 6)
    assert _scope(_body(api, col, 1), "epoch")["participation"]["count"] == aggregate.participation
    header = _body(api, col, 1)["participation"]
    # GRR: one count per report, n = Σ counts (r = 1); L-GRR (longitudinal): r = sqrt(4 counts + n)
    l2 = expected[0] * (math.sqrt(5) if budget.get("memoized") else 1.0)
    assert header["sensitivity_l2"] == pytest.approx(l2)
    assert header["level_sigmas"][0] == pytest.approx(
        l2 / math.sqrt(2 * header["rho"] * release_noise.level_weights(17)[0])
    )


def test_concurrent_release_requests_create_each_release_once(api):
    from concurrent.futures import ThreadPoolExecutor

    col = api.create_collection(**FREQUENCY)
    m = mechanisms.from_config(col["config"]["mechanism"])
    for epoch in range(3):
        at_epoch(api, epoch)
        upload_ok(api, col, wire(col, _payloads(m, 20, seed=epoch), epoch))
    at_epoch(api, 5)  # epochs 0..3 are due
    collection = api.client.application.extensions["ldp"].collections.get(col["id"])
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(lambda _: service.release_due(api.engine, collection, api.clock(), context=api.releases), range(4))
        )
    assert sorted(n for outcome in outcomes for n in outcome.created) == [1, 2, 3, 4]
    for outcome in outcomes:  # each call reports the releases from the stream's next epoch when it started
        numbers = [r["number"] for r in outcome.releases]
        assert numbers == list(range(5 - len(numbers), 5)) and set(outcome.created) <= set(numbers)
    with api.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(EpochAggregate).where(EpochAggregate.collection_id == col["id"])
            ).scalar_one()
            == 4
        )
        assert len(charges_of(conn, col["id"], STREAM_CLIENT_ID)) == 1
        assert verify_chain(conn, col["id"], col["config_hash"]).ok


def test_release_budget_from_the_config_and_an_exhausted_horizon(api):
    api.use_release_noise(settings=ReleaseSettings(horizon=2))  # the server's default horizon
    col = api.create_collection(**{**FREQUENCY, "release": {**FREQUENCY["release"], "epsilon": 0.5, "delta": 1e-6}})
    m = mechanisms.from_config(col["config"]["mechanism"])
    for epoch in range(3):
        at_epoch(api, epoch)
        upload_ok(api, col, wire(col, _payloads(m, 20, seed=epoch), epoch))
    at_epoch(api, 4)
    assert api.post(f"/v1/collections/{col['id']}/releases", json={}).get_json()["created"] == [1, 2, 3]
    second, third = _body(api, col, 2), _body(api, col, 3)
    assert (second["participation"]["epsilon"], second["participation"]["delta"]) == (0.5, 1e-6)
    assert second["participation"]["levels"] == 2
    assert release_noise.epsilon_of(second["participation"]["rho"], 1e-6) == pytest.approx(0.5, rel=1e-6)
    assert third["participation"]["status"] == "horizon_exhausted" and third["participation"]["step"] is None
    own = _scope(third, "epoch")
    assert own["participation"] is None and own["status"] == "withheld" and own["estimates"] is None
    assert "horizon" in own["reason"]
    with api.engine.connect() as conn:
        (entry,) = charges_of(conn, col["id"], STREAM_CLIENT_ID)
    assert entry["epsilon"] == 0.5


def test_a_stream_from_before_central_dp_is_refused_with_a_clear_conflict(api):
    col, m, _ = _run(api, {0: 20}, release_every_step=False)
    with api.engine.begin() as conn:  # the old participation counter's state
        conn.execute(
            text("UPDATE release_streams SET counter_state = :s WHERE collection_id = :c"),
            {
                "s": json.dumps(
                    {"epsilon": 1.0, "horizon": 65536, "sensitivity": 1, "nodes": {}, "partial": [0] * 17, "steps": 2}
                ),
                "c": col["id"],
            },
        )
    at_epoch(api, 6)
    response = api.post(f"/v1/collections/{col['id']}/releases", json={})
    assert response.status_code == 409 and "predates central DP" in response.get_json()["detail"]
