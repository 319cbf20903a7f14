"""The budget ledger: append-only, hash-chained rows, one chain per collection.

Each row stores ``prev_hash`` (the previous row's hash, or the collection's genesis
hash for ``seq = 1``) and ``row_hash = SHA-256(canonical JSON of its fields)``
(:data:`HASHED_FIELDS`). ``ledger_heads`` holds each chain's last ``seq`` and hash.

**Chain formats.** A collection's chain has the format of its config version, so an auditor
recomputes every chain with a standard library and old chains still verify:

* ``ldp-ledger-v2`` (config version 2 and later): rows are RFC 8785 (JCS) canonical JSON,
  as configs and releases are (client_sdk.canonical; docs/wire.md, docs/data-model.md);
  genesis ``SHA-256("ldp-ledger-v2\n<collection id>\n<config hash>")``;
* ``ldp-ledger-v1`` (config version 1): rows are :func:`ledger_json` text (Python's
  ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, floats in
  ``repr`` form); genesis with ``ldp-ledger-v1``.

**Appends are serialised per collection**: the appender locks the collection's head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the whole write transaction already
holds the database's write lock from ``BEGIN IMMEDIATE``), numbers its rows from the
head, inserts them and moves the head, all in the ingesting transaction. Different
collections append in parallel.

**Verification** walks every chain in ``seq`` order and names the first bad row:
``hash_mismatch`` (a row's fields were modified), ``broken_link`` (its ``prev_hash`` is not
the previous row's hash: a row before it was modified or removed), ``gap`` (sequence
numbers missing: rows deleted), ``head_mismatch`` / ``truncated`` (the last rows were
removed or the head altered). An attacker who can rewrite the whole table *and* the
head can forge a consistent chain; publishing head hashes (``ldp audit verify`` prints
them) outside the database closes that.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from sqlalchemy import Connection, select, update

from ldpserver.clock import iso
from ldpserver.models import Collection, LedgerEntry, LedgerHead
from ldpserver.services.bulk import Bulk

HASHED_FIELDS = (
    "collection_id",
    "seq",
    "client_id",
    "report_id",
    "epoch",
    "window",
    "units",
    "epsilon",
    "neighbouring",
    "epsilon_record",
    "epsilon_attribute",
    "memo_count",
    "created_at",
    "prev_hash",
)

ledger_t = LedgerEntry.__table__
heads_t = LedgerHead.__table__


#: the chain format of collections created now (config version 2: RFC 8785 rows)
CURRENT_CHAIN = 2


def chain_of_config_version(version: Any) -> int:
    """Chains of config version 1 keep the ``ldp-ledger-v1`` row form; later ones are JCS."""
    return 1 if version == 1 else CURRENT_CHAIN


def genesis_hash(collection_id: str, config_hash: str, chain: int = CURRENT_CHAIN) -> str:
    return hashlib.sha256(f"ldp-ledger-v{chain}\n{collection_id}\n{config_hash}".encode()).hexdigest()


_CHAINS: dict[str, int] = {}  # collection id -> chain format (collections are immutable)


def chain_of(conn: Connection, collection_id: str) -> int:
    """The chain format of a collection, from its stored config's version (cached per process)."""
    chain = _CHAINS.get(collection_id)
    if chain is None:
        table = Collection.__table__
        config = conn.execute(select(table.c.config).where(table.c.id == collection_id)).scalar_one()
        chain = _CHAINS[collection_id] = chain_of_config_version(json.loads(config).get("version"))
    return chain


_SORTED_FIELDS = tuple(sorted(HASHED_FIELDS))


def ledger_json(obj: dict[str, Any]) -> str:
    """The ``ldp-ledger-v1`` row text: sorted keys, no whitespace, Python float repr, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_value(value: Any) -> str:
    """``json.dumps(value)`` for the ledger's field types, without its overhead."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, str) and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


_FLOAT_FIELDS = frozenset({"epsilon", "epsilon_record", "epsilon_attribute"})


_TEMPLATE = "{" + ",".join(f'"{name}":%s' for name in _SORTED_FIELDS) + "}"


def _plain(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def es_number(x: float) -> str:
    """A finite float as ECMAScript's ``Number::toString`` writes it: RFC 8785's number form."""
    if x.is_integer() and -1e21 < x < 1e21:
        return str(int(x))  # 1.0 -> "1", -0.0 -> "0"
    text = float.__repr__(x)
    # without an exponent Python's repr and ECMAScript agree (same shortest digits, fixed form)
    return text if "e" not in text else rfc8785.dumps(x).decode()


def _jcs_value(value: Any) -> str:
    return rfc8785.dumps(value).decode("utf-8")


def canonical_row(row: dict[str, Any] | Any, chain: int = CURRENT_CHAIN) -> str:
    """Canonical JSON of a row's hashed fields in the chain's format: RFC 8785 (chain 2) or
    :func:`ledger_json` (chain 1).

    Written out by hand for speed (it runs once per charge); unit tests check it against
    ``client_sdk.canonical.canonical_json`` (RFC 8785) and ``ledger_json`` on ordinary and
    unusual rows.
    """
    get = row.get if isinstance(row, dict) else row.__getattribute__
    jcs = chain >= 2
    number = es_number if jcs else float.__repr__
    other = _jcs_value if jcs else _json_value
    values = []
    for name in _SORTED_FIELDS:
        value = get(name)
        if value is None:
            values.append("null")
        elif name in _FLOAT_FIELDS:
            values.append(number(float(value)))
        elif name == "created_at" and isinstance(value, datetime):
            values.append('"' + iso(value) + '"')
        elif type(value) is int and (not jcs or -_SAFE < value < _SAFE):
            values.append(str(value))
        elif _plain(value):
            values.append('"' + value + '"')
        else:
            values.append(other(value))
    return _TEMPLATE % tuple(values)


_SAFE = 2**53  # RFC 8785 (I-JSON) integers: |n| < 2^53; beyond, rfc8785 refuses the row


def row_hash(row: dict[str, Any] | Any, chain: int = CURRENT_CHAIN) -> str:
    return hashlib.sha256(canonical_row(row, chain).encode("utf-8")).hexdigest()


_TRUSTED = (
    '{"client_id":"%s","collection_id":"%s","created_at":"%s","epoch":%d,"epsilon":%s,"epsilon_attribute":%s,'
    '"epsilon_record":%s,"memo_count":%s,"neighbouring":"%s","prev_hash":"%s","report_id":"%s","seq":%d,'
    '"units":%d,"window":%d}'
)


def _trusted_hash(row: dict[str, Any], chain: int = CURRENT_CHAIN) -> str:
    """row_hash of a row built by :func:`append` from validated values (ids match their patterns,
    created_at is already canonical text, integers far below 2^53), formatted in one step;
    equal to ``row_hash`` (tested)."""
    number = es_number if chain >= 2 else float.__repr__
    attribute = row["epsilon_attribute"]
    memo = row["memo_count"]
    text = _TRUSTED % (
        row["client_id"],
        row["collection_id"],
        row["created_at"],
        row["epoch"],
        number(float(row["epsilon"])),
        "null" if attribute is None else number(float(attribute)),
        number(float(row["epsilon_record"])),
        "null" if memo is None else str(int(memo)),
        row["neighbouring"],
        row["prev_hash"],
        row["report_id"],
        row["seq"],
        row["units"],
        row["window"],
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(conn: Connection, bulk: Bulk, collection_id: str, entries: Sequence[dict[str, Any]], now: datetime) -> None:
    """Append charges to the collection's chain (inside the caller's transaction).

    One pass per charge: its canonical text (the :data:`_TRUSTED` form: the entries hold
    validated values, see :func:`_trusted_hash`), its SHA-256 and its stored row (a tuple in
    :data:`LEDGER_ROW` order); the rows then go in one statement (COPY on PostgreSQL).
    """
    if not entries:
        return
    head = conn.execute(
        select(heads_t.c.seq, heads_t.c.head_hash).where(heads_t.c.collection_id == collection_id).with_for_update()
    ).one()
    seq, previous = head.seq, head.head_hash
    chain = chain_of(conn, collection_id)
    number = es_number if chain >= 2 else float.__repr__
    numbers: dict[float, str] = {}  # a batch charges a handful of distinct amounts
    stamp = iso(now)
    sha256 = hashlib.sha256
    rows: list[tuple[Any, ...]] = []
    for row in entries:  # the entries are the caller's fresh dicts: completed in place
        seq += 1
        eps, record, attribute, memo = (
            row["epsilon"],
            row["epsilon_record"],
            row["epsilon_attribute"],
            row["memo_count"],
        )
        eps_text = numbers.get(eps) or numbers.setdefault(eps, number(float(eps)))
        record_text = numbers.get(record) or numbers.setdefault(record, number(float(record)))
        text = _TRUSTED % (
            row["client_id"],
            collection_id,
            stamp,
            row["epoch"],
            eps_text,
            "null" if attribute is None else number(float(attribute)),
            record_text,
            "null" if memo is None else str(int(memo)),
            row["neighbouring"],
            previous,
            row["report_id"],
            seq,
            row["units"],
            row["window"],
        )
        digest = sha256(text.encode("utf-8")).hexdigest()
        row["collection_id"], row["seq"], row["prev_hash"], row["created_at"], row["row_hash"] = (
            collection_id, seq, previous, stamp, digest
        )  # fmt: skip
        rows.append(
            (seq, row["client_id"], row["report_id"], row["epoch"], row["window"], row["units"], eps,
             row["neighbouring"], record, attribute, memo, previous, digest)
        )  # fmt: skip
        previous = digest
    bulk.insert_ledger_rows(collection_id, rows, now)
    conn.execute(
        update(heads_t)
        .where(heads_t.c.collection_id == collection_id)
        .values(seq=seq, head_hash=previous, updated_at=now)
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
