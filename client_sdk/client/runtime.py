"""The device runtime: ``Client(base_url, api_key, state_dir)``.

>>> import tempfile
>>> from client_sdk.client import Client
>>> with Client("http://127.0.0.1:9", "ldp_key", tempfile.mkdtemp()) as client:
...     client.client_id, client.pending()  # not enrolled yet: the first flush enrols
(None, 0)

``report()`` perturbs on the device (OS CSPRNG), checks and charges the device budget,
and writes the report to the durable outbox — one SQLite transaction, fsync'd — then
returns; nothing touches the network unless the collection's public config is not cached
yet. ``flush()`` sends the outbox in batches with retries. The true value is never stored
or sent: memoized collections keep their permanent responses keyed by an HMAC of the memo
key under a device secret.

Device credential: the first ``flush()`` (or ``enrol()``) enrols the device with the app's
client key (``POST /v1/devices``): the server chooses the ``client_id`` and a device
secret, kept in ``state_dir`` beside the budget ledger and never logged. Every upload
carries the secret (``"devices": {client_id: secret}``), so only this device can spend its
server-side budget. If the server answers ``device_unauthenticated`` (it no longer knows
the device, or the app's key changed) the client enrols again and re-sends the batch
under the new id; the local ledger still holds every charge, so nothing is re-spent.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from client_sdk._version import __version__
from client_sdk.canonical import canonical_json
from client_sdk.client import store as S
from client_sdk.client.config import CollectionConfig, memo_digest, utc_now
from client_sdk.client.errors import (
    ClientClosedError,
    ConfigHashMismatchError,
    ConfigUnavailableError,
    DeviceBudgetExceededError,
    HTTPError,
    TransportError,
    UnsupportedCollectionError,
)
from client_sdk.client.transport import HttpResponse, Transport, UrllibTransport

__all__ = ["BudgetStatus", "Client", "FlushResult", "RejectedReport", "ReportReceipt", "RetryPolicy", "Spend"]

SDK_VERSION = __version__
#: the report envelope version this SDK sends (``{"wire": 2, "reports": [...]}``, no memo_count)
ENVELOPE_VERSION = 2

#: rejection reasons that may clear up by themselves: the report stays queued
DEFERRED_REASONS = frozenset({"epoch_in_future", "kind_unavailable", "device_unauthenticated"})
#: the server does not accept this device's credential: enrol again, then re-send
DEVICE_UNAUTHENTICATED = "device_unauthenticated"
#: HTTP statuses worth retrying (with backoff, or after Retry-After)
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: how often a report refused for config_mismatch is retried when the refetched config still matches it
MAX_MISMATCH_RETRIES = 3


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: wait ``uniform(0, min(max_delay, base_delay·2^attempt))``
    (or exactly what ``Retry-After`` says); each request gets at most ``request_timeout``."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    request_timeout: float = 10.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(attempt, 30)))
        return secrets.SystemRandom().uniform(0.0, ceiling)


@dataclass(frozen=True)
class ReportReceipt:
    """What ``report()`` queued: the report id and epoch, and what it charged."""

    report_id: str
    collection_id: str
    epoch: int
    window: int
    units: int
    epsilon_charged: float
    memo_count: int | None
    new_memo: bool


@dataclass(frozen=True)
class Spend:
    spent: float
    cap: float | None
    remaining: float | None
    units: int
    max_units: int | None

    @property
    def remaining_units(self) -> int | None:
        return None if self.max_units is None else max(self.max_units - self.units, 0)


@dataclass(frozen=True)
class BudgetStatus:
    """The device ledger of one collection.

    ``lifetime`` and ``window`` (the current accounting window) count everything this device
    charged; of that, ``acknowledged`` the server accepted (its ledger holds exactly this
    for the device, or for memoized collections the lifetime bound, which is at least
    this: the memo account never leaves the device), ``pending`` waits in the outbox,
    ``rejected`` the server refused (still counted here: the perturbed report left the device).
    """

    collection_id: str
    unit: str  # "report" or "memo"
    unit_epsilon: float
    epoch: int
    window_index: int
    lifetime: Spend
    window: Spend
    acknowledged: float
    pending: float
    rejected: float
    acknowledged_units: int
    memo_count: int
    reports: int
    reports_accepted: int
    reports_duplicate: int
    reports_rejected: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lifetime"]["remaining_units"] = self.lifetime.remaining_units
        data["window"]["remaining_units"] = self.window.remaining_units
        return data


@dataclass(frozen=True)
class RejectedReport:
    report_id: str
    collection_id: str
    config_hash: str
    epoch: int
    memo_count: int | None
    units: int
    created_at: float
    rejected_at: float
    reason: str
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FlushResult:
    """What one ``flush()`` did. ``remaining`` reports are still queued (nothing is dropped)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    deferred: int = 0
    requests: int = 0
    remaining: int = 0
    timed_out: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        """Reports the server now holds (accepted now, or already: duplicates count as success)."""
        return self.accepted + self.duplicates

    @property
    def ok(self) -> bool:
        return self.remaining == 0 and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delivered": self.delivered, "ok": self.ok}


class _Stop(Exception):
    """End this collection's flush (timeout, close, or an error that retrying will not fix now)."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Client:
    """The SDK runtime for one device (one ``state_dir``); thread- and multi-process safe.

    ``clock`` returns the current time (an aware ``datetime`` or Unix seconds) and decides
    the epoch of each report; ``transport`` replaces the standard-library HTTP client.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        state_dir: str,
        *,
        clock: Callable[[], Any] | None = None,
        transport: Transport | None = None,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        if not 1 <= int(batch_size) <= 5000:
            raise ValueError(f"batch_size must lie in [1, 5000], got {batch_size}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._clock = clock or utc_now
        self._transport: Transport = transport or UrllibTransport()
        self.batch_size = int(batch_size)
        self.retry = retry or RetryPolicy()
        self._store = S.StateStore(state_dir, busy_timeout=busy_timeout)
        self.state_dir = str(self._store.dir)
        self._configs: dict[str, CollectionConfig] = {}
        self._configs_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._closing = threading.Event()
        self._owner = f"{os.getpid()}:{secrets.token_hex(8)}"  # this object's name in flush leases
        self._bg_thread: threading.Thread | None = None
        self._bg_stop = threading.Event()
        self.last_flush: FlushResult | None = None
        self.last_background_error: str | None = None
        self._store_closed = False
        self._last_client_id: str | None = None

    # --- identity -------------------------------------------------------------------------
    @property
    def client_id(self) -> str | None:
        """The device's server-chosen pseudonymous id (kept in state_dir; the unit of
        privacy), or None before the first enrolment."""
        if self._store_closed:
            return self._last_client_id
        device = self._store.device()
        return device[0] if device is not None else None

    def enrol(self, timeout: float = 30.0) -> str:
        """Enrol now if not enrolled yet (``flush()`` does this by itself); returns the client_id.
        Raises ``HTTPError`` / ``TransportError`` when the server refuses or cannot be reached."""
        self._check_open()
        device = self._store.device()
        if device is None:
            try:
                device = self._enrol(time.monotonic() + max(float(timeout), 0.0))
            except _Stop as stop:
                raise TransportError(f"enrolment failed: {stop}") from None
        return device[0]

    def _enrol(self, deadline: float) -> tuple[str, str]:
        """POST /v1/devices (retrying 429/5xx/network trouble until ``deadline``) and keep
        the credential with the device state."""
        body = b'{"count":1}'
        url = self._url("v1", "devices")
        attempt = 0
        while True:
            if self._closing.is_set():
                raise _Stop("client closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Stop("timed out enrolling the device; reports kept in the outbox", timed_out=True)
            delay: float | None = None
            try:
                resp: HttpResponse = self._transport.request(
                    "POST", url, headers=self._headers(True), body=body,
                    timeout=min(self.retry.request_timeout, remaining),
                )  # fmt: skip
            except TransportError as exc:
                problem = str(exc)
            else:
                if resp.status == 201:
                    try:
                        cred = resp.json()["devices"][0]
                        client_id, secret = str(cred["client_id"]), str(cred["device_secret"])
                    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError):
                        raise _Stop("the enrolment answer is unreadable; reports kept in the outbox") from None
                    return self._store.set_device(client_id, secret)
                detail, _ = resp.problem_detail()
                problem = f"enrolment: HTTP {resp.status}: {detail}"
                if resp.status not in RETRYABLE_STATUSES:
                    raise _Stop(f"{problem} (reports kept in the outbox)")
                delay = resp.retry_after()
            self._pause_before_retry(attempt, delay, problem, deadline)
            attempt += 1

    def _pause_before_retry(self, attempt: int, delay: float | None, problem: str, deadline: float) -> None:
        """Wait the server's Retry-After (``delay``) or the backoff of ``attempt``; _Stop when
        that would pass ``deadline`` (timed out) or the client closes meanwhile. Shared by
        enrolment and upload, so both retry by the same rule."""
        if delay is None:
            delay = self.retry.backoff(attempt)
        if delay > deadline - time.monotonic():
            raise _Stop(f"{problem}; next retry in {delay:.1f}s is past the timeout", timed_out=True)
        if self._closing.wait(delay):
            raise _Stop("client closed")

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background flusher, interrupt any backoff wait, close the state store."""
        self._closing.set()
        self.stop_background_flush()
        with self._flush_lock:
            if not self._store_closed:
                self._last_client_id = self.client_id  # still readable after close()
                self._store_closed = True
            self._store.close()

    def _check_open(self) -> None:
        if self._closing.is_set():
            raise ClientClosedError("this Client is closed")

    # --- HTTP -------------------------------------------------------------------------------
    def _headers(self, json_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"ldp-client/{SDK_VERSION}"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _url(self, *parts: str) -> str:
        return self.base_url + "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)

    # --- configs ----------------------------------------------------------------------------
    def config(self, collection_id: str) -> CollectionConfig:
        """The collection's verified public config: memory, then state_dir, then the server."""
        self._check_open()
        cached = self._configs.get(collection_id)
        if cached is not None:
            return cached
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT config, config_hash FROM collections WHERE collection_id = ?", (collection_id,)
            ).fetchone()
        if row is not None:
            try:
                compiled = CollectionConfig.build(collection_id, json.loads(row[0]), row[1])
            except (ConfigHashMismatchError, UnsupportedCollectionError, ValueError):
                compiled = None  # a damaged cache entry: fetch it again
            if compiled is not None:
                with self._configs_lock:
                    return self._configs.setdefault(collection_id, compiled)
        return self.refresh_config(collection_id)

    def refresh_config(self, collection_id: str) -> CollectionConfig:
        """Fetch the public config from the server, check its hash, cache it in state_dir."""
        self._check_open()
        url = self._url("v1", "collections", collection_id)
        try:
            resp = self._transport.request(
                "GET", url, headers=self._headers(False), body=None, timeout=self.retry.request_timeout
            )
        except TransportError as exc:
            raise ConfigUnavailableError(
                f"collection {collection_id!r}: the public config is not cached and the server is unreachable "
                f"({exc}); nothing was perturbed"
            ) from None
        if resp.status != 200:
            detail, problem = resp.problem_detail()
            err = HTTPError(resp.status, detail, problem)
            raise ConfigUnavailableError(
                f"collection {collection_id!r}: fetching the public config failed ({err}); nothing was perturbed"
            ) from err
        try:
            body = resp.json()
        except (ValueError, UnicodeDecodeError):
            raise ConfigUnavailableError(f"collection {collection_id!r}: the server's config is not JSON") from None
        compiled = CollectionConfig.from_server(collection_id, body)
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO collections (collection_id, kind, config, config_hash, fetched_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (collection_id) DO UPDATE SET kind = excluded.kind, config = excluded.config, "
                "config_hash = excluded.config_hash, fetched_at = excluded.fetched_at",
                (collection_id, compiled.kind, canonical_json(compiled.config), compiled.config_hash, time.time()),
            )
        with self._configs_lock:
            self._configs[collection_id] = compiled
        return compiled

    # --- reporting ----------------------------------------------------------------------------
    def report(self, collection_id: str, value: Any, *, party: Any = None) -> ReportReceipt:
        """Perturb ``value`` now and queue the report durably; returns without network I/O
        (unless the config must be fetched first). Raises ``DeviceBudgetExceededError`` (a
        ``BudgetExceededError``) when the charge would pass a cap: then nothing is drawn,
        stored or queued. ``party``: heavy-hitter collections with parties only."""
        self._check_open()
        cfg = self.config(collection_id)
        epoch = cfg.epoch_at(self._clock())
        window = cfg.window_of(epoch)
        policy = cfg.budget
        perturber = cfg.perturber
        report_id = secrets.token_hex(16)
        now = time.time()
        new_memo = False
        with self._store.write() as conn:
            units_total, memo_count = S.budget_row(conn, collection_id)
            if perturber.memoized:
                state = self._device_state(conn, cfg) if perturber.needs_state else None
                key_text, key = perturber.lookup_key(value, state, party)
                digest = memo_digest(self._store.memo_secret, collection_id, cfg.config_hash, key_text)
                row = conn.execute(
                    "SELECT memo FROM memos WHERE collection_id = ? AND key_hash = ?", (collection_id, digest)
                ).fetchone()
                if row is None:
                    units = 1
                    self._check_caps(conn, cfg, units_total, window, units)
                    memo = perturber.new_memo(value, state, key, party)
                    conn.execute(
                        "INSERT INTO memos (collection_id, key_hash, config_hash, memo, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (collection_id, digest, cfg.config_hash, S.dumps(memo), now),
                    )
                    memo_count += 1
                    new_memo = True
                else:
                    units = 0
                    memo = json.loads(row[0])
                payload = perturber.from_memo(memo, key, state)
                wire_memo_count: int | None = memo_count
            else:
                units = 1
                self._check_caps(conn, cfg, units_total, window, units)
                payload = perturber.perturb(value, party)
                wire_memo_count = None
            conn.execute(
                "INSERT INTO outbox (report_id, collection_id, config_hash, epoch, payload, memo_count, units, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, collection_id, cfg.config_hash, epoch, S.dumps(payload), wire_memo_count, units, now),
            )
            if units:
                conn.execute(
                    "INSERT INTO charges (collection_id, report_id, epoch, window, units, epsilon, memo_count, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (collection_id, report_id, epoch, window, units, units * policy.unit_epsilon, wire_memo_count, now),
                )
            S.count_report(conn, collection_id, units, memo_count)
        return ReportReceipt(
            report_id, collection_id, epoch, window, units, units * policy.unit_epsilon, wire_memo_count, new_memo
        )

    def _device_state(self, conn: Any, cfg: CollectionConfig) -> Any:
        row = conn.execute(
            "SELECT state FROM device_states WHERE collection_id = ? AND config_hash = ?",
            (cfg.collection_id, cfg.config_hash),
        ).fetchone()
        if row is not None:
            return json.loads(row[0])
        state = cfg.perturber.new_state()
        conn.execute(
            "INSERT INTO device_states (collection_id, config_hash, state) VALUES (?, ?, ?)",
            (cfg.collection_id, cfg.config_hash, S.dumps(state)),
        )
        return state

    @staticmethod
    def _check_caps(conn: Any, cfg: CollectionConfig, units_total: int, window: int, units: int) -> None:
        policy = cfg.budget
        unit = policy.unit_epsilon
        common = {"charge": units * unit, "memoized": policy.memoized}
        if units_total + units > policy.max_units_lifetime:
            raise DeviceBudgetExceededError(
                cfg.collection_id,
                "lifetime",
                spent=units_total * unit,
                cap=policy.cap_lifetime,
                units=units_total,
                max_units=policy.max_units_lifetime,
                **common,
            )
        if policy.max_units_window is not None:
            in_window = S.window_units(conn, cfg.collection_id, window)
            if in_window + units > policy.max_units_window:
                raise DeviceBudgetExceededError(
                    cfg.collection_id,
                    "window",
                    spent=in_window * unit,
                    cap=float(policy.cap_per_window or 0.0),
                    units=in_window,
                    max_units=policy.max_units_window,
                    window=window,
                    **common,
                )

    # --- budget and inspection -----------------------------------------------------------------
    def budget(self, collection_id: str) -> BudgetStatus:
        """Spent and remaining epsilon, per current window and over the lifetime."""
        cfg = self.config(collection_id)
        policy = cfg.budget
        unit = policy.unit_epsilon
        epoch = cfg.epoch_at(self._clock())
        window = cfg.window_of(epoch)
        with self._store.read() as conn:
            units_total, memo_count = S.budget_row(conn, collection_id)
            in_window = S.window_units(conn, collection_id, window)
            by_status = dict(
                conn.execute(
                    "SELECT status, COALESCE(SUM(units), 0) FROM charges WHERE collection_id = ? GROUP BY status",
                    (collection_id,),
                ).fetchall()
            )
            row = conn.execute(
                "SELECT reports, accepted, duplicates, rejected FROM budget WHERE collection_id = ?", (collection_id,)
            ).fetchone() or (0, 0, 0, 0)

        def spend(units: int, cap: float | None, max_u: int | None) -> Spend:
            spent = units * unit
            return Spend(spent, cap, None if cap is None else max(cap - spent, 0.0), units, max_u)

        return BudgetStatus(
            collection_id=collection_id,
            unit=policy.unit,
            unit_epsilon=unit,
            epoch=epoch,
            window_index=window,
            lifetime=spend(units_total, policy.cap_lifetime, policy.max_units_lifetime),
            window=spend(in_window, policy.cap_per_window, policy.max_units_window),
            acknowledged=by_status.get("acknowledged", 0) * unit,
            pending=by_status.get("queued", 0) * unit,
            rejected=by_status.get("rejected", 0) * unit,
            acknowledged_units=int(by_status.get("acknowledged", 0)),
            memo_count=memo_count,
            reports=int(row[0]),
            reports_accepted=int(row[1]),
            reports_duplicate=int(row[2]),
            reports_rejected=int(row[3]),
        )

    def pending(self, collection_id: str | None = None) -> int:
        """Reports waiting in the outbox."""
        with self._store.read() as conn:
            if collection_id is None:
                return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            return int(
                conn.execute("SELECT COUNT(*) FROM outbox WHERE collection_id = ?", (collection_id,)).fetchone()[0]
            )

    def rejected_reports(self, collection_id: str | None = None, limit: int = 1000) -> list[RejectedReport]:
        """Reports the server refused for good, newest first, with its reason (kept, never dropped)."""
        query = (
            "SELECT report_id, collection_id, config_hash, epoch, memo_count, units, created_at, rejected_at, "
            "reason, detail FROM rejected"
        )
        params: tuple[Any, ...] = ()
        if collection_id is not None:
            query += " WHERE collection_id = ?"
            params = (collection_id,)
        query += " ORDER BY rejected_at DESC, report_id LIMIT ?"
        with self._store.read() as conn:
            rows = conn.execute(query, (*params, int(limit))).fetchall()
        return [RejectedReport(*row) for row in rows]

    def status(self) -> dict[str, Any]:
        """Queue and delivery state per collection (what ``ldp-client status`` prints)."""
        with self._store.read() as conn:
            queued = dict(conn.execute("SELECT collection_id, COUNT(*) FROM outbox GROUP BY collection_id").fetchall())
            errors = {
                cid: err
                for cid, err, _ in conn.execute(
                    "SELECT collection_id, last_error, MAX(seq) FROM outbox WHERE last_error IS NOT NULL "
                    "GROUP BY collection_id"
                ).fetchall()
            }
            refused = dict(
                conn.execute(
                    "SELECT collection_id || char(0) || reason, COUNT(*) FROM rejected GROUP BY collection_id, reason"
                ).fetchall()
            )
            counts = conn.execute(
                "SELECT collection_id, units, memo_count, reports, accepted, duplicates, rejected FROM budget"
            ).fetchall()
            configs = dict(conn.execute("SELECT collection_id, config_hash FROM collections").fetchall())
        collections: dict[str, Any] = {}
        for cid, units, memos, reports, accepted, duplicates, rejected in counts:
            collections[cid] = {
                "config_hash": configs.get(cid),
                "queued": int(queued.get(cid, 0)),
                "reports": reports,
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": rejected,
                "units_charged": units,
                "memo_count": memos,
                "rejected_by_reason": {},
                "last_error": errors.get(cid),
            }
        for key, n in refused.items():
            cid, reason = key.split("\0", 1)
            collections.setdefault(cid, {"rejected_by_reason": {}})["rejected_by_reason"][reason] = n
        return {
            "client_id": self.client_id,
            "base_url": self.base_url,
            "state_dir": self.state_dir,
            "queued": int(sum(queued.values())),
            "background_flush": self._bg_thread is not None and self._bg_thread.is_alive(),
            "last_flush": self.last_flush.to_dict() if self.last_flush else None,
            "last_background_error": self.last_background_error,
            "collections": collections,
        }

    # --- flushing --------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0, *, collection_id: str | None = None) -> FlushResult:
        """Send queued reports in batches of ``batch_size``, oldest first, retrying transient
        failures (backoff with full jitter, ``Retry-After`` respected) until ``timeout`` seconds
        have passed. Never raises for network trouble: what could not be sent stays queued
        (``result.remaining``) and ``result.errors`` says why."""
        self._check_open()
        deadline = time.monotonic() + max(float(timeout), 0.0)
        result = FlushResult()
        with self._flush_lock:
            self._check_open()
            with self._store.read() as conn:
                query = "SELECT DISTINCT collection_id FROM outbox"
                collections = [r[0] for r in conn.execute(query).fetchall()]
            if collection_id is not None:
                collections = [c for c in collections if c == collection_id]
            for cid in sorted(collections):
                if self._closing.is_set():
                    result.errors.append("client closed during flush")
                    break
                if not self._lease(cid, deadline):
                    result.errors.append(f"{cid}: another process is flushing this collection")
                    continue
                try:
                    self._flush_collection(cid, deadline, result)
                except _Stop as stop:
                    result.errors.append(f"{cid}: {stop}")
                    result.timed_out = result.timed_out or stop.timed_out
                finally:
                    with self._store.write() as conn:
                        S.release_lease(conn, cid, self._owner)
            result.remaining = self.pending()
        self.last_flush = result
        return result

    def _lease(self, collection_id: str, deadline: float) -> bool:
        now = time.time()
        until = now + max(deadline - time.monotonic(), 0.0) + 2 * self.retry.request_timeout + 5.0
        with self._store.write() as conn:
            return S.acquire_lease(conn, collection_id, self._owner, now, until)

    def _flush_collection(self, cid: str, deadline: float, result: FlushResult) -> None:
        while True:
            with self._store.read() as conn:
                rows = conn.execute(
                    f"SELECT {S.OUTBOX_COLUMNS} FROM outbox WHERE collection_id = ? AND next_attempt_at <= ? "
                    "ORDER BY seq LIMIT ?",
                    (cid, time.time(), self.batch_size),
                ).fetchall()
            if not rows:
                return
            if not self._lease(cid, deadline):  # our lease expired and another process took over
                raise _Stop("another process took over flushing this collection")
            self._deliver(cid, rows, deadline, result)

    def _deliver(self, cid: str, rows: list[Any], deadline: float, result: FlushResult) -> None:
        device = self._store.device() or self._enrol(deadline)
        outcome = self._post(cid, rows, deadline, result, device)
        if outcome is not None and any(r.get("reason") == DEVICE_UNAUTHENTICATED for r in outcome):
            # the server no longer knows this device (or the app's key changed): enrol again and
            # re-send once; a second refusal keeps the reports queued (deferred)
            self._store.forget_device(device[0])
            device = self._enrol(deadline)
            outcome = self._post(cid, rows, deadline, result, device)
        if outcome is None:  # 413: too large
            if len(rows) == 1:
                with self._store.write() as conn:
                    detail = "the server refused this single report as too large (413)"
                    S.move_to_rejected(conn, rows[0], "too_large", detail, time.time())
                result.rejected += 1
                result.reasons["too_large"] = result.reasons.get("too_large", 0) + 1
                return
            half = len(rows) // 2
            self._deliver(cid, rows[:half], deadline, result)
            self._deliver(cid, rows[half:], deadline, result)
            return
        self._apply(cid, rows, outcome, result)

    def _post(
        self, cid: str, rows: list[Any], deadline: float, result: FlushResult, device: tuple[str, str]
    ) -> list[Any] | None:
        """POST one batch until it gets a 200 (its per-report results), or a 413 (None)."""
        client_id, device_secret = device
        reports = []
        # wire version 2: the memo count stays on the device (it would tell the server when
        # the device moved to a value it never held); the server charges a lifetime bound
        for _seq, report_id, _cid, config_hash, epoch, payload, *_ in rows:
            item = {
                "report_id": report_id,
                "client_id": client_id,
                "config_hash": config_hash,
                "epoch": epoch,
                "payload": json.loads(payload),
            }
            reports.append(item)
        document = {"wire": ENVELOPE_VERSION, "reports": reports, "devices": {client_id: device_secret}}
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        url = self._url("v1", "collections", cid, "reports")
        attempt = 0
        while True:
            if self._closing.is_set():
                raise _Stop("client closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Stop(f"timed out with {len(rows)} report(s) of this batch still queued", timed_out=True)
            problem = ""
            delay: float | None = None
            result.requests += 1
            try:
                resp: HttpResponse = self._transport.request(
                    "POST",
                    url,
                    headers=self._headers(True),
                    body=body,
                    timeout=min(self.retry.request_timeout, remaining),
                )
            except TransportError as exc:
                problem = str(exc)
            else:
                if resp.status == 200:
                    parsed = _results(resp, rows)
                    if parsed is not None:
                        return parsed
                    problem = "HTTP 200 with an unreadable body"
                elif resp.status == 413:
                    return None
                elif resp.status in RETRYABLE_STATUSES:
                    detail, _ = resp.problem_detail()
                    problem = f"HTTP {resp.status}: {detail}"
                    delay = resp.retry_after()
                else:
                    detail, _ = resp.problem_detail()
                    self._note_error(rows, f"HTTP {resp.status}: {detail}")
                    raise _Stop(f"HTTP {resp.status}: {detail} (reports kept in the outbox)")
            try:
                self._pause_before_retry(attempt, delay, problem, deadline)
            except _Stop as stop:
                if stop.timed_out:
                    self._note_error(rows, problem)
                raise
            attempt += 1

    def _note_error(self, rows: list[Any], problem: str) -> None:
        with self._store.write() as conn:
            conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(problem[:500], row[0]) for row in rows],
            )

    def _apply(self, cid: str, rows: list[Any], results: list[dict[str, Any]], result: FlushResult) -> None:
        now = time.time()
        mismatched: list[Any] = []
        with self._store.write() as conn:
            for row, res in zip(rows, results, strict=True):
                seq, report_id, attempts = row[0], row[1], row[9]
                status, reason, detail = res.get("status"), res.get("reason"), res.get("detail")
                if status in ("accepted", "duplicate"):
                    conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                    conn.execute("UPDATE charges SET status = 'acknowledged' WHERE report_id = ?", (report_id,))
                    column = "accepted" if status == "accepted" else "duplicates"
                    S.bump(conn, cid, column, 1)
                    if status == "accepted":
                        result.accepted += 1
                    else:
                        result.duplicates += 1
                elif status == "rejected" and reason == "config_mismatch":
                    mismatched.append(row)
                elif status == "rejected" and reason in DEFERRED_REASONS:
                    delay = self.retry.backoff(attempts + 2) + 1.0
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                        (now + delay, f"{reason}: {detail}"[:500], seq),
                    )
                    result.deferred += 1
                elif status == "rejected":
                    code = str(reason or "rejected")
                    S.move_to_rejected(conn, row, code, detail, now)
                    result.rejected += 1
                    result.reasons[code] = result.reasons.get(code, 0) + 1
                else:  # unknown status: keep the report and try again later
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                        (now + 1.0, f"unexpected result {res!r}"[:500], seq),
                    )
                    result.deferred += 1
        if mismatched:
            self._handle_mismatch(cid, mismatched, result)

    def _handle_mismatch(self, cid: str, rows: list[Any], result: FlushResult) -> None:
        """The server says the config hash is not the collection's: refetch the config. Reports
        perturbed under another config cannot be re-targeted; they are kept in ``rejected``."""
        try:
            fresh: CollectionConfig | None = self.refresh_config(cid)
            why = None
        except (ConfigUnavailableError, ConfigHashMismatchError, UnsupportedCollectionError) as exc:
            fresh, why = None, str(exc)
        now = time.time()
        with self._store.write() as conn:
            for row in rows:
                seq, config_hash, attempts = row[0], row[3], row[9]
                if fresh is None:
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                        (now + 5.0, f"config_mismatch; config refetch failed: {why}"[:500], seq),
                    )
                    result.deferred += 1
                elif fresh.config_hash == config_hash and attempts + 1 < MAX_MISMATCH_RETRIES:
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                        (now + 1.0, "config_mismatch, but the refetched config still has this hash", seq),
                    )
                    result.deferred += 1
                else:
                    detail = (
                        f"perturbed under config {config_hash}; the collection's config is now {fresh.config_hash} "
                        "(refetched). The report cannot be re-targeted to another config and is kept here."
                    )
                    S.move_to_rejected(conn, row, "config_mismatch", detail, now)
                    result.rejected += 1
                    result.reasons["config_mismatch"] = result.reasons.get("config_mismatch", 0) + 1

    # --- background flushing ------------------------------------------------------------------------
    def start_background_flush(self, interval: float = 30.0, *, timeout: float | None = None) -> None:
        """Flush every ``interval`` seconds on a daemon thread (each flush bounded by ``timeout``,
        default ``interval``), until ``stop_background_flush()`` or ``close()``."""
        self._check_open()
        if interval <= 0:
            raise ValueError("interval must be > 0")
        if self._bg_thread is not None and self._bg_thread.is_alive():
            return
        self._bg_stop.clear()
        per_flush = interval if timeout is None else timeout

        def loop() -> None:
            while not self._bg_stop.wait(interval):
                if self._closing.is_set():
                    return
                try:
                    self.flush(timeout=per_flush)
                    self.last_background_error = None
                except ClientClosedError:
                    return
                except Exception as exc:  # keep flushing later; surface the problem in status()
                    self.last_background_error = f"{type(exc).__name__}: {exc}"

        self._bg_thread = threading.Thread(target=loop, name="ldp-client-flush", daemon=True)
        self._bg_thread.start()

    def stop_background_flush(self, wait: float = 30.0) -> None:
        self._bg_stop.set()
        thread = self._bg_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
        self._bg_thread = None


def _results(resp: HttpResponse, rows: list[Any]) -> list[dict[str, Any]] | None:
    """The per-report results of a 200, checked against the batch (None if unusable)."""
    try:
        body = resp.json()
    except (ValueError, UnicodeDecodeError):
        return None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(rows):
        return None
    checked = []
    for row, res in zip(rows, results, strict=True):
        if not isinstance(res, dict) or res.get("report_id") not in (row[1], None):
            return None
        checked.append(res)
    return checked
