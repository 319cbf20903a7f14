"""The ledger's hand-written canonical row format equals its reference form, ledger_json (ldp-ledger-v1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ldpserver.clock import iso
from ldpserver.services.ledger import _trusted_hash, canonical_row, ledger_json, row_hash

ROW = {
    "collection_id": "col_0123456789abcdef",
    "seq": 17,
    "client_id": "device_A-1",
    "report_id": "ab" * 16,
    "epoch": -2,
    "window": -1,
    "units": 3,
    "epsilon": 0.1 + 0.2,
    "neighbouring": "record",
    "epsilon_record": 1.8172403153900512,
    "epsilon_attribute": None,
    "memo_count": None,
    "created_at": "2025-01-01T00:00:00.000001Z",
    "prev_hash": "f" * 64,
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"epsilon_attribute": 1.0, "memo_count": 4, "neighbouring": "tuple"},
        {"epsilon": 1e-300, "epsilon_record": 123456789.125, "seq": 2**62},
        {"client_id": 'we"ird\\ü\n'},  # only a tampered row could hold this; it must still be canonical
    ],
)
def test_canonical_row_is_canonical_json(changes):
    row = ROW | changes
    assert canonical_row(row) == ledger_json(row)
    if "client_id" not in changes:
        assert _trusted_hash(row) == row_hash(row)


def test_datetimes_hash_as_their_canonical_text():
    when = datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert row_hash(ROW | {"created_at": when}) == row_hash(ROW | {"created_at": iso(when)})
    assert row_hash(ROW | {"created_at": when.replace(tzinfo=None)}) == row_hash(ROW)
