"""Known-candidate dictionaries: one analyst-supplied dictionary per collection of the
heavy-hitter protocol ``known`` (items, their keys, the SHA-256 releases name).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dictionaries",
        sa.Column("collection_id", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(71), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("items", sa.LargeBinary(), nullable=False),
        sa.Column("keys", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(24), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_dictionaries_collection_id_collections"
        ),
        sa.PrimaryKeyConstraint("collection_id", name="pk_dictionaries"),
    )


def downgrade() -> None:
    op.drop_table("dictionaries")
