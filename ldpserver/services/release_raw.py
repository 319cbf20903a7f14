"""Stored raw reports of a release scope, for kinds whose releases need them (heavy-hitter
discovery): streamed and decoded by the SDK into packed arrays, never one Python object per
report."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from ldpserver.models import ReportBatch
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.release_policy import sdk_of

batches_t = ReportBatch.__table__

#: report_batches rows per block when a release streams the stored raw reports of a
#: heavy-hitter scope (≈ 50,000 reports from uploads of 1,000)
RAW_BATCH_ROWS = 50

#: the per-report columns of decoded heavy-hitter reports (PrefixReports' fields)
_REPORT_FIELDS = ("levels", "seeds", "ys", "parties", "item_seeds", "item_ys")


@dataclass
class StoredReports:
    """The decoded raw reports of epochs ``low..`` a release reads: each report's epoch as
    ``offsets`` (epoch − low, compact dtype) and the reports (PrefixReports, None when
    there is none)."""

    low: int
    offsets: np.ndarray
    reports: Any

    def scope(self, start: int, end: int) -> tuple[int, Any]:
        """(count, reports) of epochs start..end; no copy when that is all of them."""
        if self.reports is None:
            return 0, None
        mask = (self.offsets >= max(0, start - self.low)) & (self.offsets <= end - self.low)
        count = int(np.count_nonzero(mask))
        if count == len(self.reports):
            return count, self.reports
        return count, (self.reports.subset(mask) if count else None)


class _ReportColumns:
    """Decoded reports appended block by block into compact columns (as the SDK's decoder
    gives them: 8- or 16-bit levels and values, 64-bit seeds; the epoch as an offset),
    allocated once for the expected count and grown by half beyond it: a release holds
    ≈ 11–12 bytes per report, never the blocks and their concatenation at once."""

    def __init__(self, low: int, high: int, expected: int) -> None:
        self.low = low
        self.offset_type = np.min_scalar_type(max(0, high - low))
        self.capacity = max(1, expected)
        self.size = 0
        self.offsets = np.empty(self.capacity, dtype=self.offset_type)
        self.columns: dict[str, np.ndarray] | None = None

    def append(self, epochs: np.ndarray, reports: Any) -> None:
        count = len(reports)
        if count == 0:
            return
        if self.columns is None:
            self.columns = {
                name: np.empty(self.capacity, dtype=getattr(reports, name).dtype)
                for name in _REPORT_FIELDS
                if getattr(reports, name) is not None
            }
        if self.size + count > self.capacity:
            self._grow(max(self.size + count, self.capacity + self.capacity // 2))
        end = self.size + count
        self.offsets[self.size : end] = np.asarray(epochs) - self.low
        for name, column in self.columns.items():
            column[self.size : end] = getattr(reports, name)
        self.size = end

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty(capacity, dtype=a.dtype)
            out[: self.size] = a[: self.size]
            return out

        self.offsets = grown(self.offsets)
        self.columns = {name: grown(column) for name, column in (self.columns or {}).items()}
        self.capacity = capacity

    def finish(self) -> StoredReports:
        """The columns trimmed to their size (views, no copy)."""
        if self.columns is None or self.size == 0:
            return StoredReports(self.low, np.zeros(0, dtype=self.offset_type), None)
        from client_sdk.heavy_hitters import PrefixReports

        size, columns = self.size, self.columns

        def optional(name: str) -> np.ndarray | None:
            return columns[name][:size] if name in columns else None

        reports = PrefixReports(
            columns["levels"][:size], columns["seeds"][:size], columns["ys"][:size],
            optional("parties"), optional("item_seeds"), optional("item_ys"),
        )  # fmt: skip
        return StoredReports(self.low, self.offsets[:size], reports)


def load_raw_reports(conn: Connection, c: CollectionRuntime, low: int, high: int, expected: int) -> StoredReports:
    """Raw reports of epochs low..high, decoded by the SDK into compact columns.

    PostgreSQL: one ``COPY … TO STDOUT`` decoded in blocks (:func:`_copy_prefix_reports`);
    otherwise (or when a block is not in the stored form) streamed in blocks of
    ``RAW_BATCH_ROWS`` batch rows, each block decoded at once by the SDK's ``decode_stored``
    (the stored compact JSON, with the strict decoder as the fallback). ``expected`` (the scopes'
    report count) sizes the columns. No ORDER BY: discovery depends only on integer
    support counts, which do not depend on the order of the reports."""
    sdk = sdk_of(c)
    if conn.dialect.name == "postgresql" and hasattr(sdk, "decode_stored_rows"):
        copied = _copy_prefix_reports(conn, sdk, c.id, low, high, expected)
        if copied is not None:
            return copied
    decode = getattr(sdk, "decode_stored", None)
    result = conn.execution_options(yield_per=RAW_BATCH_ROWS).execute(
        select(batches_t.c.epoch, batches_t.c.payloads).where(
            batches_t.c.collection_id == c.id, batches_t.c.epoch >= low, batches_t.c.epoch <= high
        )
    )
    columns = _ReportColumns(low, high, expected)
    for rows in result.partitions():
        texts: list[str] = []
        counts: list[int] = []
        for _, payloads in rows:
            lines = payloads.split("\n")
            texts += lines
            counts.append(len(lines))
        epochs = np.repeat(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), counts)
        columns.append(epochs, decode(texts) if decode is not None else sdk.decode([json.loads(t) for t in texts]))
    return columns.finish()


#: bytes per block when a release reads stored heavy-hitter reports with COPY (PostgreSQL):
#: small, so the per-block buffers stay a few MB
COPY_BLOCK = 1 << 20


def _copy_prefix_reports(
    conn: Connection, sdk: Any, collection_id: str, low: int, high: int, expected: int
) -> StoredReports | None:
    """PostgreSQL: the (epoch, payload) text of the scope's reports through ``COPY … TO
    STDOUT`` in the release's read transaction (same snapshot), decoded a block of ~1 MB at
    a time by the SDK's vectorised ``decode_stored_rows`` into compact columns — no Python
    object per report beyond the row's bytes. None when any block is not in the stored
    form (the caller then reads row by row)."""
    from psycopg import sql

    statement = sql.SQL(
        "COPY (SELECT epoch, unnest(string_to_array(payloads, E'\\n')) FROM report_batches "
        "WHERE collection_id = {} AND epoch >= {} AND epoch <= {}) TO STDOUT"
    ).format(sql.Literal(collection_id), sql.Literal(int(low)), sql.Literal(int(high)))
    raw = conn.connection.driver_connection
    columns = _ReportColumns(low, high, expected)
    buffer = io.BytesIO()
    ok = True
    for row in _copy_rows(raw, statement.as_bytes(raw)):
        if not ok:
            continue  # drain the COPY stream before giving up
        buffer.write(row)
        if buffer.tell() >= COPY_BLOCK:
            data = buffer.getvalue()
            cut = data.rfind(b"\n") + 1
            ok = _decode_rows_into(columns, sdk, data[:cut])
            buffer = io.BytesIO()
            buffer.write(data[cut:])
    if ok and buffer.tell():
        ok = _decode_rows_into(columns, sdk, buffer.getvalue())
    return columns.finish() if ok else None


def _copy_rows(connection: Any, statement: bytes) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT`` on a psycopg connection, read with libpq's own
    blocking calls (psycopg's documented low-level ``pgconn``): one C call per row, where
    psycopg's ``Copy`` iteration costs ≈ 0.5 µs more per row (0.3 s of a 10^6-report
    release). The stream is always read to its end, also when the caller stops early or
    fails (the connection stays usable, in its transaction); an error of the statement
    raises psycopg's exception for it."""
    import select as select_module

    import psycopg
    from psycopg import pq

    pgconn = connection.pgconn
    with connection.lock:
        pgconn.send_query(statement)
        while pgconn.flush():  # a non-blocking connection: wait until the query is sent
            select_module.select([], [pgconn.socket], [])
        result = pgconn.get_result()
        try:
            if result is None or result.status != pq.ExecStatus.COPY_OUT:
                raise _result_error(psycopg, result)
            done = False
            try:
                while True:
                    size, data = pgconn.get_copy_data(0)
                    if size < 0:
                        done = True
                        break
                    yield data
            finally:
                while not done and pgconn.get_copy_data(0)[0] >= 0:
                    pass
            result = pgconn.get_result()
            if result is None or result.status != pq.ExecStatus.COMMAND_OK:
                raise _result_error(psycopg, result)
        finally:
            while pgconn.get_result() is not None:
                pass


def _result_error(psycopg: Any, result: Any) -> Exception:
    if result is None:
        return psycopg.OperationalError("COPY returned no result")
    message = (result.error_message or b"").decode("utf-8", "replace").strip()
    state = result.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    try:
        error_class = psycopg.errors.lookup(state.decode()) if state else psycopg.DatabaseError
    except KeyError:
        error_class = psycopg.DatabaseError
    return error_class(message or f"unexpected COPY result {result.status!r}")


def _decode_rows_into(columns: _ReportColumns, sdk: Any, block: bytes) -> bool:
    decoded = sdk.decode_stored_rows(block)
    if decoded is None:
        return False
    columns.append(*decoded)
    return True
