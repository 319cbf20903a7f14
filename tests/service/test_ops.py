"""Operations: ``ldp collections create --file``, ``ldp audit export``, ``ldp simulate``,
``/metrics`` and ``/readyz`` (on SQLite and PostgreSQL through the service fixtures)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ldpserver.cli import main as cli
from tests.service.helpers import BASE_COLLECTION, make_reports


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if line.startswith("#") or key.partition("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in key for k, v in labels.items()):
            total += float(value)
    return total


# --- ldp collections create --file ---------------------------------------------------------------


def test_collections_create_from_yaml_and_json_uses_the_api_rules(api, database_url, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    body = dict(BASE_COLLECTION, name="from yaml")
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(body))
    made = runner.invoke(cli, ["collections", "create", "--file", str(tmp_path / "one.yaml"), "--json"], env=env)
    assert made.exit_code == 0, made.output
    view = json.loads(made.stdout)
    served = api.get(f"/v1/collections/{view['id']}", role="client").get_json()
    assert served["config_hash"] == view["config_hash"] and served["config"] == view["config"]

    # a list in JSON: two collections; the same body as the API gives the same config hash
    two = [dict(body, name="a"), dict(body, name="b")]
    (tmp_path / "two.json").write_text(json.dumps(two))
    made = runner.invoke(cli, ["collections", "create", "--file", str(tmp_path / "two.json")], env=env)
    assert made.exit_code == 0 and made.output.count("created col_") == 2, made.output
    listed = runner.invoke(cli, ["collections", "list", "--json"], env=env)
    names = {c["name"] for c in json.loads(listed.output)}
    assert {"from yaml", "a", "b"} <= names

    # the privacy check and the schema refuse, with the field's path
    low = dict(body, epsilon=0.1)
    (tmp_path / "low.yaml").write_text(yaml.safe_dump(low))
    refused = runner.invoke(cli, ["collections", "create", "--file", str(tmp_path / "low.yaml")], env=env)
    assert refused.exit_code == 1 and "privacy-check-failed" in refused.output and "/epsilon" in refused.output
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "frequency", "mechanism": {}, "epoch": {"seconds": 0}}))
    refused = runner.invoke(cli, ["collections", "create", "--file", str(tmp_path / "bad.json")], env=env)
    assert refused.exit_code == 1 and "/epoch/seconds" in refused.output and "/budget" in refused.output
    (tmp_path / "broken.yaml").write_text("kind: [unclosed")
    refused = runner.invoke(cli, ["collections", "create", "--file", str(tmp_path / "broken.yaml")], env=env)
    assert refused.exit_code == 1 and "not valid YAML/JSON" in refused.output


# --- ldp audit export ------------------------------------------------------------------------------


def test_audit_export_writes_the_ledger_the_api_serves(api, database_url, tmp_path: Path) -> None:
    col = api.create_collection()
    for seed, size in ((4, 5), (5, 2)):  # two ledger blocks
        assert api.upload(col, make_reports(col, size, seed=seed)).get_json()["accepted"] == size
    served = api.get(f"/v1/audit/ledger?collection={col['id']}&limit=100").get_json()["items"]
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}

    out = tmp_path / "ledger.csv"
    done = runner.invoke(
        cli, ["audit", "export", "--collection", col["id"], "-o", str(out), "--page-size", "3"], env=env
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert [r["row_hash"] for r in rows] == [r["row_hash"] for r in served] and len(rows) == 7
    assert rows[0]["seq"] == "1" and rows[-1]["prev_hash"] == served[4]["row_hash"] != served[5]["row_hash"]
    assert [r["block_seq"] for r in rows] == ["5"] * 5 + ["7"] * 2

    done = runner.invoke(cli, ["audit", "export", "--collection", col["id"], "--format", "json"], env=env)
    assert done.exit_code == 0 and json.loads(done.stdout) == served

    done = runner.invoke(
        cli,
        ["audit", "export", "--collection", col["id"], "-o", str(tmp_path / "l.jsonl"), "--page-size", "2"],
        env=env,
    )
    lines = (tmp_path / "l.jsonl").read_text().splitlines()
    assert done.exit_code == 0 and [json.loads(line) for line in lines] == served

    nothing = runner.invoke(cli, ["audit", "export", "--collection", "col_nope", "--format", "json"], env=env)
    assert nothing.exit_code == 1 and "no collection" in nothing.output


# --- /metrics and /readyz ---------------------------------------------------------------------------


def test_metrics_count_reports_by_outcome_and_reason(api) -> None:
    before = api.get("/metrics", role="admin").get_data(as_text=True)
    col = api.create_collection()
    good = make_reports(col, 5, seed=8)
    bad = dict(make_reports(col, 1, seed=9)[0], config_hash="sha256:" + "1" * 64)
    assert api.upload(col, good + [bad]).get_json()["accepted"] == 5
    assert api.upload(col, good[:2]).get_json()["duplicates"] == 2
    response = api.get("/metrics", role="admin")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = response.get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("ldp_reports_total", kind="frequency", status="accepted") == 5
    assert delta("ldp_reports_total", kind="frequency", status="duplicate") == 2
    assert delta("ldp_reports_total", kind="frequency", status="rejected", reason="config_mismatch") == 1
    assert delta("ldp_ingest_batches_total", kind="frequency") == 2
    assert delta("ldp_ingest_batch_duration_seconds_count", kind="frequency") == 2
    assert delta("ldp_http_requests_total", route="/v1/collections/<collection_id>/reports", status="200") == 2
    with api.engine.connect() as conn:
        from sqlalchemy import text

        ledger = conn.execute(
            text("SELECT (SELECT COUNT(*) FROM budget_ledger) + (SELECT COALESCE(SUM(count), 0) FROM ledger_blocks)")
        ).scalar_one()
    assert _metric(after, "ldp_ledger_rows") == ledger
    assert _metric(after, "ldp_database_up") == 1
    assert col["id"] not in after and good[0]["client_id"] not in after

    released = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": col["current_epoch"], "force": True})
    assert released.status_code == 201, released.get_json()
    final = api.get("/metrics", role="admin").get_data(as_text=True)
    assert _metric(final, "ldp_release_duration_seconds_count", kind="frequency", trigger="admin") - _metric(
        before, "ldp_release_duration_seconds_count", kind="frequency", trigger="admin"
    ) == len(released.get_json()["created"])


def test_metrics_need_a_key_on_the_public_app_and_the_listener_serves_them(api) -> None:
    import httpx

    from ldpserver.metrics_listener import MetricsListener, parse_bind

    # the public app: one upload moves these counters by exactly one, so no key, no metrics
    refused = api.get("/metrics", role=None)
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert "ldp_reports_total" not in refused.get_data(as_text=True)
    for role in ("client", "analyst", "auditor"):
        assert api.get("/metrics", role=role).status_code == 403, role
    assert api.get("/metrics", role="admin").status_code == 200
    col = api.create_collection()
    assert api.upload(col, make_reports(col, 3, seed=4)).get_json()["accepted"] == 3
    # the listener (what Prometheus scrapes): loopback by default, its own port
    assert parse_bind(None) == ("127.0.0.1", 9464) and parse_bind("off") is None
    assert parse_bind("0.0.0.0:9100") == ("0.0.0.0", 9100)
    with pytest.raises(ValueError, match="LDP_METRICS_BIND"):
        parse_bind("9464")
    listener = MetricsListener("127.0.0.1", 0, engine=api.engine).start()
    try:
        host, port = listener.address
        scraped = httpx.get(f"http://{host}:{port}/metrics", timeout=10)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        assert _metric(scraped.text, "ldp_reports_total", kind="frequency", status="accepted") >= 3
        assert _metric(scraped.text, "ldp_database_up") == 1
        assert httpx.get(f"http://{host}:{port}/v1/collections", timeout=10).status_code == 404  # nothing else
    finally:
        listener.stop()


def test_readyz_needs_the_database_file_and_the_head_revision(tmp_path: Path) -> None:
    from ldpserver import schema
    from ldpserver.app import create_app
    from ldpserver.config import Settings

    path = tmp_path / "ldp.sqlite3"
    url = f"sqlite:///{path}"
    schema.upgrade(url)
    client = create_app(Settings(database_url=url, log_level="WARNING")).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["revision"] == schema.head_revision()
    shutil.move(path, tmp_path / "away.sqlite3")
    down = client.get("/readyz")
    assert down.status_code == 503 and down.mimetype == "application/problem+json"
    assert not path.exists()  # the check never creates an empty database in its place
    assert client.get("/healthz").status_code == 200
    from ldpserver.metrics import render

    assert _metric(render(client.application.extensions["ldp"].engine).decode(), "ldp_database_up") == 0
    shutil.move(tmp_path / "away.sqlite3", path)
    assert client.get("/readyz").status_code == 200
    schema.downgrade(url, "0001")
    behind = client.get("/readyz")
    assert behind.status_code == 503 and "ldp migrate" in behind.get_json()["detail"]


# --- ldp simulate ------------------------------------------------------------------------------------


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    colours = rng.choice(["red", "green", "blue", "black"], size=4000, p=[0.4, 0.3, 0.2, 0.1])
    sizes = rng.integers(0, 3, 4000)
    words = rng.choice(["alpha", "beta", "gamma", "delta", "eps"], size=4000, p=[0.5, 0.25, 0.15, 0.07, 0.03])
    parties = rng.choice(["en", "fr"], size=4000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["colour", "size", "word", "party"])
    writer.writerows(zip(colours, sizes, words, parties, strict=True))
    path = tmp_path / "values.csv"
    path.write_text(out.getvalue())
    return path


def _config(tmp_path: Path, name: str, kind: str, mechanism: dict) -> Path:
    path = tmp_path / name
    body = {"kind": kind, "mechanism": mechanism, "epoch": {"seconds": 3600}, "budget": {"cap_lifetime": 10}}
    path.write_text(yaml.safe_dump(body) if name.endswith(".yaml") else json.dumps(body))
    return path


def test_simulate_frequency_multidim_and_heavy_hitters(table: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    freq = _config(tmp_path, "f.yaml", "frequency", {"mechanism": "oue", "epsilon": 2.0, "domain_size": 4})
    out = tmp_path / "est.json"
    done = runner.invoke(
        cli,
        ["simulate", "--config", str(freq), "--data", str(table), "--column", "colour", "--seed", "3", "-o", str(out)],
    )
    assert done.exit_code == 0, done.output
    assert "n = 4,000 simulated devices" in done.stdout and "red" in done.stdout
    result = json.loads(out.read_text())
    rows = {r["label"]: r for r in result["rows"]}
    assert set(rows) == {"black", "blue", "green", "red"}
    for r in rows.values():  # OUE, ε = 2, n = 4000: sd ≈ 0.014 per value
        assert abs(r["estimate"] - r["true"]) < 0.06 and r["ci_lower"] < r["estimate"] < r["ci_upper"]
    assert result["privacy"]["epsilon"] == 2.0

    md = _config(tmp_path, "m.json", "multidim", {"mechanism": "rsfd-grr", "epsilon": 2.0, "domain_sizes": [4, 3]})
    out = tmp_path / "md.csv"
    done = runner.invoke(
        cli,
        ["simulate", "--config", str(md), "--data", str(table), "--column", "colour", "--column", "size"]
        + ["--seed", "4", "-o", str(out)],
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert {r["attribute"] for r in rows} == {"0", "1"} and len(rows) == 7
    assert "(tuple-level)" in done.stdout

    hh = _config(
        tmp_path,
        "h.yaml",
        "heavy_hitters",
        {"protocol": "pem", "epsilon": 6.0, "k": 2, "domain": {"type": "string", "max_bytes": 5}},
    )
    done = runner.invoke(
        cli, ["simulate", "--config", str(hh), "--data", str(table), "--column", "word", "--seed", "5", "--json"]
    )
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["rows"][0]["item"] == "alpha" and found["rows"][0]["in_true_top"]

    wrong = runner.invoke(cli, ["simulate", "--config", str(freq), "--data", str(table), "--column", "word"])
    assert wrong.exit_code == 1 and "5 distinct values but the domain size is 4" in wrong.output
    missing = runner.invoke(cli, ["simulate", "--config", str(freq), "--data", str(table), "--column", "nope"])
    assert missing.exit_code == 1 and "not in" in missing.output


def test_simulate_known_candidates_with_and_without_a_dictionary(table: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    known = _config(
        tmp_path,
        "k.yaml",
        "heavy_hitters",
        {"protocol": "known", "epsilon": 6.0, "k": 2, "domain": {"type": "string", "max_bytes": 5}},
    )
    args = ["simulate", "--config", str(known), "--data", str(table), "--column", "word", "--seed", "5", "--json"]
    done = runner.invoke(cli, args)  # the CSV's distinct items are the dictionary
    assert done.exit_code == 0, done.output
    assert [r["item"] for r in json.loads(done.stdout)["rows"]] == ["alpha", "beta"]
    words = tmp_path / "words.txt"
    words.write_text("beta\ngamma\nzeta\n\n")
    done = runner.invoke(cli, [*args, "--dictionary", str(words)])
    assert done.exit_code == 0, done.output
    assert [r["item"] for r in json.loads(done.stdout)["rows"]] == ["beta", "gamma"]  # alpha is not a candidate
    words.write_text("beta\nbeta\n")
    refused = runner.invoke(cli, [*args, "--dictionary", str(words)])
    assert refused.exit_code == 1 and "distinct" in refused.output
    pem = _config(
        tmp_path,
        "p.yaml",
        "heavy_hitters",
        {"protocol": "pem", "epsilon": 6.0, "k": 2, "domain": {"type": "integer", "bits": 8}},
    )
    wrong = runner.invoke(
        cli, ["simulate", "--config", str(pem), "--data", str(table), "--column", "size", "--dictionary", str(words)]
    )
    assert wrong.exit_code == 1 and "known-candidate" in wrong.output
