"""Read-only views for auditors: ledger pages, budget summaries, rejection counters."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, or_, select

from ldpserver.clock import iso
from ldpserver.errors import ProblemError
from ldpserver.models import DeviceBudget, LedgerEntry, RejectionCount
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.ledger import HASHED_FIELDS

ledger_t = LedgerEntry.__table__
devices_t = DeviceBudget.__table__
rejections_t = RejectionCount.__table__

LEDGER_COLUMNS = (*HASHED_FIELDS, "row_hash")  # every hashed field, then the row's own hash


SEQ_MAX = 2**62  # ledger sequence numbers are 64-bit; larger cursor values are forged


def encode_cursor(collection_id: str, seq: int) -> str:
    raw = json.dumps([collection_id, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        collection_id, seq = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(collection_id, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        # bounded before any SQL: a forged 10**30 or 2**63 must be a 422, not a driver overflow
        if not 0 <= seq <= SEQ_MAX or len(collection_id) > 40 or "\x00" in collection_id:
            raise ValueError
        return collection_id, seq
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(
            "validation",
            "cursor is not a value returned as next_cursor",
            errors=[{"path": "/cursor", "message": "invalid cursor", "code": "invalid_cursor"}],
        ) from None


#: seconds one GET /v1/audit/verify spends walking chains before it answers with a cursor
#: (well inside the gunicorn worker timeout, 60 s by default)
VERIFY_SECONDS = 20.0
_HASH = re.compile(r"[0-9a-f]{64}")


def encode_verify_cursor(collection_id: str, seq: int, prev_hash: str) -> str:
    raw = json.dumps([collection_id, seq, prev_hash], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_verify_cursor(cursor: str) -> tuple[str, int, str]:
    """(collection id, next seq, hash of the row before it; seq 0: from the genesis)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        collection_id, seq, prev_hash = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(collection_id, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        if not isinstance(prev_hash, str) or not 0 <= seq <= SEQ_MAX or len(collection_id) > 40:
            raise ValueError
        if "\x00" in collection_id or (seq > 0 and not _HASH.fullmatch(prev_hash)):
            raise ValueError
        return collection_id, seq, prev_hash
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(
            "validation",
            "cursor is not a value returned as next_cursor",
            errors=[{"path": "/cursor", "message": "invalid cursor", "code": "invalid_cursor"}],
        ) from None


def ledger_page(
    conn: Connection, collection_id: str | None, client_id: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(*(ledger_t.c[name] for name in LEDGER_COLUMNS))
    if collection_id is not None:
        query = query.where(ledger_t.c.collection_id == collection_id)
    if client_id is not None:
        query = query.where(ledger_t.c.client_id == client_id)
    if cursor is not None:
        after_collection, after_seq = decode_cursor(cursor)
        query = query.where(
            or_(
                ledger_t.c.collection_id > after_collection,
                and_(ledger_t.c.collection_id == after_collection, ledger_t.c.seq > after_seq),
            )
        )
    rows = conn.execute(query.order_by(ledger_t.c.collection_id, ledger_t.c.seq).limit(limit + 1)).mappings().all()
    items = []
    for row in rows[:limit]:
        item = dict(row)
        item["created_at"] = iso(item["created_at"])
        items.append(item)
    next_cursor = encode_cursor(items[-1]["collection_id"], items[-1]["seq"]) if len(rows) > limit else None
    return items, next_cursor


def budget_summary(conn: Connection, c: CollectionRuntime, bins: int) -> dict[str, Any]:
    units = np.fromiter(
        conn.execute(select(devices_t.c.units).where(devices_t.c.collection_id == c.id)).scalars(), dtype=np.int64
    )
    reports_accepted = conn.execute(
        select(func.coalesce(func.sum(devices_t.c.reports), 0)).where(devices_t.c.collection_id == c.id)
    ).scalar_one()
    larger = func.max if conn.dialect.name == "sqlite" else func.greatest  # scalar max of two columns
    max_window_units = conn.execute(
        select(func.coalesce(func.max(larger(devices_t.c.window_units, devices_t.c.prev_window_units)), 0)).where(
            devices_t.c.collection_id == c.id
        )
    ).scalar_one()
    ledger_rows = conn.execute(
        select(func.count()).select_from(ledger_t).where(ledger_t.c.collection_id == c.id)
    ).scalar_one()
    spent = units.astype(np.float64) * c.charge_epsilon
    if spent.size:
        quantiles = {
            "p50": float(np.quantile(spent, 0.5)),
            "p90": float(np.quantile(spent, 0.9)),
            "p99": float(np.quantile(spent, 0.99)),
            "max": float(spent.max()),
        }
    else:
        quantiles = {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    top = max(c.cap_lifetime, float(spent.max()) if spent.size else 0.0)
    edges = np.linspace(0.0, top, bins + 1)
    counts, _ = np.histogram(spent, bins=edges) if spent.size else (np.zeros(bins, dtype=np.int64), edges)
    histogram = [
        {"lower": float(edges[i]), "upper": float(edges[i + 1]), "devices": int(counts[i])} for i in range(bins)
    ]
    rejections = dict(
        conn.execute(
            select(rejections_t.c.reason, rejections_t.c.count)
            .where(rejections_t.c.collection_id == c.id)
            .order_by(rejections_t.c.reason)
        ).all()
    )
    max_spent = quantiles["max"]
    return {
        "collection_id": c.id,
        "neighbouring": c.neighbouring,
        "charge_epsilon": c.charge_epsilon,
        "cap_lifetime": c.cap_lifetime,
        "cap_per_window": c.cap_window,
        "window_epochs": c.window_epochs,
        "memoized": c.memoized,
        "devices": int(units.size),
        "reports_accepted": int(reports_accepted),
        "ledger_rows": int(ledger_rows),
        "epsilon_total": float(spent.sum()),
        "quantiles": quantiles,
        "histogram": histogram,
        "max_spent": max_spent,
        "max_over_cap": bool(units.size and int(units.max()) > c.max_units_lifetime),
        "max_window_spent": float(max_window_units) * c.charge_epsilon,
        "rejections": {k: int(v) for k, v in rejections.items()},
    }


def rejection_rows(conn: Connection, collection_id: str | None) -> list[dict[str, Any]]:
    query = select(rejections_t).order_by(rejections_t.c.collection_id, rejections_t.c.reason)
    if collection_id is not None:
        query = query.where(rejections_t.c.collection_id == collection_id)
    return [dict(row) for row in conn.execute(query).mappings()]
