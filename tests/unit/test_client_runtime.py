"""The client runtime against an in-process fake of the wire contract (no server needed).

The live-server acceptance tests are in tests/system/test_client_live.py and
test_client_outage.py; these cover the runtime's rules one by one, fast.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from client_sdk.canonical import config_hash
from client_sdk.client import (
    Client,
    ConfigHashMismatchError,
    ConfigUnavailableError,
    DeviceBudgetExceededError,
    HttpResponse,
    RetryPolicy,
    TransportError,
    UnsupportedCollectionError,
    VirtualTimer,
)
from client_sdk.client.config import max_units
from client_sdk.client.store import DB_NAME
from client_sdk.errors import BudgetExceededError

START = datetime(2030, 1, 1, tzinfo=UTC)
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, request_timeout=1.0)
REPORT_ID = re.compile(r"^[0-9a-f]{32}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def public_config(
    mechanism: dict[str, Any],
    *,
    kind: str = "frequency",
    epsilon: float | None = None,
    cap_lifetime: float = 100.0,
    cap_per_window: float | None = None,
    window_epochs: int = 1,
    memoized: bool = False,
    epsilon_per_memo: float | None = None,
    seconds: int = 3600,
) -> dict[str, Any]:
    """The shape ldpserver/services/collections.py serves as the public config."""
    if epsilon is None:
        epsilon = mechanism.get("epsilon", mechanism.get("epsilon_perm"))
    if memoized and epsilon_per_memo is None:
        epsilon_per_memo = epsilon
    return {
        "version": 2,
        "kind": kind,
        "mechanism": mechanism,
        "epsilon": epsilon,
        "neighbouring": "record",
        "epoch": {"seconds": seconds, "start": "2030-01-01T00:00:00Z", "grace": 1},
        "release": {"windows": [1], "cumulative": True, "min_reports": 100},
        "budget": {
            "cap_lifetime": cap_lifetime,
            "cap_per_window": cap_per_window,
            "window_epochs": window_epochs,
            "memoized": memoized,
            "epsilon_per_memo": epsilon_per_memo,
        },
    }


OUE = {"mechanism": "oue", "epsilon": 1.0, "domain_size": 128}
LGRR = {"kind": "longitudinal", "mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 8}


class FakeClock:
    def __init__(self, when: datetime = START + timedelta(seconds=5)) -> None:
        self.now = when

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeServer:
    """The wire contract in memory: configs, idempotent uploads, scripted failures."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Any]] = {}
        self.accepted: dict[str, dict[str, Any]] = {}
        self.posts: list[list[dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Any] = []  # next POSTs: HttpResponse, Exception, or "commit-then-fail"
        self.judge: Any = None  # report -> (reason, detail) to reject it, or None
        self.devices: dict[str, str] = {}  # enrolled client_id -> device secret
        self.enrolments = 0
        self.enrol_script: list[Any] = []  # next enrolments: HttpResponse or Exception
        self.lock = threading.Lock()

    def add(self, cid: str, config: dict[str, Any], claimed: str | None = None) -> str:
        self.collections[cid] = {
            "id": cid,
            "kind": config["kind"],
            "config": config,
            "config_hash": claimed or config_hash(config),
            "current_epoch": 0,
        }
        return cid

    def request(self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float):
        with self.lock:
            self.headers.append(headers)
            parts = urlparse(url).path.strip("/").split("/")
            if method == "GET":
                doc = self.collections.get(parts[2])
                if doc is None:
                    return HttpResponse(404, {}, b'{"detail": "no such collection"}')
                return HttpResponse(200, {"content-type": "application/json"}, json.dumps(doc).encode())
            if parts == ["v1", "devices"]:
                action = self.enrol_script.pop(0) if self.enrol_script else None
                if isinstance(action, HttpResponse):
                    return action
                if isinstance(action, Exception):
                    raise action
                self.enrolments += 1
                cid, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
                self.devices[cid] = secret
                doc = {"devices": [{"client_id": cid, "device_secret": secret}]}
                return HttpResponse(201, {"content-type": "application/json"}, json.dumps(doc).encode())
            document = json.loads(body)
            assert set(document) == {"wire", "reports", "devices"} and document["wire"] == 2  # wire version 2
            reports, proof = document["reports"], document["devices"]
            self.posts.append(reports)
            action = self.script.pop(0) if self.script else None
            if isinstance(action, HttpResponse):
                return action
            if isinstance(action, Exception):
                raise action
            results = []
            for r in reports:
                verdict = self.judge(r) if self.judge else None
                known = self.devices.get(r["client_id"])
                if known is None or known != proof.get(r["client_id"]):
                    verdict = ("device_unauthenticated", "unknown device or wrong secret")
                if verdict is not None:
                    results.append({"report_id": r["report_id"], "status": "rejected", "reason": verdict[0],
                                    "detail": verdict[1]})  # fmt: skip
                elif r["report_id"] in self.accepted:
                    results.append({"report_id": r["report_id"], "status": "duplicate", "reason": None, "detail": None})
                else:
                    self.accepted[r["report_id"]] = r
                    results.append({"report_id": r["report_id"], "status": "accepted", "reason": None, "detail": None})
            if action == "commit-then-fail":
                raise TransportError("connection reset after the server committed")
            counts = {s: sum(x["status"] == s for x in results) for s in ("accepted", "duplicate", "rejected")}
            out = {"accepted": counts["accepted"], "duplicates": counts["duplicate"], "rejected": counts["rejected"]}
            return HttpResponse(200, {}, json.dumps({**out, "results": results}).encode())


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


def make_client(fake: FakeServer, path: Path, **kwargs: Any) -> Client:
    kwargs.setdefault("clock", FakeClock())
    kwargs.setdefault("retry", FAST)
    return Client("http://fake", "ldp_test_key", str(path), transport=fake, **kwargs)


# --- identity, configs ------------------------------------------------------------------------


def test_identity_is_random_persistent_and_on_the_wire(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path) as client:
        assert client.client_id is None  # not enrolled before the first flush
        receipt = client.report("c1", 3)
        assert client.flush(timeout=5).accepted == 1
        first_id = client.client_id
    assert CLIENT_ID.match(first_id) and REPORT_ID.match(receipt.report_id)
    with make_client(fake, tmp_path) as again:
        assert again.client_id == first_id
    with make_client(fake, tmp_path / "other") as other:
        assert other.enrol() != first_id
    (sent,) = fake.posts[0]
    assert sent["client_id"] == first_id and sent["report_id"] == receipt.report_id
    assert sent["config_hash"] == config_hash(public_config(OUE)) and "memo_count" not in sent
    assert sent["epoch"] == 0 and sent["payload"]["m"] == "oue"
    assert fake.headers[-1]["Authorization"] == "Bearer ldp_test_key"


def test_config_whose_hash_does_not_match_is_refused(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE), claimed="sha256:" + "0" * 64)
    with make_client(fake, tmp_path) as client:
        with pytest.raises(ConfigHashMismatchError, match="does not match"):
            client.report("c1", 3)
        assert client.pending() == 0
        db = sqlite3.connect(tmp_path / DB_NAME)
        assert db.execute("SELECT COUNT(*) FROM collections").fetchone()[0] == 0


def test_config_that_under_charges_the_mechanism_is_refused(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE, epsilon=0.5))  # declares 0.5 for an ε = 1 mechanism
    with make_client(fake, tmp_path) as client:
        with pytest.raises(UnsupportedCollectionError, match="refuses to under-count"):
            client.report("c1", 3)


@pytest.mark.parametrize("version", [2.0, True, "2", 1, 3])
def test_config_version_must_be_the_integer_two(fake: FakeServer, tmp_path: Path, version: Any) -> None:
    fake.add("c1", {**public_config(OUE), "version": version})
    with make_client(fake, tmp_path) as client:
        with pytest.raises(UnsupportedCollectionError, match="config version"):
            client.report("c1", 3)


def test_unreachable_server_without_cached_config_perturbs_nothing(tmp_path: Path) -> None:
    class Down:
        def request(self, *args: Any, **kwargs: Any) -> HttpResponse:
            raise TransportError("connection refused")

    with Client("http://fake", "k", str(tmp_path), transport=Down()) as client:
        with pytest.raises(ConfigUnavailableError, match="nothing was perturbed"):
            client.report("c1", 3)
        assert client.pending() == 0


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, 0), (3599.999999, 0), (3600, 1), (7 * 3600 + 1, 7), (-0.000001, -1), (-3600, -1), (-3600.5, -2)],
)
def test_epoch_is_the_servers_floor_rule(fake: FakeServer, tmp_path: Path, offset: float, expected: int) -> None:
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path) as client:
        cfg = client.config("c1")
        when = START + timedelta(seconds=offset)
        assert cfg.epoch_at(when) == (when - START) // timedelta(seconds=3600) == expected
        assert cfg.epoch_at(when.timestamp()) == expected  # a clock may return Unix seconds


# --- the device ledger -----------------------------------------------------------------------------


def test_caps_are_counted_in_units_like_the_server(fake: FakeServer, tmp_path: Path) -> None:
    assert max_units(0.3, 0.1) == 3 and max_units(1.0, 0.3) == 3 and max_units(None, 1.0) is None
    fake.add("c1", public_config({"mechanism": "grr", "epsilon": 0.1, "domain_size": 4}, cap_lifetime=0.3))
    with make_client(fake, tmp_path) as client:
        for v in range(3):
            client.report("c1", v)
        with pytest.raises(BudgetExceededError, match="lifetime cap 0.3"):
            client.report("c1", 3)
        b = client.budget("c1")
        assert b.lifetime.units == 3 and b.lifetime.remaining_units == 0 and b.pending == pytest.approx(0.3)


def test_window_and_lifetime_caps(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE, cap_lifetime=5.0, cap_per_window=2.0, window_epochs=2))
    clock = FakeClock()
    with make_client(fake, tmp_path, clock=clock) as client:
        client.report("c1", 1)
        clock.advance(hours=1)  # epoch 1: still window 0
        client.report("c1", 2)
        with pytest.raises(DeviceBudgetExceededError) as refused:
            client.report("c1", 3)
        err = refused.value
        assert (err.scope, err.window, err.spent, err.cap, err.charge) == ("window", 0, 2.0, 2.0, 1.0)
        assert "nothing was perturbed" in str(err)
        clock.advance(hours=1)  # epoch 2: window 1
        client.report("c1", 3)
        client.report("c1", 4)
        clock.advance(hours=2)  # window 2
        client.report("c1", 5)
        with pytest.raises(DeviceBudgetExceededError) as refused:
            client.report("c1", 6)
        assert refused.value.scope == "lifetime" and refused.value.units == 5
        assert client.pending() == 5
        client.flush(timeout=5)
        b = client.budget("c1")
        assert (b.window_index, b.window.spent, b.window.remaining_units) == (2, 1.0, 1)
        assert b.lifetime.spent == b.acknowledged == 5.0 and b.pending == 0
    assert [r["epoch"] for post in fake.posts for r in post] == [0, 1, 2, 2, 4]


def test_a_failure_while_perturbing_charges_and_queues_nothing(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE, cap_lifetime=2.0))
    with make_client(fake, tmp_path) as client:
        with pytest.raises(ValueError):
            client.report("c1", 128)  # outside the domain: refused by the mechanism inside the transaction
        with pytest.raises(ValueError):
            client.report("c1", -1)
        assert client.pending() == 0 and client.budget("c1").lifetime.units == 0
        client.report("c1", 0)
        client.report("c1", 1)
        assert client.budget("c1").lifetime.units == 2


# --- memoized collections -----------------------------------------------------------------------------


def test_longitudinal_memo_is_reused_charged_once_and_never_keyed_by_the_value(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.add("c1", public_config(LGRR, kind="longitudinal", memoized=True, cap_lifetime=4.0))
    clock = FakeClock()
    with make_client(fake, tmp_path, clock=clock) as client:
        receipts = []
        for _ in range(20):
            receipts.append(client.report("c1", 3))
            clock.advance(hours=1)
        assert [r.units for r in receipts] == [1] + [0] * 19 and receipts[0].new_memo
        assert client.report("c1", 4).memo_count == 2
        with pytest.raises(DeviceBudgetExceededError, match="a new memo"):
            client.report("c1", 5)  # a third memo would cost 6 > 4
        assert client.report("c1", 3).units == 0  # reuse is free at the cap
        client.flush(timeout=5)
        assert client.budget("c1").memo_count == 2 and client.budget("c1").acknowledged == 4.0
    sent = [r for post in fake.posts for r in post]
    # the device keeps its memo accounting; nothing on the wire says when a memo was created
    assert all(set(r) == {"report_id", "client_id", "config_hash", "epoch", "payload"} for r in sent)
    charges = (
        sqlite3.connect(tmp_path / DB_NAME).execute("SELECT units, memo_count FROM charges ORDER BY id").fetchall()
    )
    assert charges == [(1, 1), (1, 2)]
    db = sqlite3.connect(tmp_path / DB_NAME)
    rows = db.execute("SELECT key_hash, memo FROM memos").fetchall()
    assert len(rows) == 2
    for key_hash, memo in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", key_hash)
        assert "key" not in json.loads(memo)  # the memo key (= the value for L-GRR) is not stored
    # another device keys the same value differently (its own secret)
    with make_client(fake, tmp_path / "other") as other:
        other.report("c1", 3)
    other_keys = sqlite3.connect(tmp_path / "other" / DB_NAME).execute("SELECT key_hash FROM memos").fetchall()
    assert other_keys[0][0] not in {k for k, _ in rows}


def test_memoized_frequency_collection_is_refused_on_the_device(fake: FakeServer, tmp_path: Path) -> None:
    # a one-round mechanism has no second randomisation: memoizing it would re-send the first
    # payload verbatim (the server refuses to create such a collection, and so does the device)
    fake.add("c1", public_config(OUE, memoized=True, cap_lifetime=3.0))
    with make_client(fake, tmp_path) as client:
        with pytest.raises(UnsupportedCollectionError, match="longitudinal"):
            client.report("c1", 9)
    assert fake.posts == []


def test_loloha_device_state_is_kept(fake: FakeServer, tmp_path: Path) -> None:
    mech = {"kind": "longitudinal", "mechanism": "loloha", "epsilon_perm": 2.0, "epsilon_first": 1.0, "domain_size": 50}
    fake.add("c1", public_config(mech, kind="longitudinal", memoized=True))
    with make_client(fake, tmp_path) as client:
        client.report("c1", 7)
    with make_client(fake, tmp_path) as client:
        assert client.report("c1", 7).units == 0  # same hash key after a restart, same memo
        client.flush(timeout=5)
    seeds = {r["payload"]["s"] for post in fake.posts for r in post}
    assert len(seeds) == 1


# --- the outbox and flushing -----------------------------------------------------------------------------


def test_flush_sends_batches_in_order(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path, batch_size=3) as client:
        ids = [client.report("c1", v).report_id for v in range(7)]
        result = client.flush(timeout=5)
    assert result.accepted == 7 and result.requests == 3 and result.ok
    assert [len(p) for p in fake.posts] == [3, 3, 1]
    assert [r["report_id"] for p in fake.posts for r in p] == ids


def test_lost_response_then_duplicate_counts_as_delivered(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = ["commit-then-fail"]
    with make_client(fake, tmp_path) as client:
        for v in range(5):
            client.report("c1", v)
        result = client.flush(timeout=5)
        assert result.duplicates == 5 and result.accepted == 0 and result.ok
        assert client.budget("c1").acknowledged == 5.0
    assert len(fake.accepted) == 5


def test_permanent_rejections_are_kept_with_their_reason_and_deferred_ones_stay_queued(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.add("c1", public_config(OUE))
    verdicts = {0: ("epoch_too_old", "epochs 5..6 are accepted now"), 1: ("epoch_in_future", "the epoch is 0")}
    with make_client(fake, tmp_path) as client:
        ids = [client.report("c1", v).report_id for v in range(3)]
        fake.judge = lambda r: verdicts.get(ids.index(r["report_id"]))
        result = client.flush(timeout=5)
        assert (result.accepted, result.rejected, result.deferred, result.remaining) == (1, 1, 1, 1)
        assert result.reasons == {"epoch_too_old": 1}
        (kept,) = client.rejected_reports()
        assert kept.report_id == ids[0] and kept.reason == "epoch_too_old" and "5..6" in kept.detail
        status = client.status()["collections"]["c1"]
        assert status["queued"] == 1 and "epoch_in_future" in status["last_error"]
        assert status["rejected_by_reason"] == {"epoch_too_old": 1}
        b = client.budget("c1")
        assert (b.acknowledged, b.pending, b.rejected, b.lifetime.spent) == (1.0, 1.0, 1.0, 3.0)
        # the deferred report is retried by a later flush
        fake.judge = None
        db = sqlite3.connect(tmp_path / DB_NAME)
        db.execute("UPDATE outbox SET next_attempt_at = 0")
        db.commit()
        assert client.flush(timeout=5).accepted == 1 and client.pending() == 0


def test_too_large_batches_are_split(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(413, {}, b'{"detail": "too large"}')]
    with make_client(fake, tmp_path, batch_size=8) as client:
        for v in range(8):
            client.report("c1", v)
        result = client.flush(timeout=5)
    assert result.accepted == 8 and [len(p) for p in fake.posts] == [8, 4, 4]


def test_retry_after_is_waited_exactly_then_backoff_resumes(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(429, {"retry-after": "1"}, b"{}"), TransportError("reset")]
    timer = VirtualTimer()
    with make_client(fake, tmp_path, timer=timer, uniform=lambda low, high: high) as client:
        client.report("c1", 1)
        result = client.flush(timeout=10)
    assert result.accepted == 1 and result.requests == 3
    # Retry-After: 1 exactly; then the backoff after the second failed attempt, at full jitter
    assert timer.waits == [1.0, FAST.ceiling(1)]


def test_retry_after_as_an_http_date_is_measured_on_the_injected_clock(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    timer = VirtualTimer(start=1_900_000_000.0)
    fake.script = [HttpResponse(503, {"retry-after": formatdate(1_900_000_007.0, usegmt=True)}, b"{}")]
    with make_client(fake, tmp_path, timer=timer) as client:
        client.report("c1", 1)
        assert client.flush(timeout=60).accepted == 1
    assert timer.waits == [7.0]


def test_backoff_is_exponential_with_full_jitter(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(503, {}, b'{"detail": "busy"}')] * 5
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high / 2

    timer = VirtualTimer()
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    with make_client(fake, tmp_path, retry=policy, timer=timer, uniform=uniform) as client:
        client.report("c1", 1)
        result = client.flush(timeout=60)
    assert result.accepted == 1 and result.requests == 6
    assert draws == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 3.0)]  # min(max, base·2^attempt)
    assert timer.waits == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_flush_is_bounded_by_its_timeout_and_keeps_everything(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(503, {}, b'{"detail": "busy"}')] * 1000
    timer = VirtualTimer()
    policy = RetryPolicy(base_delay=0.02, max_delay=0.1)
    with make_client(fake, tmp_path, retry=policy, timer=timer, uniform=lambda low, high: high) as client:
        for v in range(4):
            client.report("c1", v)
        result = client.flush(timeout=0.5)
        # waits 0.02, 0.04, 0.08, then 0.1 three times (0.44 s in all); one more would end past 0.5 s
        assert timer.waits == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1, 0.1])
        assert result.timed_out and result.remaining == 4 and result.requests == 7 and not result.ok
        assert "past the timeout" in result.errors[0]
        assert "503" in client.status()["collections"]["c1"]["last_error"]


def test_a_retry_after_past_the_timeout_is_not_waited(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(503, {"retry-after": "5"}, b"{}")]
    timer = VirtualTimer()
    with make_client(fake, tmp_path, timer=timer) as client:
        client.report("c1", 1)
        result = client.flush(timeout=1.0)
        assert timer.waits == [] and result.requests == 1
        assert result.timed_out and result.remaining == 1 and "next retry in 5.0s" in result.errors[0]


def test_retry_and_batch_size_can_be_changed_after_construction(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(503, {}, b"{}")]
    timer = VirtualTimer()
    with make_client(fake, tmp_path, timer=timer, uniform=lambda low, high: high) as client:
        client.retry = RetryPolicy(base_delay=2.0, max_delay=8.0)
        client.batch_size = 2
        with pytest.raises(ValueError, match="batch_size"):
            client.batch_size = 0
        for v in range(3):
            client.report("c1", v)
        assert client.flush(timeout=60).accepted == 3
    assert timer.waits == [2.0] and [len(p) for p in fake.posts] == [2, 2, 1]


def test_auth_errors_keep_the_reports_and_say_why(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(401, {}, b'{"detail": "unknown key"}')]
    with make_client(fake, tmp_path) as client:
        client.report("c1", 1)
        result = client.flush(timeout=5)
        assert result.remaining == 1 and "HTTP 401: unknown key" in result.errors[0]
        assert client.flush(timeout=5).accepted == 1


def test_config_mismatch_refetches_and_keeps_the_report(fake: FakeServer, tmp_path: Path) -> None:
    old = public_config(OUE)
    fake.add("c1", old)
    with make_client(fake, tmp_path) as client:
        stale = client.report("c1", 1)
        new = public_config({"mechanism": "oue", "epsilon": 1.0, "domain_size": 64})
        fake.add("c1", new)
        fake.judge = lambda r: ("config_mismatch", "hash differs") if r["config_hash"] != config_hash(new) else None
        result = client.flush(timeout=5)
        assert result.reasons == {"config_mismatch": 1} and result.remaining == 0
        (kept,) = client.rejected_reports("c1")
        assert kept.report_id == stale.report_id and config_hash(new) in kept.detail
        assert client.config("c1").config_hash == config_hash(new)
        client.report("c1", 63)  # the new domain
        assert client.flush(timeout=5).accepted == 1


class SteppedTimer(VirtualTimer):
    """Virtual time whose waits block until the test calls ``step()`` (or the event is set):
    the background flusher runs one round per step, with no real sleeping and no deadline."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._permits = 0
        self.blocked = 0  # waits entered so far

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._cond:
            self.blocked += 1
            self._cond.notify_all()
            while not self._permits and not event.is_set():
                self._cond.wait(0.05)  # also notice the event (set by stop/close) without a notify
            if event.is_set():
                return True
            self._permits -= 1
        return super().wait(event, seconds)

    def step(self) -> None:
        """Let the blocked wait return, then wait until the loop blocks again."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.blocked > self._permits, 60), "nothing waits"
            target = self.blocked + 1
            self._permits += 1
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: self.blocked >= target, 60), "the loop did not come back"


def test_background_flush_runs_once_per_interval_and_close_stops_it(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    timer = SteppedTimer()
    client = make_client(fake, tmp_path, timer=timer)
    client.start_background_flush(interval=30.0)
    for v in range(10):
        client.report("c1", v)
    assert client.pending() == 10  # nothing sent before the first interval has passed
    timer.step()
    assert client.pending() == 0 and client.status()["background_flush"] and timer.waits == [30.0]
    assert client.last_flush is not None and client.last_flush.accepted == 10
    fake.script = [RuntimeError("boom")]  # not a TransportError: the flusher records it and carries on
    client.report("c1", 1)
    timer.step()
    assert client.status()["last_background_error"] == "RuntimeError: boom" and client.pending() == 1
    timer.step()
    assert client.last_background_error is None and client.pending() == 0
    client.close()
    assert len(fake.accepted) == 11


class BlockingTimer(VirtualTimer):
    """Virtual time whose waits block until the event is set (what ``close()`` does)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.interrupted: list[bool] = []

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.waiting.set()
        self.interrupted.append(event.wait(60))  # 60 s: a hang guard only
        return self.interrupted[-1]


def test_close_interrupts_a_long_backoff(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.script = [HttpResponse(503, {"retry-after": "30"}, b"{}")]
    timer = BlockingTimer()
    client = make_client(fake, tmp_path, timer=timer)
    client.report("c1", 1)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", client.flush(timeout=60)))
    thread.start()
    assert timer.waiting.wait(60)  # the flush is waiting out the Retry-After
    client.close()
    thread.join(60)
    assert not thread.is_alive() and timer.waits == [30.0] and timer.interrupted == [True]
    assert box["r"].remaining == 1 and box["r"].errors == ["c1: client closed"]
    with make_client(fake, tmp_path) as again:  # still queued on disk
        assert again.pending() == 1


def test_other_kinds_multidim_and_heavy_hitters(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("md", public_config({"mechanism": "smp", "epsilon": 1.0, "domain_sizes": [3, 4]}, kind="multidim"))
    hh = {"protocol": "pem", "epsilon": 2.0, "k": 2, "domain": {"type": "string", "max_bytes": 4}}
    pytest.importorskip("client_sdk.heavy_hitters")
    from client_sdk import heavy_hitters

    fake.add("hh", public_config(heavy_hitters.from_config(hh).config, kind="heavy_hitters", epsilon=2.0))
    with make_client(fake, tmp_path) as client:
        client.report("md", (2, 3))
        client.report("md", [0, 1])
        client.report("hh", "abc")
        with pytest.raises(TypeError, match="party"):
            client.report("md", (1, 1), party="x")
        assert client.flush(timeout=5).accepted == 3


# --- device credential (issue 15) --------------------------------------------------------------


def test_first_flush_enrols_once_and_sends_the_device_secret(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path) as client:
        client.report("c1", 1)
        assert fake.enrolments == 0  # report() stays offline
        assert client.flush(timeout=5).accepted == 1
        client.report("c1", 2)
        assert client.flush(timeout=5).accepted == 1
        cid = client.client_id
    assert fake.enrolments == 1 and cid in fake.devices
    with make_client(fake, tmp_path) as again:  # the credential persists with the state
        assert again.client_id == cid
        status = again.status()
    secret = fake.devices[cid]
    assert secret not in json.dumps(status, default=str) and secret not in repr(status)


def test_device_the_server_forgot_re_enrols_and_resends(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    with make_client(fake, tmp_path) as client:
        client.report("c1", 1)
        assert client.flush(timeout=5).accepted == 1
        old = client.client_id
        fake.devices.clear()  # e.g. the server's database was restored from an older backup
        client.report("c1", 2)
        result = client.flush(timeout=5)
        assert result.accepted == 1 and result.rejected == 0 and result.ok
        assert client.client_id != old and fake.enrolments == 2
        assert client.budget("c1").acknowledged_units == 2  # the local ledger kept every charge


def test_enrolment_retries_429_with_retry_after_and_keeps_reports_on_403(fake: FakeServer, tmp_path: Path) -> None:
    fake.add("c1", public_config(OUE))
    fake.enrol_script = [HttpResponse(429, {"retry-after": "0"}, b'{"detail": "slow down"}')]
    with make_client(fake, tmp_path) as client:
        client.report("c1", 1)
        assert client.flush(timeout=5).accepted == 1
    fake.enrol_script = [HttpResponse(403, {}, b'{"detail": "quota"}')]
    with make_client(fake, tmp_path / "b") as client:
        client.report("c1", 1)
        result = client.flush(timeout=5)
        assert result.accepted == 0 and result.remaining == 1 and "quota" in result.errors[0]
