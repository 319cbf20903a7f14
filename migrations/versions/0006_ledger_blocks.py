"""Ledger blocks: one hash-chained block per appending transaction instead of one row per charge.

Chains continue where their ``budget_ledger`` rows end (those rows stay and still verify);
every later append writes one ``ledger_blocks`` row holding all of its charges. The table
is append-only like ``budget_ledger`` (triggers refuse UPDATE and DELETE).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD_PG = """
CREATE OR REPLACE FUNCTION ledger_blocks_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_blocks is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


LZ4_AVAILABLE = (
    "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))"
)


def upgrade() -> None:
    op.create_table(
        "ledger_blocks",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("block_hash", sa.String(64), nullable=False),
        sa.Column("charges", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "seq", name="pk_ledger_blocks"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # lz4 TOAST compression where the server has it (PostgreSQL >= 14 built with lz4): a
        # block's ~110 kB of charges compress to the same size as with the default pglz, in
        # about a third of the time (bench/bench_ingest.py, docs/data-model.md)
        if op.get_bind().exec_driver_sql(LZ4_AVAILABLE).scalar():
            op.execute("ALTER TABLE ledger_blocks ALTER COLUMN charges SET COMPRESSION lz4")
        op.execute(GUARD_PG)
        op.execute(
            "CREATE TRIGGER ledger_blocks_append_only BEFORE UPDATE OR DELETE ON ledger_blocks "
            "FOR EACH ROW EXECUTE FUNCTION ledger_blocks_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_blocks_no_{action.lower()} BEFORE {action} ON ledger_blocks "
                f"BEGIN SELECT RAISE(ABORT, 'ledger_blocks is append-only ({action} refused)'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_blocks_append_only ON ledger_blocks")
        op.execute("DROP FUNCTION IF EXISTS ledger_blocks_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_blocks_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_blocks_no_delete")
    op.drop_table("ledger_blocks")
