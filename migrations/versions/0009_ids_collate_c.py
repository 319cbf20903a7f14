"""PostgreSQL: the id columns of the hot tables compare bytewise (``COLLATE "C"``).

Ids are ASCII ([0-9a-f], [A-Za-z0-9_-]); under the database's default collation every
comparison in their B-trees went through the C library's ``strcoll`` (PostgreSQL 15 takes
the fast byte comparison only for the collations named ``C`` and ``POSIX``, not for
``C.UTF-8`` or ``en_US.UTF-8``). Bytewise, inserting a batch's report and device rows and
looking its devices up costs the database about 13 % less on the benchmark machine
(docs/benchmarks.md), equality is unchanged, and the order of ids is Python's ``sorted``
order, in which ingestion takes its locks. SQLite compares bytewise already.

Changing a column's collation rebuilds the indexes that hold it: on a large store this
migration holds the tables' locks while it does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, length): the ids the hot path inserts, looks up and sorts
COLUMNS = [
    ("reports", "collection_id", 40),
    ("reports", "report_id", 32),
    ("reports", "client_id", 64),
    ("device_budgets", "client_id", 64),
    ("device_budgets", "collection_id", 40),
    ("devices", "client_id", 64),
]


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    by_table: dict[str, list[str]] = {}
    for table, column, length in COLUMNS:
        by_table.setdefault(table, []).append(f'ALTER COLUMN {column} TYPE VARCHAR({length}) COLLATE "{collation}"')
    for table, changes in by_table.items():
        op.execute(f"ALTER TABLE {table} {', '.join(changes)}")


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
