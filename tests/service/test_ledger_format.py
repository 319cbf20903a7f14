"""The ledger's hand-written canonical row forms equal their references: RFC 8785 (chain format
``ldp-ledger-v2``, config version 2) and ledger_json (``ldp-ledger-v1``, config version 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import jcs
import pytest

from client_sdk.canonical import canonical_json
from ldpserver.clock import iso
from ldpserver.services.ledger import _trusted_hash, canonical_row, es_number, genesis_hash, ledger_json, row_hash

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
def test_canonical_row_of_v1_chains_is_ledger_json(changes):
    row = ROW | changes
    assert canonical_row(row, 1) == ledger_json(row)
    if "client_id" not in changes:
        assert _trusted_hash(row, 1) == row_hash(row, 1)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"epsilon_attribute": 1.0, "memo_count": 4, "neighbouring": "tuple"},
        {"epsilon": 1e-300, "epsilon_record": 123456789.125, "seq": 2**52},
        {"epsilon": 1e-5, "epsilon_record": 1e-7, "epsilon_attribute": 2.5e16},
        {"epsilon": 20.0, "epsilon_record": 0.1 + 0.2, "epsilon_attribute": 1e21},
        {"client_id": 'we"ird\\ü\n\u2028'},  # only a tampered row could hold this; it must still be canonical
    ],
)
def test_canonical_row_of_v2_chains_is_rfc8785(changes):
    row = ROW | changes
    assert canonical_row(row) == canonical_json(row) == jcs.canonicalize(row).decode()
    assert row_hash(row) == row_hash(row, 2)
    if "epsilon_attribute" in changes:  # 1.0 / 2.5e16 / 1e21: written differently by the two formats
        assert row_hash(row, 2) != row_hash(row, 1)
    if "client_id" not in changes:
        assert _trusted_hash(row) == row_hash(row)


def test_es_number_is_the_rfc8785_number_form():
    for x in (0.0, -0.0, 1.0, -3.0, 0.5, 0.1 + 0.2, 1e-4, 1e-5, 1e-6, 1e-7, 123.456, 1e15, 1e16, 1e20, 1e21, 5e-324):
        assert es_number(x) == canonical_json(x) == jcs.canonicalize(x).decode(), x


def test_genesis_names_the_chain_format():
    assert (
        genesis_hash("col_x", "sha256:00", 1)
        != genesis_hash("col_x", "sha256:00")
        == genesis_hash("col_x", "sha256:00", 2)
    )


def test_datetimes_hash_as_their_canonical_text():
    when = datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert row_hash(ROW | {"created_at": when}) == row_hash(ROW | {"created_at": iso(when)})
    assert row_hash(ROW | {"created_at": when.replace(tzinfo=None)}) == row_hash(ROW)


def test_an_auditor_recomputes_a_v2_chain_with_any_rfc8785_library(api):
    """What the audit API serves is enough: SHA-256 of the RFC 8785 text of the hashed fields
    (here the reference implementation ``jcs``), linked from the ``ldp-ledger-v2`` genesis."""
    import hashlib

    from ldpserver.services.ledger import HASHED_FIELDS
    from tests.service.helpers import make_reports

    col = api.create_collection(mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    assert api.upload(col, make_reports(col, 3, epoch=0, seed=5)).get_json()["accepted"] == 3
    items = api.get(f"/v1/audit/ledger?collection={col['id']}").get_json()["items"]
    assert len(items) == 3
    previous = hashlib.sha256(f"ldp-ledger-v2\n{col['id']}\n{col['config_hash']}".encode()).hexdigest()
    for item in sorted(items, key=lambda i: i["seq"]):
        fields = {name: item[name] for name in HASHED_FIELDS}
        assert fields["prev_hash"] == previous
        assert '"epsilon":1,' in jcs.canonicalize(fields).decode()  # 1.0 in ECMAScript's form
        previous = hashlib.sha256(jcs.canonicalize(fields)).hexdigest()
        assert item["row_hash"] == previous
    assert api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["ok"] is True


@pytest.mark.parametrize("chain", [1, 2])
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"epsilon_attribute": 1.0, "memo_count": 4, "neighbouring": "tuple"},
        {"epsilon": 1e-5, "epsilon_record": 1e-7, "epsilon_attribute": 2.5e16, "seq": 2**52},
        {"client_id": 'we"ird\\ü\n'},
        {"report_id": "ab\u2028cd"},
        {"memo_count": True},
    ],
)
def test_the_verifiers_fast_form_is_the_canonical_row(changes, chain):
    """What verification hashes for a stored row (values in sorted field order) is row_hash,
    for ordinary rows and for the odd values only a tampered row could hold."""
    from ldpserver.services.ledger_verify import _SORTED_FIELDS, _stored_hash

    row = ROW | changes
    values = tuple(row[name] for name in _SORTED_FIELDS)
    assert _stored_hash(values, row["created_at"], chain) == row_hash(row, chain)


@pytest.mark.parametrize("field", ["epoch", "seq", "units", "window", "memo_count"])
def test_a_float_where_an_integer_belongs_changes_the_hash(field):
    """A tampered ``epoch = 5.5`` must not be formatted back into the original ``5``."""
    from ldpserver.services.ledger_verify import _SORTED_FIELDS, _stored_hash

    row = ROW | {"memo_count": 4}
    tampered = row | {field: row[field] + 0.5}
    values = tuple(tampered[name] for name in _SORTED_FIELDS)
    assert _stored_hash(values, row["created_at"], 2) != row_hash(row, 2)


def test_an_auditor_recomputes_the_exported_ledger_with_hashlib_and_json_only(api, database_url):
    """The procedure docs/data-model.md gives, on the rows ``ldp audit export`` writes, with no
    project code and no JCS library: only hashlib and json (numbers written as ECMAScript
    does, which for these values means: an integral float loses its ``.0``)."""
    import hashlib
    import json

    from click.testing import CliRunner

    from ldpserver.cli import main as cli
    from tests.service.helpers import make_reports

    col = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 0.5, "domain_size": 4}, budget={"cap_lifetime": 100.0}
    )
    clients = [f"d{i % 3}" for i in range(9)]
    assert api.upload(col, make_reports(col, 9, client_ids=clients, seed=8)).get_json()["accepted"] == 9
    run = CliRunner().invoke(
        cli, ["audit", "export", "--collection", col["id"], "--format", "jsonl"], env={"DATABASE_URL": database_url}
    )
    assert run.exit_code == 0, run.output
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 9

    hashed = ["client_id", "collection_id", "created_at", "epoch", "epsilon", "epsilon_attribute", "epsilon_record",
              "memo_count", "neighbouring", "prev_hash", "report_id", "seq", "units", "window"]  # fmt: skip

    def number(value):
        return int(value) if isinstance(value, float) and value.is_integer() else value

    previous = hashlib.sha256(f"ldp-ledger-v2\n{col['id']}\n{col['config_hash']}".encode()).hexdigest()
    expected_seq = 1
    for row in rows:
        assert row["seq"] == expected_seq and row["prev_hash"] == previous
        text = json.dumps({k: number(row[k]) for k in hashed}, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)  # fmt: skip
        assert '"epsilon":0.5,' in text
        previous = hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert row["row_hash"] == previous
        expected_seq += 1
    head = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["chains"][0]
    assert head["head_seq"] == 9 and head["head_hash"] == previous


@pytest.mark.parametrize("client_id", ["device_A-1", "tab\there", "back\\slash", "new\nline"])
def test_ledger_rows_are_stored_exactly_whatever_their_characters(api, client_id):
    """insert_ledger_rows writes what it is given: COPY text on PostgreSQL when no value needs
    escaping, the parameterised statement otherwise (and executemany on SQLite)."""
    from ldpserver.services.bulk import Bulk

    now = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
    rows = [
        (1, client_id, "ab" * 16, 20428, 20428, 1, 0.1 + 0.2, "record", 1e-300, None, None, "0" * 64, "1" * 64),
        (2, "other", "cd" * 16, 20429, 20428, 3, 2.0, "tuple", 0.5, 0.25, 7, "1" * 64, "2" * 64),
    ]
    with api.engine.connect() as conn:
        transaction = conn.begin()
        try:
            Bulk(conn).insert_ledger_rows("col_rows_exactly", rows, now)
            stored = conn.exec_driver_sql(
                'SELECT seq, client_id, report_id, epoch, "window", units, epsilon, neighbouring, epsilon_record, '
                "epsilon_attribute, memo_count, prev_hash, row_hash, created_at FROM budget_ledger "
                "WHERE collection_id = 'col_rows_exactly' ORDER BY seq"
            ).all()
        finally:
            transaction.rollback()
    assert [tuple(row[:13]) for row in stored] == rows
    assert {iso(row[13]) if isinstance(row[13], datetime) else row[13] for row in stored} in (
        {iso(now)},
        {"2026-12-06 12:00:00.123456"},  # SQLite keeps SQLAlchemy's naive UTC text
    )
