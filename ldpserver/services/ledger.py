"""The budget ledger: append-only and hash-chained, one chain per collection.

**Blocks.** Each appending transaction (an ingested batch, a release stream's charge) adds
**one block** holding all of its charges: a ``ledger_blocks`` row with the chain number of
its last charge (``seq``; it holds charges ``seq - count + 1 .. seq``), ``count``,
``created_at``, ``prev_hash`` (the hash before it), ``block_hash`` and ``charges``: one line
per charge, the RFC 8785 JSON array of its :data:`CHARGE_FIELDS` values, each line ending
in ``\n``. ``block_hash = SHA-256(header + "\n" + charges)``, the header being the RFC 8785
JSON of ``{collection_id, count, created_at, prev_hash, seq}`` (:func:`block_header`). The
stored ``charges`` text *is* the hashed text, so verification hashes it as it is, and an
auditor rebuilds it from the exported per-charge rows (docs/data-model.md). One row and
one index entry per batch instead of per charge; one SHA-256 over the batch.

**Rows of their own** (``budget_ledger``): chains written before blocks hold one row per
charge, ``row_hash = SHA-256(canonical JSON of its fields)`` (:data:`HASHED_FIELDS`), in the
chain format of the collection's config version, so old chains still verify:

* ``ldp-ledger-v2`` (config version 2 and later): rows are RFC 8785 (JCS) canonical JSON,
  as configs and releases are (client_sdk.canonical; docs/wire.md, docs/data-model.md);
  genesis ``SHA-256("ldp-ledger-v2\n<collection id>\n<config hash>")``;
* ``ldp-ledger-v1`` (config version 1): rows are :func:`ledger_json` text (Python's
  ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, floats in
  ``repr`` form); genesis with ``ldp-ledger-v1``.

A chain's blocks continue where its rows end (the first block links to the last row's
hash); the genesis hash keeps the format of the collection's config version.
``ledger_heads`` holds each chain's last ``seq`` and hash.

**Appends are serialised per collection**: the appender locks the collection's head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the whole write transaction already
holds the database's write lock from ``BEGIN IMMEDIATE``), numbers its charges from the
head, inserts the block and moves the head, all in the ingesting transaction. Different
collections append in parallel.

**Verification** (``services/ledger_verify.py``) walks every chain in ``seq`` order and
names the first bad row or block: ``hash_mismatch`` (its fields were modified),
``broken_link`` (its ``prev_hash`` is not the previous hash: something before it was
modified or removed), ``gap`` (charges missing), ``head_mismatch`` / ``truncated`` (the last
rows or blocks were removed or the head altered). An attacker who can rewrite the whole
table *and* the head can forge a consistent chain; publishing head hashes (``ldp audit
verify`` prints them) outside the database closes that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import rfc8785
from sqlalchemy import Connection, select

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
    """A string of printable ASCII without ``"`` or ``\\``: JSON writes it as it is."""
    return isinstance(value, str) and value.isascii() and not value.encode("ascii").translate(None, _PLAIN_BYTES)


_PLAIN_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


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


# --- ledger blocks: one chained block per appending transaction ----------------------------
#: the order of a charge's values in its block line (a JSON array)
CHARGE_FIELDS = (
    "client_id",
    "report_id",
    "epoch",
    "window",
    "units",
    "epsilon",
    "epsilon_record",
    "epsilon_attribute",
    "memo_count",
    "neighbouring",
)

_LINE = '["%s","%s",%d,%d,%d,%s,%s,%s,%s,"%s"]\n'
_HEADER = '{"collection_id":%s,"count":%d,"created_at":"%s","prev_hash":"%s","seq":%d}'


def block_header(collection_id: str, seq: int, count: int, created_at: str, prev_hash: str) -> str:
    """The block's header line: RFC 8785 JSON of {collection_id, count, created_at, prev_hash,
    seq} (``seq``: the chain number of the block's last charge; it holds ``seq-count+1..seq``)."""
    return _HEADER % (_jcs_value(collection_id), count, created_at, prev_hash, seq)


def charge_line(charge: dict[str, Any] | Sequence[Any]) -> str:
    """One charge's line: the RFC 8785 JSON array of its :data:`CHARGE_FIELDS` values, then ``\n``
    (the general form; :func:`append` formats validated values in one step, equal to this)."""
    values = [charge[name] for name in CHARGE_FIELDS] if isinstance(charge, dict) else list(charge)
    for i in (5, 6, 7):  # the charges are floats: 1.0 is written 1, as ECMAScript does
        if values[i] is not None:
            values[i] = float(values[i])
    return _jcs_value(values) + "\n"


def block_hash(header: str, charges: str) -> str:
    """SHA-256 (hex) of the block's text: its header line, ``\n``, then its charge lines."""
    digest = hashlib.sha256(header.encode("utf-8"))
    digest.update(b"\n")
    digest.update(charges.encode("utf-8"))
    return digest.hexdigest()


def _charge_values(entry: dict[str, Any] | Sequence[Any]) -> tuple[Any, ...]:
    return tuple(entry[name] for name in CHARGE_FIELDS) if isinstance(entry, dict) else tuple(entry)


_TAIL = ',%d,%d,%d,%s,%s,%s,%s,"%s"]\n'  # epoch, window, units, the three charges, memo_count, neighbouring
_HEAD = '["%s"%s'  # client_id","report_id (joined), then the tail
_TAIL_OF = itemgetter(slice(2, None))
_INTS = {int}
_TUPLE = {tuple}
_MEMOS = {int, type(None)}


def _number(value: Any) -> str:
    return "null" if value is None else es_number(float(value))


def charge_lines(entries: Sequence[dict[str, Any] | Sequence[Any]]) -> str:
    """The charge lines of a block. ``entries``: dicts of :data:`CHARGE_FIELDS`, or their values
    in that order (what ingestion passes). When every string is a plain id and every integer
    a true ``int`` (what ingestion validates), the batch is formatted column-wise: each
    distinct tail (epoch … neighbouring; a batch has a handful) once, then one ``%`` per
    charge, mapped in C; anything else line by line through :func:`charge_line`. Both give
    the same text (tested)."""
    rows = entries if set(map(type, entries)) == _TUPLE else [_charge_values(entry) for entry in entries]
    if not rows:
        return ""
    columns = list(zip(*rows, strict=True))
    try:
        plain = _plain("".join(columns[0]) + "".join(columns[1]) + "".join(columns[9]))
    except TypeError:  # a value that is not a string
        plain = False
    if (
        not plain
        or not set(map(type, columns[2])) | set(map(type, columns[3])) | set(map(type, columns[4])) <= _INTS
        or not set(map(type, columns[8])) <= _MEMOS
    ):
        return "".join(map(charge_line, rows))
    keys = list(map(_TAIL_OF, rows))
    tails = {
        tail: _TAIL % (*tail[:3], _number(tail[3]), _number(tail[4]), _number(tail[5]), "null" if tail[6] is None
                       else str(tail[6]), tail[7])
        for tail in set(keys)
    }  # fmt: skip
    heads = map('","'.join, zip(columns[0], columns[1], strict=True))  # client_id","report_id
    if len(tails) == 1:  # one tail for every line (a batch of one window): the text is one join
        (tail,) = tails.values()
        return '["' + ('"' + tail + '["').join(heads) + '"' + tail
    return "".join(map(_HEAD.__mod__, zip(heads, map(tails.__getitem__, keys), strict=True)))


def append(
    bulk: Bulk,
    collection_id: str,
    entries: Sequence[dict[str, Any] | Sequence[Any]],
    now: datetime,
    lines: str | None = None,
) -> None:
    """Append charges to the collection's chain as **one block** (inside the caller's transaction).
    ``entries``: dicts of :data:`CHARGE_FIELDS`, or tuples of their values in that order.

    The block numbers its charges from the locked head (``head.seq + 1 ..``), links to the
    head's hash, and is stored as one ``ledger_blocks`` row whose ``charges`` text is the
    hashed text itself (docs/data-model.md); the head then moves to the block.
    """
    if not entries:
        return
    # formatted before the head's lock (it serialises the collection's batches); ``lines``: the
    # caller's charge_lines(entries), formatted before the transaction
    charges = charge_lines(entries) if lines is None else lines
    head_seq, head_hash = bulk.lock_head(collection_id)
    count = len(entries)
    seq = head_seq + count
    digest = block_hash(block_header(collection_id, seq, count, iso(now), head_hash), charges)
    bulk.append_block(collection_id, seq, count, now, charges, head_hash, digest)
