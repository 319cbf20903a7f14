"""The analyst API over releases: pagination, CSV, content negotiation, errors; the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
from click.testing import CliRunner

from client_sdk import mechanisms
from ldpserver.cli import main as cli
from ldpserver.schemas.collections import CollectionCreate
from ldpserver.services.collections import create_collection
from ldpserver.services.release_views import ROW_COLUMNS
from tests.service.helpers import BASE_COLLECTION, merged
from tests.service.release_helpers import at_epoch, upload_ok, wire


def _collection_with_releases(api, epochs: int = 4, k: int = 4):
    col = api.create_collection(
        mechanism={"mechanism": "grr", "epsilon": 2.0, "domain_size": k},
        release={"windows": [1, 2], "min_reports": 5},
        budget={"cap_lifetime": 10.0, "cap_per_window": 2.0},
    )
    m = mechanisms.from_config(col["config"]["mechanism"])
    for epoch in range(epochs):
        at_epoch(api, epoch)
        rng = np.random.default_rng(epoch)
        # 150 reports per epoch: the noisy count n = Σ of k noisy counts has σ ≈ 8.6 on a leaf and ≈ 17 on
        # a level-1 node (Δ₂ = 1, default ε_release), so no scope falls below min_reports (> 15σ away);
        # with 30 a window scope was withheld about once in 500 runs
        upload_ok(api, col, wire(col, m.encode(m.perturb_batch(rng.integers(0, k, 150), rng=rng)), epoch))
    at_epoch(api, epochs + 1)
    assert api.post(f"/v1/collections/{col['id']}/releases", json={}).status_code == 201
    return col


def test_release_log_is_cursor_paginated(api):
    col = _collection_with_releases(api, epochs=5)
    path = f"/v1/collections/{col['id']}/releases"
    seen, cursor = [], None
    while True:
        response = api.get(path + "?limit=2" + (f"&cursor={cursor}" if cursor else ""), role="analyst")
        page = response.get_json()
        seen += [r["number"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            break
        assert response.headers["X-Next-Cursor"] == cursor and 'rel="next"' in response.headers["Link"]
    assert seen == [1, 2, 3, 4, 5]
    bad = api.get(path + "?cursor=not-a-cursor", role="analyst")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["path"] == "/cursor"
    assert api.get(f"{path}/99", role="analyst").status_code == 404
    assert api.get("/v1/collections/col_nope/releases", role="analyst").status_code == 404


def test_release_as_csv_has_one_row_per_estimate(api):
    col = _collection_with_releases(api, epochs=2, k=4)
    body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/2", role="analyst").data)
    for response in (
        api.get(f"/v1/collections/{col['id']}/releases/2?format=csv", role="analyst"),
        api.get(f"/v1/collections/{col['id']}/releases/2", role="analyst", headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert len(rows) == 3 * 4  # epoch, cumulative, window of 2 × 4 values
        assert rows[0].keys() == set(ROW_COLUMNS)
        cumulative = [r for r in rows if r["scope"] == "cumulative"]
        published = next(s for s in body["scopes"] if s["scope"] == "cumulative")["estimates"]
        assert [float(r["frequency"]) for r in cumulative] == published["frequencies"]  # repr: exact round trip
        assert [float(r["postprocessed"]) for r in cumulative] == published["postprocessed"]
    refused = api.get(f"/v1/collections/{col['id']}/releases/2", role="analyst", headers={"Accept": "application/xml"})
    assert refused.status_code == 406


def test_estimates_are_the_latest_release_paginated_on_the_same_release(api):
    col = _collection_with_releases(api, epochs=3, k=4)
    path = f"/v1/collections/{col['id']}/estimates"
    first = api.get(path + "?limit=5", role="analyst").get_json()
    assert first["release"] == 3 and len(first["items"]) == 5 and first["next_cursor"]
    # a new release meanwhile does not move a pagination in progress
    m = mechanisms.from_config(col["config"]["mechanism"])
    at_epoch(api, 4)
    upload_ok(api, col, wire(col, m.encode(m.perturb_batch(np.zeros(10, dtype=int), rng=np.random.default_rng(1))), 4))
    at_epoch(api, 6)
    assert api.post(f"/v1/collections/{col['id']}/releases", json={}).get_json()["created"] == [4, 5]
    rest = api.get(path + f"?limit=100&cursor={first['next_cursor']}", role="analyst").get_json()
    assert rest["release"] == 3 and len(first["items"]) + len(rest["items"]) == 12 and rest["next_cursor"] is None
    latest = api.get(path + "?scope=window&window=2", role="analyst").get_json()
    assert latest["release"] == 5 and {(r["scope"], r["window"]) for r in latest["items"]} == {("window", 2)}
    epoch_rows = api.get(path + "?scope=epoch&release=2", role="analyst").get_json()
    assert epoch_rows["release"] == 2 and {r["epoch"] for r in epoch_rows["items"]} == {1}
    as_csv = api.get(path + "?format=csv&scope=cumulative", role="analyst")
    assert as_csv.mimetype == "text/csv" and len(as_csv.get_data(as_text=True).strip().splitlines()) == 1 + 4
    empty = api.create_collection()
    assert api.get(f"/v1/collections/{empty['id']}/estimates", role="analyst").status_code == 404


def test_timeseries_follows_an_item_across_releases(api):
    col = _collection_with_releases(api, epochs=4, k=4)
    path = f"/v1/collections/{col['id']}/timeseries"
    series = api.get(path + "?item=2&scope=window&window=2&limit=3", role="analyst").get_json()
    assert [p["release"] for p in series["points"]] == [1, 2, 3] and series["next_cursor"]
    more = api.get(path + f"?item=2&scope=window&window=2&cursor={series['next_cursor']}", role="analyst").get_json()
    assert [p["release"] for p in more["points"]] == [4] and more["next_cursor"] is None
    for release, point in enumerate(series["points"] + more["points"], start=1):
        body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/{release}", role="analyst").data)
        window = next(s for s in body["scopes"] if s["scope"] == "window")
        assert point["frequency"] == window["estimates"]["frequencies"][2]
        assert (point["ci_lower"], point["ci_upper"]) == (
            window["estimates"]["ci_lower"][2],
            window["estimates"]["ci_upper"][2],
        )
        assert point["participation"] == window["participation"]["count"]
        assert (point["from_epoch"], point["complete"]) == (max(0, release - 2), release >= 2)
    # window=1 is the per-epoch scope
    same = api.get(path + "?item=2&scope=window&window=1", role="analyst").get_json()["points"]
    epoch = api.get(path + "?item=2", role="analyst").get_json()["points"]
    assert [p["frequency"] for p in same] == [p["frequency"] for p in epoch]
    as_csv = api.get(path + "?item=2&scope=cumulative", role="analyst", headers={"Accept": "text/csv"})
    assert len(list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))) == 4
    for query, field in (
        ("?item=2&scope=window", "/window"),
        ("?item=2&scope=window&window=7", "/window"),
        ("?item=4", "/item"),
        ("?item=x", "/item"),
        ("?item=1&party=eu", "/party"),
        ("?item=1&attribute=0", "/attribute"),
    ):
        response = api.get(path + query, role="analyst")
        assert response.status_code == 422 and response.get_json()["errors"][0]["path"] == field, query
    assert api.get(path, role="analyst").status_code == 422  # item is required


def test_auditors_read_the_release_log_but_not_estimates(api):
    col = _collection_with_releases(api, epochs=1)
    assert api.get(f"/v1/collections/{col['id']}/releases/1", role="auditor").status_code == 200
    assert api.get(f"/v1/collections/{col['id']}/estimates", role="auditor").status_code == 403
    assert api.post(f"/v1/collections/{col['id']}/releases", role="analyst", json={}).status_code == 403
    spec = api.get("/openapi/openapi.json", role=None).get_json()
    assert spec["paths"]["/v1/collections/{collection_id}/releases/{number}"]["get"]["x-roles"] == [
        "admin",
        "analyst",
        "auditor",
    ]


def test_cli_release_and_scheduler(database_url, engine):
    now = datetime.now(UTC)
    spec = merged(BASE_COLLECTION, {"epoch": {"seconds": 3600, "start": "2025-01-01T00:00:00Z", "grace": 1}})
    created = create_collection(engine, CollectionCreate.model_validate(spec), "test", now - timedelta(hours=4))
    env = {"DATABASE_URL": database_url}
    run = CliRunner().invoke(cli, ["release", "--collection", created["id"], "--epoch", "999999999"], env=env)
    assert run.exit_code != 0 and "future" in run.output
    run = CliRunner().invoke(cli, ["release", "--collection", created["id"], "--json"], env=env)
    assert run.exit_code == 0, run.output
    first = json.loads(run.output)
    # created 4 h ago with a grace of 1: its stream starts 1 h before that, and 4 epochs are due
    assert first["created"] == [1, 2, 3, 4]
    run = CliRunner().invoke(cli, ["scheduler", "--once", "--collection", created["id"]], env=env)
    assert run.exit_code == 0, run.output  # (prints a line only if an hour boundary passed meanwhile)
    run = CliRunner().invoke(
        cli, ["release", "--collection", created["id"], "--epoch", str(first["releases"][0]["epoch"])], env=env
    )
    assert run.exit_code == 0 and run.output.startswith("existing  #1")
    assert CliRunner().invoke(cli, ["release", "--collection", "col_nope"], env=env).exit_code != 0
