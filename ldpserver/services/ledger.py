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
from collections.abc import Sequence
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
