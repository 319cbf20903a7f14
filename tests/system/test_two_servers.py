"""Stateless API processes: two servers sharing one PostgreSQL publish the same release as one.

Database A is served by two server processes on different ports; the same batches of
reports (same ids, devices and payloads) are uploaded half through each, concurrently,
plus one batch retried through the other server (duplicates). Database B gets the same
batches through a single process. The epoch is then released (by the second server on
A). The two release documents are identical byte for byte once the (random) collection
id is substituted: estimates, intervals, post-processing, heavy hitters and — with the
release tree's central noise seeded identically in every process, the only randomness
of a release — the published (noisy) numbers. Both servers of A serve the same
stored bytes.

The servers are the real app under werkzeug, each in its own process, with a shared file
clock (``ldp_tools.demo.server.FileClock``) and ``SeededGaussian`` noise instead of
OpenDP's sampler (a test-only substitution: the sampler is the release's single source
of randomness).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.system.ops_helpers import Proc, auth, base_env, free_port, ldp, make_keys, proof, provision, wire_reports

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

SERVER = r"""
import os, sys
import numpy as np
from werkzeug.serving import make_server
from ldpserver.app import create_app
from ldpserver.release_noise import SeededGaussian
from ldp_tools.demo.server import FileClock
from ldpserver.services.releases import ReleaseContext

noise = SeededGaussian(np.random.default_rng(int(os.environ["TEST_NOISE_SEED"])))
releases = ReleaseContext(noise, ReleaseContext.default().settings)
app = create_app(clock=FileClock(os.environ["LDP_DEMO_CLOCK_FILE"]), releases=releases)
make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
"""

START = "2030-01-01T00:00:00Z"
T0 = datetime(2030, 1, 1, 5, 30, tzinfo=UTC).timestamp()  # inside epoch 5 of hourly epochs
FREQUENCY = {
    "name": "shared",
    "kind": "frequency",
    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 16},
    "epoch": {"seconds": 3600, "start": START, "grace": 1},
    "release": {"windows": [1, 3], "min_reports": 20},
    "budget": {"cap_lifetime": 10.0},
}
HEAVY = {
    "name": "shared words",
    "kind": "heavy_hitters",
    "mechanism": {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2},
    "epoch": {"seconds": 3600, "start": START, "grace": 1},
    # only significant items are published, central noise included: a generous ε_release
    "release": {"windows": [1], "cumulative": False, "min_reports": 20, "epsilon": 10.0},
    "budget": {"cap_lifetime": 8.0},
}


def _server(env: dict[str, str], tmp: Path, name: str) -> Proc:
    port = free_port()
    server = Proc([sys.executable, "-c", SERVER, str(port)], env, tmp / f"{name}.log", port)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def _hh_reports(col: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    from client_sdk import heavy_hitters

    hh = heavy_hitters.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(seed)
    items = np.asarray([7] * 1200 + [200] * 600 + list(rng.integers(0, 256, 600)))
    payloads = hh.encode(hh.perturb_batch(items, rng))
    ids = rng.bytes(16 * len(payloads))
    return [
        {
            "report_id": ids[16 * i : 16 * (i + 1)].hex(),
            "client_id": f"hh-{i}",
            "config_hash": col["config_hash"],
            "epoch": col["current_epoch"],
            "payload": p,
        }
        for i, p in enumerate(payloads)
    ]


def _deployment(database_url: str, tmp: Path, servers: int) -> tuple[list[Proc], dict[str, str]]:
    clock = tmp / "clock.txt"
    clock.write_text(repr(T0))
    env = base_env(database_url, tmp, LDP_DEMO_CLOCK_FILE=str(clock), TEST_NOISE_SEED="2024")
    ldp(env, "migrate")
    keys = make_keys(database_url)
    started: list[Proc] = []
    try:
        for i in range(servers):
            started.append(_server(env, tmp, f"server{i}"))
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started, keys


def _collections(server: Proc, keys: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, body in (("frequency", FREQUENCY), ("heavy_hitters", HEAVY)):
        r = httpx.post(server.url + "/v1/collections", json=body, headers=auth(keys["admin"]), timeout=30)
        assert r.status_code == 201, r.text
        out[kind] = r.json()
    return out


def _upload(
    servers: list[Proc], keys: dict[str, str], col: dict[str, Any], batches: list[list[dict]], database_url: str
) -> None:
    provision(database_url, keys["client"], [r["client_id"] for batch in batches for r in batch])

    def send(job: tuple[int, list[dict]]) -> dict[str, Any]:
        i, batch = job
        server = servers[i % len(servers)]
        r = httpx.post(
            f"{server.url}/v1/collections/{col['id']}/reports",
            json={"wire": 2, "reports": batch, "devices": proof(keys["client"], batch)},
            headers=auth(keys["client"]),
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(send, enumerate(batches)))
    assert all(r["rejected"] == 0 for r in results)
    retried = send((1, batches[0]))  # a retried batch through the other server: duplicates only
    assert retried["duplicates"] == len(batches[0]) and retried["accepted"] == 0


def _release(server: Proc, keys: dict[str, str], col: dict[str, Any]) -> tuple[str, bytes]:
    """Release the collection's current epoch (and the stream's earlier, empty one); the
    current epoch's release: (its path, its document)."""
    r = httpx.post(
        f"{server.url}/v1/collections/{col['id']}/releases",
        json={"epoch": col["current_epoch"], "force": True},
        headers=auth(keys["admin"]),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    latest = r.json()["releases"][-1]
    assert latest["epoch"] == col["current_epoch"]
    body = httpx.get(server.url + latest["url"], headers=auth(keys["analyst"]), timeout=30)
    assert body.status_code == 200
    return latest["url"], body.content


def test_two_processes_on_one_database_release_what_one_process_does(tmp_path: Path) -> None:
    from tests.service.conftest import fresh_database

    with fresh_database("postgresql", tmp_path) as url_a, fresh_database("postgresql", tmp_path) as url_b:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        pair: list[Proc] = []
        single: list[Proc] = []
        try:
            pair, keys_a = _deployment(url_a, tmp_path / "a", servers=2)
            single, keys_b = _deployment(url_b, tmp_path / "b", servers=1)
            cols_a, cols_b = _collections(pair[0], keys_a), _collections(single[0], keys_b)
            documents = {}
            for kind in ("frequency", "heavy_hitters"):
                a, b = cols_a[kind], cols_b[kind]
                assert a["config_hash"] == b["config_hash"] and a["current_epoch"] == b["current_epoch"] == 5
                if kind == "frequency":
                    values = np.random.default_rng(3).integers(0, 16, 600)
                    reports = wire_reports(a, values, seed=11, prefix="dev")
                else:
                    reports = _hh_reports(a, seed=12)
                batches = [reports[i : i + 100] for i in range(0, len(reports), 100)]
                _upload(pair, keys_a, a, batches, url_a)
                _upload(single, keys_b, b, batches, url_b)
                path_a, doc_a = _release(pair[1], keys_a, a)  # released by the second process of A
                _, doc_b = _release(single[0], keys_b, b)
                # the first process of A serves the very same stored bytes
                again = httpx.get(pair[0].url + path_a, headers=auth(keys_a["analyst"]), timeout=30)
                assert again.content == doc_a
                assert doc_a.replace(a["id"].encode(), b"<id>") == doc_b.replace(b["id"].encode(), b"<id>")
                documents[kind] = json.loads(doc_a)
            freq = documents["frequency"]
            epoch_scope = next(s for s in freq["scopes"] if s["scope"] == "epoch")
            assert epoch_scope["status"] == "released" and len(epoch_scope["estimates"]["frequencies"]) == 16
            hh_scope = next(s for s in documents["heavy_hitters"]["scopes"] if s["scope"] == "epoch")
            assert [h["item"] for h in hh_scope["estimates"]["heavy_hitters"]][:1] == [7]
        finally:
            for server in pair + single:
                server.stop()
