"""Reports stored one row per (batch, epoch); retries recognised by their device.

``reports`` held one row per report with a key on (collection, epoch, report_id): about
310 of a report's 635 stored bytes, and a third of the database's work per report. The
reports of one batch and epoch now go into one ``report_batches`` row (three columns of
lines: report ids, client ids, canonical payloads), and the idempotency key moves to the
row ingestion locks anyway: the device's ``device_budgets`` row keeps, in ``recent``, the
reports a retry can still reach — ``epoch:report_id:digest`` entries, comma-separated,
where the digest is the first 8 hex digits of the MD5 of the canonical payload (it tells
a retry from a reused id with another body).

This migration moves every stored report into batch rows (one per collection, epoch and
reception time: the reports one batch stored), fills ``recent`` from the reports of each
collection's last ``grace_epochs + 1`` epochs that are not closed (a superset of what a
retry can reach; ingestion trims it), and drops ``reports``. Downgrade splits the rows back
(it fails if two devices used one report_id in one epoch, which ``reports``' key forbade
and this layout allows).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK = 10_000  # rows read or written per round trip
MAX_LINES = 1_000  # reports per batch row made from old rows (an upload's size)
BATCH_COLUMNS = ("collection_id", "epoch", "n", "report_ids", "client_ids", "payloads", "received_at")
REPORT_COLUMNS = ("report_id", "collection_id", "client_id", "epoch", "memo_count", "payload", "received_at")


def _digest(payload: str) -> str:
    return hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()[:8]


def _stream(conn: sa.Connection, sql: str, **params: Any) -> Iterator[Any]:
    statement = sa.text(sql).execution_options(stream_results=True, yield_per=BLOCK)  # this statement only
    result = conn.execute(statement, params)
    try:  # a server-side cursor (PostgreSQL): closed before the tables it reads are dropped
        for rows in result.partitions():
            yield from rows
    finally:
        result.close()


def _write(conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterator[dict[str, Any]]) -> None:
    """Insert ``rows`` as they were read: values pass through untyped (SQLite's stored
    timestamp text stays byte for byte what it was)."""
    insert = sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
    block: list[dict[str, Any]] = []
    for row in rows:
        block.append(row)
        if len(block) == BLOCK:
            conn.execute(insert, block)
            block = []
    if block:
        conn.execute(insert, block)


def upgrade() -> None:
    op.create_table(
        "report_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("report_ids", sa.Text(), nullable=False),
        sa.Column("client_ids", sa.Text(), nullable=False),
        sa.Column("payloads", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_batches_collection_epoch", "report_batches", ["collection_id", "epoch"])
    with op.batch_alter_table("device_budgets") as batch:
        batch.add_column(sa.Column("recent", sa.Text(), nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # lz4 where the server has it, as for ledger blocks (0006)
        has_lz4 = conn.execute(sa.text("SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' "
                                       "AND 'lz4' = ANY(enumvals)")).scalar_one()  # fmt: skip
        if has_lz4:
            for column in ("report_ids", "client_ids", "payloads"):
                op.execute(f"ALTER TABLE report_batches ALTER COLUMN {column} SET COMPRESSION lz4")

    def batch_rows() -> Iterator[dict[str, Any]]:
        stored = _stream(
            conn,
            "SELECT collection_id, epoch, received_at, report_id, client_id, payload FROM reports "
            "ORDER BY collection_id, epoch, received_at, report_id",
        )
        for (collection_id, epoch, received_at), group in groupby(stored, key=itemgetter(0, 1, 2)):
            rows = list(group)
            for start in range(0, len(rows), MAX_LINES):
                part = rows[start : start + MAX_LINES]
                yield {
                    "collection_id": collection_id,
                    "epoch": epoch,
                    "n": len(part),
                    "report_ids": "\n".join(r[3] for r in part),
                    "client_ids": "\n".join(r[4] for r in part),
                    "payloads": "\n".join(r[5] for r in part),
                    "received_at": received_at,
                }

    _write(conn, "report_batches", BATCH_COLUMNS, batch_rows())

    # each device's reports in its collection's last grace_epochs + 1 stored epochs, unless closed
    recent = _stream(
        conn,
        "SELECT r.collection_id, r.client_id, r.epoch, r.report_id, r.payload FROM reports r "
        "JOIN collections c ON c.id = r.collection_id "
        "WHERE r.epoch >= (SELECT max(m.epoch) FROM reports m WHERE m.collection_id = r.collection_id) "
        "- c.grace_epochs "
        "AND NOT EXISTS (SELECT 1 FROM epoch_closures x WHERE x.collection_id = r.collection_id "
        "AND x.epoch = r.epoch) "
        "ORDER BY r.collection_id, r.client_id, r.epoch, r.report_id",
    )
    update = sa.text("UPDATE device_budgets SET recent = :recent WHERE client_id = :cl AND collection_id = :c")
    block: list[dict[str, Any]] = []
    for (collection_id, client_id), group in groupby(recent, key=itemgetter(0, 1)):
        text = ",".join(f"{epoch}:{rid}:{_digest(payload)}" for _, _, epoch, rid, payload in group)
        block.append({"recent": text, "cl": client_id, "c": collection_id})
        if len(block) == BLOCK:
            conn.execute(update, block)
            block = []
    if block:
        conn.execute(update, block)
    op.drop_table("reports")


def downgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("memo_count", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "epoch", "report_id", name="pk_reports"),
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # as migration 0009 left them
        for column, length in (("report_id", 32), ("collection_id", 40), ("client_id", 64)):
            op.execute(f'ALTER TABLE reports ALTER COLUMN {column} TYPE VARCHAR({length}) COLLATE "C"')

    def report_rows() -> Iterator[dict[str, Any]]:
        stored = _stream(
            conn, "SELECT collection_id, epoch, received_at, report_ids, client_ids, payloads FROM report_batches"
        )
        for collection_id, epoch, received_at, report_ids, client_ids, payloads in stored:
            for rid, cl, payload in zip(
                report_ids.split("\n"), client_ids.split("\n"), payloads.split("\n"), strict=True
            ):
                yield {
                    "report_id": rid,
                    "collection_id": collection_id,
                    "client_id": cl,
                    "epoch": epoch,
                    "memo_count": None,
                    "payload": payload,
                    "received_at": received_at,
                }

    _write(conn, "reports", REPORT_COLUMNS, report_rows())
    op.drop_table("report_batches")
    with op.batch_alter_table("device_budgets") as batch:
        batch.drop_column("recent")
