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

import os
import secrets
import threading
from typing import Any

from client_sdk.client import ledger, outbox
from client_sdk.client.api import ENVELOPE_VERSION, SDK_VERSION, ServerApi
from client_sdk.client.background import BackgroundFlusher
from client_sdk.client.config import Clock, CollectionConfig, memo_digest, utc_now
from client_sdk.client.config_cache import ConfigCache
from client_sdk.client.errors import ClientClosedError, TransportError
from client_sdk.client.results import BudgetStatus, FlushResult, RejectedReport, ReportReceipt, Spend
from client_sdk.client.store import StateStore
from client_sdk.client.timing import SystemTimer, Timer, Uniform, system_uniform
from client_sdk.client.transport import Transport, UrllibTransport
from client_sdk.client.uploader import (
    DEFERRED_REASONS,
    DEVICE_UNAUTHENTICATED,
    MAX_MISMATCH_RETRIES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    Stop,
    Uploader,
)

__all__ = ["BudgetStatus", "Client", "FlushResult", "RejectedReport", "ReportReceipt", "RetryPolicy", "Spend"]
# the delivery rules, re-exported where they used to live
__all__ += ["DEFERRED_REASONS", "DEVICE_UNAUTHENTICATED", "ENVELOPE_VERSION", "MAX_MISMATCH_RETRIES"]
__all__ += ["RETRYABLE_STATUSES", "SDK_VERSION"]


class Client:
    """The SDK runtime for one device (one ``state_dir``); thread- and multi-process safe.

    ``clock`` returns the current time (an aware ``datetime`` or Unix seconds) and decides
    the epoch of each report; ``transport`` replaces the standard-library HTTP client;
    ``timer`` (:class:`~client_sdk.client.timing.Timer`: monotonic and wall clocks, waits)
    and ``uniform`` (the backoff jitter) replace real time and the OS random source for
    retries, so tests run them in virtual time (:class:`~client_sdk.client.timing.VirtualTimer`).

    The parts, one job each: :class:`~client_sdk.client.config_cache.ConfigCache` (verified
    configs), :mod:`~client_sdk.client.ledger` (caps, charges, memos),
    :mod:`~client_sdk.client.outbox` (queued and rejected reports),
    :class:`~client_sdk.client.uploader.Uploader` (enrolment, batches, retries) and
    :class:`~client_sdk.client.background.BackgroundFlusher`, over one
    :class:`~client_sdk.client.store.StateStore`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        state_dir: str,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        busy_timeout: float = 30.0,
        timer: Timer | None = None,
        uniform: Uniform | None = None,
    ) -> None:
        if not 1 <= int(batch_size) <= 5000:
            raise ValueError(f"batch_size must lie in [1, 5000], got {batch_size}")
        self._clock = clock or utc_now
        self._timer: Timer = timer or SystemTimer()
        policy = retry or RetryPolicy()
        self._api = ServerApi(base_url, api_key, transport or UrllibTransport())
        self.base_url = self._api.base_url
        self._store = StateStore(state_dir, busy_timeout=busy_timeout)
        self.state_dir = str(self._store.dir)
        self._configs = ConfigCache(self._store, self._api, self._timer, policy.request_timeout)
        self._closing = threading.Event()
        self._flush_lock = threading.Lock()
        self._uploader = Uploader(
            self._store,
            self._api,
            retry=policy,
            timer=self._timer,
            uniform=uniform or system_uniform,
            closing=self._closing,
            owner=f"{os.getpid()}:{secrets.token_hex(8)}",  # this object's name in flush leases
            batch_size=int(batch_size),
            refresh_config=self.refresh_config,
        )
        self._background = BackgroundFlusher(lambda timeout: self.flush(timeout), self._timer, self._closing)
        self.last_flush: FlushResult | None = None
        self._store_closed = False
        self._last_client_id: str | None = None

    @property
    def batch_size(self) -> int:
        """Reports per upload request (1..5000)."""
        return self._uploader.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if not 1 <= int(value) <= 5000:
            raise ValueError(f"batch_size must lie in [1, 5000], got {value}")
        self._uploader.batch_size = int(value)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of uploads and enrolment."""
        return self._uploader.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self._uploader.retry = policy
        self._configs.request_timeout = policy.request_timeout

    @property
    def last_background_error(self) -> str | None:
        """What the background flusher's last flush raised, if it raised."""
        return self._background.last_error

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
                device = self._uploader.enrol(self._timer.monotonic() + max(float(timeout), 0.0))
            except Stop as stop:
                raise TransportError(f"enrolment failed: {stop}") from None
        return device[0]

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

    # --- configs ----------------------------------------------------------------------------
    def config(self, collection_id: str) -> CollectionConfig:
        """The collection's verified public config: memory, then state_dir, then the server."""
        self._check_open()
        return self._configs.get(collection_id)

    def refresh_config(self, collection_id: str) -> CollectionConfig:
        """Fetch the public config from the server, check its hash, cache it in state_dir."""
        self._check_open()
        return self._configs.refresh(collection_id)

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
        perturber = cfg.perturber
        report_id = secrets.token_hex(16)
        now = self._timer.time()
        new_memo = False
        # one transaction: the cap check, the perturbation, the charge, the memo and the outbox row
        with self._store.write() as conn:
            units_total, memo_count = ledger.totals(conn, collection_id)
            wire_memo_count: int | None = None
            if perturber.memoized:
                state = ledger.device_state(conn, cfg) if perturber.needs_state else None
                key_text, key = perturber.lookup_key(value, state, party)
                digest = memo_digest(self._store.memo_secret, collection_id, cfg.config_hash, key_text)
                memo = ledger.find_memo(conn, collection_id, digest)
                if memo is None:
                    units = 1
                    ledger.check_caps(conn, cfg, units_total, window, units)
                    memo = perturber.new_memo(value, state, key, party)
                    ledger.keep_memo(conn, cfg, digest, memo, now)
                    memo_count += 1
                    new_memo = True
                else:
                    units = 0
                payload = perturber.from_memo(memo, key, state)
                wire_memo_count = memo_count
            else:
                units = 1
                ledger.check_caps(conn, cfg, units_total, window, units)
                payload = perturber.perturb(value, party)
            outbox.enqueue(
                conn,
                report_id=report_id,
                collection_id=collection_id,
                config_hash=cfg.config_hash,
                epoch=epoch,
                payload=ledger.dumps(payload),
                memo_count=wire_memo_count,
                units=units,
                created_at=now,
            )
            ledger.charge(
                conn,
                cfg,
                report_id=report_id,
                epoch=epoch,
                window=window,
                units=units,
                memo_count=wire_memo_count,
                total_memos=memo_count,
                now=now,
            )
        charged = units * cfg.budget.unit_epsilon
        return ReportReceipt(report_id, collection_id, epoch, window, units, charged, wire_memo_count, new_memo)

    # --- budget and inspection -----------------------------------------------------------------
    def budget(self, collection_id: str) -> BudgetStatus:
        """Spent and remaining epsilon, per current window and over the lifetime."""
        cfg = self.config(collection_id)
        epoch = cfg.epoch_at(self._clock())
        with self._store.read() as conn:
            return ledger.status(conn, cfg, epoch, cfg.window_of(epoch))

    def pending(self, collection_id: str | None = None) -> int:
        """Reports waiting in the outbox."""
        with self._store.read() as conn:
            return outbox.count(conn, collection_id)

    def rejected_reports(self, collection_id: str | None = None, limit: int = 1000) -> list[RejectedReport]:
        """Reports the server refused for good, newest first, with its reason (kept, never dropped)."""
        with self._store.read() as conn:
            return outbox.rejected(conn, collection_id, limit)

    def status(self) -> dict[str, Any]:
        """Queue and delivery state per collection (what ``ldp-client status`` prints)."""
        with self._store.read() as conn:
            queued = outbox.queued_by_collection(conn)
            errors = outbox.last_errors(conn)
            refused = outbox.rejected_by_reason(conn)
            counts = ledger.counters(conn)
        configs = self._configs.hashes()
        collections: dict[str, Any] = {}
        for cid, c in counts.items():
            collections[cid] = {
                "config_hash": configs.get(cid),
                "queued": queued.get(cid, 0),
                "reports": c["reports"],
                "accepted": c["accepted"],
                "duplicates": c["duplicates"],
                "rejected": c["rejected"],
                "units_charged": c["units"],
                "memo_count": c["memo_count"],
                "rejected_by_reason": {},
                "last_error": errors.get(cid),
            }
        for cid, reasons in refused.items():
            collections.setdefault(cid, {"rejected_by_reason": {}})["rejected_by_reason"].update(reasons)
        return {
            "client_id": self.client_id,
            "base_url": self.base_url,
            "state_dir": self.state_dir,
            "queued": sum(queued.values()),
            "background_flush": self._background.running,
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
        deadline = self._timer.monotonic() + max(float(timeout), 0.0)
        result = FlushResult()
        with self._flush_lock:
            self._check_open()
            self._uploader.flush(deadline, collection_id, result)
            result.remaining = self.pending()
        self.last_flush = result
        return result

    def start_background_flush(self, interval: float = 30.0, *, timeout: float | None = None) -> None:
        """Flush every ``interval`` seconds on a daemon thread (each flush bounded by ``timeout``,
        default ``interval``), until ``stop_background_flush()`` or ``close()``."""
        self._check_open()
        self._background.start(interval, interval if timeout is None else timeout)

    def stop_background_flush(self, wait: float = 30.0) -> None:
        self._background.stop(wait)
