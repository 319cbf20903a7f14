"""Auditor endpoints and the offline CLI check: ledger pages (JSON/CSV), summaries, tamper detection."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from ldpserver import schema
from ldpserver.app import create_app
from ldpserver.cli import main as cli
from ldpserver.clock import FakeClock, iso
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.models import LedgerBlock, LedgerEntry, LedgerHead
from ldpserver.services.keys import create_key
from ldpserver.services.ledger import block_hash, block_header, genesis_hash, row_hash
from tests.service.conftest import fresh_database
from tests.service.helpers import T0, Api, make_reports


def test_ledger_pages_json_and_csv(api):
    col = api.create_collection(budget={"cap_lifetime": 100.0})
    api.upload(col, make_reports(col, 7, client_ids=[f"c{i % 3}" for i in range(7)], seed=1))
    base = f"/v1/audit/ledger?collection={col['id']}"
    page1 = api.get(base + "&limit=3")
    body = page1.get_json()
    assert [row["seq"] for row in body["items"]] == [1, 2, 3]
    assert body["next_cursor"] and page1.headers["X-Next-Cursor"] == body["next_cursor"]
    assert 'rel="next"' in page1.headers["Link"]
    seqs = [row["seq"] for row in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        body = api.get(base + f"&limit=3&cursor={cursor}").get_json()
        seqs += [row["seq"] for row in body["items"]]
        cursor = body["next_cursor"]
    assert seqs == list(range(1, 8))
    first = api.get(base).get_json()["items"][0]
    assert first["prev_hash"] != first["row_hash"] and first["neighbouring"] == "record" and first["epsilon"] == 1.0
    only_c1 = api.get(base + "&client_id=c1").get_json()["items"]
    assert {row["client_id"] for row in only_c1} == {"c1"} and len(only_c1) == 2
    for response in (api.get(base, headers={"Accept": "text/csv"}), api.get(base + "&format=csv")):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert len(rows) == 7 and rows[0]["seq"] == "1" and rows[0]["row_hash"] == first["row_hash"]
    assert api.get(base, headers={"Accept": "application/xml"}).status_code == 406
    assert api.get(base + "&cursor=garbage!").status_code == 422
    assert api.get(base + "&limit=0").status_code == 422


def test_summary_distribution_and_max_versus_cap(api):
    col = api.create_collection(budget={"cap_lifetime": 4.0, "cap_per_window": 3.0})
    clients = ["a"] * 5 + ["b"] * 2 + ["c"]
    api.upload(col, make_reports(col, len(clients), client_ids=clients, seed=2))
    summary = api.get(f"/v1/audit/summary?collection={col['id']}&bins=4").get_json()
    assert summary["devices"] == 3 and summary["reports_accepted"] == 6 and summary["ledger_rows"] == 6
    assert summary["max_spent"] == 3.0 and summary["cap_lifetime"] == 4.0 and not summary["max_over_cap"]
    assert summary["max_window_spent"] == 3.0
    assert summary["quantiles"]["p50"] == 2.0 and summary["epsilon_total"] == 6.0
    assert [b["devices"] for b in summary["histogram"]] == [0, 1, 1, 1]
    assert summary["rejections"] == {"budget_exceeded_window": 2}
    assert api.get("/v1/audit/summary?collection=col_nope").status_code == 404
    assert api.get("/v1/audit/summary").status_code == 422


def test_verify_clean_chain_api_and_cli(api, database_url):
    col = api.create_collection()
    api.upload(col, make_reports(col, 5, seed=3))
    result = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()
    assert result["ok"] and result["chains"][0]["rows"] == 5 and result["chains"][0]["head_seq"] == 5
    run = CliRunner().invoke(cli, ["audit", "verify", "--collection", col["id"]], env={"DATABASE_URL": database_url})
    assert run.exit_code == 0, run.output
    assert f"ok       {col['id']}: 5 rows" in run.output


# --- tampering, in a database of its own ----------------------------------------------------
@pytest.fixture
def tamper_env(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        schema.upgrade(url)
        engine = make_engine(url, null_pool=True)
        now = datetime.now(UTC)
        keys = {role: create_key(engine, role, "t", now)[1] for role in ("client", "auditor", "admin")}
        clock = FakeClock(T0)
        app = create_app(Settings(database_url=url, log_level="WARNING"), clock=clock, engine=engine)
        try:
            yield url, engine, Api(app.test_client(), keys, engine, clock)
        finally:
            engine.dispose()


def _unguard(conn, backend: str) -> None:
    """What an attacker with database access would do first: lift the append-only triggers."""
    for table in ("budget_ledger", "ledger_blocks"):
        if backend == "postgresql":
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        else:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
            conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


def _upload_blocks(api, col, sizes, seed):
    """One upload (one ledger block) per size: blocks ending at seq 2, 4, 6, ... for sizes of 2."""
    for i, size in enumerate(sizes):
        assert api.upload(col, make_reports(col, size, seed=seed + i)).get_json()["accepted"] == size


def test_ledger_is_append_only_in_the_database(tamper_env):
    _, engine, api = tamper_env
    col = api.create_collection()
    api.upload(col, make_reports(col, 2, seed=4))
    for statement in ("UPDATE ledger_blocks SET created_at = created_at", "DELETE FROM ledger_blocks"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_modified_and_deleted_blocks_are_caught_by_api_and_cli(tamper_env, backend):
    url, engine, api = tamper_env
    cols = {name: api.create_collection(name=name) for name in ("modified", "relinked", "deleted", "truncated")}
    for i, col in enumerate(cols.values()):
        _upload_blocks(api, col, [2, 2, 2, 2], seed=100 + 10 * i)  # blocks end at seq 2, 4, 6, 8
    assert api.get("/v1/audit/verify").get_json()["ok"]
    ids = {name: col["id"] for name, col in cols.items()}
    blocks = LedgerBlock.__table__
    with engine.begin() as conn:
        _unguard(conn, backend)
        # 1. change what a block says (a smaller charge for its first charge)
        charges = conn.execute(
            select(blocks.c.charges).where(blocks.c.collection_id == ids["modified"], blocks.c.seq == 6)
        ).scalar_one()
        conn.execute(
            text("UPDATE ledger_blocks SET charges = :ch WHERE collection_id = :c AND seq = 6"),
            {"ch": charges.replace(",1,1,1,null,", ",1,0.25,1,null,", 1), "c": ids["modified"]},
        )
        # 2. change a block and recompute its own hash: the next block's link breaks
        row = (
            conn.execute(select(blocks).where(blocks.c.collection_id == ids["relinked"], blocks.c.seq == 4))
            .mappings()
            .one()
        )
        client = json.loads(row["charges"].split("\n", 1)[0])[0]
        forged = row["charges"].replace(f'"{client}"', '"someone-else"', 1)
        created = iso(row["created_at"])
        digest = block_hash(block_header(ids["relinked"], 4, 2, created, row["prev_hash"]), forged)
        conn.execute(
            text("UPDATE ledger_blocks SET charges = :ch, block_hash = :h WHERE collection_id = :c AND seq = 4"),
            {"ch": forged, "h": digest, "c": ids["relinked"]},
        )
        # 3. remove a block in the middle, 4. remove the last block
        conn.execute(text("DELETE FROM ledger_blocks WHERE collection_id = :c AND seq = 4"), {"c": ids["deleted"]})
        conn.execute(text("DELETE FROM ledger_blocks WHERE collection_id = :c AND seq = 8"), {"c": ids["truncated"]})

    expected = {"modified": (5, "hash_mismatch"), "relinked": (5, "broken_link"), "deleted": (5, "gap"),
                "truncated": (7, "truncated")}  # fmt: skip
    result = api.get("/v1/audit/verify").get_json()
    assert result["ok"] is False
    chains = {chain["collection_id"]: chain for chain in result["chains"]}
    for name, (seq, problem) in expected.items():
        bad = chains[ids[name]]["first_bad"]
        assert (bad["seq"], bad["problem"]) == (seq, problem), (name, bad)
        one = api.get(f"/v1/audit/verify?collection={ids[name]}").get_json()
        assert not one["ok"] and one["chains"][0]["first_bad"]["seq"] == seq

    run = CliRunner().invoke(cli, ["audit", "verify"], env={"DATABASE_URL": url})
    assert run.exit_code == 1, run.output
    assert "TAMPERING DETECTED" in run.output
    for name, (seq, problem) in expected.items():
        assert f"TAMPERED {ids[name]}: first bad row seq={seq} ({problem})" in run.output
    one = CliRunner().invoke(cli, ["audit", "verify", "--collection", ids["modified"], "--json"],
                             env={"DATABASE_URL": url})  # fmt: skip
    assert one.exit_code == 1 and '"problem": "hash_mismatch"' in one.output


def _legacy_rows(conn, col, count, now):
    """Rows of their own, as chains were written before blocks (format ldp-ledger-v2), and the head."""
    table, heads = LedgerEntry.__table__, LedgerHead.__table__
    previous = genesis_hash(col["id"], col["config_hash"])
    for seq in range(1, count + 1):
        row = {"collection_id": col["id"], "seq": seq, "client_id": f"old{seq}", "report_id": f"{seq:032x}",
               "epoch": 0, "window": 0, "units": 1, "epsilon": 1.0, "neighbouring": "record",
               "epsilon_record": 1.0, "epsilon_attribute": None, "memo_count": None, "created_at": now,
               "prev_hash": previous}  # fmt: skip
        previous = row_hash(row)
        conn.execute(table.insert().values(**row, row_hash=previous))
    conn.execute(heads.update().where(heads.c.collection_id == col["id"]).values(seq=count, head_hash=previous))


def test_a_chain_of_rows_continues_in_blocks_and_both_are_checked(tamper_env, backend):
    """Chains written before blocks keep their rows; the first block links to the last row, the
    pages serve rows and block charges in one order, and a tampered row is still caught."""
    url, engine, api = tamper_env
    cols = [api.create_collection(name=f"legacy{i}") for i in range(2)]
    with engine.begin() as conn:
        for col in cols:
            _legacy_rows(conn, col, 3, datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC))
    for i, col in enumerate(cols):
        _upload_blocks(api, col, [2, 1], seed=200 + 10 * i)
    clean = api.get(f"/v1/audit/verify?collection={cols[0]['id']}").get_json()["chains"][0]
    assert clean["ok"] and clean["rows"] == 6 and clean["head_seq"] == 6
    items = api.get(f"/v1/audit/ledger?collection={cols[0]['id']}&limit=4").get_json()
    more = api.get(f"/v1/audit/ledger?collection={cols[0]['id']}&cursor={items['next_cursor']}").get_json()
    rows = items["items"] + more["items"]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["block_seq"] for r in rows] == [None, None, None, 5, 5, 6]
    assert rows[3]["prev_hash"] == rows[2]["row_hash"] and rows[5]["prev_hash"] == rows[4]["row_hash"]
    for statement in ("UPDATE budget_ledger SET epsilon = 0.1", "DELETE FROM budget_ledger"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.begin() as conn:
        _unguard(conn, backend)
        conn.execute(text("UPDATE budget_ledger SET epsilon = 0.5 WHERE collection_id = :c AND seq = 2"),
                     {"c": cols[1]["id"]})  # fmt: skip
    bad = api.get(f"/v1/audit/verify?collection={cols[1]['id']}").get_json()["chains"][0]["first_bad"]
    assert (bad["seq"], bad["problem"]) == (2, "hash_mismatch")


def test_verify_walks_a_long_chain_in_bounded_steps(api, monkeypatch):
    """Past its time budget /v1/audit/verify answers complete=false with a cursor; following the
    cursors checks every row once, and the cursor's hash is what the next step links to."""
    import ldpserver.api.audit as audit_api
    from ldpserver.services import ledger_verify as ledger

    col = api.create_collection(budget={"cap_lifetime": 100.0})
    _upload_blocks(api, col, [2, 2, 2, 1], seed=21)  # blocks end at seq 2, 4, 6, 7
    monkeypatch.setattr(audit_api, "VERIFY_SECONDS", 0.0)  # every answer stops at its first look at the clock
    monkeypatch.setattr(ledger, "_CHECK_EVERY", 2)
    base = f"/v1/audit/verify?collection={col['id']}"
    body = api.get(base).get_json()
    steps = [body]
    while not body["complete"]:
        assert body["ok"] and body["next_cursor"]
        body = api.get(base + f"&cursor={body['next_cursor']}").get_json()
        steps.append(body)
    assert len(steps) == 4 and body["ok"] and body["next_cursor"] is None
    assert [s["chains"][0]["from_seq"] for s in steps] == [1, 3, 5, 7]
    assert sum(s["chains"][0]["rows"] for s in steps) == 7
    assert [s["chains"][0]["complete"] for s in steps] == [False, False, False, True]

    # a cursor whose hash is not charge 2's: the walk names block 4's link (from charge 3) as broken
    collection_id, seq, _ = audit_api.decode_verify_cursor(steps[0]["next_cursor"])
    forged = audit_api.encode_verify_cursor(collection_id, seq, "0" * 64)
    bad = api.get(base + f"&cursor={forged}").get_json()
    assert not bad["ok"] and bad["chains"][0]["first_bad"]["problem"] == "broken_link"
    assert bad["chains"][0]["first_bad"]["seq"] == 3
    assert api.get(base + "&cursor=garbage!").status_code == 422
    assert api.get(base + "&cursor=" + audit_api.encode_verify_cursor(collection_id, 3, "xyz")).status_code == 422
    other = api.create_collection(name="other")
    misplaced = api.get(f"/v1/audit/verify?collection={other['id']}&cursor={steps[0]['next_cursor']}")
    assert misplaced.status_code == 422


def test_verify_all_collections_resumes_across_chains(api, monkeypatch):
    import ldpserver.api.audit as audit_api
    from ldpserver.services import ledger_verify as ledger

    cols = [api.create_collection(name=f"c{i}") for i in range(3)]
    for i, col in enumerate(cols):
        assert api.upload(col, make_reports(col, 3, seed=30 + i)).get_json()["accepted"] == 3
    monkeypatch.setattr(audit_api, "VERIFY_SECONDS", 0.0)
    monkeypatch.setattr(ledger, "_CHECK_EVERY", 1)
    body = api.get("/v1/audit/verify").get_json()
    seen: dict[str, int] = {}
    for _ in range(5000):  # the session's database holds other tests' collections too
        for chain in body["chains"]:
            seen[chain["collection_id"]] = seen.get(chain["collection_id"], 0) + chain["rows"]
        if body["complete"]:
            break
        body = api.get(f"/v1/audit/verify?cursor={body['next_cursor']}").get_json()
    assert body["complete"] and body["ok"]
    for col in cols:
        assert seen[col["id"]] == 3


@pytest.mark.parametrize("moved", ["one microsecond", "not a timestamp"])
def test_a_moved_or_unreadable_timestamp_is_caught(tamper_env, backend, moved):
    _, engine, api = tamper_env
    col = api.create_collection(name="moved")
    _upload_blocks(api, col, [1, 1, 1], seed=40)
    if backend == "postgresql":
        value = "created_at + interval '1 microsecond'" if moved == "one microsecond" else "'1970-01-01'"
    else:
        value = "'2020-01-01 00:00:00.000001'" if moved == "one microsecond" else "'yesterday'"
    with engine.begin() as conn:
        _unguard(conn, backend)
        conn.execute(text(f"UPDATE ledger_blocks SET created_at = {value} WHERE collection_id = :c AND seq = 2"),
                     {"c": col["id"]})  # fmt: skip
    bad = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["chains"][0]["first_bad"]
    assert (bad["seq"], bad["problem"]) == (2, "hash_mismatch")
