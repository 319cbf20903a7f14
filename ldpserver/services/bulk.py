"""Bulk statements of the ingestion hot path, written per database on the raw driver.

A batch writes about 1,000 rows into each of three tables; building and parsing
1,000-row ``VALUES`` lists (what an ORM or ``insertmanyvalues`` does) cost more than
executing them, so:

* **PostgreSQL**: each statement is one short SQL text whose rows travel as one
  delimited text per column, split and typed server-side (``string_to_array`` + ``unnest``)
  — no per-element adaptation in Python; and inside :meth:`Bulk.pipeline` (libpq's
  pipeline mode) statements whose answer is not needed yet are sent without waiting for
  it, so a batch's transaction costs a handful of round trips, not one per statement;
* **SQLite**: ``executemany`` of a prepared statement (a C loop in the driver), and
  ``json_each`` for "which of these ids exist". SQLite writers hold the database lock
  from ``BEGIN IMMEDIATE``, so a look-up followed by an insert cannot race.

Every method runs inside the caller's transaction (the SQLAlchemy connection's driver
connection); the lock order is documented in ``services/ingest.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    recent: str | None  # services/device_budgets.py


DEVICE_FIELDS = DeviceRow._fields
#: the columns of a device_budgets row as the inserts list them
DEVICE_COLUMNS = (
    "(collection_id, client_id, units, reports, memo_count, window_index, window_units, prev_window_units, "
    "recent, first_seen, last_seen)"
)
#: a device's budget state without its client id and recent reports: what ingestion plans
STATE_FIELDS = DEVICE_FIELDS[1:-1]
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


_STATE_TYPES = ("bigint", "bigint", "integer", "bigint", "bigint", "bigint")  # STATE_FIELDS' SQL types


def _device_rows(
    clients: Sequence[str], states: Sequence[Sequence[Any]], recents: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: the ``SELECT`` of device rows to insert (``%(c)s`` and ``%(now)s`` left to
    the caller) and its parameters. Client ids and ``recent`` texts travel as one delimited
    text each ("" is a NULL ``recent``); the state columns too — transposed by ``zip``,
    joined in C — unless every device has the same state (new devices of one accounting
    window share one tuple), which then travels once, as scalars: the server need not split
    and cast six 1,000-element arrays."""
    params: dict[str, Any] = {"cl": SEP.join(clients), "rc": SEP.join(recents)}
    typed = list(zip(_STATE_PARAMS, _STATE_TYPES, strict=True))
    if states and len(set(states)) == 1:
        params.update(zip(_STATE_PARAMS, states[0], strict=True))
        state = ", ".join(f"%({name})s::{sql_type}" for name, sql_type in typed)
        return (
            f"SELECT %(c)s, t.cl, {state}, t.rc, %(now)s, %(now)s "
            f"FROM unnest({_T('cl')}, string_to_array(%(rc)s, chr(31), '')) AS t(cl, rc)",
            params,
        )
    columns = list(zip(*states, strict=True)) if states else [()] * len(STATE_FIELDS)
    params.update((name, _numbers(col)) for name, col in zip(_STATE_PARAMS, columns, strict=True))
    arrays = ", ".join([_T("cl"), *(_N(name, sql_type) for name, sql_type in typed)])
    return (
        "SELECT %(c)s, t.cl, t.u, t.r, t.m, t.wi, t.wu, t.pw, t.rc, %(now)s, %(now)s "
        f"FROM unnest({arrays}, string_to_array(%(rc)s, chr(31), '')) AS t(cl, u, r, m, wi, wu, pw, rc)",
        params,
    )


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
        self._pipeline: Any = None

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """PostgreSQL: run the enclosed statements in pipeline mode — each is sent at once and
        its answer read when a result is fetched, at :meth:`_flush`, or on leaving (which waits
        for all of them); an error surfaces there, the statements queued after it are not run,
        and it propagates as outside a pipeline. SQLite: nothing to save (in process)."""
        if not self.pg:
            yield
            return
        # no statement is prepared server-side in the pipeline: the driver records a statement as
        # prepared when it sends it, and one queued after a failed statement is skipped by the
        # server, so the connection would keep naming a statement that does not exist (each
        # statement runs once per batch: preparing saved little)
        threshold, self.raw.prepare_threshold = self.raw.prepare_threshold, None
        try:
            with self.raw.pipeline() as pipeline:
                self._pipeline = pipeline
                yield
        finally:
            self._pipeline = None
            self.raw.prepare_threshold = threshold

    def _flush(self) -> None:
        """Inside :meth:`pipeline`: wait for the answers of what was sent (raising its error)."""
        if self._pipeline is not None:
            self._pipeline.sync()

    def _resync(self) -> None:
        """Inside :meth:`pipeline`, after an error: the driver may raise it at any later call
        (it reads answers as they come), and the statements queued after the failed one
        come back "aborted" until a sync point: read up to a sync, so that the next
        statement (a ``ROLLBACK TO SAVEPOINT``) runs."""
        if self._pipeline is None:
            return
        from psycopg import errors  # PostgreSQL only

        for _ in range(3):  # the aborted answers, then the sync itself
            try:
                self._pipeline.sync()
                return
            except errors.PipelineAborted:
                continue

    # --- drivers ------------------------------------------------------------------------
    def _pg(self, sql: str, params: dict[str, Any], fetch: bool = False) -> list[Any]:
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else []

    def _pg_rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement per row; a single row (a batch of one epoch: the common case) by
        ``execute``, without ``executemany``'s pipeline."""
        with self.raw.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)

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
            self._pg_rows(
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
    def insert_report_batches(
        self, collection_id: str, rows: Sequence[tuple[int, int, str, str, str]], now: datetime
    ) -> None:
        """One ``report_batches`` row per (epoch, n, report ids, client ids, payloads): the
        batch's accepted reports of that epoch, each column one text of lines."""
        if self.pg:
            self._pg_rows(
                "INSERT INTO report_batches (collection_id, epoch, n, report_ids, client_ids, payloads, "
                "received_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(collection_id, *row, now) for row in rows],
            )
            return
        stamp = sqlite_timestamp(now)
        self._lite_many(
            "INSERT INTO report_batches (collection_id, epoch, n, report_ids, client_ids, payloads, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(collection_id, *row, stamp) for row in rows],
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
                "SELECT client_id, units, reports, memo_count, window_index, window_units, prev_window_units, recent "
                f"FROM device_budgets WHERE client_id = ANY({_T('cl')}) AND collection_id = %(c)s "
                "ORDER BY client_id FOR UPDATE",
                {"c": collection_id, "cl": SEP.join(clients)},
                fetch=True,
            )
        else:
            rows = self._lite(
                "SELECT client_id, units, reports, memo_count, window_index, window_units, prev_window_units, recent "
                "FROM device_budgets WHERE client_id IN (SELECT value FROM json_each(?)) AND collection_id = ?",
                (json.dumps(list(clients)), collection_id),
            )
        return {row[0]: DeviceRow(*row) for row in rows}

    def insert_new_devices(
        self,
        collection_id: str,
        clients: Sequence[str],
        states: Sequence[Sequence[Any]],
        recents: Sequence[str],
        now: datetime,
    ) -> set[str] | None:
        """Insert devices (``clients`` sorted, ``states`` their rows in :data:`STATE_FIELDS`
        order, ``recents`` their ``recent`` texts, "" for none) that do not exist yet;
        returns those inserted, or None when all were.

        First a plain ``INSERT`` in a savepoint: when every device is new (a batch from
        first-time devices) that is all — on PostgreSQL it costs about a third less than
        ``ON CONFLICT DO NOTHING``, on SQLite it spares the look-up. A device that exists
        raises a unique violation at its row (the rows go in client_id order, so with many
        known devices that comes early); the savepoint is rolled back and only the new ones
        are inserted: PostgreSQL by ``ON CONFLICT DO NOTHING RETURNING`` (a device another
        transaction is creating is waited for; it is then not ours, it exists, and
        :meth:`lock_devices` finds it), SQLite after a look-up (its writers are serialised).
        """
        if not self.pg:
            stamp = sqlite_timestamp(now)
            triples = zip(clients, states, recents, strict=True)
            return self._insert_new_devices_lite(
                [(collection_id, cl, *st, rc or None, stamp, stamp) for cl, st, rc in triples]
            )
        from psycopg.errors import UniqueViolation  # PostgreSQL only

        rows, columns = _device_rows(clients, states, recents)
        statement = f"INSERT INTO device_budgets {DEVICE_COLUMNS} {rows}"
        params = {"c": collection_id, "now": now, **columns}
        with self.raw.cursor() as cursor:
            cursor.execute("SAVEPOINT new_devices")
            try:
                cursor.execute(statement, params)
                cursor.execute("RELEASE SAVEPOINT new_devices")
                self._flush()  # in a pipeline, the violation surfaces here at the latest
            except UniqueViolation:
                self._resync()
                cursor.execute("ROLLBACK TO SAVEPOINT new_devices")
            else:
                return None
            cursor.execute(statement + " ON CONFLICT (client_id, collection_id) DO NOTHING RETURNING client_id", params)
            return {row[0] for row in cursor.fetchall()}

    _LITE_INSERT_DEVICE = f"INSERT INTO device_budgets {DEVICE_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    def _insert_new_devices_lite(self, rows: list[tuple[Any, ...]]) -> set[str] | None:
        """SQLite's :meth:`insert_new_devices`, of the rows in :data:`DEVICE_COLUMNS` order."""
        self._lite("SAVEPOINT new_devices")
        try:
            self._lite_many(self._LITE_INSERT_DEVICE, rows)
        except sqlite3.IntegrityError:  # a device exists: undo the rows inserted before it
            self._lite("ROLLBACK TO SAVEPOINT new_devices")
            self._lite("RELEASE SAVEPOINT new_devices")
        else:
            self._lite("RELEASE SAVEPOINT new_devices")
            return None
        existing = set(self.lock_devices(rows[0][0], [row[1] for row in rows]))
        created = [row for row in rows if row[1] not in existing]
        self._lite_many(self._LITE_INSERT_DEVICE, created)
        return {row[1] for row in created}

    def update_devices(
        self,
        collection_id: str,
        clients: Sequence[str],
        states: Sequence[Sequence[Any]],
        recents: Sequence[str],
        now: datetime,
    ) -> None:
        """Store the new state of existing devices (locked by :meth:`lock_devices`): ``states``
        in :data:`STATE_FIELDS` order and ``recents``, one per client."""
        if not clients:
            return
        if self.pg:
            # an upsert whose every row conflicts: one primary-key probe per device (an
            # UPDATE ... FROM unnest(...) is planned as a hash join over the whole table)
            rows, columns = _device_rows(clients, states, recents)
            self._pg(
                f"INSERT INTO device_budgets AS d {DEVICE_COLUMNS} {rows} "
                "ON CONFLICT (client_id, collection_id) DO UPDATE SET units = EXCLUDED.units, "
                "reports = EXCLUDED.reports, memo_count = EXCLUDED.memo_count, "
                "window_index = EXCLUDED.window_index, window_units = EXCLUDED.window_units, "
                "prev_window_units = EXCLUDED.prev_window_units, recent = EXCLUDED.recent, "
                "last_seen = EXCLUDED.last_seen",
                {"c": collection_id, "now": now, **columns},
            )
            return
        stamp = sqlite_timestamp(now)
        self._lite_many(
            "UPDATE device_budgets SET units = ?, reports = ?, memo_count = ?, window_index = ?, "
            "window_units = ?, prev_window_units = ?, recent = ?, last_seen = ? "
            "WHERE client_id = ? AND collection_id = ?",
            [(*st, rc or None, stamp, cl, collection_id) for cl, st, rc in zip(clients, states, recents, strict=True)],
        )

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
