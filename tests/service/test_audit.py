"""Auditor endpoints and the offline CLI check: ledger pages (JSON/CSV), summaries, tamper detection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from ldpserver import schema
from ldpserver.app import create_app
from ldpserver.cli import main as cli
from ldpserver.clock import FakeClock
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.models import LedgerEntry
from ldpserver.services.keys import create_key
from ldpserver.services.ledger import row_hash
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
    if backend == "postgresql":
        conn.execute(text("ALTER TABLE budget_ledger DISABLE TRIGGER budget_ledger_append_only"))
    else:
        conn.execute(text("DROP TRIGGER IF EXISTS budget_ledger_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS budget_ledger_no_delete"))


def test_ledger_is_append_only_in_the_database(tamper_env):
    _, engine, api = tamper_env
    col = api.create_collection()
    api.upload(col, make_reports(col, 2, seed=4))
    for statement in ("UPDATE budget_ledger SET epsilon = 0.1", "DELETE FROM budget_ledger"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_modified_and_deleted_rows_are_caught_by_api_and_cli(tamper_env, backend):
    url, engine, api = tamper_env
    cols = {name: api.create_collection(name=name) for name in ("modified", "relinked", "deleted", "truncated")}
    for i, col in enumerate(cols.values()):
        assert api.upload(col, make_reports(col, 5, seed=10 + i)).get_json()["accepted"] == 5
    assert api.get("/v1/audit/verify").get_json()["ok"]
    ids = {name: col["id"] for name, col in cols.items()}
    with engine.begin() as conn:
        _unguard(conn, backend)
        # 1. change what a row says (a smaller charge)
        conn.execute(text("UPDATE budget_ledger SET epsilon = 0.25 WHERE collection_id = :c AND seq = 3"),
                     {"c": ids["modified"]})  # fmt: skip
        # 2. change a row and recompute its own hash: the next row's link breaks
        table = LedgerEntry.__table__
        row = (
            conn.execute(select(table).where(table.c.collection_id == ids["relinked"], table.c.seq == 2))
            .mappings()
            .one()
        )
        forged = dict(row) | {"client_id": "someone-else"}
        conn.execute(
            text("UPDATE budget_ledger SET client_id = :cl, row_hash = :h WHERE collection_id = :c AND seq = 2"),
            {"cl": "someone-else", "h": row_hash(forged), "c": ids["relinked"]},
        )
        # 3. remove a row in the middle, 4. remove the last row
        conn.execute(text("DELETE FROM budget_ledger WHERE collection_id = :c AND seq = 3"), {"c": ids["deleted"]})
        conn.execute(text("DELETE FROM budget_ledger WHERE collection_id = :c AND seq = 5"), {"c": ids["truncated"]})

    expected = {"modified": (3, "hash_mismatch"), "relinked": (3, "broken_link"), "deleted": (4, "gap"),
                "truncated": (5, "truncated")}  # fmt: skip
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


def test_verify_walks_a_long_chain_in_bounded_steps(api, monkeypatch):
    """Past its time budget /v1/audit/verify answers complete=false with a cursor; following the
    cursors checks every row once, and the cursor's hash is what the next step links to."""
    import ldpserver.api.audit as audit_api
    from ldpserver.services import ledger_verify as ledger

    col = api.create_collection(budget={"cap_lifetime": 100.0})
    assert api.upload(col, make_reports(col, 7, seed=21)).get_json()["accepted"] == 7
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

    # a cursor whose hash is not row 2's: the walk names row 3's link as broken
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
    assert api.upload(col, make_reports(col, 3, seed=40)).get_json()["accepted"] == 3
    if backend == "postgresql":
        value = "created_at + interval '1 microsecond'" if moved == "one microsecond" else "'1970-01-01'"
    else:
        value = "'2020-01-01 00:00:00.000001'" if moved == "one microsecond" else "'yesterday'"
    with engine.begin() as conn:
        _unguard(conn, backend)
        conn.execute(text(f"UPDATE budget_ledger SET created_at = {value} WHERE collection_id = :c AND seq = 2"),
                     {"c": col["id"]})  # fmt: skip
    bad = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["chains"][0]["first_bad"]
    assert (bad["seq"], bad["problem"]) == (2, "hash_mismatch")
