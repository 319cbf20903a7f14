"""Stored raw reports of a release scope, for kinds whose releases need them (heavy-hitter
discovery): streamed and decoded by the SDK into packed arrays, never one Python object per
report."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from ldpserver.models import Report
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.release_policy import sdk_of

reports_t = Report.__table__

#: rows per block when a release streams the stored raw reports of a heavy-hitter scope
RAW_BLOCK = 50_000


def load_raw_reports(conn: Connection, c: CollectionRuntime, low: int, high: int) -> tuple[np.ndarray, Any]:
    """Raw reports of epochs low..high, decoded by the SDK (epochs, PrefixReports or None).

    Streamed in blocks of ``RAW_BLOCK`` rows (a server-side cursor on PostgreSQL), each
    block decoded at once by the SDK's ``decode_stored`` (the stored compact JSON, with
    the strict decoder as the fallback), so a release holds packed arrays (≈ 17–34 bytes
    per report), never a million Python objects. No ORDER BY: discovery depends only on
    integer support counts, which do not depend on the order of the reports."""
    sdk = sdk_of(c)
    if conn.dialect.name == "postgresql" and hasattr(sdk, "decode_stored_rows"):
        copied = _copy_prefix_reports(conn, sdk, c.id, low, high)
        if copied is not None:
            return copied
    decode = getattr(sdk, "decode_stored", None)
    result = conn.execution_options(yield_per=RAW_BLOCK).execute(
        select(reports_t.c.epoch, reports_t.c.payload).where(
            reports_t.c.collection_id == c.id, reports_t.c.epoch >= low, reports_t.c.epoch <= high
        )
    )
    epochs: list[np.ndarray] = []
    batches = []
    for rows in result.partitions():
        epochs.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        texts = [r[1] for r in rows]
        batches.append(decode(texts) if decode is not None else sdk.decode([json.loads(t) for t in texts]))
    if not batches:
        return np.zeros(0, dtype=np.int64), None
    from client_sdk.heavy_hitters import PrefixReports

    return np.concatenate(epochs), PrefixReports.concat(batches)


#: bytes per block when a release reads stored heavy-hitter reports with COPY (PostgreSQL):
#: small, so the per-block Python strings stay a few MB
COPY_BLOCK = 1 << 20


def _copy_prefix_reports(
    conn: Connection, sdk: Any, collection_id: str, low: int, high: int
) -> tuple[np.ndarray, Any] | None:
    """PostgreSQL: the (epoch, payload) text of the scope's reports through ``COPY … TO
    STDOUT`` in the release's read transaction (same snapshot), decoded a block of ~1 MB at
    a time by the SDK's ``decode_stored_rows`` — no Python object per row. None when any
    block is not in the stored form (the caller then reads row by row)."""
    from psycopg import sql

    from client_sdk.heavy_hitters import PrefixReports

    statement = sql.SQL(
        "COPY (SELECT epoch, payload FROM reports WHERE collection_id = {} AND epoch >= {} AND epoch <= {}) TO STDOUT"
    ).format(sql.Literal(collection_id), sql.Literal(int(low)), sql.Literal(int(high)))
    raw: Any = conn.connection.driver_connection  # psycopg's connection (COPY)
    epochs: list[np.ndarray] = []
    batches = []
    pending = bytearray()

    def flush(data: bytes) -> bool:
        decoded = sdk.decode_stored_rows(data.decode("utf-8"))
        if decoded is None:
            return False
        epochs.append(decoded[0])
        batches.append(decoded[1])
        return True

    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        ok = True
        for chunk in copy:  # psycopg yields about one row per chunk: append, never re-copy
            if not ok:
                continue  # drain the COPY stream before giving up
            pending += chunk
            if len(pending) >= COPY_BLOCK:
                cut = pending.rfind(b"\n") + 1
                ok = flush(bytes(pending[:cut]))
                del pending[:cut]
        if ok and pending:
            ok = flush(bytes(pending))
    if not ok:
        return None
    if not batches:
        return np.zeros(0, dtype=np.int64), None
    return np.concatenate(epochs), PrefixReports.concat(batches)
