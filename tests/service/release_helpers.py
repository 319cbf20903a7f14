"""Helpers of the release tests, and the request builder the table-driven access test
(``test_auth.py``) uses for the release routes: they need an existing release to answer 2xx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from tests.service.helpers import EPOCH_START, new_report_id

RELEASE_RULES = {
    "/v1/collections/<collection_id>/releases",
    "/v1/collections/<collection_id>/releases/<int:number>",
    "/v1/collections/<collection_id>/estimates",
    "/v1/collections/<collection_id>/heavy-hitters",
    "/v1/collections/<collection_id>/timeseries",
}

HH_MECHANISM = {"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}, "eta": 2}


def at_epoch(api: Any, epoch: int, minutes: int = 30) -> None:
    """Move the clock into ``epoch`` of the hourly test collections."""
    api.clock.set(EPOCH_START + timedelta(hours=epoch, minutes=minutes))


def wire(collection: dict[str, Any], payloads: list[Any], epoch: int, prefix: str = "d") -> list[dict[str, Any]]:
    return [
        {
            "report_id": new_report_id(),
            "client_id": f"{prefix}{epoch}-{i}",
            "config_hash": collection["config_hash"],
            "epoch": epoch,
            "payload": payload,
        }
        for i, payload in enumerate(payloads)
    ]


def hh_payloads(collection: dict[str, Any], items: list[int], seed: int, parties: list[str] | None = None) -> list:
    from client_sdk import heavy_hitters

    hh = heavy_hitters.from_config(collection["config"]["mechanism"])
    reports = hh.perturb_batch(np.asarray(items), np.random.default_rng(seed), parties=parties)
    return hh.encode(reports)


def upload_ok(api: Any, collection: dict[str, Any], reports: list[dict[str, Any]]) -> None:
    for start in range(0, len(reports), 1000):
        response = api.upload(collection, reports[start : start + 1000])
        body = response.get_json()
        assert response.status_code == 200 and body["rejected"] == 0, body


_prepared: dict[str, dict[str, Any]] = {}


def _prepare(api: Any, collection: dict[str, Any], rule: str) -> dict[str, Any]:
    """A collection with release 1 (epoch 0): the given one, or a heavy-hitter one for /heavy-hitters."""
    key = f"{collection['id']}:{'hh' if rule.endswith('/heavy-hitters') else 'any'}"
    if key in _prepared:
        return _prepared[key]
    target = collection
    if rule.endswith("/heavy-hitters"):
        target = api.create_collection(kind="heavy_hitters", mechanism=HH_MECHANISM, budget={"cap_lifetime": 8.0})
        payloads = hh_payloads(target, [7] * 150 + [200] * 50, seed=1)
    else:
        from client_sdk import mechanisms

        m = mechanisms.from_config(collection["config"]["mechanism"])
        rng = np.random.default_rng(0)
        payloads = m.encode(m.perturb_batch(rng.integers(0, m.domain_size, 20), rng=rng))
    epoch = target["current_epoch"]
    upload_ok(api, target, wire(target, payloads, epoch, prefix=f"auth{target['id'][-6:]}-"))
    response = api.post(f"/v1/collections/{target['id']}/releases", json={"epoch": epoch, "force": True})
    assert response.status_code in (200, 201), response.get_json()
    _prepared[key] = target
    return target


def release_request(api: Any, method: str, rule: str, collection: dict[str, Any], role: str | None, **kwargs: Any):
    """The request of ``test_route_refuses_every_role_it_should`` for a release route."""
    target = _prepare(api, collection, rule)
    path = rule.replace("<collection_id>", target["id"]).replace("<int:number>", "1")
    if method == "POST":
        return api.open(method, path, role, json={"epoch": target["current_epoch"], "force": True}, **kwargs)
    if rule.endswith("/timeseries"):
        path += "?item=0"
    return api.open(method, path, role, **kwargs)
