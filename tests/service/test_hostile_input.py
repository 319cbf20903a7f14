"""Hostile input from the internet (issue 15, findings 3-6), on SQLite and PostgreSQL.

* forged pagination cursors holding huge integers (10**30, 2**63) and out-of-range query
  integers (``?release=99999999999999999999999``) on the ledger, releases, estimates,
  heavy-hitter and timeseries endpoints get a 4xx problem, never a 500;
* a NUL byte in a path, a query parameter or a body string is refused before the database
  (PostgreSQL cannot store it in text);
* report payloads with an unknown field, or a non-integer version, are rejected, not stored;
  a heavy-hitter ``domain`` with a key the server does not know is refused;
* every CSV export neutralises formula cells (strings only: numbers stay numbers);
* a lost database answers 503 with Retry-After.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import socket

import numpy as np
from click.testing import CliRunner

from ldpserver.app import create_app
from ldpserver.config import Settings
from tests.service.helpers import make_reports, with_devices
from tests.service.release_helpers import HH_MECHANISM, hh_payloads, upload_ok, wire

PROBLEM = "application/problem+json"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _client_error(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == PROBLEM
    return response.get_json()


def _released_frequency(api) -> dict:
    from client_sdk import mechanisms

    col = api.create_collection(release={"windows": [1], "min_reports": 1})
    m = mechanisms.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(3)
    payloads = m.encode(m.perturb_batch(rng.integers(0, m.domain_size, 30), rng=rng))
    epoch = col["current_epoch"]
    upload_ok(api, col, wire(col, payloads, epoch, prefix=f"h{col['id'][-6:]}-"))
    response = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": epoch, "force": True})
    assert response.status_code in (200, 201), response.get_json()
    return col


def test_forged_cursors_and_huge_query_integers_are_4xx(api):
    col = _released_frequency(api)
    base = f"/v1/collections/{col['id']}"
    huge = [10**30, 2**63, 2**64, -1]
    urls = []
    for n in huge:
        urls += [
            f"/v1/audit/ledger?cursor={_cursor([col['id'], n])}",
            f"{base}/releases?cursor={_cursor([n])}",
            f"{base}/estimates?cursor={_cursor([n, 0])}",
            f"{base}/estimates?cursor={_cursor([1, n])}",
            f"{base}/timeseries?item=1&cursor={_cursor([n])}",
            f"{base}/estimates?release={n}",
            f"{base}/releases/{n}",
            f"{base}/estimates?attribute={n}",
            f"{base}/timeseries?item=1&attribute={n}",
            f"/v1/audit/ledger?limit={n}",
        ]
    urls += [
        f"{base}/estimates?release=99999999999999999999999",
        f"{base}/releases/99999999999999999999999",
        f"{base}/timeseries?item=99999999999999999999999",
        f"{base}/timeseries?item=%C2%B2",  # '²'.isdigit() is True, int('²') raises
        f"{base}/timeseries?item=%D9%A3",  # an Arabic-Indic digit
        f"/v1/audit/ledger?cursor={_cursor(['x' * 5000, 1])}",
        f"/v1/audit/ledger?cursor={_cursor([1.5e300, 1])}",
        f"{base}/releases?cursor={_cursor([1e30])}",
    ]
    for url in urls:
        _client_error(api.get(url, role="auditor" if "/audit/" in url else "analyst"))
    # at the edge of what is valid: an empty page, a 404 or a 422, never a 500
    for n in (2**31 - 1, 2**31, 2**62):
        for url in (f"/v1/audit/ledger?cursor={_cursor([col['id'], n])}", f"{base}/releases?cursor={_cursor([n])}",
                    f"{base}/estimates?cursor={_cursor([1, n])}", f"{base}/releases/{n}"):  # fmt: skip
            response = api.get(url, role="auditor" if "/audit/" in url else "analyst")
            assert response.status_code < 500, (url, response.get_data(as_text=True)[:300])
    hh = api.create_collection(kind="heavy_hitters", mechanism=HH_MECHANISM, budget={"cap_lifetime": 8.0})
    _client_error(api.get(f"/v1/collections/{hh['id']}/heavy-hitters?release=99999999999999999999999", role="analyst"))
    _client_error(api.get(f"/v1/collections/{hh['id']}/heavy-hitters?cursor={_cursor([2**63, 0])}", role="analyst"))


def test_nul_bytes_are_refused_before_the_database(api):
    col = api.create_collection()
    base = f"/v1/collections/{col['id']}"
    for url, role in (
        ("/v1/collections/ab%00cd", "analyst"),
        (f"{base}%00/estimates", "analyst"),
        ("/v1/audit/ledger?collection=a%00b", "auditor"),
        ("/v1/audit/ledger?client_id=device%00", "auditor"),
        (f"{base}/timeseries?item=1%00", "analyst"),
        (f"{base}/heavy-hitters?party=eu%00", "analyst"),
        ("/v1/audit/ledger?x%00y=1", "auditor"),
    ):
        _client_error(api.get(url, role=role))
    bad_name = api.post("/v1/collections", json={**_collection_body(), "name": "colour\u0000"})
    problem = _client_error(bad_name)
    assert problem["errors"][0]["path"] == "/name"
    _client_error(api.post(f"{base}/releases", json={"epoch": 0, "force": True, "x\u0000": 1}))
    # an upload is judged report by report: the report holding a NUL is rejected, the rest kept
    bad, good = make_reports(col, 6), make_reports(col, 1)[0]
    hostile = [
        {**bad[0], "client_id": "dev\u0000ice"},
        {**bad[1], "report_id": bad[1]["report_id"][:-1] + "\u0000"},
        {**bad[2], "config_hash": bad[2]["config_hash"] + "\u0000"},
        {**bad[3], "payload": {**bad[3]["payload"], "bits": "\u0000"}},
        {**bad[4], "payload": {**bad[4]["payload"], "m\u0000": "oue"}},
        {**bad[5], "payload": {**bad[5]["payload"], "m": "oue\u0000"}},
    ]
    response = api.upload(col, [*hostile, good])
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 6 + ["accepted"], results
    envelope = {"reports": [good], "x\u0000": 1}  # the envelope itself stays strict
    _client_error(api.post(f"{base}/reports", role="client", json=envelope))
    # only the good report reached the tables; a string that merely spells the escape is fine
    assert api.counts(col["id"])["reports"] == 1
    ok = api.post("/v1/collections", json={**_collection_body(), "name": "backslash \\u0000 is text"})
    assert ok.status_code == 201, ok.get_json()


def _collection_body() -> dict:
    from tests.service.helpers import BASE_COLLECTION

    return json.loads(json.dumps(BASE_COLLECTION))


def test_unknown_payload_fields_and_float_versions_are_rejected_not_stored(api):
    oue = api.create_collection()
    genuine = make_reports(oue, 3)
    genuine[0]["payload"] = {**genuine[0]["payload"], "true_value": 3}
    genuine[1]["payload"] = {**genuine[1]["payload"], "pad": "x" * 100_000}
    genuine[2]["payload"] = {**genuine[2]["payload"], "v": 1.0}
    body = api.upload(oue, genuine).get_json()
    assert [r["reason"] for r in body["results"]] == ["unknown_field", "unknown_field", "bad_version"], body
    assert api.counts(oue["id"])["reports"] == 0

    grr = api.create_collection(mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    reports = [
        {**r, "payload": payload}
        for r, payload in zip(
            make_reports(grr, 3),
            [{"v": 1.0, "m": "grr", "y": 1}, {"v": True, "m": "grr", "y": 1}, {"v": 1, "m": "grr", "y": 1.0}],
            strict=True,
        )
    ]
    body = api.upload(grr, reports).get_json()
    assert [r["reason"] for r in body["results"]] == ["bad_version", "bad_version", "bad_type"], body

    rsfd = api.create_collection(
        kind="multidim", mechanism={"mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [3, 4]}
    )
    from client_sdk import multidim

    m = multidim.from_config(rsfd["config"]["mechanism"])
    payload = {**m.perturb((1, 2)), "true_tuple": [1, 2]}
    body = api.upload(rsfd, wire(rsfd, [payload], rsfd["current_epoch"], prefix="md")).get_json()
    assert body["results"][0]["reason"] == "unknown_field", body
    assert api.counts(rsfd["id"])["reports"] == 0


def test_huge_integers_and_lone_surrogates_in_an_upload_reject_only_their_report(api):
    """Uploads are parsed by orjson (ldpserver/bodies.py): an integer beyond 64 bits becomes a
    float, which no field accepts; a lone surrogate makes orjson refuse the body, and the
    standard parser's reading (the report alone rejected) is kept."""
    grr = api.create_collection(mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    reports = make_reports(grr, 5)
    reports[0]["epoch"] = 2**70
    reports[1]["payload"] = {**reports[1]["payload"], "y": 2**70}
    reports[2]["payload"] = {**reports[2]["payload"], "v": 2**64}
    body = json.dumps(with_devices(api.engine, api.keys["client"], reports[:4]))
    body = body.replace(reports[3]["report_id"], "\\ud800" + reports[3]["report_id"][1:])
    response = api.post(
        f"/v1/collections/{grr['id']}/reports", role="client", data=body, content_type="application/json"
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    results = response.get_json()["results"]
    assert [r["reason"] for r in results] == ["invalid_report", "out_of_range", "bad_version", "invalid_report"]
    assert api.counts(grr["id"])["reports"] == 0
    assert api.upload(grr, reports[4:]).get_json()["accepted"] == 1


def test_config_objects_refuse_keys_they_do_not_know(api):
    for domain in (
        {"type": "integer", "bits": 8, "alphabet": "abc"},
        {"type": "string", "max_bytes": 4, "bogus": True},
    ):
        response = api.post(
            "/v1/collections",
            json={**_collection_body(), "kind": "heavy_hitters", "mechanism": {**HH_MECHANISM, "domain": domain}},
        )
        assert _client_error(response)["status"] == 422
    for override in (
        {"budget": {"cap_lifetime": 10.0, "per_device": 1}},
        {"epoch": {"seconds": 3600, "grace": 1, "tz": "UTC"}},
        {"release": {"windows": [1], "extra": 1}},
        {"mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 16, "seed": 1}},
        {"unknown": 1},
        # out-of-range values that used to overflow into a 500
        {"epoch": {"seconds": 3600, "start": "0001-01-01T00:00:00+14:00"}},
        {"epoch": {"seconds": 3600, "start": "9999-12-31T23:59:59-14:00"}},
        {"mechanism": {"mechanism": "grr", "epsilon": 10**400, "domain_size": 4}},
        {"kind": "heavy_hitters", "mechanism": {**HH_MECHANISM, "epsilon": 10**400}},
        {"kind": "multidim", "mechanism": {"mechanism": "rsfd-grr", "epsilon": 10**400, "domain_sizes": [2, 3]}},
    ):
        _client_error(api.post("/v1/collections", json={**_collection_body(), **override}))


def _csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _assert_no_formula_cells(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for name, cell in row.items():
            if cell.startswith(FORMULA_PREFIXES):
                float(cell)  # only a number may start with '-' or '+': anything else would be a formula
                assert name not in ("item", "client_id", "party", "scope"), (name, cell)


def test_csv_exports_neutralise_formula_cells_and_keep_numbers(api, monkeypatch):
    from ldpserver import release_noise

    # a plumbing check of the CSV writer: the releases' central noise off, as in test_releases.py
    api.use_release_noise(release_noise.ZeroNoise())
    mechanism = {"protocol": "pem", "epsilon": 8.0, "k": 3, "eta": 4, "domain": {"type": "string", "max_bytes": 6}}
    col = api.create_collection(
        kind="heavy_hitters",
        mechanism=mechanism,
        release={"min_reports": 1, "epsilon": 10.0},
        budget={"cap_lifetime": 8.0},
    )
    # enough reports for the final round to find them significant despite the central noise
    items = ["=1+2"] * 9000 + ["@SUM"] * 6000 + ["-2+3"] * 4500
    payloads = hh_payloads(col, items, seed=5)
    epoch = col["current_epoch"]
    # a client_id may start with '-' (its pattern allows it): the ledger export must neutralise it too
    upload_ok(api, col, [{**r, "client_id": f"-cmd{i}"} for i, r in enumerate(wire(col, payloads, epoch))])
    assert api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": epoch, "force": True}).status_code == 201

    rows = _csv_rows(api.get(f"/v1/collections/{col['id']}/heavy-hitters?format=csv", role="analyst"))
    items_out = {row["item"] for row in rows}
    assert {"'=1+2", "'@SUM"} <= items_out, items_out
    _assert_no_formula_cells(rows)
    _assert_no_formula_cells(_csv_rows(api.get(f"/v1/collections/{col['id']}/releases/1?format=csv", role="analyst")))
    _assert_no_formula_cells(
        _csv_rows(api.get(f"/v1/collections/{col['id']}/estimates", role="analyst", headers={"Accept": "text/csv"}))
    )
    ledger = _csv_rows(api.get(f"/v1/audit/ledger?collection={col['id']}&format=csv"))
    assert ledger and all(row["client_id"].startswith("'-cmd") for row in ledger)
    _assert_no_formula_cells(ledger)

    # numbers stay numbers: a negative estimate is written as a number, not neutralised
    freq = _released_frequency(api)
    rows = _csv_rows(api.get(f"/v1/collections/{freq['id']}/releases/1?format=csv", role="analyst"))
    numeric = [row["frequency"] for row in rows if row.get("frequency")]
    assert numeric and all(not cell.startswith("'") for cell in numeric)
    assert any(cell.startswith("-") for cell in numeric), "expected a negative estimate among 16 values of 30 reports"
    for cell in numeric:
        float(cell)


def test_cli_audit_export_neutralises_formula_cells(api, database_url, tmp_path):
    from ldpserver.cli import main as cli

    col = api.create_collection()
    upload_ok(api, col, [{**r, "client_id": f"-x{i}"} for i, r in enumerate(make_reports(col, 2))])
    out = tmp_path / "ledger.csv"
    result = CliRunner().invoke(
        cli, ["audit", "export", "--collection", col["id"], "-o", str(out)], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["client_id"] for row in rows] == ["'-x0", "'-x1"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections are refused


def test_a_lost_database_answers_503_with_retry_after(keys):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/gone?connect_timeout=2"
    app = create_app(Settings(database_url=url, log_level="CRITICAL", check_migrations=False))
    client = app.test_client()
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    for response in (
        client.get("/v1/collections", headers=auth),
        client.post("/v1/collections", json=_collection_body(), headers=auth),
        client.get("/v1/audit/ledger", headers=auth),
    ):
        assert response.status_code == 503, response.get_data(as_text=True)[:300]
        assert response.mimetype == PROBLEM
        assert int(response.headers["Retry-After"]) >= 1
        assert response.get_json()["type"].endswith("/unavailable")
    assert client.get("/healthz").status_code == 200  # liveness does not need the database
    ready = client.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) >= 1


def test_a_lifetime_cap_allowing_millions_of_epochs_is_not_a_500(api):
    """A release ε composed over ~10^6 epochs overflowed OpenDP's zCDP conversion (a 500 at
    creation); the statement now says there is no finite lifetime ε (null)."""
    body = {
        "name": "huge cap",
        "kind": "heavy_hitters",
        "mechanism": {"protocol": "pem", "epsilon": 6.0, "k": 2, "domain": {"type": "string", "max_bytes": 2}},
        "epoch": {"seconds": 86400, "grace": 1},
        "release": {"windows": [1, 2], "min_reports": 10, "epsilon": 10.0},
        "budget": {"cap_lifetime": 1e6},
    }
    answer = api.post("/v1/collections", json=body)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["privacy"]["release"]["epsilon_per_device_lifetime"] is None


def test_a_database_lost_under_a_raw_driver_statement_answers_503(api, monkeypatch):
    """The API-key look-up and the ingest path run on the raw drivers (psycopg, sqlite3), whose
    errors SQLAlchemy does not wrap: a lost connection there is a 503 with Retry-After too."""
    import sqlite3

    import psycopg

    from ldpserver import auth

    col = api.create_collection()
    for error in (
        psycopg.errors.AdminShutdown("terminating connection (injected)"),
        sqlite3.OperationalError("disk I/O error (injected)"),
    ):

        def lost(*_args, error=error):
            raise error

        monkeypatch.setattr(auth, "authenticate", lost)
        response = api.get(f"/v1/collections/{col['id']}", role="admin")
        assert response.status_code == 503, response.get_data(as_text=True)[:300]
        assert int(response.headers["Retry-After"]) >= 1 and response.get_json()["type"].endswith("/unavailable")
