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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
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
#: a device's state without its client id: what ingestion plans and stores
STATE_FIELDS = DEVICE_FIELDS[1:]
_STATE_PARAMS = ("u", "r", "m", "wi", "wu", "pw")  # STATE_FIELDS' parameter names in the statements


# PostgreSQL arrays travel as one delimited text each, split server-side by string_to_array:
# joining strings is done in C, where adapting a list element by element is not. Text
# elements never contain the unit separator (ids and hashes match their patterns; JSON
# escapes every control character); numbers are written by ``str``, so NULL is "None".
SEP = "\x1f"


def _numbers(values: Sequence[Any]) -> str:
    """Integers (or None) as one comma-separated text: ``str`` of each, mapped in C."""
    return ",".join(map(str, values))


def _T(name: str) -> str:
    """SQL for a text array parameter."""
    return f"string_to_array(%({name})s, chr(31))"


def _N(name: str, sql_type: str) -> str:
    """SQL for a numeric array parameter ("None" is NULL)."""
    return f"string_to_array(%({name})s, ',', 'None')::{sql_type}[]"


_DEVICE_ARRAYS = ", ".join(
    [_T("cl"), _N("u", "bigint"), _N("r", "bigint"), _N("m", "integer"), _N("wi", "bigint"), _N("wu", "bigint"),
     _N("pw", "bigint")]
)  # fmt: skip


_LITE_INSERT_REPORT = (
    "INSERT INTO reports (report_id, collection_id, client_id, epoch, memo_count, payload, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _by_epoch(report_ids: Sequence[str], epochs: Sequence[int]) -> dict[int, list[str]]:
    """Report ids grouped by their epoch (SQLite looks them up one epoch at a time)."""
    groups: dict[int, list[str]] = {}
    for rid, epoch in zip(report_ids, epochs, strict=True):
        groups.setdefault(epoch, []).append(rid)
    return groups


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

    # --- the collection -------------------------------------------------------------------
    def closed_epochs(self, collection_id: str, epochs: Sequence[int]) -> set[int]:
        """PostgreSQL: first share-lock the collection row (``close_epoch`` locks it FOR UPDATE,
        so it waits for this batch, and this batch for it: ``services/epochs.py``); then, in a
        statement of its own (it sees what a close that was waited for committed), which of
        ``epochs`` are closed."""
        if self.pg:
            self._pg("SELECT id FROM collections WHERE id = %(c)s FOR SHARE", {"c": collection_id})
            if not epochs:
                return set()
            rows = self._pg(
                f"SELECT epoch FROM epoch_closures WHERE collection_id = %(c)s AND epoch = ANY({_N('e', 'bigint')})",
                {"c": collection_id, "e": _numbers(epochs)},
                fetch=True,
            )
        else:
            if not epochs:
                return set()
            rows = self._lite(
                "SELECT epoch FROM epoch_closures WHERE collection_id = ? "
                "AND epoch IN (SELECT value FROM json_each(?))",
                (collection_id, json.dumps(list(epochs))),
            )
        return {row[0] for row in rows}

    def insert_partials(self, collection_id: str, partials: Sequence[tuple[int, int, str]], now: datetime) -> None:
        """One ``epoch_partials`` row per (epoch, n, aggregate JSON)."""
        if self.pg:
            with self.raw.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO epoch_partials (collection_id, epoch, n, aggregate, created_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [(collection_id, epoch, n, data, now) for epoch, n, data in partials],
                )
            return
        stamp = sqlite_timestamp(now)
        self._lite_many(
            "INSERT INTO epoch_partials (collection_id, epoch, n, aggregate, created_at) VALUES (?, ?, ?, ?, ?)",
            [(collection_id, epoch, n, data, stamp) for epoch, n, data in partials],
        )

    # --- reports ------------------------------------------------------------------------
    # The key is (collection_id, epoch, report_id): a retry resends its report's epoch, so
    # every look-up below names the epoch too (one index probe per report).
    def insert_reports(
        self,
        collection_id: str,
        report_ids: Sequence[str],
        client_ids: Sequence[str],
        epochs: Sequence[int],
        payloads: Sequence[str],
        now: datetime,
        *,
        optimistic: bool = False,
    ) -> set[tuple[int, str]] | None:
        """Insert reports (columns in the same order, sorted by report_id; memo_count NULL:
        wire version 2 has none) unless their key exists; returns the keys (epoch,
        report_id) inserted, or None when every report was.

        ``optimistic`` (PostgreSQL): a plain ``INSERT``, about a third cheaper for the
        database than ``ON CONFLICT DO NOTHING``; a stored key then raises a unique
        violation, which aborts the transaction, and the caller runs it again without
        ``optimistic`` (``services/ingest.py``)."""
        if not report_ids:
            return set()
        if self.pg:
            columns = {
                "c": collection_id,
                "now": now,
                "r": SEP.join(report_ids),
                "cl": SEP.join(client_ids),
                "e": _numbers(epochs),
                "p": SEP.join(payloads),
            }
            statement = (
                "INSERT INTO reports (report_id, collection_id, client_id, epoch, memo_count, payload, received_at) "
                "SELECT t.r, %(c)s, t.cl, t.e, NULL, t.p, %(now)s FROM unnest("
                f"{_T('r')}, {_T('cl')}, {_N('e', 'bigint')}, {_T('p')}) AS t(r, cl, e, p)"
            )
            if optimistic:
                self._pg(statement, columns)
                return None
            result = self._pg(
                statement + " ON CONFLICT (collection_id, epoch, report_id) DO NOTHING RETURNING epoch, report_id",
                columns,
                fetch=True,
            )
            return set(map(tuple, result))
        present = set(map(tuple, self._lite_keys("epoch, report_id", collection_id, report_ids, epochs)))
        rows: Iterable[tuple[Any, ...]] = zip(report_ids, repeat(collection_id), client_ids, epochs, repeat(None),
                                              payloads, repeat(sqlite_timestamp(now)), strict=False)  # fmt: skip
        if not present:
            self._lite_many(_LITE_INSERT_REPORT, list(rows))
            return None
        fresh = [row for row in rows if (row[3], row[0]) not in present]
        self._lite_many(_LITE_INSERT_REPORT, fresh)
        return {(row[3], row[0]) for row in fresh}

    def _lite_keys(
        self, columns: str, collection_id: str, report_ids: Sequence[str], epochs: Sequence[int]
    ) -> list[Any]:
        """SQLite: ``columns`` of the stored reports with these (epoch, report_id) keys, one
        query per epoch (a batch holds one or two)."""
        rows: list[Any] = []
        for epoch, ids in _by_epoch(report_ids, epochs).items():
            rows += self._lite(
                f"SELECT {columns} FROM reports WHERE collection_id = ? AND epoch = ? "
                "AND report_id IN (SELECT value FROM json_each(?))",
                (collection_id, epoch, json.dumps(ids)),
            )
        return rows

    def stored_bodies(
        self, collection_id: str, report_ids: Sequence[str], epochs: Sequence[int]
    ) -> dict[tuple[int, str], tuple[Any, ...]]:
        """(collection, client, epoch, memo_count, payload) of each stored report with these
        (epoch, report_id) keys in ``collection_id``, by key."""
        if not report_ids:
            return {}
        columns = "report_id, collection_id, client_id, epoch, memo_count, payload"
        if self.pg:
            result = self._pg(
                f"SELECT {', '.join('s.' + name for name in columns.split(', '))} "
                f"FROM unnest({_N('e', 'bigint')}, {_T('r')}) AS t(e, r) JOIN reports s "
                "ON s.collection_id = %(c)s AND s.epoch = t.e AND s.report_id = t.r",
                {"c": collection_id, "e": _numbers(epochs), "r": SEP.join(report_ids)},
                fetch=True,
            )
        else:
            result = self._lite_keys(columns, collection_id, report_ids, epochs)
        return {(row[3], row[0]): tuple(row[1:]) for row in result}

    def delete_reports(self, collection_id: str, report_ids: Sequence[str], epochs: Sequence[int]) -> None:
        """Remove reports inserted earlier in this transaction (refused by the budget check)."""
        if not report_ids:
            return
        if self.pg:
            self._pg(
                f"DELETE FROM reports s USING unnest({_N('e', 'bigint')}, {_T('r')}) AS t(e, r) "
                "WHERE s.collection_id = %(c)s AND s.epoch = t.e AND s.report_id = t.r",
                {"c": collection_id, "e": _numbers(epochs), "r": SEP.join(report_ids)},
            )
            return
        for epoch, ids in _by_epoch(report_ids, epochs).items():
            self._lite(
                "DELETE FROM reports WHERE collection_id = ? AND epoch = ? "
                "AND report_id IN (SELECT value FROM json_each(?))",
                (collection_id, epoch, json.dumps(ids)),
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

    def insert_new_devices(
        self, collection_id: str, clients: Sequence[str], states: Sequence[Sequence[Any]], now: datetime
    ) -> set[str] | None:
        """PostgreSQL: insert devices (``clients`` sorted, ``states`` their rows in
        :data:`STATE_FIELDS` order) that do not exist yet; returns those inserted, or None
        when all were.

        First a plain ``INSERT`` in a savepoint: when every device is new (a batch from
        first-time devices) it costs the database about a third less than ``ON CONFLICT DO
        NOTHING``. A device that exists raises a unique violation at its row (the rows go
        in client_id order, so with many known devices that comes early); the savepoint
        is rolled back and ``ON CONFLICT DO NOTHING RETURNING`` inserts the new ones. A
        device another transaction is creating is waited for; it is then not ours (it
        exists), and :meth:`lock_devices` finds it.
        """
        from psycopg.errors import UniqueViolation  # PostgreSQL only

        statement = (
            "INSERT INTO device_budgets (collection_id, client_id, units, reports, memo_count, window_index, "
            "window_units, prev_window_units, first_seen, last_seen) "
            "SELECT %(c)s, t.cl, t.u, t.r, t.m, t.wi, t.wu, t.pw, %(now)s, %(now)s "
            f"FROM unnest({_DEVICE_ARRAYS}) AS t(cl, u, r, m, wi, wu, pw)"
        )
        params = {"c": collection_id, "now": now, **self._device_arrays(clients, states)}
        with self.raw.cursor() as cursor:
            cursor.execute("SAVEPOINT new_devices")
            try:
                cursor.execute(statement, params)
            except UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT new_devices")
            else:
                cursor.execute("RELEASE SAVEPOINT new_devices")
                return None
            cursor.execute(statement + " ON CONFLICT (client_id, collection_id) DO NOTHING RETURNING client_id", params)
            return {row[0] for row in cursor.fetchall()}

    def write_devices(
        self,
        collection_id: str,
        clients: Sequence[str],
        states: Sequence[Sequence[Any]],
        existing: set[str],
        now: datetime,
    ) -> None:
        """Store devices' new state (``states`` in :data:`STATE_FIELDS` order, one per client):
        update those :meth:`lock_devices` returned (``existing``), insert the others (SQLite;
        on PostgreSQL :meth:`insert_new_devices` did)."""
        pairs = list(zip(clients, states, strict=True))
        fresh = [(cl, st) for cl, st in pairs if cl not in existing]
        known = [(cl, st) for cl, st in pairs if cl in existing]
        if self.pg:
            if fresh:  # cannot happen: a device not inserted by us existed, and devices are never deleted
                raise RuntimeError(f"devices vanished during the transaction: {[cl for cl, _ in fresh]}")
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
                    {"c": collection_id, "now": now,
                     **self._device_arrays([cl for cl, _ in known], [st for _, st in known])},
                )  # fmt: skip
            return
        stamp = sqlite_timestamp(now)
        if fresh:
            self._lite_many(
                "INSERT INTO device_budgets (collection_id, client_id, units, reports, memo_count, window_index, "
                "window_units, prev_window_units, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(collection_id, cl, *st, stamp, stamp) for cl, st in fresh],
            )
        if known:
            self._lite_many(
                "UPDATE device_budgets SET units = ?, reports = ?, memo_count = ?, window_index = ?, "
                "window_units = ?, prev_window_units = ?, last_seen = ? WHERE client_id = ? AND collection_id = ?",
                [(*st, stamp, cl, collection_id) for cl, st in known],
            )

    @staticmethod
    def _device_arrays(clients: Sequence[str], states: Sequence[Sequence[Any]]) -> dict[str, str]:
        """The state rows as one text per column: transposed by ``zip`` and joined in C (new
        devices of one accounting window share one state tuple: its values repeated)."""
        columns: list[Sequence[Any]]
        if len(set(states)) == 1:
            columns = [[value] * len(states) for value in states[0]]
        else:
            columns = list(zip(*states, strict=True)) if states else [()] * len(STATE_FIELDS)
        return {
            "cl": SEP.join(clients),
            **{name: _numbers(col) for name, col in zip(_STATE_PARAMS, columns, strict=True)},
        }

    # --- ledger -------------------------------------------------------------------------
    def lock_head(self, collection_id: str) -> tuple[int, str]:
        """The chain head (last seq, its hash), locked until commit (PostgreSQL: FOR UPDATE;
        SQLite writers already hold the database's write lock)."""
        if self.pg:
            rows = self._pg(
                "SELECT seq, head_hash FROM ledger_heads WHERE collection_id = %(c)s FOR UPDATE",
                {"c": collection_id},
                fetch=True,
            )
        else:
            rows = self._lite("SELECT seq, head_hash FROM ledger_heads WHERE collection_id = ?", (collection_id,))
        if len(rows) != 1:
            raise RuntimeError(f"collection {collection_id!r} has no ledger head")
        return int(rows[0][0]), rows[0][1]

    def append_block(
        self, collection_id: str, seq: int, count: int, now: datetime, charges: str, prev_hash: str, block_hash: str
    ) -> None:
        """Insert one ledger block and move the chain head to it (PostgreSQL: one statement)."""
        if self.pg:
            self._pg(
                "WITH block AS (INSERT INTO ledger_blocks (collection_id, seq, count, created_at, prev_hash, "
                "block_hash, charges) VALUES (%(c)s, %(s)s, %(n)s, %(now)s, %(ph)s, %(bh)s, %(ch)s)) "
                "UPDATE ledger_heads SET seq = %(s)s, head_hash = %(bh)s, updated_at = %(now)s "
                "WHERE collection_id = %(c)s",
                {"c": collection_id, "s": seq, "n": count, "now": now, "ph": prev_hash, "bh": block_hash,
                 "ch": charges},
            )  # fmt: skip
            return
        self.insert_ledger_block(collection_id, seq, count, now, charges, prev_hash, block_hash)
        self._lite(
            "UPDATE ledger_heads SET seq = ?, head_hash = ?, updated_at = ? WHERE collection_id = ?",
            (seq, block_hash, sqlite_timestamp(now), collection_id),
        )

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
