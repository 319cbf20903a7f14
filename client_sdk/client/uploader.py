"""Delivery: enrolment, batches, retries with backoff, and what each per-report result means.

Retries wait ``Retry-After`` when the server says it, else exponential backoff with full
jitter (:class:`RetryPolicy`); every wait goes through the injected
:class:`~client_sdk.client.timing.Timer` and the jitter through the injected ``Uniform``,
so the whole retry schedule runs in virtual time under test. A flush never raises for
network trouble: what could not be sent stays in the outbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client_sdk.client import outbox
from client_sdk.client.api import ServerApi, batch_body
from client_sdk.client.config import CollectionConfig
from client_sdk.client.errors import (
    ConfigHashMismatchError,
    ConfigUnavailableError,
    TransportError,
    UnsupportedCollectionError,
)
from client_sdk.client.outbox import OutboxRow
from client_sdk.client.results import FlushResult
from client_sdk.client.store import StateStore, acquire_lease, release_lease
from client_sdk.client.timing import Timer, Uniform, system_uniform
from client_sdk.client.transport import HttpResponse

#: rejection reasons that may clear up by themselves: the report stays queued
DEFERRED_REASONS = frozenset({"epoch_in_future", "kind_unavailable", "device_unauthenticated"})
#: the server does not accept this device's credential: enrol again, then re-send
DEVICE_UNAUTHENTICATED = "device_unauthenticated"
#: HTTP statuses worth retrying (with backoff, or after Retry-After)
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: how often a report refused for config_mismatch is retried when the refetched config still matches it
MAX_MISMATCH_RETRIES = 3
#: seconds before a report with an unexpected per-report result, or a config_mismatch whose
#: refetched config still has its hash, is tried again
RECHECK_DELAY = 1.0
#: seconds before a config_mismatch report is tried again when the config could not be refetched
REFETCH_DELAY = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: wait ``uniform(0, min(max_delay, base_delay·2^attempt))``
    (or exactly what ``Retry-After`` says); each request gets at most ``request_timeout``."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    request_timeout: float = 10.0

    def ceiling(self, attempt: int) -> float:
        """The longest backoff after ``attempt`` failed attempts (0-based)."""
        return min(self.max_delay, self.base_delay * (2 ** min(attempt, 30)))

    def backoff(self, attempt: int, uniform: Uniform | None = None) -> float:
        """A backoff drawn in ``[0, ceiling(attempt)]`` (``uniform``: the jitter source, the
        OS CSPRNG by default)."""
        return (uniform or system_uniform)(0.0, self.ceiling(attempt))


class Stop(Exception):
    """End this collection's flush (timeout, close, or an error that retrying will not fix now)."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Uploader:
    """Sends the outbox of one state_dir. ``closing`` (set by ``Client.close()``) ends any
    wait at once; ``refresh_config`` is called when the server reports a config mismatch."""

    def __init__(
        self,
        store: StateStore,
        api: ServerApi,
        *,
        retry: RetryPolicy,
        timer: Timer,
        uniform: Uniform,
        closing: threading.Event,
        owner: str,
        batch_size: int,
        refresh_config: Callable[[str], CollectionConfig],
    ) -> None:
        self._store = store
        self._api = api
        self.retry = retry
        self._timer = timer
        self._uniform = uniform
        self._closing = closing
        self._owner = owner  # this client's name in flush leases
        self.batch_size = batch_size
        self._refresh_config = refresh_config

    # --- enrolment -------------------------------------------------------------------------
    def enrol(self, deadline: float) -> tuple[str, str]:
        """POST /v1/devices (retrying 429/5xx/network trouble until ``deadline``) and keep
        the credential with the device state."""
        attempt = 0
        while True:
            remaining = self._remaining(deadline, "timed out enrolling the device; reports kept in the outbox")
            delay: float | None = None
            try:
                resp: HttpResponse = self._api.enrol(min(self.retry.request_timeout, remaining))
            except TransportError as exc:
                problem = str(exc)
            else:
                if resp.status == 201:
                    try:
                        cred = resp.json()["devices"][0]
                        client_id, secret = str(cred["client_id"]), str(cred["device_secret"])
                    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError):
                        raise Stop("the enrolment answer is unreadable; reports kept in the outbox") from None
                    return self._store.set_device(client_id, secret)
                detail, _ = resp.problem_detail()
                problem = f"enrolment: HTTP {resp.status}: {detail}"
                if resp.status not in RETRYABLE_STATUSES:
                    raise Stop(f"{problem} (reports kept in the outbox)")
                delay = resp.retry_after(self._timer.time())
            self._pause(attempt, delay, problem, deadline)
            attempt += 1

    def _remaining(self, deadline: float, timeout_message: str) -> float:
        if self._closing.is_set():
            raise Stop("client closed")
        remaining = deadline - self._timer.monotonic()
        if remaining <= 0:
            raise Stop(timeout_message, timed_out=True)
        return remaining

    def _pause(self, attempt: int, delay: float | None, problem: str, deadline: float) -> None:
        """Wait the server's Retry-After (``delay``) or the backoff of ``attempt``; Stop when
        that would pass ``deadline`` (timed out) or the client closes meanwhile. Shared by
        enrolment and upload, so both retry by the same rule."""
        if delay is None:
            delay = self.retry.backoff(attempt, self._uniform)
        if delay > deadline - self._timer.monotonic():
            raise Stop(f"{problem}; next retry in {delay:.1f}s is past the timeout", timed_out=True)
        if self._timer.wait(self._closing, delay):
            raise Stop("client closed")

    # --- flushing --------------------------------------------------------------------------
    def flush(self, deadline: float, collection_id: str | None, result: FlushResult) -> None:
        """Send every due report (of ``collection_id``, or of all collections) until ``deadline``."""
        with self._store.read() as conn:
            collections = outbox.queued_collections(conn)
        if collection_id is not None:
            collections = [c for c in collections if c == collection_id]
        for cid in collections:
            if self._closing.is_set():
                result.errors.append("client closed during flush")
                break
            if not self._lease(cid, deadline):
                result.errors.append(f"{cid}: another process is flushing this collection")
                continue
            try:
                self._flush_collection(cid, deadline, result)
            except Stop as stop:
                result.errors.append(f"{cid}: {stop}")
                result.timed_out = result.timed_out or stop.timed_out
            finally:
                with self._store.write() as conn:
                    release_lease(conn, cid, self._owner)

    def _lease(self, collection_id: str, deadline: float) -> bool:
        now = self._timer.time()
        until = now + max(deadline - self._timer.monotonic(), 0.0) + 2 * self.retry.request_timeout + 5.0
        with self._store.write() as conn:
            return acquire_lease(conn, collection_id, self._owner, now, until)

    def _flush_collection(self, cid: str, deadline: float, result: FlushResult) -> None:
        while True:
            with self._store.read() as conn:
                rows = outbox.due(conn, cid, self._timer.time(), self.batch_size)
            if not rows:
                return
            if not self._lease(cid, deadline):  # our lease expired and another process took over
                raise Stop("another process took over flushing this collection")
            self._deliver(cid, rows, deadline, result)

    def _deliver(self, cid: str, rows: list[OutboxRow], deadline: float, result: FlushResult) -> None:
        device = self._store.device() or self.enrol(deadline)
        outcome = self._post(cid, rows, deadline, result, device)
        if outcome is not None and any(r.get("reason") == DEVICE_UNAUTHENTICATED for r in outcome):
            # the server no longer knows this device (or the app's key changed): enrol again and
            # re-send once; a second refusal keeps the reports queued (deferred)
            self._store.forget_device(device[0])
            device = self.enrol(deadline)
            outcome = self._post(cid, rows, deadline, result, device)
        if outcome is None:  # 413: too large
            if len(rows) == 1:
                with self._store.write() as conn:
                    detail = "the server refused this single report as too large (413)"
                    outbox.reject(conn, rows[0], "too_large", detail, self._timer.time())
                result.rejected += 1
                result.reasons["too_large"] = result.reasons.get("too_large", 0) + 1
                return
            half = len(rows) // 2
            self._deliver(cid, rows[:half], deadline, result)
            self._deliver(cid, rows[half:], deadline, result)
            return
        self._apply(cid, rows, outcome, result)

    def _post(
        self, cid: str, rows: list[OutboxRow], deadline: float, result: FlushResult, device: tuple[str, str]
    ) -> list[dict[str, Any]] | None:
        """POST one batch until it gets a 200 (its per-report results), or a 413 (None)."""
        body = batch_body(rows, *device)
        attempt = 0
        while True:
            remaining = self._remaining(deadline, f"timed out with {len(rows)} report(s) of this batch still queued")
            problem = ""
            delay: float | None = None
            result.requests += 1
            try:
                resp = self._api.upload(cid, body, min(self.retry.request_timeout, remaining))
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
                    delay = resp.retry_after(self._timer.time())
                else:
                    detail, _ = resp.problem_detail()
                    self._note_error(rows, f"HTTP {resp.status}: {detail}")
                    raise Stop(f"HTTP {resp.status}: {detail} (reports kept in the outbox)")
            try:
                self._pause(attempt, delay, problem, deadline)
            except Stop as stop:
                if stop.timed_out:
                    self._note_error(rows, problem)
                raise
            attempt += 1

    def _note_error(self, rows: list[OutboxRow], problem: str) -> None:
        with self._store.write() as conn:
            outbox.note_error(conn, rows, problem)

    def _apply(self, cid: str, rows: list[OutboxRow], results: list[dict[str, Any]], result: FlushResult) -> None:
        now = self._timer.time()
        mismatched: list[OutboxRow] = []
        with self._store.write() as conn:
            for row, res in zip(rows, results, strict=True):
                status, reason, detail = res.get("status"), res.get("reason"), res.get("detail")
                if status == "accepted":
                    outbox.delivered(conn, row, "accepted")
                    result.accepted += 1
                elif status == "duplicate":
                    outbox.delivered(conn, row, "duplicates")
                    result.duplicates += 1
                elif status == "rejected" and reason == "config_mismatch":
                    mismatched.append(row)
                elif status == "rejected" and reason in DEFERRED_REASONS:
                    delay = self.retry.backoff(row.attempts + 2, self._uniform) + 1.0
                    outbox.defer(conn, row, now + delay, f"{reason}: {detail}")
                    result.deferred += 1
                elif status == "rejected":
                    code = str(reason or "rejected")
                    outbox.reject(conn, row, code, detail, now)
                    result.rejected += 1
                    result.reasons[code] = result.reasons.get(code, 0) + 1
                else:  # unknown status: keep the report and try again later
                    outbox.defer(conn, row, now + RECHECK_DELAY, f"unexpected result {res!r}")
                    result.deferred += 1
        if mismatched:
            self._handle_mismatch(cid, mismatched, result)

    def _handle_mismatch(self, cid: str, rows: list[OutboxRow], result: FlushResult) -> None:
        """The server says the config hash is not the collection's: refetch the config. Reports
        perturbed under another config cannot be re-targeted; they are kept in ``rejected``."""
        try:
            fresh: CollectionConfig | None = self._refresh_config(cid)
            why = None
        except (ConfigUnavailableError, ConfigHashMismatchError, UnsupportedCollectionError) as exc:
            fresh, why = None, str(exc)
        now = self._timer.time()
        with self._store.write() as conn:
            for row in rows:
                if fresh is None:
                    outbox.defer(conn, row, now + REFETCH_DELAY, f"config_mismatch; config refetch failed: {why}")
                    result.deferred += 1
                elif fresh.config_hash == row.config_hash and row.attempts + 1 < MAX_MISMATCH_RETRIES:
                    error = "config_mismatch, but the refetched config still has this hash"
                    outbox.defer(conn, row, now + RECHECK_DELAY, error)
                    result.deferred += 1
                else:
                    detail = (
                        f"perturbed under config {row.config_hash}; the collection's config is now "
                        f"{fresh.config_hash} (refetched). The report cannot be re-targeted to another config "
                        "and is kept here."
                    )
                    outbox.reject(conn, row, "config_mismatch", detail, now)
                    result.rejected += 1
                    result.reasons["config_mismatch"] = result.reasons.get("config_mismatch", 0) + 1


def _results(resp: HttpResponse, rows: list[OutboxRow]) -> list[dict[str, Any]] | None:
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
        if not isinstance(res, dict) or res.get("report_id") not in (row.report_id, None):
            return None
        checked.append(res)
    return checked
