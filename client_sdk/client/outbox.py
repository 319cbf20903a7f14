"""The durable outbox and the ``rejected`` table, read by column name.

Every function takes a connection inside a transaction of the
:class:`~client_sdk.client.store.StateStore` (so ``report()`` can queue a report in the
same transaction that charges it). Rows come back as :class:`OutboxRow`, never as
positional tuples.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from client_sdk.client import ledger
from client_sdk.client.results import RejectedReport

#: the outbox columns, in the order of :class:`OutboxRow`'s fields
_COLUMNS = (
    "seq",
    "report_id",
    "collection_id",
    "config_hash",
    "epoch",
    "payload",
    "memo_count",
    "units",
    "created_at",
    "attempts",
    "last_error",
)
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM outbox"
_REJECTED = (
    "report_id",
    "collection_id",
    "config_hash",
    "epoch",
    "memo_count",
    "units",
    "created_at",
    "rejected_at",
    "reason",
    "detail",
)
#: longest error text kept per row
MAX_ERROR = 500


@dataclass(frozen=True)
class OutboxRow:
    """One queued report: its id and wire fields, its charge, and its delivery attempts."""

    seq: int
    report_id: str
    collection_id: str
    config_hash: str
    epoch: int
    payload: str  # the wire payload as JSON text
    memo_count: int | None
    units: int
    created_at: float
    attempts: int
    last_error: str | None

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> OutboxRow:
        return cls(**dict(zip(_COLUMNS, row, strict=True)))


def enqueue(
    conn: sqlite3.Connection,
    *,
    report_id: str,
    collection_id: str,
    config_hash: str,
    epoch: int,
    payload: str,
    memo_count: int | None,
    units: int,
    created_at: float,
) -> None:
    conn.execute(
        "INSERT INTO outbox (report_id, collection_id, config_hash, epoch, payload, memo_count, units, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (report_id, collection_id, config_hash, epoch, payload, memo_count, units, created_at),
    )


def queued_collections(conn: sqlite3.Connection) -> list[str]:
    """The collections with reports in the outbox, sorted."""
    return sorted(r[0] for r in conn.execute("SELECT DISTINCT collection_id FROM outbox").fetchall())


def due(conn: sqlite3.Connection, collection_id: str, now: float, limit: int) -> list[OutboxRow]:
    """The oldest ``limit`` reports of a collection whose next attempt is due at ``now``."""
    rows = conn.execute(
        f"{_SELECT} WHERE collection_id = ? AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
        (collection_id, now, limit),
    ).fetchall()
    return [OutboxRow.from_row(r) for r in rows]


def count(conn: sqlite3.Connection, collection_id: str | None = None) -> int:
    if collection_id is None:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE collection_id = ?", (collection_id,)).fetchone()[0])


def delivered(conn: sqlite3.Connection, row: OutboxRow, outcome: str) -> None:
    """The server holds the report (``outcome`` "accepted" now, or "duplicates": before): it
    leaves the outbox and its charge is acknowledged."""
    conn.execute("DELETE FROM outbox WHERE seq = ?", (row.seq,))
    conn.execute("UPDATE charges SET status = 'acknowledged' WHERE report_id = ?", (row.report_id,))
    ledger.count_outcome(conn, row.collection_id, outcome)


def defer(conn: sqlite3.Connection, row: OutboxRow, until: float, error: str) -> None:
    """Keep the report queued; the next flush tries it again from ``until`` (Unix seconds)."""
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
        (until, error[:MAX_ERROR], row.seq),
    )


def note_error(conn: sqlite3.Connection, rows: Iterable[OutboxRow], error: str) -> None:
    """Count a failed attempt on each row, keeping them due."""
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
        [(error[:MAX_ERROR], row.seq) for row in rows],
    )


def reject(conn: sqlite3.Connection, row: OutboxRow, reason: str, detail: str | None, now: float) -> None:
    """Move one report to ``rejected`` (kept with the reason, never dropped) and settle its charge."""
    conn.execute(
        "INSERT OR REPLACE INTO rejected (report_id, collection_id, config_hash, epoch, payload, memo_count, units, "
        "created_at, rejected_at, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.report_id,
            row.collection_id,
            row.config_hash,
            row.epoch,
            row.payload,
            row.memo_count,
            row.units,
            row.created_at,
            now,
            reason,
            detail,
        ),
    )
    conn.execute("DELETE FROM outbox WHERE seq = ?", (row.seq,))
    conn.execute("UPDATE charges SET status = 'rejected' WHERE report_id = ?", (row.report_id,))
    ledger.count_outcome(conn, row.collection_id, "rejected")


def rejected(conn: sqlite3.Connection, collection_id: str | None, limit: int) -> list[RejectedReport]:
    """The reports the server refused for good, newest first."""
    query = "SELECT " + ", ".join(_REJECTED) + " FROM rejected"
    params: tuple[Any, ...] = ()
    if collection_id is not None:
        query += " WHERE collection_id = ?"
        params = (collection_id,)
    query += " ORDER BY rejected_at DESC, report_id LIMIT ?"
    rows = conn.execute(query, (*params, int(limit))).fetchall()
    return [RejectedReport(**dict(zip(_REJECTED, r, strict=True))) for r in rows]


def queued_by_collection(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT collection_id, COUNT(*) FROM outbox GROUP BY collection_id").fetchall()
    return {cid: int(n) for cid, n in rows}


def last_errors(conn: sqlite3.Connection) -> dict[str, str]:
    """Per collection, the error of its newest report that has one."""
    rows = conn.execute(
        "SELECT collection_id, last_error, MAX(seq) FROM outbox WHERE last_error IS NOT NULL GROUP BY collection_id"
    ).fetchall()
    return {cid: err for cid, err, _ in rows}


def rejected_by_reason(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    rows = conn.execute("SELECT collection_id, reason, COUNT(*) FROM rejected GROUP BY collection_id, reason")
    out: dict[str, dict[str, int]] = {}
    for cid, reason, n in rows.fetchall():
        out.setdefault(cid, {})[reason] = int(n)
    return out
