"""Production serving: gunicorn (gunicorn.conf.py, 2 workers) on PostgreSQL and on SQLite.

* /healthz, /readyz, an upload, and /metrics on the master's metrics listener
  (``LDP_METRICS_BIND``) — whose counters are the sum over both workers (Prometheus
  multiprocess mode): every scrape shows every accepted report, the rejection by reason,
  the ingestion and release histograms and the ledger size; the public bind refuses
  /metrics without a key and serves the same text to an admin key (whichever worker);
* /readyz answers 503 while the database is unreachable and 200 again once it is back
  (PostgreSQL: the server reaches the database through a TCP proxy the test stops and
  restarts — the shared PostgreSQL server itself is never stopped; SQLite: the database
  file is moved away and back), while /healthz and /metrics keep answering;
* SIGTERM shuts gunicorn down gracefully (exit status 0).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.system.ops_helpers import (
    TcpProxy,
    auth,
    base_env,
    free_port,
    gunicorn,
    ldp,
    make_keys,
    metric,
    proof,
    provision,
    stopping,
    wire_reports,
)

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.timeout(150)

COLLECTION = {
    "name": "ops",
    "kind": "frequency",
    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 16},
    "epoch": {"seconds": 3600, "grace": 1},
    "release": {"windows": [1], "min_reports": 10},
    "budget": {"cap_lifetime": 10.0},
}


def _wait_status(url: str, status: int, timeout: float = 20.0) -> httpx.Response:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = httpx.get(url, timeout=5)
            if last.status_code == status:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status}; last: {last and (last.status_code, last.text[:300])}")


def _exercise(server, keys: dict[str, str], multiproc_dir: str, database_url: str) -> dict[str, object]:
    url = server.url
    assert httpx.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text

    created = httpx.post(url + "/v1/collections", json=COLLECTION, headers=auth(keys["admin"]), timeout=30)
    assert created.status_code == 201, created.text
    col = created.json()
    reports = wire_reports(col, [i % 16 for i in range(240)], seed=5, prefix="gw")
    batches = [reports[i : i + 30] for i in range(0, len(reports), 30)]
    provision(database_url, keys["client"], [r["client_id"] for r in reports])

    def upload(batch):
        r = httpx.post(
            f"{url}/v1/collections/{col['id']}/reports",
            json={"wire": 2, "reports": batch, "devices": proof(keys["client"], batch)},
            headers=auth(keys["client"]),
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(4) as pool:  # concurrent uploads: both workers ingest
        results = list(pool.map(upload, batches))
    assert sum(r["accepted"] for r in results) == 240
    bad = dict(reports[0], report_id="ab" * 16, config_hash="sha256:" + "0" * 64)
    assert upload([bad])["results"][0]["reason"] == "config_mismatch"
    released = httpx.post(
        f"{url}/v1/collections/{col['id']}/releases",
        json={"epoch": col["current_epoch"], "force": True},
        headers=auth(keys["admin"]),
        timeout=60,
    )
    assert released.status_code == 201, released.text

    # the public bind: no key, no metrics (one upload would move the counters by exactly one)
    refused = httpx.get(url + "/metrics", timeout=10)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    assert "ldp_reports_total" not in refused.text
    # every scrape (the listener, and the admin key on either worker) sees the whole process group's counters
    for i in range(6):
        if i % 2:
            response = httpx.get(url + "/metrics", headers=auth(keys["admin"]), timeout=10)
        else:
            response = httpx.get(server.metrics_url, timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert metric(text, "ldp_reports_total", status="accepted", kind="frequency") == 240
        assert metric(text, "ldp_reports_total", status="rejected", reason="config_mismatch") == 1
        assert metric(text, "ldp_ingest_batches_total") == len(batches) + 1
        assert metric(text, "ldp_ingest_batch_duration_seconds_count", kind="frequency") == len(batches) + 1
        assert metric(text, "ldp_release_duration_seconds_count", kind="frequency", trigger="admin") == 1
        assert metric(text, "ldp_ledger_rows") == 240 + 1  # + the release budget entry (ε_release)
        assert metric(text, "ldp_database_up") == 1
        assert 'route="/v1/collections/<collection_id>/reports"' in text  # the route rule, never a concrete path
        assert "client_id" not in text and col["id"] not in text  # no per-device (or per-collection) labels
    files = os.listdir(multiproc_dir)
    assert len({f.rsplit("_", 1)[-1] for f in files if f.startswith("counter_")}) == 2, files  # both workers wrote
    return {"collection": col}


def _database_down_and_back(server, take_down, bring_back) -> None:
    url = server.url
    take_down()
    for _ in range(4):  # whichever worker answers
        r = _wait_status(url + "/readyz", 503)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "database" in r.json()["detail"]
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200  # alive, not ready
    scrape = httpx.get(server.metrics_url, timeout=10)
    assert scrape.status_code == 200 and metric(scrape.text, "ldp_database_up") == 0
    bring_back()
    for _ in range(4):
        assert _wait_status(url + "/readyz", 200).json()["status"] == "ready"


def _run(tmp_path: Path, database_url: str, direct_url: str, take_down, bring_back) -> None:
    env = base_env(database_url, tmp_path, LDP_GUNICORN_LOG_LEVEL="info")
    ldp(env, "migrate")
    keys = make_keys(direct_url)
    metrics_port = free_port()
    env["LDP_METRICS_BIND"] = f"127.0.0.1:{metrics_port}"
    server = gunicorn(env, tmp_path / "gunicorn.log", workers=2)
    server.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    with stopping(server):
        server.wait_ready()
        _exercise(server, keys, env["PROMETHEUS_MULTIPROC_DIR"], direct_url)
        _database_down_and_back(server, take_down, bring_back)
        assert server.stop() == 0, server.log()  # SIGTERM: graceful shutdown
        assert "Shutting down: Master" in server.log()


@pytest.mark.postgres
def test_gunicorn_on_postgresql(tmp_path: Path) -> None:
    from tests.service.conftest import fresh_database

    with fresh_database("postgresql", tmp_path) as direct_url:
        from sqlalchemy.engine import make_url

        parsed = make_url(direct_url)
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        proxy.start()
        try:
            via_proxy = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            _run(tmp_path, via_proxy, direct_url, proxy.stop, proxy.start)
        finally:
            proxy.stop()


def test_gunicorn_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "db" / "ldp.sqlite3"
    away = tmp_path / "moved.sqlite3"
    url = f"sqlite:///{path}"
    _run(tmp_path, url, url, lambda: os.replace(path, away), lambda: os.replace(away, path))
