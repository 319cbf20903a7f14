"""Reports keyed by (collection, epoch, report_id): one index instead of two.

The primary key was ``report_id`` alone, with a second index on ``(collection_id,
epoch)`` for the readers. A retry carries its report's epoch (the body is resent
byte for byte), and a report outside the acceptance window is refused as
``epoch_too_old`` before deduplication, so a report_id only has to be unique within its
collection and epoch: the key ``(collection_id, epoch, report_id)`` deduplicates as
before and serves the readers, and new reports land in the live epochs' part of the
index instead of on random pages of the whole history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_reports_collection_epoch", table_name="reports")
    with op.batch_alter_table("reports", recreate="auto") as batch:
        batch.drop_constraint("pk_reports", type_="primary")
        batch.create_primary_key("pk_reports", ["collection_id", "epoch", "report_id"])


def downgrade() -> None:
    with op.batch_alter_table("reports", recreate="auto") as batch:
        batch.drop_constraint("pk_reports", type_="primary")
        batch.create_primary_key("pk_reports", ["report_id"])
    op.create_index("ix_reports_collection_epoch", "reports", ["collection_id", "epoch"])
