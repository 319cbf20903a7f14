"""Bulk statements of the ingestion hot path, written per database on the raw driver.

A batch writes about 1,000 rows into each of three tables; building and parsing
1,000-row ``VALUES`` lists (what an ORM or ``insertmanyvalues`` does) cost more than
executing them, so:

* **PostgreSQL**: each statement is one short SQL text whose rows travel as one
  delimited text per column, split and typed server-side (``string_to_array`` + ``unnest``)
  — one round trip, and no per-element adaptation in Python;
* **SQLite**: ``executemany`` of a prepared statement (a C loop in the driver), and
  ``json_each`` for "which of these ids exist". SQLite writers hold the database lock
  from ``BEGIN IMMEDIATE``, so a look-up followed by an insert cannot race.

Every method runs inside the caller's transaction (the SQLAlchemy connection's driver
connection); the lock order is documented in ``services/ingest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection


class DeviceRow(NamedTuple):
    client_id: str
    units: int
    reports: int
    memo_count: int
    window_index: int | None
    window_units: int
    prev_window_units: int


DEVICE_FIELDS = DeviceRow._fields


def _column(rows: Sequence[dict[str, Any]], name: str) -> list[Any]:
    return [row[name] for row in rows]


# PostgreSQL arrays travel as one delimited text each, split server-side by string_to_array:
# joining strings is done in C, where adapting a list element by element is not. Text
# elements never contain the unit separator (ids and hashes match their patterns; JSON
# escapes every control character); numbers use "N" for NULL.
SEP = "\x1f"


def _texts(rows: Sequence[dict[str, Any]], name: str) -> str:
    return SEP.join([row[name] for row in rows])


def _numbers(rows: Sequence[dict[str, Any]], name: str) -> str:
    values = [row[name] for row in rows]
    if None in values:
        return ",".join(["N" if v is None else str(v) for v in values])
    return ",".join(map(str, values))  # str(float) is its shortest round-trip repr


def _T(name: str) -> str:
    """SQL for a text array parameter."""
    return f"string_to_array(%({name})s, chr(31))"


def _N(name: str, sql_type: str) -> str:
    """SQL for a numeric array parameter ("N" is NULL)."""
    return f"string_to_array(%({name})s, ',', 'N')::{sql_type}[]"


_DEVICE_ARRAYS = ", ".join(
    [_T("cl"), _N("u", "bigint"), _N("r", "bigint"), _N("m", "integer"), _N("wi", "bigint"), _N("wu", "bigint"),
     _N("pw", "bigint")]
)  # fmt: skip


def sqlite_timestamp(value: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite (naive UTC text), so ORM reads agree."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Bulk:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        raw = conn.connection.dbapi_connection
        assert raw is not None  # a checked-out connection always has its DBAPI connection
        self.raw: Any = raw

    # --- drivers ------------------------------------------------------------------------
    def _pg(self, sql: str, params: dict[str, Any], fetch: bool = False) -> list[Any]:
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else []

    def _lite(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.raw.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def _lite_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    # --- reports ------------------------------------------------------------------------
    def insert_reports(self, collection_id: str, rows: Sequence[dict[str, Any]], now: datetime) -> set[str]:
        """Insert reports (sorted by report_id) unless their id exists; returns the ids inserted."""
        if not rows:
            return set()
        if self.pg:
            result = self._pg(
                "INSERT INTO reports (report_id, collection_id, client_id, epoch, memo_count, payload, received_at) "
                "SELECT t.r, %(c)s, t.cl, t.e, t.mc, t.p, %(now)s FROM unnest("
                f"{_T('r')}, {_T('cl')}, {_N('e', 'bigint')}, {_N('mc', 'integer')}, {_T('p')}) "
                "AS t(r, cl, e, mc, p) ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
                {
                    "c": collection_id,
                    "now": now,
                    "r": _texts(rows, "report_id"),
                    "cl": _texts(rows, "client_id"),
                    "e": _numbers(rows, "epoch"),
                    "mc": _numbers(rows, "memo_count"),
                    "p": _texts(rows, "payload"),
                },
                fetch=True,
            )
            return {row[0] for row in result}
        ids = _column(rows, "report_id")
        present = {row[0] for row in self._lite(
            "SELECT report_id FROM reports WHERE report_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        )}  # fmt: skip
        stamp = sqlite_timestamp(now)
        fresh = [row for row in rows if row["report_id"] not in present]
        self._lite_many(
            "INSERT INTO reports (report_id, collection_id, client_id, epoch, memo_count, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (r["report_id"], collection_id, r["client_id"], r["epoch"], r["memo_count"], r["payload"], stamp)
                for r in fresh
            ],
        )  # fmt: skip
        return {row["report_id"] for row in fresh}

    def stored_bodies(self, report_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """(collection, client, epoch, memo_count, payload) of each stored report id."""
        if not report_ids:
            return {}
        columns = "report_id, collection_id, client_id, epoch, memo_count, payload"
        if self.pg:
            result = self._pg(
                f"SELECT {columns} FROM reports WHERE report_id = ANY({_T('r')})",
                {"r": SEP.join(report_ids)},
                fetch=True,
            )
        else:
            result = self._lite(
                f"SELECT {columns} FROM reports WHERE report_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(report_ids)),),
            )
        return {row[0]: tuple(row[1:]) for row in result}

    def delete_reports(self, report_ids: Sequence[str]) -> None:
        """Remove reports inserted earlier in this transaction (refused by the budget check)."""
        if not report_ids:
            return
        if self.pg:
            self._pg(f"DELETE FROM reports WHERE report_id = ANY({_T('r')})", {"r": SEP.join(report_ids)})
        else:
            self._lite(
                "DELETE FROM reports WHERE report_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(report_ids)),),
            )

    # --- devices ------------------------------------------------------------------------
    def lock_devices(self, collection_id: str, clients: Sequence[str]) -> dict[str, DeviceRow]:
        """Existing device rows of ``clients``, locked until commit (PostgreSQL: FOR UPDATE, sorted).

        The primary key is (client_id, collection_id), so ``client_id = ANY(…)`` is an index
        look-up per device whatever the collection's size.
        """
        if not clients:
            return {}
        if self.pg:
            rows = self._pg(
                "SELECT client_id, units, reports, memo_count, window_index, window_units, prev_window_units "
                f"FROM device_budgets WHERE client_id = ANY({_T('cl')}) AND collection_id = %(c)s "
                "ORDER BY client_id FOR UPDATE",
                {"c": collection_id, "cl": SEP.join(clients)},
                fetch=True,
            )
        else:
            rows = self._lite(
                "SELECT client_id, units, reports, memo_count, window_index, window_units, prev_window_units "
                "FROM device_budgets WHERE client_id IN (SELECT value FROM json_each(?)) AND collection_id = ?",
                (json.dumps(list(clients)), collection_id),
            )
        return {row[0]: DeviceRow(*row) for row in rows}

    def insert_new_devices(self, collection_id: str, rows: Sequence[dict[str, Any]], now: datetime) -> set[str]:
        """PostgreSQL: insert devices (sorted) that do not exist yet; returns those inserted.

        A device another transaction is creating is waited for; it is then not ours (it
        exists), and :meth:`lock_devices` finds it.
        """
        created = self._pg(
            "INSERT INTO device_budgets (collection_id, client_id, units, reports, memo_count, window_index, "
            "window_units, prev_window_units, first_seen, last_seen) "
            "SELECT %(c)s, t.cl, t.u, t.r, t.m, t.wi, t.wu, t.pw, %(now)s, %(now)s "
            f"FROM unnest({_DEVICE_ARRAYS}) AS t(cl, u, r, m, wi, wu, pw) "
            "ON CONFLICT (client_id, collection_id) DO NOTHING RETURNING client_id",
            {"c": collection_id, "now": now, **self._device_arrays(rows)},
            fetch=True,
        )
        return {row[0] for row in created}

    def write_devices(
        self, collection_id: str, rows: Sequence[dict[str, Any]], existing: set[str], now: datetime
    ) -> None:
        """Store devices' new state: update those :meth:`lock_devices` returned (``existing``),
        insert the others (SQLite; on PostgreSQL :meth:`insert_new_devices` did)."""
        fresh = [r for r in rows if r["client_id"] not in existing]
        known = [r for r in rows if r["client_id"] in existing]
        if self.pg:
            if fresh:  # cannot happen: a device not inserted by us existed, and devices are never deleted
                raise RuntimeError(f"devices vanished during the transaction: {[r['client_id'] for r in fresh]}")
            if known:
                # an upsert whose every row conflicts: one primary-key probe per device (an
                # UPDATE ... FROM unnest(...) is planned as a hash join over the whole table)
                self._pg(
                    "INSERT INTO device_budgets AS d (collection_id, client_id, units, reports, memo_count, "
                    "window_index, window_units, prev_window_units, first_seen, last_seen) "
                    "SELECT %(c)s, t.cl, t.u, t.r, t.m, t.wi, t.wu, t.pw, %(now)s, %(now)s "
                    f"FROM unnest({_DEVICE_ARRAYS}) AS t(cl, u, r, m, wi, wu, pw) "
                    "ON CONFLICT (client_id, collection_id) DO UPDATE SET units = EXCLUDED.units, "
                    "reports = EXCLUDED.reports, memo_count = EXCLUDED.memo_count, "
                    "window_index = EXCLUDED.window_index, window_units = EXCLUDED.window_units, "
                    "prev_window_units = EXCLUDED.prev_window_units, last_seen = EXCLUDED.last_seen",
                    {"c": collection_id, "now": now, **self._device_arrays(known)},
                )
            return
        stamp = sqlite_timestamp(now)
        if fresh:
            self._lite_many(
                "INSERT INTO device_budgets (collection_id, client_id, units, reports, memo_count, window_index, "
                "window_units, prev_window_units, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        collection_id,
                        r["client_id"],
                        r["units"],
                        r["reports"],
                        r["memo_count"],
                        r["window_index"],
                        r["window_units"],
                        r["prev_window_units"],
                        stamp,
                        stamp,
                    )
                    for r in fresh
                ],  # fmt: skip
            )
        if known:
            self._lite_many(
                "UPDATE device_budgets SET units = ?, reports = ?, memo_count = ?, window_index = ?, "
                "window_units = ?, prev_window_units = ?, last_seen = ? WHERE client_id = ? AND collection_id = ?",
                [
                    (r["units"], r["reports"], r["memo_count"], r["window_index"], r["window_units"],
                     r["prev_window_units"], stamp, r["client_id"], collection_id)
                    for r in known
                ],
            )  # fmt: skip

    @staticmethod
    def _device_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
        return {
            "cl": _texts(rows, "client_id"),
            "u": _numbers(rows, "units"),
            "r": _numbers(rows, "reports"),
            "m": _numbers(rows, "memo_count"),
            "wi": _numbers(rows, "window_index"),
            "wu": _numbers(rows, "window_units"),
            "pw": _numbers(rows, "prev_window_units"),
        }

    # --- ledger -------------------------------------------------------------------------
    def insert_ledger_block(
        self, collection_id: str, seq: int, count: int, now: datetime, charges: str, prev_hash: str, block_hash: str
    ) -> None:
        """Insert one ledger block (``services/ledger.py``): one row, whatever the batch's size."""
        if self.pg:
            self._pg(
                "INSERT INTO ledger_blocks (collection_id, seq, count, created_at, prev_hash, block_hash, charges) "
                "VALUES (%(c)s, %(s)s, %(n)s, %(now)s, %(ph)s, %(bh)s, %(ch)s)",
                {
                    "c": collection_id,
                    "s": seq,
                    "n": count,
                    "now": now,
                    "ph": prev_hash,
                    "bh": block_hash,
                    "ch": charges,
                },
            )
            return
        self._lite(
            "INSERT INTO ledger_blocks (collection_id, seq, count, created_at, prev_hash, block_hash, charges) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (collection_id, seq, count, sqlite_timestamp(now), prev_hash, block_hash, charges),
        )
