"""Client keys count the devices they enrolled (``api_keys.devices_enrolled``).

Enrolment checked a key's cap by counting its rows in ``devices``: a scan of every device
the key ever enrolled, per enrolment request (seconds per request once a key has 10^7
devices). The count now lives on the key's row, which enrolment already locks; this
migration fills it from ``devices``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("devices_enrolled", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE api_keys SET devices_enrolled = (SELECT count(*) FROM devices WHERE devices.key_id = api_keys.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("devices_enrolled")
