"""Concurrent uploads against a live threaded server: the budget cap holds exactly."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service.helpers import make_reports, provision_devices, with_devices

UPLOADS = 50


def test_fifty_concurrent_uploads_for_one_device_accept_exactly_cap_over_epsilon(api, live_server):
    epsilon, cap = 0.5, 6.0
    col = api.create_collection(
        mechanism={"mechanism": "oue", "epsilon": epsilon, "domain_size": 16}, budget={"cap_lifetime": cap}
    )
    expected = math.floor(cap / epsilon)
    reports = make_reports(col, UPLOADS, client_ids="the-one-device", seed=7)
    provision_devices(api.engine, api.keys["client"], ["the-one-device"])
    url = f"{live_server}/v1/collections/{col['id']}/reports"
    headers = {"Authorization": f"Bearer {api.keys['client']}"}
    barrier = threading.Barrier(UPLOADS)

    def upload(report: dict) -> dict:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            response = client.post(url, json=with_devices(api.engine, api.keys["client"], [report]), headers=headers)
            assert response.status_code == 200, response.text
            return response.json()["results"][0]

    with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
        results = list(pool.map(upload, reports))

    accepted = [r for r in results if r["status"] == "accepted"]
    refused = [r for r in results if r["status"] == "rejected"]
    assert len(accepted) == expected
    assert len(refused) == UPLOADS - expected
    assert {r["reason"] for r in refused} == {"budget_exceeded_lifetime"}
    assert api.counts(col["id"]) == {"reports": expected, "ledger": expected, "aggregated": expected}
    device = api.device(col["id"], "the-one-device")
    assert (device.units, device.reports) == (expected, expected)
    verify = api.get(f"/v1/audit/verify?collection={col['id']}").get_json()
    assert verify["ok"] and verify["chains"][0]["rows"] == expected
    ledger = api.get(f"/v1/audit/ledger?collection={col['id']}").get_json()["items"]
    assert [row["seq"] for row in ledger] == list(range(1, expected + 1))
    assert {row["report_id"] for row in ledger} == {r["report_id"] for r in accepted}


@pytest.mark.parametrize("known_devices", [False, True], ids=["new-devices", "known-devices"])
def test_concurrent_retries_of_one_batch_count_once(api, live_server, known_devices):
    """Copies of one batch racing: each report is accepted once, however the devices' rows
    (which hold the reports' idempotency key) come to be locked — created by the batch's
    insert (new devices) or taken FOR UPDATE (devices with earlier reports)."""
    col = api.create_collection()
    reports = make_reports(col, 20, seed=8)
    provision_devices(api.engine, api.keys["client"], [r["client_id"] for r in reports])
    earlier = 0
    if known_devices:
        earlier = 20
        before = make_reports(col, 20, client_ids=[r["client_id"] for r in reports], seed=9)
        assert api.upload(col, before).get_json()["accepted"] == earlier
    url = f"{live_server}/v1/collections/{col['id']}/reports"
    headers = {"Authorization": f"Bearer {api.keys['client']}"}
    copies = 8
    barrier = threading.Barrier(copies)

    def upload(_: int) -> dict:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            response = client.post(url, json=with_devices(api.engine, api.keys["client"], reports), headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(max_workers=copies) as pool:
        bodies = list(pool.map(upload, range(copies)))
    assert sum(b["accepted"] for b in bodies) == 20
    assert sum(b["duplicates"] for b in bodies) == 20 * (copies - 1)
    total = 20 + earlier
    assert api.counts(col["id"]) == {"reports": total, "ledger": total, "aggregated": total}


def test_concurrent_batches_of_many_devices_and_shared_devices(api, live_server):
    """Batches that share devices (new and existing) race without losing or double-charging."""
    col = api.create_collection(budget={"cap_lifetime": 3.0})
    devices = [f"d{i}" for i in range(30)]
    batches = [make_reports(col, 30, client_ids=devices, seed=100 + b) for b in range(6)]
    provision_devices(api.engine, api.keys["client"], devices)
    url = f"{live_server}/v1/collections/{col['id']}/reports"
    headers = {"Authorization": f"Bearer {api.keys['client']}"}
    barrier = threading.Barrier(len(batches))

    def upload(batch: list) -> dict:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            response = client.post(url, json=with_devices(api.engine, api.keys["client"], batch), headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        bodies = list(pool.map(upload, batches))
    assert sum(b["accepted"] for b in bodies) == 30 * 3
    for device in devices:
        assert api.device(col["id"], device).units == 3
    assert api.counts(col["id"]) == {"reports": 90, "ledger": 90, "aggregated": 90}
    assert api.get(f"/v1/audit/verify?collection={col['id']}").get_json()["ok"]
