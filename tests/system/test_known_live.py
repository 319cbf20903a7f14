"""Known-candidate mode end to end against a LIVE server process: devices running the Python
runtime (OS CSPRNG, durable outbox, budget ledger) report to a ``known`` collection, the
dictionary is uploaded over HTTP, and a release publishes the dictionary's heavy items —
only items of the dictionary, with intervals that hold their true shares."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from client_sdk.client import Client
from tests.system.test_client_harness import live_server

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
WORDS, WEIGHTS = ["apple", "pear", "fig", "kiwi"], [14, 4, 1, 1]
DEVICES = 400


def test_devices_report_the_analyst_uploads_a_dictionary_and_a_release_publishes(tmp_path: Path) -> None:
    with live_server(tmp_path / "server", release_noise=False) as server:
        body = {
            "name": "fruit",
            "kind": "heavy_hitters",
            "mechanism": {
                "protocol": "known", "epsilon": 4.0, "k": 2,
                "domain": {"type": "string", "alphabet": "lower", "max_chars": 6},
            },
            "epoch": {"seconds": 3600, "start": "2030-01-01T00:00:00Z", "grace": 1},
            # one report per device and epoch (u = 1), and a release ε that a few hundred devices can use
            "release": {"min_reports": 10, "epsilon": 10.0},
            "budget": {"cap_lifetime": 8.0, "cap_per_window": 4.0, "window_epochs": 1},
        }  # fmt: skip
        cid = server.create_collection(body)["id"]
        server.clock.set(T0 + 10)
        rng = random.Random(5)
        held: list[str] = []
        for device in range(DEVICES):
            with Client(server.url, server.client_key, str(tmp_path / f"device{device}"), clock=server.clock) as client:
                item = rng.choices(WORDS, WEIGHTS)[0]
                held.append(item)
                client.report(cid, item)
                assert client.flush(timeout=30).accepted == 1

        admin = {"Authorization": f"Bearer {server.admin_key}"}
        dictionary = ["apple", "pear", "plum", "grape"] + [f"{a}{b}x" for a in "abcdefgh" for b in "abcdefgh"]
        put = httpx.put(f"{server.url}/v1/collections/{cid}/dictionary", json={"items": dictionary}, headers=admin)
        assert put.status_code == 200, put.text
        released = httpx.post(
            f"{server.url}/v1/collections/{cid}/releases", json={"epoch": 0, "force": True}, headers=admin
        )
        assert released.status_code == 201, released.text
        document = json.loads(httpx.get(f"{server.url}/v1/collections/{cid}/releases/1", headers=admin).text)

    scope = next(s for s in document["scopes"] if s["scope"] == "epoch")
    estimates = scope["estimates"]
    assert estimates["significance"]["dictionary_sha256"] == put.json()["sha256"]
    items = [h["item"] for h in estimates["heavy_hitters"]]
    assert items[:1] == ["apple"] and set(items) <= {"apple", "pear"}  # fig, kiwi: not in the dictionary
    for h in estimates["heavy_hitters"]:
        share = held.count(h["item"]) / len(held)
        assert abs(h["frequency"] - share) < 5 * h["variance"] ** 0.5  # 5 sd: the interval's own scale
