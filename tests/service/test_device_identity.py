"""Finding 2 of issue 15, reproduced over the wire exactly as the red team did it.

An honest SDK device reports; another app's client key then sends reports under that
device's ``client_id`` (which it saw, e.g. in an export); before device credentials those
were accepted and spent the honest device's budget, so the device's own next report was
refused ``budget_exceeded_lifetime``. One client key also posed as thousands of devices.
Only the SDK, HTTP and APIs that existed before the fix are used, so this file runs (and
fails) against the old code too.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime

from client_sdk.client import Client
from ldpserver.services.keys import create_key
from tests.service.helpers import make_reports


def test_another_key_cannot_spend_an_sdk_devices_budget(api, live_server):
    col = api.create_collection(
        mechanism={"mechanism": "oue", "epsilon": 1.0, "domain_size": 16}, budget={"cap_lifetime": 4.0}
    )
    other_key = create_key(api.engine, "client", "another app", datetime.now(UTC))[1]
    api.keys["other-app"] = other_key
    with (
        tempfile.TemporaryDirectory() as state,
        Client(live_server, api.keys["client"], state, clock=api.clock) as device,  # the server's clock
    ):
        device.report(col["id"], 3)
        assert device.flush(timeout=30).accepted == 1
        victim = device.client_id
        assert victim

        forged = make_reports(col, 3, client_ids=victim, seed=11)
        r = api.post(f"/v1/collections/{col['id']}/reports", role="other-app", json={"wire": 2, "reports": forged})
        assert r.status_code == 200
        assert r.get_json()["accepted"] == 0  # before the fix: 3, spending the victim's budget

        device.report(col["id"], 5)
        result = device.flush(timeout=30)
        assert result.accepted == 1 and result.rejected == 0, result  # before: budget_exceeded_lifetime
    assert api.device(col["id"], victim).units == 2


def test_one_client_key_cannot_pose_as_thousands_of_devices(api):
    col = api.create_collection()
    reports = make_reports(col, 4000, seed=12)  # 4,000 made-up client ids
    r = api.post(f"/v1/collections/{col['id']}/reports", role="client", json={"wire": 2, "reports": reports})
    assert r.status_code == 200
    assert r.get_json()["accepted"] == 0  # before the fix: 4,000
    assert api.counts(col["id"])["reports"] == 0
