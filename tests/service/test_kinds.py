"""Multidimensional and heavy-hitter collections plug in through the adapter layer."""

from __future__ import annotations

import numpy as np
import pytest

from ldpserver import kinds as protocols
from tests.service.helpers import new_report_id, statuses


def _need(kind: str) -> None:
    if not protocols.ADAPTERS[kind].available():
        pytest.skip(f"the SDK package for {kind!r} is not importable yet")


def _wire(col: dict, payloads: list, clients: list[str]) -> list[dict]:
    return [
        {"report_id": new_report_id(), "client_id": c, "config_hash": col["config_hash"],
         "epoch": col["current_epoch"], "payload": p}
        for c, p in zip(clients, payloads, strict=True)
    ]  # fmt: skip


def test_multidim_reports_are_aggregated_and_charged_epsilon_prime(api):
    _need("multidim")
    from client_sdk import multidim

    col = api.create_collection(
        kind="multidim",
        mechanism={"mechanism": "rsfd-adp", "epsilon": 1.0, "domain_sizes": [4, 2, 40]},
        budget={"cap_lifetime": 10.0},
    )
    m = multidim.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(3)
    values = rng.integers(0, [4, 2, 40], size=(50, 3))
    payloads = m.encode(m.perturb_batch(values, rng=rng))
    reports = _wire(col, payloads, [f"u{i}" for i in range(50)])
    bad = dict(reports[0], report_id=new_report_id(), payload={"v": 1, "m": "rsfd-adp", "y": "nope"})
    r = api.upload(col, [*reports, bad])
    body = r.get_json()
    assert body["accepted"] == 50 and statuses(r)[-1][0] == "rejected"
    ledger = api.get(f"/v1/audit/ledger?collection={col['id']}&limit=1").get_json()["items"][0]
    assert ledger["neighbouring"] == "tuple"
    assert ledger["epsilon"] == pytest.approx(m.privacy.epsilon_tuple)
    assert ledger["epsilon_attribute"] == pytest.approx(m.privacy.epsilon_attribute)
    assert api.counts(col["id"]) == {"reports": 50, "ledger": 50, "aggregated": 50}
    expected = m.aggregate(payloads)
    stored = api.partial_aggregates(col["id"])
    assert len(stored) == 1 and stored[0]["n"] == 50
    assert [list(c) for c in stored[0]["counts"]] == [list(map(int, c)) for c in expected.counts]


def test_federated_heavy_hitter_collection_lists_its_parties(api):
    _need("heavy_hitters")
    from client_sdk import heavy_hitters

    mechanism = heavy_hitters.create(
        "tap", epsilon=2.0, k=2, domain={"type": "integer", "bits": 8}, parties=["eu", "us"]
    ).config
    col = api.create_collection(kind="heavy_hitters", mechanism=mechanism, parties=["eu", "us"])
    assert col["config"]["parties"] == ["eu", "us"]
    hh = heavy_hitters.from_config(col["config"]["mechanism"])
    payloads = [hh.perturb(7, party="eu") for _ in range(10)] + [hh.perturb(200, party="us") for _ in range(10)]
    r = api.upload(col, _wire(col, payloads, [f"h{i}" for i in range(20)]))
    assert r.get_json()["accepted"] == 20
    assert api.counts(col["id"]) == {"reports": 20, "ledger": 20, "aggregated": 20}
    # parties that disagree with the protocol's, or parties on a protocol that has none, are refused
    spec = {"kind": "heavy_hitters", "epoch": {"seconds": 3600}, "budget": {"cap_lifetime": 4.0}}
    wrong = api.post("/v1/collections", json=spec | {"mechanism": mechanism, "parties": ["eu"]})
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["path"] == "/parties"
    pem = heavy_hitters.create("pem", epsilon=2.0, k=2, domain={"type": "integer", "bits": 8}).config
    refused = api.post("/v1/collections", json=spec | {"mechanism": pem, "parties": ["eu"]})
    assert refused.status_code == 422 and "not federated" in refused.get_json()["detail"]


@pytest.mark.parametrize(
    ("mechanism", "needle"),
    [
        (
            {
                "protocol": "pem",
                "epsilon": 2.0,
                "k": 4,
                "domain": {"type": "string", "max_bytes": 4, "alphabet": "lower"},
            },
            "unknown domain field",
        ),
        (
            {
                "protocol": "pem",
                "epsilon": 2.0,
                "k": 4,
                "domain": {"type": "string", "alphabet": "lower", "max_chars": 4},
                "colour": "red",
            },
            "colour",
        ),
        (
            {
                "protocol": "treehist",
                "epsilon": 1.0,
                "k": 16,
                "domain": {"type": "string", "max_bytes": 12},
                "expected_reports": 2000,
            },
            "needs n ≥",
        ),
    ],
)
def test_bad_heavy_hitter_configs_are_refused_with_a_clear_4xx(api, mechanism, needle):
    """Unknown keys anywhere in a heavy-hitter config, and hopeless configurations, are
    refused at creation (problem+json naming the reason), never stored."""
    _need("heavy_hitters")
    from tests.service.helpers import BASE_COLLECTION, merged

    response = api.post(
        "/v1/collections", json=merged(BASE_COLLECTION, {"kind": "heavy_hitters", "mechanism": mechanism})
    )
    assert 400 <= response.status_code < 500, response.get_json()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert needle in response.get_data(as_text=True)
