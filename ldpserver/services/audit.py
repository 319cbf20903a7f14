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
from ldpserver.models import DeviceBudget, LedgerBlock, LedgerEntry, RejectionCount
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.ledger import CHARGE_FIELDS, HASHED_FIELDS

ledger_t = LedgerEntry.__table__
blocks_t = LedgerBlock.__table__
devices_t = DeviceBudget.__table__
rejections_t = RejectionCount.__table__

#: every hashed field, the hash of the charge's row or block, and the block it belongs to
LEDGER_COLUMNS = (*HASHED_FIELDS, "row_hash", "block_seq", "block_count")


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


def _row_items(
    conn: Connection, collection_id: str | None, client_id: str | None, after: tuple[str, int] | None, limit: int
) -> list[dict[str, Any]]:
    """Charges stored as rows of their own (``budget_ledger``, chains before blocks)."""
    query = select(*(ledger_t.c[name] for name in LEDGER_COLUMNS[:-2]))
    if collection_id is not None:
        query = query.where(ledger_t.c.collection_id == collection_id)
    if client_id is not None:
        query = query.where(ledger_t.c.client_id == client_id)
    if after is not None:
        query = query.where(
            or_(
                ledger_t.c.collection_id > after[0],
                and_(ledger_t.c.collection_id == after[0], ledger_t.c.seq > after[1]),
            )
        )
    rows = conn.execute(query.order_by(ledger_t.c.collection_id, ledger_t.c.seq).limit(limit)).mappings().all()
    items = []
    for row in rows:
        item = dict(row)
        item["created_at"] = iso(item["created_at"])
        item["block_seq"] = item["block_count"] = None
        items.append(item)
    return items


_BLOCKS_PER_QUERY = 8
_FLOATS = ("epsilon", "epsilon_record", "epsilon_attribute")


def block_charges(collection_id: str, seq: int, count: int, created_at: str, prev_hash: str, block_hash: str,
                  charges: str) -> list[dict[str, Any]]:  # fmt: skip
    """A stored block's charges as ledger items (seq ``seq - count + 1 .. seq``)."""
    values = json.loads("[" + charges[:-1].replace("\n", ",") + "]") if charges else []
    items = []
    for i, line in enumerate(values):
        item: dict[str, Any] = dict(zip(CHARGE_FIELDS, line, strict=True))
        for name in _FLOATS:
            if item[name] is not None:
                item[name] = float(item[name])
        item.update(
            collection_id=collection_id,
            seq=seq - count + 1 + i,
            created_at=created_at,
            prev_hash=prev_hash,
            row_hash=block_hash,
            block_seq=seq,
            block_count=count,
        )
        items.append(item)
    return items


def _block_items(
    conn: Connection, collection_id: str | None, client_id: str | None, after: tuple[str, int] | None, limit: int
) -> list[dict[str, Any]]:
    """Charges held in blocks, after ``after``, up to ``limit`` of them (blocks read a few at a time)."""
    items: list[dict[str, Any]] = []
    columns = [blocks_t.c[name] for name in ("collection_id", "seq", "count", "created_at", "prev_hash",
                                             "block_hash", "charges")]  # fmt: skip
    while len(items) < limit:
        query = select(*columns)
        if collection_id is not None:
            query = query.where(blocks_t.c.collection_id == collection_id)
        if client_id is not None:  # a superset (the id's characters as text); each charge is checked below
            query = query.where(blocks_t.c.charges.contains(f'"{client_id}"', autoescape=True))
        if after is not None:
            query = query.where(
                or_(
                    blocks_t.c.collection_id > after[0],
                    and_(blocks_t.c.collection_id == after[0], blocks_t.c.seq > after[1]),
                )
            )
        blocks = conn.execute(query.order_by(blocks_t.c.collection_id, blocks_t.c.seq).limit(_BLOCKS_PER_QUERY)).all()
        for cid, seq, count, created, prev, digest, charges in blocks:
            for item in block_charges(cid, seq, count, iso(created), prev, digest, charges):
                if after is not None and (cid, item["seq"]) <= after:
                    continue
                if client_id is None or item["client_id"] == client_id:
                    items.append(item)
        if len(blocks) < _BLOCKS_PER_QUERY:
            break
        after = (blocks[-1][0], blocks[-1][1])
    return items[:limit]


def ledger_page(
    conn: Connection, collection_id: str | None, client_id: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of charges in (collection, seq) order: rows of their own and block charges alike."""
    after = decode_cursor(cursor) if cursor is not None else None
    merged = sorted(
        _row_items(conn, collection_id, client_id, after, limit + 1)
        + _block_items(conn, collection_id, client_id, after, limit + 1),
        key=lambda item: (item["collection_id"], item["seq"]),
    )
    items = merged[:limit]
    next_cursor = encode_cursor(items[-1]["collection_id"], items[-1]["seq"]) if len(merged) > limit else None
    return items, next_cursor


def charges_of(conn: Connection, collection_id: str, client_id: str | None = None) -> list[dict[str, Any]]:
    """Every charge of a collection's ledger (or of one client in it), in ``seq`` order."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = ledger_page(conn, collection_id, client_id, cursor, 10_000)
        items += page
        if cursor is None:
            return items


def ledger_charges(conn: Connection, collection_id: str) -> int:
    """How many charges a collection's ledger holds (rows of their own and block charges)."""
    rows = conn.execute(select(func.count()).select_from(ledger_t).where(ledger_t.c.collection_id == collection_id))
    blocks = conn.execute(
        select(func.coalesce(func.sum(blocks_t.c.count), 0)).where(blocks_t.c.collection_id == collection_id)
    )
    return int(rows.scalar_one()) + int(blocks.scalar_one())


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
    ledger_rows = ledger_charges(conn, c.id)
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
