"""Continual release: release streams (participation counter), compacted epoch aggregates, releases.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

RELEASES_GUARD_PG = """
CREATE OR REPLACE FUNCTION releases_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'releases are immutable (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "release_streams",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("first_epoch", sa.BigInteger(), nullable=False),
        sa.Column("next_epoch", sa.BigInteger(), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("sensitivity", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("counter_state", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_release_streams_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", name="pk_release_streams"),
    )
    op.create_table(
        "epoch_aggregates",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("partials", sa.Integer(), nullable=False),
        sa.Column("aggregate", sa.Text(), nullable=False),
        sa.Column("cumulative_n", sa.BigInteger(), nullable=False),
        sa.Column("cumulative", sa.Text(), nullable=False),
        sa.Column("participation", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_epoch_aggregates_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", "epoch", name="pk_epoch_aggregates"),
    )
    op.create_table(
        "releases",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("config_hash", sa.String(80), nullable=False),
        sa.Column("released_at", TS, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(24), nullable=True),
        sa.Column("postprocessing", sa.String(48), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name="fk_releases_collection_id_collections"),
        sa.PrimaryKeyConstraint("collection_id", "number", name="pk_releases"),
        sa.UniqueConstraint("collection_id", "epoch", name="uq_releases_collection_id_epoch"),
    )

    # Published releases never change (defence in depth, as for the budget ledger).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RELEASES_GUARD_PG)
        op.execute(
            "CREATE TRIGGER releases_immutable BEFORE UPDATE OR DELETE ON releases "
            "FOR EACH ROW EXECUTE FUNCTION releases_immutable()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER releases_no_{action.lower()} BEFORE {action} ON releases "
                f"BEGIN SELECT RAISE(ABORT, 'releases are immutable ({action} refused)'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS releases_immutable ON releases")
        op.execute("DROP FUNCTION IF EXISTS releases_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS releases_no_update")
        op.execute("DROP TRIGGER IF EXISTS releases_no_delete")
    op.drop_table("releases")
    op.drop_table("epoch_aggregates")
    op.drop_table("release_streams")
