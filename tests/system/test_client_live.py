"""The client runtime against a LIVE server process (see test_client_harness.py).

* reports survive a client process SIGKILLed between report() and flush(), and arrive
  exactly once when a second process flushes (also when a response is lost in transit);
* a server answering 503 (with Retry-After) for a while loses nothing;
* the device refuses the report that would pass its cap, and the server's ledger and audit
  summary hold exactly what the device says was acknowledged;
* a memoized collection reporting the same value for 100 epochs charges one memo (ε∞) on
  the device, while the server charged the collection's lifetime bound at the first report
  and nothing since (it never learns when a memo is made), so it covers the device;
* a stale cached config (hash mismatch) is refetched; the affected report is kept with its reason;
* the ``ldp-client`` command line.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from client_sdk.canonical import config_hash
from client_sdk.client import Client, DeviceBudgetExceededError, RetryPolicy, VirtualTimer
from client_sdk.client.store import DB_NAME
from tests.system.test_client_harness import REPO, FaultProxy, frequency_collection, live_server

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
FAST = RetryPolicy(base_delay=0.05, max_delay=0.5, request_timeout=5.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with live_server(tmp_path_factory.mktemp("live")) as live:
        yield live


@pytest.fixture
def real_time(server):
    server.clock.set(None)
    yield server.clock


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


REPORT_THEN_SLEEP = r"""
import json, sys, time
from client_sdk.client import Client
url, key, state_dir, cid, n = sys.argv[1:6]
client = Client(url, key, state_dir)
ids = [client.report(cid, i % 128).report_id for i in range(int(n))]
print(json.dumps({"client_id": client.client_id, "ids": ids}), flush=True)  # None: enrols at flush
time.sleep(300)   # killed here: report() returned, flush() never ran
"""

FLUSH = r"""
import json, sys
from client_sdk.client import Client
url, key, state_dir = sys.argv[1:4]
with Client(url, key, state_dir) as client:
    print(json.dumps({**client.flush(timeout=30).to_dict(), "client_id": client.client_id}), flush=True)
"""


def test_config_is_verified_and_cached_for_offline_use(server, real_time, tmp_path: Path) -> None:
    created = server.create_collection(frequency_collection())
    cid = created["id"]
    with Client(server.url, server.client_key, str(tmp_path)) as client:
        cfg = client.config(cid)
        assert cfg.config_hash == created["config_hash"] == config_hash(cfg.config)
        assert cfg.epoch_at(datetime.now(UTC)) in (created["current_epoch"], created["current_epoch"] + 1)
    # a later process with the server unreachable still reports from the cached config
    with Client("http://127.0.0.1:9", server.client_key, str(tmp_path)) as offline:
        receipt = offline.report(cid, 7)
        assert offline.pending(cid) == 1 and receipt.units == 1
    with Client(server.url, server.client_key, str(tmp_path)) as online:
        assert online.flush(timeout=10).accepted == 1


def test_killed_client_reports_arrive_exactly_once(server, real_time, tmp_path: Path) -> None:
    cid = server.create_collection(frequency_collection())["id"]
    state = str(tmp_path / "device")
    n = 40
    child = subprocess.Popen(
        [sys.executable, "-c", REPORT_THEN_SLEEP, server.url, server.client_key, state, cid, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert child.stdout is not None
    line = json.loads(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)  # between report() and flush()
    assert child.wait(10) == -signal.SIGKILL
    assert server.summary(cid)["reports_accepted"] == 0  # nothing was sent before the kill

    flushed = subprocess.run(
        [sys.executable, "-c", FLUSH, server.url, server.client_key, state],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert flushed.returncode == 0, flushed.stderr
    result = json.loads(flushed.stdout)
    assert result["accepted"] == n and result["remaining"] == 0 and result["ok"]

    # exactly once: the server holds each report id once, and a further flush sends nothing
    assert line["client_id"] is None  # the device enrols at its first flush
    rows = server.ledger(cid, result["client_id"])
    assert sorted(r["report_id"] for r in rows) == sorted(line["ids"])
    again = subprocess.run(
        [sys.executable, "-c", FLUSH, server.url, server.client_key, state],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert json.loads(again.stdout)["requests"] == 0
    summary = server.summary(cid)
    assert summary["reports_accepted"] == n and summary["ledger_rows"] == n
    assert server.verify(cid)


def test_lost_response_is_retried_and_counted_once(server, real_time, tmp_path: Path) -> None:
    cid = server.create_collection(frequency_collection())["id"]
    proxy = FaultProxy(server.url)
    try:
        proxy.plan = ["drop"]  # the server commits the batch, the device never hears back
        with Client(proxy.url, server.client_key, str(tmp_path), retry=FAST) as client:
            for i in range(25):
                client.report(cid, i)
            result = client.flush(timeout=20)
            assert result.ok and result.duplicates == 25 and result.accepted == 0 and result.requests == 2
            assert client.budget(cid).acknowledged == 25.0
    finally:
        proxy.close()
    assert server.summary(cid)["reports_accepted"] == 25
    assert server.summary(cid)["epsilon_total"] == 25.0


def test_server_answering_503_for_a_while_loses_nothing(server, real_time, tmp_path: Path) -> None:
    cid = server.create_collection(frequency_collection())["id"]
    proxy = FaultProxy(server.url)
    timer = VirtualTimer(start=time.time())  # retries wait in virtual time: every wait is recorded, none is slept
    try:
        with Client(proxy.url, server.client_key, str(tmp_path), retry=FAST, batch_size=20, timer=timer) as client:
            client.config(cid)
            for i in range(50):
                client.report(cid, i)
            # Retry-After beyond the timeout: flush gives up at once and keeps everything queued
            proxy.retry_after = "5"
            proxy.plan = ["503"]
            short = client.flush(timeout=1.0)
            assert timer.waits == []  # the 5 s Retry-After was not waited
            assert short.timed_out and short.remaining == 50 and short.delivered == 0
            assert "503" in client.status()["collections"][cid]["last_error"]
            # two more 503s with Retry-After: 1, then the server recovers
            proxy.retry_after = "1"
            proxy.plan = ["503", "503"]
            result = client.flush(timeout=20)
            assert result.ok and result.accepted == 50 and result.remaining == 0
            assert timer.waits == [1.0, 1.0]  # Retry-After respected, exactly
            posts = [method for method, _ in proxy.seen if method == "POST"]
            assert len(posts) == 1 + 2 + 3  # the short flush, 2 refusals, 3 batches of ≤ 20
    finally:
        proxy.close()
    assert server.summary(cid)["reports_accepted"] == 50


def test_device_refuses_past_its_caps_and_the_server_agrees(server, tmp_path: Path) -> None:
    body = frequency_collection(cap_lifetime=5.0, cap_per_window=3.0, window_epochs=1)
    body["epoch"] = {"seconds": 3600, "start": "2030-01-01T00:00:00Z", "grace": 1}
    created = server.create_collection(body)
    cid = created["id"]
    server.clock.set(T0 + 10)
    with Client(server.url, server.client_key, str(tmp_path), clock=server.clock) as client:
        for v in range(3):
            client.report(cid, v)
        with pytest.raises(DeviceBudgetExceededError) as window_refusal:
            client.report(cid, 3)
        assert window_refusal.value.scope == "window" and "window 0" in str(window_refusal.value)
        assert client.flush(timeout=10).accepted == 3
        server.clock.set(T0 + 3600 + 10)  # epoch 1: a new accounting window
        client.report(cid, 4)
        client.report(cid, 5)
        with pytest.raises(DeviceBudgetExceededError) as lifetime_refusal:
            client.report(cid, 6)
        assert lifetime_refusal.value.scope == "lifetime"
        assert "lifetime cap 5" in str(lifetime_refusal.value)
        assert client.pending(cid) == 2  # the refused reports were never queued
        assert client.flush(timeout=10).accepted == 2
        budget = client.budget(cid)
        client_id = client.client_id
        device_secret = client._store.device()[1]  # the test plays the device itself below

    assert budget.lifetime.spent == budget.acknowledged == 5.0 and budget.lifetime.remaining_units == 0
    assert budget.window.spent == 2.0 and budget.window.remaining_units == 1
    assert budget.pending == 0 and budget.rejected == 0
    summary = server.summary(cid)
    rows = server.ledger(cid, client_id)
    assert summary["devices"] == 1 and summary["epsilon_total"] == budget.acknowledged
    assert summary["max_spent"] == budget.lifetime.spent and not summary["max_over_cap"]
    assert sum(r["epsilon"] for r in rows) == budget.acknowledged and len(rows) == budget.acknowledged_units
    assert [r["window"] for r in rows] == [0, 0, 0, 1, 1]

    # the server applies the same cap: a hand-made 6th report from this device is refused
    from client_sdk import mechanisms

    payload = mechanisms.create("oue", epsilon=1.0, domain_size=128).perturb(6)
    forged = {
        "report_id": os.urandom(16).hex(),
        "client_id": client_id,
        "config_hash": created["config_hash"],
        "epoch": 1,
        "payload": payload,
    }
    r = httpx.post(
        f"{server.url}/v1/collections/{cid}/reports",
        json={"wire": 2, "reports": [forged], "devices": {client_id: device_secret}},
        headers={"Authorization": f"Bearer {server.client_key}"},
    )
    assert r.json()["results"][0]["reason"] == "budget_exceeded_lifetime"
    assert server.summary(cid)["epsilon_total"] == 5.0


@pytest.mark.parametrize(
    "mechanism",
    [
        {"mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
        {"mechanism": "l-osue", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
        {"mechanism": "loloha", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8},
    ],
    ids=lambda m: m["mechanism"],
)
def test_memoized_same_value_for_100_epochs_charges_one_memo(server, tmp_path: Path, mechanism: dict) -> None:
    body = {
        "kind": "longitudinal",
        "mechanism": {"kind": "longitudinal", **mechanism},
        "epoch": {"seconds": 60, "start": "2030-01-01T00:00:00Z", "grace": 10},
        "budget": {"cap_lifetime": 6.0, "memoized": True},
    }
    created = server.create_collection(body)
    cid, lifetime = created["id"], created["privacy"]["charge"]["lifetime_epsilon"]
    assert lifetime == 2.0 * min(3, created["privacy"]["max_memos"] or 3)
    with Client(server.url, server.client_key, str(tmp_path), clock=server.clock) as client:
        receipts = []
        for epoch in range(100):
            server.clock.set(T0 + 60 * epoch + 1)
            receipts.append(client.report(cid, 5))
            if epoch % 10 == 9:
                assert client.flush(timeout=10).accepted == 10
        assert [r.epoch for r in receipts] == list(range(100))
        assert [r.units for r in receipts] == [1] + [0] * 99
        assert {r.memo_count for r in receipts} == {1}
        budget = client.budget(cid)
        assert budget.memo_count == 1 and budget.lifetime.spent == budget.acknowledged == 2.0
        summary = server.summary(cid)
        rows = server.ledger(cid, client.client_id)
        assert summary["reports_accepted"] == 100 and summary["epsilon_total"] == lifetime
        assert len(rows) == 1 and rows[0]["epsilon"] == lifetime and rows[0]["memo_count"] is None
        assert rows[0]["epoch"] == 0

        # other values: a new memo (a new hash value for LOLOHA) is charged ε∞ again on the
        # device until the lifetime cap (6 = 3 memos) refuses the next new one; the server
        # charges nothing more (its lifetime charge already covers every memo)
        server.clock.set(T0 + 60 * 100 + 1)
        refused = 0
        for value in range(8):
            try:
                client.report(cid, value)
            except DeviceBudgetExceededError as exc:
                refused += 1
                assert "a new memo" in str(exc) and exc.scope == "lifetime"
        client.report(cid, 5)  # an existing memo still reports at the cap, at no charge
        assert client.flush(timeout=10).remaining == 0
        budget = client.budget(cid)
        assert budget.memo_count == budget.lifetime.units <= 3
        assert budget.acknowledged == 2.0 * budget.memo_count <= server.summary(cid)["epsilon_total"] == lifetime
        assert len(server.ledger(cid, client.client_id)) == 1
        if mechanism["mechanism"] != "loloha":  # 8 values, 8 memo keys: 3 charged, 5 refused
            assert budget.memo_count == 3 and refused == 5
        memo_count = budget.memo_count

    # the device never stored a true value: memo rows are keyed by an HMAC and carry no key
    db = sqlite3.connect(tmp_path / DB_NAME)
    memos = db.execute("SELECT key_hash, memo FROM memos").fetchall()
    assert len(memos) == memo_count
    for key_hash, memo in memos:
        assert len(key_hash) == 64 and "key" not in json.loads(memo)
    db.close()


def test_stale_cached_config_is_refetched_and_the_report_kept_with_its_reason(server, real_time, tmp_path) -> None:
    cid = server.create_collection(frequency_collection())["id"]
    with Client(server.url, server.client_key, str(tmp_path)) as client:
        real_hash = client.config(cid).config_hash
    # simulate a stale cache entry: a self-consistent config the server does not serve
    db = sqlite3.connect(tmp_path / DB_NAME)
    stale = json.loads(db.execute("SELECT config FROM collections").fetchone()[0])
    stale["release"]["min_reports"] = 7
    db.execute("UPDATE collections SET config = ?, config_hash = ?", (json.dumps(stale), config_hash(stale)))
    db.commit()
    db.close()
    with Client(server.url, server.client_key, str(tmp_path), retry=FAST) as client:
        old = client.report(cid, 3)
        result = client.flush(timeout=10)
        assert result.rejected == 1 and result.reasons == {"config_mismatch": 1} and result.remaining == 0
        kept = client.rejected_reports(cid)
        assert [k.report_id for k in kept] == [old.report_id] and kept[0].reason == "config_mismatch"
        assert client.config(cid).config_hash == real_hash  # refetched
        client.report(cid, 3)
        assert client.flush(timeout=10).accepted == 1


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "client_sdk.cli", *args],
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=60,
    )


def test_cli_report_flush_budget_status(server, real_time, tmp_path: Path) -> None:
    cid = server.create_collection(frequency_collection(cap_lifetime=2.0))["id"]
    env = {**child_env(), "LDP_API_KEY": server.client_key}
    common = ["--url", server.url, "--state-dir", str(tmp_path)]
    first = run_cli(*common, "report", cid, "17", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["units"] == 1
    assert run_cli(*common, "report", cid, "18", env=env).returncode == 0
    refused = run_cli(*common, "report", cid, "19", env=env)
    assert refused.returncode == 3 and "lifetime cap 2" in refused.stderr
    status = json.loads(run_cli(*common, "status", "--json", env=env).stdout)
    assert status["collections"][cid]["queued"] == 2
    flushed = run_cli(*common, "flush", "--timeout", "10", env=env)
    assert flushed.returncode == 0, flushed.stderr
    assert "accepted 2" in flushed.stdout
    budget = json.loads(run_cli(*common, "budget", cid, "--json", env=env).stdout)
    assert budget["lifetime"]["spent"] == 2.0 and budget["acknowledged"] == 2.0
    text = run_cli(*common, "budget", cid, env=env)
    assert "lifetime" in text.stdout and "2 / 2" in text.stdout
    assert server.summary(cid)["epsilon_total"] == 2.0
