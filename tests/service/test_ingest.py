"""Batch ingestion over HTTP: idempotency, per-report judgement, epoch window, budgets, memos."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from client_sdk import mechanisms
from ldpserver.services.epochs import close_epoch
from tests.service.helpers import EPOCH_START, make_reports, new_report_id, statuses


def test_batch_is_accepted_stored_charged_and_aggregated(api):
    col = api.create_collection()
    reports = make_reports(col, 40, seed=1)
    r = api.upload(col, reports)
    assert r.status_code == 200
    body = r.get_json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (40, 0, 0)
    assert [x["report_id"] for x in body["results"]] == [x["report_id"] for x in reports]
    assert api.counts(col["id"]) == {"reports": 40, "ledger": 40, "aggregated": 40}
    # the stored additive statistics are exactly the SDK's aggregate of the accepted payloads
    m = mechanisms.from_config(col["config"]["mechanism"])
    expected = m.aggregate([x["payload"] for x in reports])
    n, counts = api.aggregate_counts(col["id"], epoch=0)
    assert n == expected.n and np.array_equal(counts, expected.counts)


def test_retried_batch_is_counted_once(api):
    col = api.create_collection()
    reports = make_reports(col, 25, seed=2)
    first = api.upload(col, reports).get_json()
    again = api.upload(col, reports).get_json()
    third = api.upload(col, list(reversed(reports))).get_json()
    assert first["accepted"] == 25
    for retry in (again, third):
        assert (retry["accepted"], retry["duplicates"], retry["rejected"]) == (0, 25, 0)
        assert {x["status"] for x in retry["results"]} == {"duplicate"}
    assert api.counts(col["id"]) == {"reports": 25, "ledger": 25, "aggregated": 25}
    # a retry where half the batch is new: only the new half counts
    fresh = make_reports(col, 10, seed=3)
    mixed = api.upload(col, reports[:10] + fresh).get_json()
    assert (mixed["accepted"], mixed["duplicates"]) == (10, 10)
    assert api.counts(col["id"]) == {"reports": 35, "ledger": 35, "aggregated": 35}


def test_good_reports_survive_bad_ones_with_stable_reasons(api):
    col = api.create_collection()
    good = make_reports(col, 6, seed=4)
    bad_payload = copy.deepcopy(good[0]) | {"report_id": new_report_id()}
    bad_payload["payload"] = {**bad_payload["payload"], "bits": "!!notbase64!!"}
    short = copy.deepcopy(good[0]) | {"report_id": new_report_id()}
    short["payload"] = {**short["payload"], "bits": "AAAA"}
    wrong_mech = copy.deepcopy(good[0]) | {"report_id": new_report_id()}
    wrong_mech["payload"] = {**wrong_mech["payload"], "m": "grr"}
    version = copy.deepcopy(good[0]) | {"report_id": new_report_id()}
    version["payload"] = {**version["payload"], "v": 99}
    batch = [
        good[0],
        {**good[1], "report_id": "NOT-HEX"},
        good[2],
        {**good[3], "config_hash": "sha256:" + "0" * 64},
        bad_payload,
        {**good[4], "epoch": 5},
        short,
        {**good[5], "epoch": -3},
        wrong_mech,
        version,
        "not an object",
        {**good[1], "report_id": new_report_id(), "client_id": "bad id!"},
        {**good[1], "report_id": new_report_id(), "extra": 1},
        {**good[1], "report_id": new_report_id(), "epoch": 1.5},
        {**good[1], "report_id": new_report_id(), "payload": [1, 2]},
        {**good[1], "report_id": new_report_id(), "memo_count": 3},
    ]
    r = api.upload(col, batch)
    assert r.status_code == 200
    assert statuses(r) == [
        ("accepted", None),
        ("rejected", "invalid_report"),
        ("accepted", None),
        ("rejected", "config_mismatch"),
        ("rejected", "bad_encoding"),
        ("rejected", "epoch_in_future"),
        ("rejected", "bad_length"),
        ("rejected", "epoch_too_old"),
        ("rejected", "wrong_mechanism"),
        ("rejected", "bad_version"),
        ("rejected", "invalid_report"),
        ("rejected", "invalid_report"),
        ("rejected", "invalid_report"),
        ("rejected", "invalid_report"),
        ("rejected", "invalid_report"),
        ("rejected", "invalid_report"),  # memo_count: not in wire version 2
    ]
    body = r.get_json()
    assert (body["accepted"], body["rejected"]) == (2, 14)
    assert body["results"][1]["detail"].startswith("/report_id")
    assert body["results"][1]["report_id"] == "NOT-HEX"
    assert body["results"][10]["report_id"] is None
    assert api.counts(col["id"]) == {"reports": 2, "ledger": 2, "aggregated": 2}
    # the counters saw every rejection, by reason
    counters = api.get(f"/v1/audit/rejections?collection={col['id']}").get_json()
    by_reason = {row["reason"]: row["count"] for row in counters["items"]}
    assert by_reason["invalid_report"] == 7 and by_reason["config_mismatch"] == 1 and counters["total"] == 14


def test_report_id_reuse_with_another_body_is_a_conflict(api):
    """A report is its device's: the same device, epoch and report_id with another body is a
    conflict (and not charged); another device's report with that id is another report."""
    col = api.create_collection()
    [a, b] = make_reports(col, 2, seed=5)
    assert api.upload(col, [a]).get_json()["accepted"] == 1
    forged = {**b, "report_id": a["report_id"], "client_id": a["client_id"]}
    assert statuses(api.upload(col, [forged])) == [("rejected", "report_id_conflict")]
    assert statuses(api.upload(col, [a])) == [("duplicate", None)]
    assert api.device(col["id"], a["client_id"]).reports == 1
    other_device = {**b, "report_id": a["report_id"]}
    assert statuses(api.upload(col, [other_device])) == [("accepted", None)]
    # inside one batch: a repeat with the same body is a duplicate, with another body a conflict
    [c, d] = make_reports(col, 2, seed=6, client_ids="dev-c")
    r = api.upload(col, [c, dict(c), {**d, "report_id": c["report_id"]}])
    assert statuses(r) == [("accepted", None), ("duplicate", None), ("rejected", "report_id_conflict")]
    assert api.counts(col["id"]) == {"reports": 3, "ledger": 3, "aggregated": 3}


def test_report_ids_are_keyed_within_their_epoch(api):
    """A report is keyed by its device, epoch and report_id: a retry resends its epoch, so a
    repeat in the same epoch is judged as before, while the same id in another live epoch is
    another report (only a client that reuses ids can send one; it is charged like any other)."""
    col = api.create_collection(epoch={"grace": 1})
    api.clock.set(EPOCH_START.replace(hour=1, minute=10))  # epoch 1: epochs 0 and 1 accepted
    [a] = make_reports(col, 1, epoch=0, seed=31)
    [b] = make_reports(col, 1, epoch=1, seed=32, client_ids=a["client_id"])
    b = {**b, "report_id": a["report_id"]}
    assert statuses(api.upload(col, [a])) == [("accepted", None)]
    assert statuses(api.upload(col, [b, a])) == [("accepted", None), ("duplicate", None)]
    assert statuses(api.upload(col, [b])) == [("duplicate", None)]
    forged = {**b, "payload": make_reports(col, 1, epoch=1, seed=33)[0]["payload"]}
    assert forged["payload"] != b["payload"]
    assert statuses(api.upload(col, [forged])) == [("rejected", "report_id_conflict")]
    assert api.counts(col["id"]) == {"reports": 2, "ledger": 2, "aggregated": 2}


def test_database_errors_of_the_raw_driver_are_retried(api, monkeypatch):
    """The hot path's statements run on the raw driver, whose errors SQLAlchemy does not wrap:
    a deadlock (PostgreSQL) or a busy database (SQLite) there still retries the transaction."""
    from ldpserver.services.bulk import Bulk

    col = api.create_collection()
    reports = make_reports(col, 5, seed=34)
    original = Bulk.insert_partials
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            if self.pg:
                import psycopg

                raise psycopg.errors.DeadlockDetected("deadlock detected (injected)")
            import sqlite3

            raise sqlite3.OperationalError("database is locked (injected)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Bulk, "insert_partials", flaky)
    assert api.upload(col, reports).get_json()["accepted"] == 5
    assert calls["n"] == 2
    assert api.counts(col["id"]) == {"reports": 5, "ledger": 5, "aggregated": 5}


def test_known_devices_among_new_ones_keep_their_budget(api):
    """PostgreSQL inserts a batch's device rows with a plain INSERT first; a device that already
    has a row (wherever it sorts among new ones) makes that fail, and the rows go in with
    ON CONFLICT instead: the known device is charged on top of its earlier charge, the new
    ones get their first, nothing is lost."""
    col = api.create_collection()
    known = ["d-0-known", "d-5-known", "d-9-known"]  # first, middle and last in client_id order
    first = [make_reports(col, 1, seed=40 + i, client_ids=cl)[0] for i, cl in enumerate(known)]
    assert api.upload(col, first).get_json()["accepted"] == 3
    units = api.device(col["id"], "d-0-known").units
    again = [make_reports(col, 1, seed=50 + i, client_ids=cl)[0] for i, cl in enumerate(known)]
    fresh = [make_reports(col, 1, seed=60 + i, client_ids=f"d-{i}-new")[0] for i in range(8)]
    assert api.upload(col, fresh + again).get_json()["accepted"] == 11
    for cl in known:
        row = api.device(col["id"], cl)
        assert (row.units, row.reports) == (2 * units, 2)
    assert all(api.device(col["id"], f"d-{i}-new").reports == 1 for i in range(8))
    assert api.counts(col["id"]) == {"reports": 14, "ledger": 14, "aggregated": 14}


def test_known_devices_batch_after_batch_on_one_connection(api, engine):
    """PostgreSQL runs the transaction in pipeline mode: a batch with a known device fails its
    plain INSERT mid-pipeline and recovers (savepoint); the driver then must neither run the
    rest out of sync nor name a statement the server skipped. Batch after batch, alternating
    with all-new ones, on a pool of one connection (each statement runs more often than the
    driver's prepare threshold): every batch is accepted whole."""
    from ldpserver.db import make_engine

    one = make_engine(engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    col = api.create_collection()
    known = "d-known"
    assert api.upload(col, make_reports(col, 1, seed=70, client_ids=known)).get_json()["accepted"] == 1
    from ldpserver.services.ingest import ingest

    runtime = api.client.application.extensions["ldp"].collections.get(col["id"])
    accepted = 1
    for i in range(8):
        fresh = make_reports(col, 3, seed=80 + i)
        batch = fresh + make_reports(col, 1, seed=90 + i, client_ids=known) if i % 2 else fresh
        result = ingest(one, runtime, batch, api.clock(), None)
        assert result.accepted == len(batch), result.results
        accepted += len(batch)
    one.dispose()
    assert api.counts(col["id"]) == {"reports": accepted, "ledger": accepted, "aggregated": accepted}


def test_epoch_window_grace_and_closed_epochs(api, engine):
    col = api.create_collection(epoch={"grace": 1})
    api.clock.set(EPOCH_START.replace(hour=5, minute=10))  # epoch 5
    assert api.get(f"/v1/collections/{col['id']}", role="client").get_json()["current_epoch"] == 5
    r = api.upload(col, [make_reports(col, 1, epoch=e, seed=10 + e)[0] for e in (3, 4, 5, 6)])
    assert statuses(r) == [
        ("rejected", "epoch_too_old"),
        ("accepted", None),
        ("accepted", None),
        ("rejected", "epoch_in_future"),
    ]
    assert close_epoch(engine, col["id"], 4, api.clock()) is True
    assert close_epoch(engine, col["id"], 4, api.clock()) is False
    r = api.upload(col, [make_reports(col, 1, epoch=e, seed=20 + e)[0] for e in (4, 5)])
    assert statuses(r) == [("rejected", "epoch_closed"), ("accepted", None)]


def test_lifetime_and_window_caps(api):
    col = api.create_collection(budget={"cap_lifetime": 5.0, "cap_per_window": 2.0, "window_epochs": 2})
    device = "phone-1"
    batch = make_reports(col, 3, client_ids=device, epoch=0, seed=30)
    r = api.upload(col, batch)
    assert statuses(r) == [("accepted", None), ("accepted", None), ("rejected", "budget_exceeded_window")]
    # the refused report was not kept: a retry is judged again (refused again), not a "duplicate"
    refused = batch[2]["report_id"]
    assert statuses(api.upload(col, batch)) == [("duplicate", None), ("duplicate", None),
                                                ("rejected", "budget_exceeded_window")]  # fmt: skip
    api.clock.set(EPOCH_START.replace(hour=2, minute=1))  # epoch 2: window 1
    r = api.upload(col, make_reports(col, 3, client_ids=device, epoch=2, seed=31))
    assert statuses(r) == [("accepted", None), ("accepted", None), ("rejected", "budget_exceeded_window")]
    api.clock.set(EPOCH_START.replace(hour=4, minute=1))  # epoch 4: window 2
    r = api.upload(col, make_reports(col, 3, client_ids=device, epoch=4, seed=32))
    assert statuses(r) == [("accepted", None), ("rejected", "budget_exceeded_lifetime"),
                           ("rejected", "budget_exceeded_lifetime")]  # fmt: skip
    row = api.device(col["id"], device)
    assert (row.units, row.reports) == (5, 5)
    ledger = api.get(f"/v1/audit/ledger?collection={col['id']}&client_id={device}").get_json()["items"]
    assert [x["window"] for x in ledger] == [0, 0, 1, 1, 2]
    assert sum(x["epsilon"] for x in ledger) == pytest.approx(5.0)
    assert refused not in {x["report_id"] for x in ledger}
    other = api.upload(col, make_reports(col, 1, client_ids="phone-2", epoch=4, seed=33))
    assert statuses(other) == [("accepted", None)]


def test_late_report_charges_the_previous_window(api):
    col = api.create_collection(budget={"cap_lifetime": 10.0, "cap_per_window": 1.0, "window_epochs": 1})
    api.clock.set(EPOCH_START.replace(hour=1, minute=5))  # epoch 1, grace 1: epochs 0 and 1 open
    r = api.upload(col, [*make_reports(col, 1, client_ids="d", epoch=1, seed=40),
                         *make_reports(col, 1, client_ids="d", epoch=0, seed=41),
                         *make_reports(col, 1, client_ids="d", epoch=0, seed=42)])  # fmt: skip
    assert statuses(r) == [("accepted", None), ("accepted", None), ("rejected", "budget_exceeded_window")]
    row = api.device(col["id"], "d")
    assert (row.window_index, row.window_units, row.prev_window_units) == (1, 1, 1)


def test_caps_with_non_binary_epsilon_allow_floor_cap_over_epsilon(api):
    col = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 0.1, "domain_size": 4}, budget={"cap_lifetime": 0.3}
    )
    r = api.upload(col, make_reports(col, 4, client_ids="x", seed=50))
    assert [s for s, _ in statuses(r)] == ["accepted", "accepted", "accepted", "rejected"]


def test_memoized_collection_charges_the_lifetime_bound_once(api):
    from client_sdk import longitudinal

    m = longitudinal.create_longitudinal("l-grr", epsilon_perm=1.5, epsilon_first=1.0, domain_size=4)
    col = api.create_collection(
        kind="longitudinal", mechanism=m.config, budget={"cap_lifetime": 3.0, "memoized": True, "epsilon_per_memo": 1.5}
    )
    assert col["privacy"]["charge"] == {"unit": "memo", "epsilon": 1.5, "epsilon_record": 1.5,
                                        "epsilon_attribute": None, "lifetime_units": 2,
                                        "lifetime_epsilon": 3.0}  # fmt: skip
    m = longitudinal.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(1)
    memos = m.new_memo_table(1, rng)
    dev = "tablet"

    def one() -> dict:
        [payload] = m.encode(m.perturb_batch(np.array([2]), rng, memos=memos))
        return {"report_id": new_report_id(), "client_id": dev, "config_hash": col["config_hash"],
                "epoch": col["current_epoch"], "payload": payload}  # fmt: skip

    r = api.upload(col, [one() for _ in range(5)])
    assert [s for s, _ in statuses(r)] == ["accepted"] * 5
    ledger = api.get(f"/v1/audit/ledger?collection={col['id']}").get_json()["items"]
    assert [(x["memo_count"], x["units"], x["epsilon"]) for x in ledger] == [(None, 2, 3.0)]
    row = api.device(col["id"], dev)
    assert (row.units, row.reports) == (2, 5)
    assert statuses(api.upload(col, [one()])) == [("accepted", None)]
    assert len(api.get(f"/v1/audit/ledger?collection={col['id']}").get_json()["items"]) == 1


def test_unknown_collection_and_empty_batch(api):
    col = api.create_collection()
    r = api.post(
        "/v1/collections/col_doesnotexist/reports", role="client", json={"wire": 2, "reports": make_reports(col, 1)}
    )
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    r = api.post(f"/v1/collections/{col['id']}/reports", role="client", json={"wire": 2, "reports": []})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["path"] == "/reports"
    r = api.post(f"/v1/collections/{col['id']}/reports", role="client", json={"items": []})
    assert r.status_code == 422


def test_olh_and_hadamard_collections_ingest(api):
    for mechanism in ({"mechanism": "olh", "epsilon": 1.0, "domain_size": 50}, {"mechanism": "hr", "epsilon": 1.0,
                                                                                "domain_size": 12}):  # fmt: skip
        col = api.create_collection(mechanism=mechanism)
        assert col["privacy"]["calculator"] == "closed-form"
        reports = make_reports(col, 30, seed=60)
        assert api.upload(col, reports).get_json()["accepted"] == 30
        m = mechanisms.from_config(col["config"]["mechanism"])
        n, counts = api.aggregate_counts(col["id"])
        assert n == 30 and np.array_equal(counts, m.aggregate([x["payload"] for x in reports]).counts)


def test_results_are_the_same_json_whichever_encoder_writes_them():
    """The results go out through orjson: the same document the standard encoder writes."""
    import json

    from ldpserver.api.common import json_response
    from ldpserver.api.reports import _results_response
    from ldpserver.services.ingest import BatchResult

    ordinary = {"accepted": 1, "duplicates": 0, "rejected": 1, "results": [
        {"report_id": "ab" * 16, "status": "accepted", "reason": None, "detail": None},
        {"report_id": None, "status": "rejected", "reason": "invalid_report", "detail": "/payload: ü \u2028 \"x\""},
    ]}  # fmt: skip
    fast, reference = _results_response(BatchResult(**ordinary)), json_response(ordinary)
    assert fast.mimetype == reference.mimetype == "application/json"
    assert json.loads(fast.get_data()) == json.loads(reference.get_data()) == ordinary
    # a wholly accepted batch: its answer joined from the ids, the same document
    ids = ["ab" * 16, "cd" * 16]
    joined = _results_response(BatchResult([], accepted=2, accepted_ids=ids))
    expected = {"accepted": 2, "duplicates": 0, "rejected": 0, "results": [
        {"report_id": rid, "status": "accepted", "reason": None, "detail": None} for rid in ids]}  # fmt: skip
    assert json.loads(joined.get_data()) == json.loads(json_response(expected).get_data()) == expected


def test_a_device_has_at_most_the_limit_of_reports_accepted_per_epoch(settings, engine, clock, keys):
    """``LDP_MAX_REPORTS_PER_DEVICE_EPOCH`` bounds one device's accepted reports in one epoch —
    and so the ``recent`` entries its row carries into every batch (a memoized collection's
    re-reports are free: its caps would not bound them). Retries stay duplicates; another
    device, or the next epoch, has its own allowance."""
    from ldpserver.app import create_app
    from tests.service.helpers import Api

    limited = create_app(settings.model_copy(update={"max_reports_per_device_epoch": 3}), clock=clock, engine=engine)
    api = Api(limited.test_client(), keys, engine, clock)
    col = api.create_collection()
    first = make_reports(col, 2, client_ids="dev-x", seed=41)
    assert statuses(api.upload(col, first)) == [("accepted", None)] * 2
    more = make_reports(col, 3, client_ids="dev-x", seed=42)
    assert statuses(api.upload(col, more)) == [("accepted", None)] + [("rejected", "device_epoch_limit")] * 2
    assert statuses(api.upload(col, first[:1])) == [("duplicate", None)]
    many = make_reports(col, 5, client_ids="dev-y", seed=43)  # a new device, five in one batch
    assert [status for status, _ in statuses(api.upload(col, many))] == ["accepted"] * 3 + ["rejected"] * 2
    clock.advance(hours=1)
    later = make_reports(col, 3, client_ids="dev-x", epoch=col["current_epoch"] + 1, seed=44)
    assert statuses(api.upload(col, later)) == [("accepted", None)] * 3
    assert api.counts(col["id"])["reports"] == 9
