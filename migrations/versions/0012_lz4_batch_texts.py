"""PostgreSQL: the per-batch texts are compressed with LZ4 instead of pglz.

A batch's ``report_batches`` texts (report ids, client ids, payloads) and its ledger block's
``charges`` are tens of kB each, so PostgreSQL compresses them (TOAST) inside the ingest
transaction. pglz cost about 3 ms of the database's CPU per batch of 1,000 reports (a quarter
of its work per report); LZ4 does the same in about 0.7 ms and stores no more bytes
(docs/benchmarks.md). Values already stored keep their compression; PostgreSQL reads both.

A server built without LZ4 keeps pglz (the migration notes it and carries on). SQLite does
not compress: nothing to do.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> its per-batch text columns
BATCH_TEXTS = {"report_batches": ("report_ids", "client_ids", "payloads"), "ledger_blocks": ("charges",)}


def _set_compression(method: str) -> str:
    statements = "".join(
        f"ALTER TABLE {table} "
        + ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in columns)
        + ";"
        for table, columns in BATCH_TEXTS.items()
    )
    # 0A000: "compression method lz4 not supported" (a server built without LZ4)
    return (
        f"DO $$ BEGIN {statements} "
        f"EXCEPTION WHEN feature_not_supported THEN RAISE NOTICE 'LZ4 is not built in: pglz kept'; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_set_compression("lz4"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_set_compression("pglz"))
