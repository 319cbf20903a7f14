"""Initial schema: collections, keys, reports, epoch partials, budgets, ledger, counters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

LEDGER_GUARD_PG = """
CREATE OR REPLACE FUNCTION budget_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'budget_ledger is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(80), nullable=False),
        sa.Column("privacy", sa.Text(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("charge_epsilon", sa.Float(), nullable=False),
        sa.Column("neighbouring", sa.String(16), nullable=False),
        sa.Column("epoch_seconds", sa.BigInteger(), nullable=False),
        sa.Column("epoch_start", TS, nullable=False),
        sa.Column("grace_epochs", sa.Integer(), nullable=False),
        sa.Column("window_epochs", sa.Integer(), nullable=False),
        sa.Column("cap_window", sa.Float(), nullable=True),
        sa.Column("cap_lifetime", sa.Float(), nullable=False),
        sa.Column("memoized", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
    )
    op.create_index("ix_collections_config_hash", "collections", ["config_hash"])
    op.create_table(
        "ledger_heads",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_ledger_heads_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", name="pk_ledger_heads"),
    )
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("memo_count", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_reports"),
    )
    op.create_index("ix_reports_collection_epoch", "reports", ["collection_id", "epoch"])
    op.create_table(
        "epoch_partials",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("aggregate", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_epoch_partials"),
    )
    op.create_index("ix_epoch_partials_collection_epoch", "epoch_partials", ["collection_id", "epoch"])
    op.create_table(
        "epoch_closures",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", TS, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_epoch_closures_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", "epoch", name="pk_epoch_closures"),
    )
    op.create_table(
        "device_budgets",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.Column("memo_count", sa.Integer(), nullable=False),
        sa.Column("window_index", sa.BigInteger(), nullable=True),
        sa.Column("window_units", sa.BigInteger(), nullable=False),
        sa.Column("prev_window_units", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "collection_id", name="pk_device_budgets"),
    )
    op.create_table(
        "budget_ledger",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("neighbouring", sa.String(16), nullable=False),
        sa.Column("epsilon_record", sa.Float(), nullable=False),
        sa.Column("epsilon_attribute", sa.Float(), nullable=True),
        sa.Column("memo_count", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "seq", name="pk_budget_ledger"),
    )
    op.create_index("ix_budget_ledger_collection_client", "budget_ledger", ["collection_id", "client_id"])
    op.create_table(
        "rejection_counts",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_rejection_counts_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", "reason", name="pk_rejection_counts"),
    )

    # The ledger is append-only at the database level too (defence in depth: the hash
    # chain is what proves it; these triggers stop accidental UPDATE/DELETE).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LEDGER_GUARD_PG)
        op.execute(
            "CREATE TRIGGER budget_ledger_append_only BEFORE UPDATE OR DELETE ON budget_ledger "
            "FOR EACH ROW EXECUTE FUNCTION budget_ledger_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER budget_ledger_no_{action.lower()} BEFORE {action} ON budget_ledger "
                f"BEGIN SELECT RAISE(ABORT, 'budget_ledger is append-only ({action} refused)'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS budget_ledger_append_only ON budget_ledger")
        op.execute("DROP FUNCTION IF EXISTS budget_ledger_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS budget_ledger_no_update")
        op.execute("DROP TRIGGER IF EXISTS budget_ledger_no_delete")
    op.drop_table("rejection_counts")
    op.drop_index("ix_budget_ledger_collection_client", table_name="budget_ledger")
    op.drop_table("budget_ledger")
    op.drop_table("device_budgets")
    op.drop_table("epoch_closures")
    op.drop_index("ix_epoch_partials_collection_epoch", table_name="epoch_partials")
    op.drop_table("epoch_partials")
    op.drop_index("ix_reports_collection_epoch", table_name="reports")
    op.drop_table("reports")
    op.drop_table("ledger_heads")
    op.drop_index("ix_collections_config_hash", table_name="collections")
    op.drop_table("collections")
    op.drop_table("api_keys")
