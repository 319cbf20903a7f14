"""The batch-at-once forms of the hot path agree with the per-report forms they stand in for: the wire
model (well_formed accepts only what ReportIn accepts), json.dumps (payload_texts) and
plan_device (plan_new_singles)."""

from __future__ import annotations

import hashlib
import json
import zlib
from types import SimpleNamespace

import pytest

from ldpserver.schemas.reports import ReportIn
from ldpserver.services.batch_check import Report, payload_texts, well_formed
from ldpserver.services.device_budgets import (
    BatchVerdicts,
    DeviceState,
    candidate,
    candidates,
    legacy_digest,
    parse_recent,
    payload_digest,
    plan_device,
    plan_new_singles,
    recent_entry,
)

HASH = "sha256:" + "ab" * 32


def _report(i: int, **changes):
    return {"report_id": f"{i:032x}", "client_id": f"device-{i}", "config_hash": HASH, "epoch": 7,
            "payload": {"v": 1, "m": "oue", "bits": "AA=="}} | changes  # fmt: skip


def test_a_well_formed_batch_is_taken_column_by_column():
    raws = [_report(i) for i in range(5)]
    reports = well_formed(raws, HASH, 6, 7)
    assert reports is not None and all(isinstance(r, Report) for r in reports)
    for raw, report in zip(raws, reports, strict=True):
        model = ReportIn.model_validate(raw)
        assert tuple(report) == (model.report_id, model.client_id, model.config_hash, model.epoch, model.payload)


@pytest.mark.parametrize(
    "changes",
    [
        {"report_id": "A" * 32},  # upper case
        {"report_id": "0" * 31},
        {"report_id": "0" * 32 + "\n"},
        {"report_id": "0" * 32 + "\n" + "1" * 32},  # two ids' worth in one
        {"report_id": 5},
        {"report_id": "\u0660" * 32},  # a digit, but not [0-9]
        {"report_id": "\u00e9" * 32},
        {"client_id": ""},
        {"client_id": "caf\u00e9"},
        {"client_id": "a.b"},
        {"client_id": "x" * 65},
        {"client_id": "a b"},
        {"client_id": "a\nb"},
        {"client_id": None},
        {"config_hash": "sha256:" + "cd" * 32},  # another collection's: config_mismatch, per report
        {"config_hash": ["not", "hashable"]},
        {"epoch": True},
        {"epoch": 7.0},
        {"epoch": "7"},
        {"epoch": 8},  # in the future
        {"epoch": 5},  # too old
        {"payload": []},
        {"payload": "text"},
        {"extra": 1},
    ],
)
def test_anything_else_is_left_to_the_wire_model(changes):
    raws = [_report(i) for i in range(3)] + [_report(3, **changes)]
    assert well_formed(raws, HASH, 6, 7) is None


def test_missing_fields_and_non_objects_are_left_to_the_wire_model():
    without = _report(1)
    del without["payload"]
    assert well_formed([_report(0), without], HASH, 6, 7) is None
    assert well_formed([_report(0), "report"], HASH, 6, 7) is None
    assert well_formed([], HASH, 6, 7) is None


def test_payload_texts_are_json_dumps_sorted_compact_utf8():
    reference = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False).encode
    payloads = [{"v": 1, "m": "oue", "bits": "AA=="}, {"b": [1.5, 1e-5, 2**70, None, True], "a": 'ü\n\u2028"\\'}, {}]
    assert payload_texts(payloads) == [reference(p) for p in payloads]
    # flat payloads of strings, integers, booleans and nulls take orjson: every escape and key order as json's
    every_char = "".join(map(chr, range(0x800))) + "\u2028\u2029\ufeff\U0001f600"
    flat = [{"v": 1, "m": "grr", "y": 2**63 - 1}, {"z": every_char, "é": -(2**63), "a": True, "b": None, "😀": ""}]
    assert payload_texts(flat) == [reference(p) for p in flat]
    # what orjson refuses takes the standard encoder: an integer beyond 64 bits, a lone surrogate
    odd = [{"v": 2**64, "m": "grr"}, {"m": "\ud800"}]
    assert payload_texts(odd) == [reference(p) for p in odd]
    assert payload_texts([{"v": 1, "x": 0.1}, {"v": 1}]) == ['{"v":1,"x":0.1}', '{"v":1}']
    with pytest.raises(ValueError):
        payload_texts([{"x": float("nan")}])


def _collection(memoized: bool, cap_lifetime: float, cap_window: float | None):
    return SimpleNamespace(
        max_units_lifetime=int(cap_lifetime), max_units_window=None if cap_window is None else int(cap_window),
        memoized=memoized, lifetime_units=3, charge_epsilon=1.0, cap_lifetime=cap_lifetime, cap_window=cap_window,
        neighbouring="record", charge_epsilon_record=2.0, charge_epsilon_attribute=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "memoized, cap_lifetime, cap_window",
    [(False, 10.0, 2.0), (False, 10.0, None), (True, 10.0, None), (True, 2.0, None), (False, 0.0, None)],
)
def test_new_single_devices_get_the_verdict_planning_each_device_gives(memoized, cap_lifetime, cap_window):
    c = _collection(memoized, cap_lifetime, cap_window)
    cands = [
        candidate(i, Report(f"{i:032x}", f"dev{i}", HASH, epoch, {}), "{}", epoch // 2)
        for i, epoch in enumerate([4, 5, 6, 7, 7, 4])
    ]
    each = BatchVerdicts.of_plans(
        {cand.report.client_id: plan_device(c, DeviceState.new(), [cand]) for cand in cands}, lowest=0
    )
    once = plan_new_singles(c, cands)
    assert once.rows == each.rows
    assert once.recents == each.recents
    assert sorted(once.charges, key=lambda x: x[0]) == sorted(each.charges, key=lambda x: x[0])
    assert [cand.index for cand in once.accepted] == sorted(cand.index for cand in each.accepted)
    assert sorted((cand.index, reason) for cand, reason, _ in once.rejections) == sorted(
        (cand.index, reason) for cand, reason, _ in each.rejections
    )


def test_a_device_recognises_its_recent_reports_and_forgets_those_past_the_window():
    """``recent`` is the idempotency key: a stored (epoch, report_id) with the same payload
    digest is a duplicate, with another a conflict, and neither is charged; entries of epochs
    below the oldest accepted one are dropped when the row is written."""
    c = _collection(False, 10.0, None)
    old, kept = f"{1:032x}", f"{2:032x}"
    stored = ",".join([recent_entry(3, old, payload_digest("{}")), recent_entry(5, kept, payload_digest("{}"))])
    state = DeviceState(2, 2, 0, 2, 2, 0, recent=parse_recent(stored))
    cands = [
        candidate(0, Report(kept, "dev", HASH, 5, {}), "{}", 2),  # a retry
        candidate(1, Report(kept, "dev", HASH, 5, {"x": 1}), '{"x":1}', 2),  # the id, another body
        candidate(2, Report(kept, "dev", HASH, 6, {}), "{}", 3),  # the id in another epoch: new
    ]
    plan = plan_device(c, state, cands)
    assert [(cand.index, same) for cand, same in plan.repeats] == [(0, True), (1, False)]
    assert [cand.index for cand in plan.accepted] == [2] and len(plan.charges) == 1 and state.units == 3
    verdicts = BatchVerdicts.of_plans({"dev": plan}, lowest=4)
    assert parse_recent(verdicts.recents["dev"]) == {(5, kept): payload_digest("{}"), (6, kept): payload_digest("{}")}
    assert payload_digest("{}") == "c" + str(zlib.crc32(b"{}"))


def test_recent_entries_written_with_the_older_md5_digest_are_still_recognised():
    """Entries stored before the CRC-32 digest (and by migration 0011) hold 8 hex digits of
    the payload's MD5: a retry of such a report is still a duplicate, another body a conflict."""
    c = _collection(False, 10.0, None)
    kept = f"{2:032x}"
    assert legacy_digest("{}") == hashlib.md5(b"{}").hexdigest()[:8]
    state = DeviceState(1, 1, 0, 2, 1, 0, recent=parse_recent(recent_entry(5, kept, legacy_digest("{}"))))
    cands = [
        candidate(0, Report(kept, "dev", HASH, 5, {}), "{}", 2),  # a retry
        candidate(1, Report(kept, "dev", HASH, 5, {"x": 1}), '{"x":1}', 2),  # the id, another body
    ]
    plan = plan_device(c, state, cands)
    assert [(cand.index, same) for cand, same in plan.repeats] == [(0, True), (1, False)] and state.units == 1


def test_candidates_of_a_batch_equal_those_staged_one_by_one():
    reports = [Report(f"{i:032x}", f"dev{i}", HASH, 7, {"x": i}) for i in range(50)]
    texts = [f'{{"x":{i}}}' for i in range(50)]
    batch = candidates(range(50), reports, texts, [3] * 50)
    assert batch == [candidate(i, r, t, 3) for i, (r, t) in enumerate(zip(reports, texts, strict=True))]
    assert batch[7].digest == payload_digest(texts[7]) and batch[7].report is reports[7]


def test_a_wholly_accepted_batch_answers_the_same_bytes_as_its_results_encoded():
    import orjson

    from ldpserver.services.ingest import BatchResult

    ids = [f"{i:032x}" for i in range(3)]
    joined = BatchResult(results=[], accepted=3, accepted_ids=ids)
    assert joined.to_json() == orjson.dumps(joined.to_dict())
    assert [r["report_id"] for r in joined.result_list()] == ids and orjson.loads(joined.to_json())["accepted"] == 3
    mixed = BatchResult(
        results=[{"report_id": ids[0], "status": "rejected", "reason": "invalid_report", "detail": "x"}], rejected=1
    )
    assert orjson.loads(mixed.to_json())["results"] == mixed.results
