"""Batch ingestion: one database transaction per batch, every report judged on its own.

Per report, before the database (stateless, in request order). A batch whose every report
passes 1–3 is checked column by column (``services/batch_check.py``: a few C-level passes
over the batch, no model per report); any other batch report by report, naming each fault:

1. envelope (``invalid_report``): report_id, client_id, config_hash, epoch, payload
   shapes (the wire contract in ``schemas/reports.py``);
1b. ``device_unauthenticated``: the device is not enrolled by this client key or the
   batch does not hold its secret (``services/devices.py``: with ``LDP_DEVICE_KEY``, one
   keyed BLAKE2b per tagged secret and no query; else one hash per distinct device and one query
   for the batch's devices; before any decoding or locking);
2. ``config_mismatch``: the config hash is not the collection's;
3. epoch window: accepted iff ``current - grace <= epoch <= current`` (``epoch_in_future``,
   ``epoch_too_old``) and the epoch is not closed (``epoch_closed``, checked in the
   transaction under a share lock on the collection row; see ``services/epochs.py``);
4. (wire version 1 checked ``memo_count`` here; version 2 has no data-dependent field, and
   a version 1 body never reaches ingestion: ``api/reports.py``);
5. payload shape and ranges through the SDK decoder (its ``reason``: ``bad_version``,
   ``wrong_mechanism``, ``bad_type``, ``bad_encoding``, ``bad_length``, ``out_of_range``, ...);
6. a report repeated inside the batch (same device, epoch and report_id): same body →
   ``duplicate``, other body → ``report_id_conflict``.

Then, in one transaction (``BEGIN IMMEDIATE`` on SQLite):

7. **dedupe and budget**, on the device's row: each device's reports are judged in request
   order against its state (new devices with one report each — the common batch — once
   per accounting window; judged as if new before the transaction). Every device is
   inserted as if new, in client_id order (a plain ``INSERT`` in a savepoint; if a device
   exists, that raises a unique violation, and only the new ones are inserted: PostgreSQL
   by ``ON CONFLICT DO NOTHING RETURNING``, SQLite after a look-up), then the ones that
   already existed are locked (``SELECT ... FOR UPDATE``, sorted), re-judged and updated. A report whose
   (epoch, report_id) is among the device's ``recent`` ones is a ``duplicate`` (same
   payload digest: a retry, which resends its epoch) or a ``report_id_conflict`` (another
   body), and is not charged again (``services/device_budgets.py``); a new one is refused
   past the lifetime cap (``budget_exceeded_lifetime``) or the window cap
   (``budget_exceeded_window``) — it was never acknowledged, so a retry is judged anew —
   or accepted, charged and added to ``recent``;
8. **reports**: the accepted reports of each epoch go into one ``report_batches`` row
   (their ids, devices and canonical payloads, each one text of lines);
9. **statistics**: the accepted payloads of each epoch are decoded together and
   aggregated once (vectorised; in the common case before the transaction); the
   aggregate is *inserted* as a new ``epoch_partials`` row — no shared counter row is
   updated, so concurrent batches never wait on each other here and partials merge by
   addition when read;
10. **ledger**: one hash-chained block of the batch's charges (``services/ledger.py``), appended last
    because the chain head's row lock serialises the collection's batches until commit;
11. rejection counters per reason (upsert-increment, after every other lock).

Lock order is always collection (share) → new devices → existing devices → ledger head →
counters, each in sorted order,
so concurrent batches cannot deadlock; a transient database error (deadlock,
serialization failure, SQLite busy) retries the transaction, then answers 503.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import orjson
import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from client_sdk.errors import ReportDecodeError
from ldpserver import metrics
from ldpserver.db import write_transaction
from ldpserver.errors import ProblemError
from ldpserver.models import RejectionCount
from ldpserver.schemas.reports import ReportIn
from ldpserver.services import ledger
from ldpserver.services.batch_check import Report, from_model, payload_texts, well_formed
from ldpserver.services.bulk import Bulk
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.device_budgets import (
    BatchVerdicts,
    Candidate,
    Charge,
    DeviceState,
    parse_recent,
    plan_device,
    plan_new_singles,
)
from ldpserver.services.device_budgets import candidates as stage
from ldpserver.services.devices import DeviceProof, prove

log = structlog.get_logger("ldpserver.ingest")

rejections_t = RejectionCount.__table__

_REPORT_LIST = TypeAdapter(list[ReportIn])
MAX_BATCH_DECODE_RETRIES = 8
TRANSACTION_ATTEMPTS = 4

#: every rejection reason the server itself emits (the SDK decoder adds its own codes)
REASONS = {
    "invalid_report": "the report object does not follow the wire contract (detail names the field)",
    "device_unauthenticated": "the device is not enrolled by this client key, or the batch lacks its secret",
    "config_mismatch": "config_hash is not the collection's current config hash",
    "epoch_in_future": "epoch is after the current epoch",
    "epoch_too_old": "epoch is before current - grace",
    "epoch_closed": "the epoch has been released/closed",
    "invalid_payload": "the SDK decoder refused the payload for a reason of its own",
    "report_id_conflict": "report_id already used by this device in this epoch with a different report body",
    "device_epoch_limit": "the device already has LDP_MAX_REPORTS_PER_DEVICE_EPOCH reports accepted in this epoch",
    "budget_exceeded_lifetime": "the device's lifetime cap would be exceeded",
    "budget_exceeded_window": "the device's cap for this accounting window would be exceeded",
    "kind_unavailable": "the collection's protocol package is not available on this server",
}


@dataclass
class BatchResult:
    """The verdicts on a batch, in request order. A batch whose every report was accepted
    (the common one) keeps only its report ids: its results are all alike, and
    :meth:`to_json` writes them with one join instead of a dictionary per report."""

    results: list[dict[str, Any]]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejection_counts: dict[str, int] = field(default_factory=dict)
    #: every report accepted: their ids (``results`` is then built only if read)
    accepted_ids: list[str] | None = None

    def result_list(self) -> list[dict[str, Any]]:
        if self.accepted_ids is not None:
            return [{"report_id": rid, **_ACCEPTED} for rid in self.accepted_ids]
        return self.results

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.result_list(),
        }

    def to_json(self) -> bytes:
        """The response body: ``to_dict`` as compact JSON (orjson); a wholly accepted batch
        joined from its ids (hex, nothing to escape), byte for byte the same text."""
        if self.accepted_ids is not None and self.accepted_ids:
            return b"".join(
                [
                    _ALL_ACCEPTED_HEAD % len(self.accepted_ids),
                    _ACCEPTED_BETWEEN.join(self.accepted_ids).encode("ascii"),
                    _ALL_ACCEPTED_TAIL,
                ]
            )
        return orjson.dumps(self.to_dict())


_ALL_ACCEPTED_HEAD = b'{"accepted":%d,"duplicates":0,"rejected":0,"results":[{"report_id":"'
_ACCEPTED_BETWEEN = '","status":"accepted","reason":null,"detail":null},{"report_id":"'
_ALL_ACCEPTED_TAIL = b'","status":"accepted","reason":null,"detail":null}]}'


def _dialect_insert(conn: Connection):
    return pg_dialect.insert if conn.dialect.name == "postgresql" else sqlite_dialect.insert


def _raw_report_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        rid = raw.get("report_id")
        if isinstance(rid, str) and len(rid) <= 64:
            return rid
    return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    path = "/" + "/".join(str(p) for p in err["loc"]) if err["loc"] else "report"
    return f"{path}: {err['msg']}"


class NewPlan(NamedTuple):
    """A batch judged as if every device were new (:meth:`Ingestor._plan_new`)."""

    fresh: list[Candidate]  # the candidates judged (the plan holds for exactly these)
    clients: list[str]  # their devices, sorted
    verdicts: BatchVerdicts
    accepted: list[Candidate]  # in batch order
    charges: list[Charge]  # the accepted reports' charges, in batch order
    lines: str  # ledger.charge_lines(charges)


class Ingestor:
    """Judges one batch for one collection; ``run`` returns the per-report results."""

    def __init__(
        self,
        engine: Engine,
        collection: CollectionRuntime,
        now: datetime,
        proof: DeviceProof | None,
        per_device_epoch: int | None = None,
        device_key: bytes | None = None,
    ) -> None:
        self.engine = engine
        self.device_key = device_key
        self.c = collection
        self.now = now
        self.proof = proof
        self.per_device_epoch = per_device_epoch
        self.current_epoch = collection.epoch_at(now)

    # --- stateless checks ---------------------------------------------------------------
    def _validate(self, raws: Sequence[Any], result: BatchResult) -> list[Candidate]:
        c = self.c
        lowest = self.current_epoch - c.grace_epochs
        # the common batch: checked column by column (services/batch_check.py)
        reports = well_formed(raws, c.config_hash, lowest, self.current_epoch)
        staged: list[tuple[int, Report]]
        if reports is not None:
            staged = list(enumerate(reports))
        else:
            staged = self._validate_each(raws, result, lowest)
        staged = self._check_devices(staged, result)
        staged = self._check_payloads(staged, result)

        texts = payload_texts([report.payload for _, report in staged])
        reports = [report for _, report in staged]
        window_of = dict(zip(epochs := {report.epoch for report in reports}, map(c.window_of, epochs), strict=True))
        candidates = stage(map(itemgetter(0), staged), reports, texts, map(window_of.__getitem__, map(_EPOCH, reports)))
        self.in_batch_repeats: list[tuple[int, Candidate, bool]] = []
        if len({r.report_id for r in reports}) == len(reports):
            return candidates
        # a key (device, epoch, report_id) repeated inside the batch: its later occurrences follow the first one
        first_seen: dict[tuple[str, int, str], Candidate] = {}
        unique: list[Candidate] = []
        for cand in candidates:
            key = _key(cand)
            earlier = first_seen.get(key)
            if earlier is not None:
                # the key holds the device and the epoch: the same body is the same payload
                self.in_batch_repeats.append((cand.index, earlier, earlier.payload_json == cand.payload_json))
                continue
            first_seen[key] = cand
            unique.append(cand)
        return unique

    def _validate_each(self, raws: Sequence[Any], result: BatchResult, lowest: int) -> list[tuple[int, Report]]:
        """Judge each report with the wire model (a batch the columnar check did not take)."""
        c = self.c
        try:
            parsed: list[ReportIn | None] = list(_REPORT_LIST.validate_python(raws))
        except ValidationError:
            parsed = []
            for i, raw in enumerate(raws):
                try:
                    parsed.append(ReportIn.model_validate(raw))
                except ValidationError as exc:
                    parsed.append(None)
                    self._reject(result, i, _raw_report_id(raw), "invalid_report", _first_error(exc))
        staged: list[tuple[int, Report]] = []
        for i, report in enumerate(parsed):
            if report is None:
                continue
            rid = report.report_id
            if report.config_hash != c.config_hash:
                self._reject(result, i, rid, "config_mismatch", f"this collection's config hash is {c.config_hash}")
            elif report.epoch > self.current_epoch:
                self._reject(result, i, rid, "epoch_in_future", f"the current epoch is {self.current_epoch}")
            elif report.epoch < lowest:
                self._reject(result, i, rid, "epoch_too_old", f"epochs {lowest}..{self.current_epoch} are accepted now")
            else:
                staged.append((i, from_model(report)))
        return staged

    def _check_devices(self, staged: list[tuple[int, Report]], result: BatchResult) -> list[tuple[int, Report]]:
        """Keep the reports whose device this batch proves it holds (``proof`` None: an
        in-process load by the operator, e.g. ``bench/bench_release.py``, not the API)."""
        if self.proof is None or not staged:
            return staged
        verified = prove(self.engine, self.proof, [r.client_id for _, r in staged], self.device_key)
        if len(verified) == len(staged):  # every device proved (one report each)
            return staged
        kept = []
        for i, report in staged:
            if report.client_id in verified:
                kept.append((i, report))
            else:
                self._reject(
                    result,
                    i,
                    report.report_id,
                    "device_unauthenticated",
                    "enrol with POST /v1/devices and send the device secret in the batch's 'devices'",
                )
        return kept

    def _check_payloads(self, staged: list[tuple[int, Report]], result: BatchResult) -> list[tuple[int, Report]]:
        """Drop reports whose payload the SDK refuses; keep the decoded batch for the fast path."""
        protocol = self.c.protocol
        self.decoded = None
        self.decoded_count = 0
        if not staged:
            return staged
        assert protocol is not None
        remaining = list(staged)
        for _ in range(MAX_BATCH_DECODE_RETRIES):
            try:
                self.decoded = protocol.decode([r.payload for _, r in remaining])
                self.decoded_count = len(remaining)
                return remaining
            except ReportDecodeError as exc:
                if exc.index is None or not 0 <= exc.index < len(remaining):
                    break
                i, report = remaining.pop(exc.index)
                self._reject(result, i, report.report_id, exc.reason, exc.detail)
                if not remaining:
                    return remaining
            except Exception:  # a decoder bug on odd input: judge the reports one by one
                break
        kept = []
        for i, report in remaining:
            try:
                protocol.check_payload(report.payload)
            except ReportDecodeError as exc:
                self._reject(result, i, report.report_id, exc.reason, exc.detail)
                continue
            kept.append((i, report))
        return kept

    @staticmethod
    def _reject(result: BatchResult, index: int, report_id: str | None, reason: str, detail: str) -> None:
        result.results[index] = {"report_id": report_id, "status": "rejected", "reason": reason, "detail": detail}

    # --- the transaction ----------------------------------------------------------------
    def run(self, raws: Sequence[Any]) -> BatchResult:
        result = BatchResult(results=[None] * len(raws))  # type: ignore[list-item]
        if self.c.protocol is None:
            raise ProblemError("kind-unavailable", self.c.unavailable or "protocol not available", status=422)
        candidates = self._validate(raws, result)
        # the common case (every decoded report accepted, one epoch) reuses this aggregate,
        # computed before the transaction so that its locks are held for less time
        self.pre_aggregate = None
        if self.decoded is not None and len(set(map(_EPOCH_OF, candidates))) == 1:
            self.pre_aggregate = self.c.protocol.aggregate_json(self.decoded)
        # and so are the verdicts of first-time devices (the common batch) and their ledger lines
        self.planned = self._plan_new(candidates) if candidates else None
        attempt = 1
        while True:
            # verdicts are replaced, never changed in place: a copy of the list is a fresh start
            outcome = list(result.results)
            try:
                with write_transaction(self.engine) as conn:
                    self._transaction(conn, candidates, outcome)
                break
            except Exception as exc:
                if _driver_error(exc) is None or not _transient(exc):
                    raise
                if attempt == TRANSACTION_ATTEMPTS:
                    raise ProblemError(
                        "unavailable",
                        "the database is busy; retry the batch (it is idempotent)",
                        headers={"Retry-After": "1"},
                    ) from None
                log.info("ingest_retry", collection_id=self.c.id, attempt=attempt, cause=type(exc).__name__)
                time.sleep(0.01 * attempt)
                attempt += 1
        if outcome.count(_ACCEPTED) == len(outcome):  # every report accepted (the shared verdict)
            result.accepted_ids = list(map(_REPORT_ID, raws))  # each passed the wire contract
            result.results = []
            result.accepted = len(outcome)
            return result
        result.results = [
            r if r is not _ACCEPTED else {"report_id": raw["report_id"], **_ACCEPTED}
            for r, raw in zip(outcome, raws, strict=True)
        ]
        statuses = Counter(map(itemgetter("status"), result.results))
        result.accepted = statuses["accepted"]
        result.duplicates = statuses["duplicate"]
        result.rejected = len(outcome) - result.accepted - result.duplicates
        return result

    def _transaction(self, conn: Connection, candidates: list[Candidate], outcome: list[Any]) -> None:
        c, now = self.c, self.now
        insert = _dialect_insert(conn)
        bulk = Bulk(conn)
        # steps 7–10 in one pipeline (PostgreSQL): a round trip only where an answer is needed
        with bulk.pipeline():
            self._store(bulk, candidates, outcome)

        # repeats inside the batch follow their first occurrence
        for index, first, same_body in self.in_batch_repeats:
            rid = first.report.report_id
            if not same_body:
                outcome[index] = {
                    "report_id": rid,
                    "status": "rejected",
                    "reason": "report_id_conflict",
                    "detail": "this report_id appears earlier in the batch with a different body",
                }
            elif outcome[first.index]["status"] in ("accepted", "duplicate"):
                outcome[index] = {
                    "report_id": rid,
                    "status": "duplicate",
                    "reason": None,
                    "detail": "repeated in this batch",
                }
            else:
                outcome[index] = dict(outcome[first.index])

        # 11. rejection counters
        counts: dict[str, int] = defaultdict(int)
        for r in outcome:
            if r["status"] == "rejected":
                counts[r["reason"]] += 1
        if counts:
            stmt = insert(rejections_t)
            stmt = stmt.on_conflict_do_update(
                index_elements=["collection_id", "reason"],
                set_={"count": rejections_t.c.count + stmt.excluded.count, "last_at": stmt.excluded.last_at},
            )
            conn.execute(
                stmt,
                [{"collection_id": c.id, "reason": r, "count": n, "last_at": now} for r, n in sorted(counts.items())],
            )

    def _store(self, bulk: Bulk, candidates: list[Candidate], outcome: list[Any]) -> None:
        """Steps 7–10: the devices' rows, the accepted reports, their partial aggregates and the
        ledger block; verdicts into ``outcome``."""
        c, now = self.c, self.now
        # PostgreSQL: share lock on the collection first, so close_epoch (FOR UPDATE) waits for
        # this batch (services/epochs.py); then the batch's closed epochs
        closed = bulk.closed_epochs(c.id, sorted(set(map(_EPOCH_OF, candidates))))
        live: list[Candidate] = [] if closed else candidates  # the very list planned before (run)
        for cand in candidates if closed else ():
            if cand.report.epoch in closed:
                self._reject_into(outcome, cand, "epoch_closed", f"epoch {cand.report.epoch} is closed")
            else:
                live.append(cand)

        # 7. dedupe and budget, on the devices' rows
        accepted, charges, lines = self._charge(bulk, live, outcome, self.planned) if live else ([], [], None)

        # 8. the accepted reports and 9. their additive statistics: per epoch of the batch,
        # one report_batches row and one partial-aggregate row
        if accepted:
            by_epoch: dict[int, list[Candidate]]
            if len(accepted_epochs := set(map(_EPOCH_OF, accepted))) == 1:
                by_epoch = {accepted_epochs.pop(): accepted}
            else:
                by_epoch = defaultdict(list)
                for cand in accepted:
                    by_epoch[cand.report.epoch].append(cand)
            protocol = c.protocol
            assert protocol is not None
            # the batch's aggregate computed before the transaction holds iff nothing was refused since
            pre = self.pre_aggregate if len(by_epoch) == 1 and len(accepted) == self.decoded_count else None
            partial_rows, batch_rows = [], []
            for epoch, group in sorted(by_epoch.items()):
                if pre is not None:
                    n, data = pre
                else:
                    n, data = protocol.aggregate_json(protocol.decode([cand.report.payload for cand in group]))
                partial_rows.append((epoch, n, data))
                reports = [cand.report for cand in group]
                batch_rows.append((epoch, len(group), "\n".join([r.report_id for r in reports]),
                                   "\n".join([r.client_id for r in reports]),
                                   "\n".join([cand.payload_json for cand in group])))  # fmt: skip
            bulk.insert_report_batches(c.id, batch_rows, now)
            bulk.insert_partials(c.id, partial_rows, now)
            for index in map(_index, accepted):
                outcome[index] = _ACCEPTED  # one shared verdict; run() adds the report ids

        # 10. ledger, last: the chain head's lock is the collection's one serialisation point
        ledger.append(bulk, c.id, charges, now, lines)

    @staticmethod
    def _reject_into(outcome: list[Any], cand: Candidate, reason: str, detail: str) -> None:
        outcome[cand.index] = {
            "report_id": cand.report.report_id,
            "status": "rejected",
            "reason": reason,
            "detail": detail,
        }

    def _plan_new(self, fresh: list[Candidate]) -> NewPlan:
        """Verdicts for ``fresh`` as if every device were new (the common batch: first-time
        devices), with the ledger lines of their charges. They depend on no stored state, so
        :meth:`run` computes them before the transaction (SQLite holds its write lock for
        less time); :meth:`_charge` re-judges only the devices that turn out to exist."""
        c = self.c
        clients = sorted(set(map(_CLIENT_OF, fresh)))
        if len(clients) == len(fresh):  # one report per device: judged once per accounting window
            verdicts = plan_new_singles(c, fresh)
        else:
            by_client: dict[str, list[Candidate]] = defaultdict(list)
            for cand in fresh:  # in request order (fresh is)
                by_client[cand.report.client_id].append(cand)
            verdicts = BatchVerdicts.of_plans(
                {cl: plan_device(c, DeviceState.new(), by_client[cl], self.per_device_epoch) for cl in clients},
                self.current_epoch - c.grace_epochs,
            )
        accepted = sorted(verdicts.accepted, key=_index)
        charges = list(map(itemgetter(1), sorted(verdicts.charges, key=itemgetter(0))))
        return NewPlan(fresh, clients, verdicts, accepted, charges, ledger.charge_lines(charges))

    def _charge(
        self, bulk: Bulk, fresh: list[Candidate], outcome: list[Any], planned: NewPlan | None
    ) -> tuple[list[Candidate], list[Charge], str | None]:
        """Judge the reports on their devices' rows; returns (accepted, ledger charges, their
        ledger lines if already formatted) and writes every other verdict (duplicate,
        conflict, refusal) into ``outcome``. ``planned``: :meth:`_plan_new` of ``fresh``, or
        None (computed here).

        Each device's reports are judged in request order against its state (a
        :class:`DevicePlan`). Every device is first inserted as if it were new (sorted;
        :meth:`Bulk.insert_new_devices`): for first-time devices that is the whole job
        (nothing of theirs can be a retry); the devices that already existed are then
        locked, re-planned from their real state and recent reports, and updated.
        """
        c, now = self.c, self.now
        lowest = self.current_epoch - c.grace_epochs
        if planned is None or planned.fresh is not fresh:
            planned = self._plan_new(fresh)
        clients, verdicts = planned.clients, planned.verdicts
        created = bulk.insert_new_devices(
            c.id,
            clients,
            list(map(verdicts.rows.__getitem__, clients)),
            list(map(verdicts.recents.__getitem__, clients)),
            now,
        )
        if created is None:  # every device was new: the plan stands
            self._write_refusals(verdicts, outcome)
            return planned.accepted, planned.charges, planned.lines
        pending = [cl for cl in clients if cl not in created]
        verdicts = verdicts.without(set(pending))  # a copy: the plan is reused if the transaction is retried
        by_client: dict[str, list[Candidate]] = defaultdict(list)
        wanted = set(pending)
        for cand in fresh:  # in request order (fresh is)
            if cand.report.client_id in wanted:
                by_client[cand.report.client_id].append(cand)
        existing = bulk.lock_devices(c.id, pending)
        if len(existing) != len(pending):  # cannot happen: devices are never deleted
            raise RuntimeError(f"devices vanished during the transaction: {sorted(wanted - set(existing))}")
        plans = {
            cl: plan_device(
                c,
                DeviceState(*existing[cl][1:-1], recent=parse_recent(existing[cl].recent)),
                by_client[cl],
                self.per_device_epoch,
            )
            for cl in pending
        }
        again = BatchVerdicts.of_plans(plans, lowest)
        bulk.update_devices(
            c.id, pending, [again.rows[cl] for cl in pending], [again.recents[cl] for cl in pending], now
        )
        verdicts.merge(again)
        self._write_refusals(verdicts, outcome)
        accepted = sorted(verdicts.accepted, key=_index)
        charges = sorted(verdicts.charges, key=itemgetter(0))
        return accepted, list(map(itemgetter(1), charges)), None

    def _write_refusals(self, verdicts: BatchVerdicts, outcome: list[Any]) -> None:
        """The verdicts other than accepted (refusals, duplicates, conflicts) into ``outcome``."""
        for cand, reason, detail in verdicts.rejections:
            self._reject_into(outcome, cand, reason, detail)
        for cand, same_body in verdicts.repeats:
            if same_body:
                outcome[cand.index] = {
                    "report_id": cand.report.report_id,
                    "status": "duplicate",
                    "reason": None,
                    "detail": "already accepted",
                }
            else:
                self._reject_into(
                    outcome, cand, "report_id_conflict", "this device already used this report_id with another body"
                )


#: the verdict of an accepted report, shared by all of them during the transaction
_ACCEPTED = {"status": "accepted", "reason": None, "detail": None}
_REPORT_ID = itemgetter("report_id")
_index = attrgetter("index")
_CLIENT_OF = attrgetter("report.client_id")
_EPOCH_OF = attrgetter("report.epoch")
_EPOCH = attrgetter("epoch")
_key = attrgetter("report.client_id", "report.epoch", "report.report_id")


def _driver_error(exc: Exception) -> Exception | None:
    """The database driver's error behind ``exc``: SQLAlchemy wraps the errors of its own
    statements (``DBAPIError.orig``); the hot path's statements on the raw driver
    (``services/bulk.py``) raise the driver's (psycopg's, sqlite3's) unwrapped. None: not
    a database error."""
    if isinstance(exc, DBAPIError):
        return exc.orig if isinstance(exc.orig, Exception) else exc
    if isinstance(exc, sqlite3.Error) or type(exc).__module__.split(".")[0] == "psycopg":
        return exc
    return None


def _transient(exc: Exception) -> bool:
    """Deadlock / serialization failure on PostgreSQL, busy/locked on SQLite."""
    orig = _driver_error(exc)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):
        return True
    text = str(orig or exc).lower()
    return "database is locked" in text or "database is busy" in text


def ingest(
    engine: Engine,
    collection: CollectionRuntime,
    raws: Sequence[Any],
    now: datetime,
    proof: DeviceProof | None,
    *,
    per_device_epoch: int | None = None,
    device_key: bytes | None = None,
) -> BatchResult:
    """Judge and store one batch. ``proof``: the upload's device secrets (the API always
    passes it); None only for an operator's in-process load, which no device reaches.
    ``per_device_epoch``: the most reports one device may have accepted in one epoch
    (``LDP_MAX_REPORTS_PER_DEVICE_EPOCH``; None: no limit). ``device_key``: ``LDP_DEVICE_KEY``,
    which proves devices with tagged secrets without a look-up (``services/devices.py``)."""
    started = time.perf_counter()
    result = Ingestor(engine, collection, now, proof, per_device_epoch, device_key).run(raws)
    metrics.observe_batch(collection.kind, result, time.perf_counter() - started)
    return result
