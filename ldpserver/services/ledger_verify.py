"""Verifying the budget ledger's hash chains: stream a collection's chain in ``seq`` order from
one snapshot — its per-charge rows (``budget_ledger``, chains written before blocks), then its
blocks (``ledger_blocks``) — recompute every hash and link, and name the first bad row or
block. The chain's format (what is hashed, and how) is in :mod:`ldpserver.services.ledger` and
docs/data-model.md; a walk can stop at a deadline and resume from where it stopped.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ldpserver.clock import iso
from ldpserver.models import Collection
from ldpserver.services.ledger import (
    _SAFE,
    _SORTED_FIELDS,
    _TRUSTED,
    block_hash,
    block_header,
    chain_of,
    es_number,
    genesis_hash,
    heads_t,
    row_hash,
)


@dataclass
class ChainReport:
    collection_id: str
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    first_bad: dict[str, Any] | None
    #: False when a time budget ran out first: rows ``from_seq..`` were checked and the walk
    #: resumes at ``next_seq`` with ``next_prev_hash`` (the hash of row ``next_seq - 1``)
    complete: bool = True
    from_seq: int = 1
    next_seq: int = 1
    next_prev_hash: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection_id": self.collection_id,
            "ok": self.ok,
            "rows": self.rows,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_bad": self.first_bad,
            "complete": self.complete,
            "from_seq": self.from_seq,
        }


#: the columns a verification reads, in the canonical (sorted) order of the hashed fields
def _verify_sql(pg: bool) -> str:
    # PostgreSQL hands created_at over as its canonical text (no datetime built per row)
    created = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""" if pg else "created_at"
    names = {"window": '"window"', "created_at": created}
    return (
        "SELECT "
        + ", ".join(names.get(name, name) for name in _SORTED_FIELDS)
        + ", row_hash FROM budget_ledger WHERE collection_id = {p} AND seq >= {p} ORDER BY seq"
    ).replace("{p}", "%s" if pg else "?")


_STREAM_ROWS = 20_000  # rows per round trip of the PostgreSQL server-side cursor
_CHECK_EVERY = 4096  # rows between two looks at the clock


def _stream_rows(conn: Connection, collection_id: str, from_seq: int) -> Iterator[tuple[Any, ...]]:
    """The chain's rows from ``from_seq`` on, in ``seq`` order, as tuples (:data:`_SORTED_FIELDS`,
    then ``row_hash``), in constant memory: a server-side cursor on PostgreSQL (``created_at``
    as its canonical text), the driver's cursor on SQLite (``created_at`` as SQLAlchemy's
    stored text)."""
    raw: Any = conn.connection.dbapi_connection  # psycopg (named cursor) or sqlite3
    if conn.dialect.name == "postgresql":
        with raw.cursor(name=f"ldp_verify_{secrets.token_hex(4)}") as cursor:
            cursor.itersize = _STREAM_ROWS
            cursor.execute(_verify_sql(True), (collection_id, from_seq))
            yield from cursor
        return
    cursor = raw.cursor()
    try:
        cursor.execute(_verify_sql(False), (collection_id, from_seq))
        while chunk := cursor.fetchmany(_STREAM_ROWS):
            yield from chunk
    finally:
        cursor.close()


_STREAM_BLOCKS = 64  # blocks per round trip (a block of 1,000 charges is about 110 kB)


def _stream_blocks(conn: Connection, collection_id: str, from_seq: int) -> Iterator[tuple[Any, ...]]:
    """The chain's blocks ending at or after ``from_seq``, in ``seq`` order, as tuples (seq, count,
    created_at, prev_hash, block_hash, charges), in constant memory (``created_at`` as on
    :func:`_stream_rows`)."""
    raw: Any = conn.connection.dbapi_connection
    pg = conn.dialect.name == "postgresql"
    created = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""" if pg else "created_at"
    sql = (
        f"SELECT seq, count, {created}, prev_hash, block_hash, charges FROM ledger_blocks "
        "WHERE collection_id = {p} AND seq >= {p} ORDER BY seq"
    ).replace("{p}", "%s" if pg else "?")
    if pg:
        with raw.cursor(name=f"ldp_verify_{secrets.token_hex(4)}") as cursor:
            cursor.itersize = _STREAM_BLOCKS
            cursor.execute(sql, (collection_id, from_seq))
            yield from cursor
        return
    cursor = raw.cursor()
    try:
        cursor.execute(sql, (collection_id, from_seq))
        while chunk := cursor.fetchmany(_STREAM_BLOCKS):
            yield from chunk
    finally:
        cursor.close()


def _block_problem(block: Sequence[Any], collection_id: str, expected_seq: int, expected_prev: str) -> dict | None:
    """What is wrong with one stored block, given the chain up to it (None: nothing)."""
    seq, count, created, prev, stored, charges = block
    first = seq - count + 1 if type(seq) is int and type(count) is int else None
    if first is None or count < 1 or first < expected_seq:
        return {"seq": seq, "problem": "hash_mismatch", "detail": f"block {seq}'s count does not fit the chain"}
    if first != expected_seq:
        return {"seq": first, "problem": "gap", "detail": f"charges {expected_seq}..{first - 1} are missing"}
    if prev != expected_prev:
        return {
            "seq": first,
            "problem": "broken_link",
            "detail": f"block {seq}'s prev_hash does not match charge {first - 1}'s hash "
            "(the block before it was altered or removed)",
        }
    try:
        created_text = _created_text(created)
        matches = (
            isinstance(charges, str)
            and charges.count("\n") == count
            and charges.endswith("\n")
            and block_hash(block_header(collection_id, seq, count, created_text, prev), charges) == stored
        )
    except (TypeError, ValueError, OverflowError):  # a value of the wrong type: the block was modified
        matches = False
    if not matches:
        return {
            "seq": first,
            "problem": "hash_mismatch",
            "detail": f"block {seq}'s charges do not match its hash (the block was modified)",
        }
    return None


_CREATED = _SORTED_FIELDS.index("created_at")


def _stored_hash(values: Sequence[Any], created_text: str, chain: int) -> str:
    """row_hash of a stored row (``values`` in :data:`_SORTED_FIELDS` order, created_at already
    canonical text): formatted in one step when every value has its ordinary form (plain
    strings, integers below 2^53), else through the general :func:`canonical_row`; both give
    the same text (a float where an integer belongs, e.g. a tampered ``epoch = 5.5``, takes the
    general path, so it is never rounded into the original text)."""
    client, collection, _, epoch, eps, attribute, record, memo, neighbouring, prev, report, seq, units, window = values[
        :14
    ]
    text = client + collection + created_text + neighbouring + prev + report if type(client) is str else ""
    if (
        type(collection) is type(neighbouring) is type(prev) is type(report) is str
        and text.isascii()
        and text.isprintable()
        and '"' not in text
        and "\\" not in text
        and type(epoch) is type(seq) is type(units) is type(window) is int
        and (memo is None or type(memo) is int)
        and -_SAFE < min(epoch, seq, units, window, memo or 0)
        and max(epoch, seq, units, window, memo or 0) < _SAFE
    ):
        number = es_number if chain >= 2 else float.__repr__
        text = _TRUSTED % (
            client,
            collection,
            created_text,
            epoch,
            number(float(eps)),
            "null" if attribute is None else number(float(attribute)),
            number(float(record)),
            "null" if memo is None else str(memo),
            neighbouring,
            prev,
            report,
            seq,
            units,
            window,
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    fields = dict(zip(_SORTED_FIELDS, values, strict=False))
    fields["created_at"] = created_text
    return row_hash(fields, chain)


def _created_text(value: Any) -> str:
    """The canonical text of a stored created_at (an aware datetime on PostgreSQL, SQLAlchemy's
    naive UTC text on SQLite)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return iso(value)


def verify_chain(
    conn: Connection,
    collection_id: str,
    config_hash: str,
    *,
    resume: tuple[int, str] | None = None,
    deadline: float | None = None,
) -> ChainReport:
    """Walk one chain in ``seq`` order from the genesis (or from ``resume`` = (seq, hash of the
    row before it), a point an earlier call returned) and name the first bad row.

    Constant memory (rows are streamed); ``deadline`` (``time.monotonic()``) bounds the time:
    past it the report is ``complete = False`` with the point to resume from. Run it in one
    snapshot (:func:`snapshot`) so that the head and the rows agree while batches append.
    """
    started = time.monotonic()
    chain = chain_of(conn, collection_id)
    head = conn.execute(
        select(heads_t.c.seq, heads_t.c.head_hash).where(heads_t.c.collection_id == collection_id)
    ).first()
    if head is None:
        return ChainReport(
            collection_id,
            False,
            0,
            0,
            "",
            {"seq": 0, "problem": "missing_head", "detail": "the collection has no ledger head row"},
        )
    expected_seq, expected_prev = resume if resume is not None else (1, genesis_hash(collection_id, config_hash, chain))
    from_seq = expected_seq
    count = 0
    first_bad: dict[str, Any] | None = None
    last_created: Any = object()
    created_text = ""
    for values in _stream_rows(conn, collection_id, from_seq):
        count += 1
        seq, stored_prev, stored_hash = values[11], values[9], values[14]
        if seq != expected_seq:
            first_bad = {
                "seq": seq,
                "problem": "gap",
                "detail": f"rows {expected_seq}..{seq - 1} are missing before row {seq}",
            }
            break
        if stored_prev != expected_prev:
            first_bad = {
                "seq": seq,
                "problem": "broken_link",
                "detail": f"row {seq}'s prev_hash does not match row {seq - 1}'s hash "
                "(the previous row was altered or removed)",
            }
            break
        created = values[_CREATED]
        if created != last_created:  # a batch's rows share one timestamp
            try:
                created_text = _created_text(created)
            except (TypeError, ValueError):
                created_text = ""  # not a timestamp: the row was modified
            last_created = created
        try:
            matches = bool(created_text) and _stored_hash(values, created_text, chain) == stored_hash
        except (TypeError, ValueError, OverflowError):  # a value of the wrong type: the row was modified
            matches = False
        if not matches:
            first_bad = {
                "seq": seq,
                "problem": "hash_mismatch",
                "detail": f"row {seq}'s fields do not match its hash (the row was modified)",
            }
            break
        expected_prev = stored_hash
        expected_seq = seq + 1
        if deadline is not None and count % _CHECK_EVERY == 0 and time.monotonic() > deadline and seq < head.seq:
            return ChainReport(
                collection_id, True, count, head.seq, head.head_hash, None, False, from_seq, expected_seq,
                expected_prev, time.monotonic() - started,
            )  # fmt: skip
    if first_bad is None:
        for block in _stream_blocks(conn, collection_id, expected_seq):
            first_bad = _block_problem(block, collection_id, expected_seq, expected_prev)
            if first_bad is not None:
                break
            count += block[1]
            expected_seq, expected_prev = block[0] + 1, block[4]
            if deadline is not None and time.monotonic() > deadline and block[0] < head.seq:
                return ChainReport(
                    collection_id, True, count, head.seq, head.head_hash, None, False, from_seq, expected_seq,
                    expected_prev, time.monotonic() - started,
                )  # fmt: skip
    if first_bad is None:
        if expected_seq - 1 != head.seq:
            last = expected_seq - 1
            problem = "truncated" if last < head.seq else "head_mismatch"
            first_bad = {
                "seq": last + 1 if last < head.seq else head.seq,
                "problem": problem,
                "detail": f"the head says {head.seq} rows but the chain ends at row {last}",
            }
        elif head.head_hash != expected_prev:
            first_bad = {
                "seq": head.seq,
                "problem": "head_mismatch",
                "detail": f"the head hash does not match row {head.seq}'s hash (the last row or the head was altered)",
            }
    return ChainReport(
        collection_id, first_bad is None, count, head.seq, head.head_hash, first_bad, True, from_seq, expected_seq,
        expected_prev, time.monotonic() - started,
    )  # fmt: skip


def snapshot(conn: Connection) -> None:
    """Make the caller's (fresh) read transaction one snapshot: on PostgreSQL REPEATABLE READ,
    so a chain's head and rows agree while batches keep appending (SQLite's read transaction
    already is one snapshot in WAL mode). Call before any other statement."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def verify_all(
    conn: Connection,
    collection_id: str | None = None,
    *,
    resume: tuple[str, int, str] | None = None,
    deadline: float | None = None,
) -> tuple[list[ChainReport], tuple[str, int, str] | None]:
    """Verify every chain (or one) in collection id order; returns the reports and, when the
    ``deadline`` came first, where to resume: (collection id, seq, hash of the row before;
    seq 0 = from the genesis). ``resume`` continues such a walk."""
    table = Collection.__table__
    query = select(table.c.id, table.c.config_hash).order_by(table.c.id)
    if collection_id is not None:
        query = query.where(table.c.id == collection_id)
    if resume is not None:
        query = query.where(table.c.id >= resume[0])
    reports: list[ChainReport] = []
    for row in conn.execute(query).all():
        if deadline is not None and reports and time.monotonic() > deadline:
            return reports, (row.id, 0, "")
        point = None
        if resume is not None and row.id == resume[0] and resume[1] > 0:
            point = (resume[1], resume[2])
        report = verify_chain(conn, row.id, row.config_hash, resume=point, deadline=deadline)
        reports.append(report)
        if not report.complete:
            return reports, (row.id, report.next_seq, report.next_prev_hash)
    return reports, None
