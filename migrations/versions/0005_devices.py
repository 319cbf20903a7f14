"""Device enrolment: devices (server-chosen id, hashed secret, enrolling key), key scope and
enrolment limits, database-backed enrolment counters.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("collections", sa.Text(), nullable=True))
        batch.add_column(sa.Column("max_devices", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("enrol_per_hour", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("enrol_per_address_hour", sa.BigInteger(), nullable=True))
    op.create_table(
        "devices",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("enrolled_day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_devices"),
    )
    op.create_index("ix_devices_key_id_enrolled_day", "devices", ["key_id", "enrolled_day"])
    op.create_table(
        "enrolment_windows",
        sa.Column("scope", sa.String(96), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "window_start", name="pk_enrolment_windows"),
    )


def downgrade() -> None:
    op.drop_table("enrolment_windows")
    op.drop_index("ix_devices_key_id_enrolled_day", table_name="devices")
    op.drop_table("devices")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("enrol_per_address_hour")
        batch.drop_column("enrol_per_hour")
        batch.drop_column("max_devices")
        batch.drop_column("collections")
