"""The envelope says nothing about the data (issue 14, points 1 and 2).

Through the real device path (the Python SDK's ``Client`` talking to the app):

* two devices whose values differ only in *whether they moved to a new value* — (0, 0)
  and (0, 1) — send envelopes that differ only in their random ids and their LDP payloads,
  and get identical ledger rows (wire version 1 sent ``memo_count`` 1,1 vs 1,2 and the
  ledger charged 1 vs 2 memos: the sequences were told apart every time);
* the server charges a memoized collection's lifetime bound at a device's first report,
  so its charge is at least what the device spent, per device;
* a version 1 body is refused with one clear 400; ``memo_count`` is refused in version 2;
* ``budget.memoized`` is refused on kinds without a second randomisation round.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from client_sdk import longitudinal
from client_sdk.client import Client, DeviceBudgetExceededError
from client_sdk.client.transport import HttpResponse
from tests.service.helpers import T0, make_reports, statuses

#: envelope fields that are random per report or per device (everything else must not vary)
RANDOM_FIELDS = {"report_id", "client_id"}
#: ledger fields that identify the row, not the charge
ROW_IDENTITY = {"client_id", "report_id", "seq", "prev_hash", "row_hash", "block_seq"}


class FlaskTransport:
    """The SDK's transport contract over the Flask test client; records every uploaded body
    (report batches, not the device's one enrolment)."""

    def __init__(self, test_client: Any) -> None:
        self.test_client = test_client
        self.bodies: list[dict[str, Any]] = []

    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> HttpResponse:
        if body is not None and urlparse(url).path.endswith("/reports"):
            self.bodies.append(json.loads(body))
        r = self.test_client.open(urlparse(url).path, method=method, headers=headers, data=body)
        return HttpResponse(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data())


def lgrr_collection(api, *, cap_lifetime: float = 6.0, domain_size: int = 4) -> dict[str, Any]:
    m = longitudinal.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=domain_size)
    return api.create_collection(
        kind="longitudinal",
        mechanism=m.config,
        budget={"cap_lifetime": cap_lifetime, "memoized": True},
    )


def run_device(api, col: dict[str, Any], values: list[int], state_dir: Path) -> tuple[Client, FlaskTransport, float]:
    """One device reports ``values`` in consecutive epochs (from T0), flushing after each;
    returns the client id, the transport's record and what the device says it spent."""
    api.clock.set(T0)
    transport = FlaskTransport(api.client)
    with Client("http://ldp.test", api.keys["client"], str(state_dir), clock=api.clock, transport=transport) as client:
        for value in values:
            try:
                client.report(col["id"], value)
            except DeviceBudgetExceededError:
                pass  # the device's own guard: nothing was perturbed or sent
            result = client.flush(timeout=10)
            assert result.rejected == 0, result
            api.clock.advance(hours=1)
        spent = client.budget(col["id"]).lifetime.spent
    return client, transport, spent


def ledger_of(api, col: dict[str, Any], client_id: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/audit/ledger?collection={col['id']}&client_id={client_id}").get_json()["items"]


def test_staying_and_moving_devices_send_the_same_envelope_and_get_the_same_ledger(api, tmp_path: Path):
    col = lgrr_collection(api)
    stay, stay_wire, stay_spent = run_device(api, col, [0, 0], tmp_path / "stay")
    move, move_wire, move_spent = run_device(api, col, [0, 1], tmp_path / "move")
    assert (stay_spent, move_spent) == (2.0, 4.0)  # the device still knows exactly what it spent

    def envelopes(transport: FlaskTransport) -> list[Any]:
        out = []
        for body in transport.bodies:
            for report in body["reports"]:
                out.append({k: v for k, v in report.items() if k not in RANDOM_FIELDS | {"payload"}})
        return out

    # everything but the random ids and the LDP payload is equal, field for field
    assert envelopes(stay_wire) == envelopes(move_wire) and len(envelopes(stay_wire)) == 2
    for body in stay_wire.bodies + move_wire.bodies:
        # devices: the device's credential (server-chosen), not data
        assert set(body) == {"wire", "reports", "devices"} and body["wire"] == 2
        for report in body["reports"]:
            assert set(report) == {"report_id", "client_id", "config_hash", "epoch", "payload"}
    # the payloads have the same shape (their values are the mechanism's ε-LDP output)
    shape = [[sorted(r["payload"]) for r in b["reports"]] for b in stay_wire.bodies]
    assert shape == [[sorted(r["payload"]) for r in b["reports"]] for b in move_wire.bodies]

    def charges(client_id: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in ROW_IDENTITY} for row in ledger_of(api, col, client_id)]

    assert charges(stay.client_id) == charges(move.client_id)
    [row] = charges(move.client_id)
    lifetime = col["privacy"]["charge"]["lifetime_units"]
    assert (row["units"], row["epsilon"], row["memo_count"]) == (lifetime, lifetime * 2.0, None)
    assert row["epoch"] == 0  # charged at the first report, nothing afterwards


def test_server_charge_covers_device_spend_for_every_device(api, tmp_path: Path):
    # cap 6 at ε∞ = 2 allows 3 memos, fewer than k = 5 values: the lifetime bound is 3 units
    col = lgrr_collection(api, cap_lifetime=6.0, domain_size=5)
    assert col["privacy"]["charge"]["lifetime_units"] == 3
    rng = np.random.default_rng(14)
    for device in range(6):
        values = [int(v) for v in rng.integers(0, 5, size=5)]
        client, _, spent = run_device(api, col, values, tmp_path / f"d{device}")
        server = sum(row["epsilon"] for row in ledger_of(api, col, client.client_id))
        assert server >= spent - 1e-9, (values, server, spent)
        assert server == 6.0  # the lifetime bound, whatever the values
    summary = api.get(f"/v1/audit/summary?collection={col['id']}").get_json()
    assert summary["max_over_cap"] is False


def test_lifetime_bound_is_the_protocol_memo_limit_when_below_the_cap(api):
    col = lgrr_collection(api, cap_lifetime=100.0, domain_size=4)
    assert col["privacy"]["charge"]["lifetime_units"] == 4  # at most k = 4 memos under L-GRR
    assert col["privacy"]["charge"]["lifetime_epsilon"] == 8.0


def test_old_wire_version_gets_a_clear_400(api):
    col = api.create_collection()
    reports = make_reports(col, 2, seed=3)
    url = f"/v1/collections/{col['id']}/reports"
    for body, sent in (({"reports": reports}, "no 'wire' field"), ({"wire": 1, "reports": reports}, "wire = 1")):
        r = api.post(url, role="client", json=body)
        assert r.status_code == 400 and r.mimetype == "application/problem+json"
        problem = r.get_json()
        assert problem["type"].endswith("/unsupported-wire-version") and sent in problem["detail"]
        assert "wire version 2" in problem["detail"] and problem["supported"] == [2]
    assert api.counts(col["id"]) == {"reports": 0, "ledger": 0, "aggregated": 0}
    # a client key is still needed first
    assert api.post(url, role=None, json={"reports": reports}).status_code == 401


def test_memo_count_is_refused_in_wire_version_2(api):
    col = lgrr_collection(api)
    m = longitudinal.from_config(col["config"]["mechanism"])
    rng = np.random.default_rng(5)
    [payload] = m.encode(m.perturb_batch(np.array([1]), rng, memos=m.new_memo_table(1, rng)))
    report = {
        "report_id": "ab" * 16,
        "client_id": "dev-1",
        "config_hash": col["config_hash"],
        "epoch": col["current_epoch"],
        "payload": payload,
        "memo_count": 1,
    }
    r = api.upload(col, [report])
    assert statuses(r) == [("rejected", "invalid_report")]
    assert "memo_count" in r.get_json()["results"][0]["detail"]


@pytest.mark.parametrize(
    ("kind", "mechanism"),
    [
        ("frequency", {"mechanism": "olh", "epsilon": 1.0, "domain_size": 16}),
        ("frequency", {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4}),
        ("multidim", {"mechanism": "spl", "epsilon": 1.0, "domain_sizes": [3, 4]}),
    ],
)
def test_memoized_is_refused_without_a_second_randomisation_round(api, kind: str, mechanism: dict[str, Any]):
    r = api.post(
        "/v1/collections",
        json={
            "kind": kind,
            "mechanism": mechanism,
            "epoch": {"seconds": 3600},
            "budget": {"cap_lifetime": 10.0, "memoized": True},
        },
    )
    assert r.status_code == 422, r.get_json()
    problem = r.get_json()
    assert problem["type"].endswith("/invalid-config")
    assert problem["errors"][0]["path"] == "/budget/memoized"
    assert "'longitudinal'" in problem["detail"] and "verbatim" in problem["detail"]
