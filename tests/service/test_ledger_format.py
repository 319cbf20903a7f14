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


def test_an_auditor_recomputes_a_chain_of_blocks_with_any_rfc8785_library(api):
    """What the audit API serves is enough: each block's text is the RFC 8785 header, then one
    RFC 8785 array per charge (here the reference implementation ``jcs``), linked from the
    ``ldp-ledger-v2`` genesis."""
    import hashlib
    from itertools import groupby

    from tests.service.helpers import make_reports

    col = api.create_collection(mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    for seed, size in ((5, 3), (6, 1)):
        assert api.upload(col, make_reports(col, size, epoch=0, seed=seed)).get_json()["accepted"] == size
    items = api.get(f"/v1/audit/ledger?collection={col['id']}").get_json()["items"]
    assert [i["seq"] for i in items] == [1, 2, 3, 4] and [i["block_seq"] for i in items] == [3, 3, 3, 4]
    previous = hashlib.sha256(f"ldp-ledger-v2\n{col['id']}\n{col['config_hash']}".encode()).hexdigest()
    fields = ["client_id", "report_id", "epoch", "window", "units", "epsilon", "epsilon_record",
              "epsilon_attribute", "memo_count", "neighbouring"]  # fmt: skip
    for block_seq, group in groupby(items, key=lambda i: i["block_seq"]):
        charges = list(group)
        first = charges[0]
        assert first["prev_hash"] == previous and len(charges) == first["block_count"]
        header = {"collection_id": col["id"], "count": len(charges), "created_at": first["created_at"],
                  "prev_hash": previous, "seq": block_seq}  # fmt: skip
        lines = b"".join(jcs.canonicalize([c[name] for name in fields]) + b"\n" for c in charges)
        assert b",1,1,null,null," in lines  # 1.0 in ECMAScript's form
        previous = hashlib.sha256(jcs.canonicalize(header) + b"\n" + lines).hexdigest()
        assert {c["row_hash"] for c in charges} == {previous}
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
    for seed, size in ((8, 5), (9, 1), (10, 3)):
        clients = [f"d{i % 3}" for i in range(size)]
        assert api.upload(col, make_reports(col, size, client_ids=clients, seed=seed)).get_json()["accepted"] == size
    run = CliRunner().invoke(
        cli, ["audit", "export", "--collection", col["id"], "--format", "jsonl"], env={"DATABASE_URL": database_url}
    )
    assert run.exit_code == 0, run.output
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 9

    charge_fields = ["client_id", "report_id", "epoch", "window", "units", "epsilon", "epsilon_record",
                     "epsilon_attribute", "memo_count", "neighbouring"]  # fmt: skip

    def number(value):
        return int(value) if isinstance(value, float) and value.is_integer() else value

    def text(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    previous = hashlib.sha256(f"ldp-ledger-v2\n{col['id']}\n{col['config_hash']}".encode()).hexdigest()
    expected_seq, blocks = 1, 0
    while expected_seq <= len(rows):
        first = rows[expected_seq - 1]
        count, last = first["block_count"], first["block_seq"]
        block = rows[expected_seq - 1 : expected_seq - 1 + count]
        assert [r["seq"] for r in block] == list(range(expected_seq, last + 1)) and first["prev_hash"] == previous
        header = text({"collection_id": col["id"], "count": count, "created_at": first["created_at"],
                       "prev_hash": previous, "seq": last})  # fmt: skip
        lines = "".join(text([number(r[k]) for k in charge_fields]) + "\n" for r in block)
        assert ',0.5,0.5,null,null,"record"]' in lines
        previous = hashlib.sha256((header + "\n" + lines).encode("utf-8")).hexdigest()
        assert {r["row_hash"] for r in block} == {previous}
        expected_seq, blocks = last + 1, blocks + 1
    assert blocks == 3
    head = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["chains"][0]
    assert head["head_seq"] == 9 and head["head_hash"] == previous


@pytest.mark.parametrize("client_id", ["device_A-1", "tab\there", "back\\slash", 'new\nline "quoted" ü\u2028'])
def test_block_charges_are_rfc8785_and_stored_exactly_whatever_their_characters(api, client_id):
    """charge_lines formats validated ids in one step and anything else through RFC 8785; the
    stored block reads back as the charges it was given, on both databases."""
    from ldpserver.services.audit import block_charges
    from ldpserver.services.bulk import Bulk
    from ldpserver.services.ledger import CHARGE_FIELDS, charge_line, charge_lines

    now = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
    charges = [
        {"client_id": client_id, "report_id": "ab" * 16, "epoch": 20428, "window": 20428, "units": 1,
         "epsilon": 0.1 + 0.2, "neighbouring": "record", "epsilon_record": 1e-300, "epsilon_attribute": None,
         "memo_count": None},
        {"client_id": "other", "report_id": "cd" * 16, "epoch": -3, "window": -1, "units": 3, "epsilon": 2.0,
         "neighbouring": "tuple", "epsilon_record": 0.5, "epsilon_attribute": 0.25, "memo_count": 7},
    ]  # fmt: skip
    text = charge_lines(charges)
    assert text == "".join(jcs.canonicalize([c[n] for n in CHARGE_FIELDS]).decode() + "\n" for c in charges)
    assert text == "".join(charge_line(c) for c in charges)
    with api.engine.connect() as conn:
        transaction = conn.begin()
        try:
            Bulk(conn).insert_ledger_block("col_rows_exactly", 9, 2, now, text, "0" * 64, "1" * 64)
            stored = conn.exec_driver_sql(
                "SELECT seq, count, prev_hash, block_hash, charges FROM ledger_blocks "
                "WHERE collection_id = 'col_rows_exactly'"
            ).one()
        finally:
            transaction.rollback()
    assert tuple(stored) == (9, 2, "0" * 64, "1" * 64, text)
    items = block_charges("col_rows_exactly", 9, 2, iso(now), "0" * 64, "1" * 64, stored[4])
    assert [{n: i[n] for n in CHARGE_FIELDS} for i in items] == charges
    assert [i["seq"] for i in items] == [8, 9]
