"""SQLAlchemy 2 typed models: the schema (created only through Alembic migrations).

Tables and why they look the way they do (docs/data-model.md has the full picture):

* ``collections`` — immutable measurement definitions (canonical config + hash).
* ``api_keys`` — hashed keys with one role each, optional collection scope and
  enrolment limits (client keys).
* ``devices`` — enrolled devices: server-chosen ``client_id``, hashed device secret, the
  client key that enrolled it (``services/devices.py``).
* ``enrolment_windows`` — fixed-window enrolment counters (per key, per key and source
  address) when no Redis is configured; rows live for one window.
* ``report_batches`` — accepted raw reports, one row per (batch, epoch) holding the
  batch's reports as columns of lines: no row or index entry per report. A retry is
  recognised by its device (``device_budgets.recent``), whose row the batch locks anyway.
* ``epoch_partials`` — insert-only partial aggregates, one row per (batch, epoch): no hot
  row; readers add the partials of an epoch (they merge by addition).
* ``epoch_closures`` — epochs that no longer accept reports (released or closed).
* ``device_budgets`` — per-device lifetime and per-window totals, locked per row, and the
  device's recent report ids (the idempotency key of its reports).
* ``ledger_blocks`` — the append-only, hash-chained ledger (chain per collection): one
  block per appending transaction holding all its charges.
* ``budget_ledger`` — ledger rows of one charge each, as chains were written before blocks
  (read and verified, no longer appended to).
* ``ledger_heads`` — each chain's head (sequence number and hash), the lock that
  serialises appends to one collection's chain.
* ``rejection_counts`` — rejected reports per (collection, reason).

The four hot tables written by every batch (``report_batches``, ``epoch_partials``,
``device_budgets``, ``ledger_blocks``) carry ``collection_id`` without a foreign key:
PostgreSQL checks a foreign key once per inserted row (a ``SELECT ... FOR KEY SHARE`` of
the collection row: thousands per batch, all on one parent row), which cost about a
quarter of the database time of a batch. Collections are never deleted and ingestion
resolves the collection before writing, so the reference cannot dangle.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes INTEGER PRIMARY KEY an auto-increment rowid alias
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}
    # every model is a plain mapped table, so its __table__ is a Table (insert/update/delete)
    __table__: ClassVar[Table]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    collections: Mapped[str | None] = mapped_column(Text)  # JSON list of collection ids; NULL: every collection
    max_devices: Mapped[int | None] = mapped_column(BigInteger)  # client keys: enrolment cap (NULL: server default)
    enrol_per_hour: Mapped[int | None] = mapped_column(BigInteger)  # per key (NULL: server default)
    enrol_per_address_hour: Mapped[int | None] = mapped_column(BigInteger)  # per key and source address
    # devices this key enrolled: the cap check reads it (counting them was a scan per request)
    devices_enrolled: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Device(Base):
    """An enrolled device: pseudonymous (no address, no person), bound to one client key."""

    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_key_id_enrolled_day", "key_id", "enrolled_day"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the device secret
    key_id: Mapped[str] = mapped_column(String(24))  # the client key that enrolled it
    enrolled_day: Mapped[str] = mapped_column(String(10))  # UTC date: all the time we keep


class EnrolmentWindow(Base):
    """Enrolments counted in one fixed window (database-backed limiter, no Redis)."""

    __tablename__ = "enrolment_windows"

    scope: Mapped[str] = mapped_column(String(96), primary_key=True)  # "key:<id>" or "addr:<id>:<digest>"
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[str] = mapped_column(Text)  # canonical JSON of the public config
    config_hash: Mapped[str] = mapped_column(String(80), index=True)
    privacy: Mapped[str] = mapped_column(Text)  # JSON: calculator, computed loss, parameters
    epsilon: Mapped[float] = mapped_column(Float)  # declared epsilon per report
    charge_epsilon: Mapped[float] = mapped_column(Float)  # epsilon of one ledger unit
    neighbouring: Mapped[str] = mapped_column(String(16))
    epoch_seconds: Mapped[int] = mapped_column(BigInteger)
    epoch_start: Mapped[datetime]
    grace_epochs: Mapped[int] = mapped_column(Integer)
    window_epochs: Mapped[int] = mapped_column(Integer)
    cap_window: Mapped[float | None] = mapped_column(Float)
    cap_lifetime: Mapped[float] = mapped_column(Float)
    memoized: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(24))


class LedgerHead(Base):
    __tablename__ = "ledger_heads"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class ReportBatch(Base):
    """The reports one batch stored for one epoch, as one row (docs/data-model.md, "Reports"):
    three columns of the accepted reports in request order, each one text of lines. A
    report is deduplicated through its device's ``device_budgets.recent``, not by a key here."""

    __tablename__ = "report_batches"
    __table_args__ = (Index("ix_report_batches_collection_epoch", "collection_id", "epoch"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(40))  # no FK on hot tables: see module docstring
    epoch: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)  # reports in the row
    report_ids: Mapped[str] = mapped_column(Text)  # one 32-hex id per line
    client_ids: Mapped[str] = mapped_column(Text)  # the reports' devices, line by line
    payloads: Mapped[str] = mapped_column(Text)  # canonical JSON of each wire payload, line by line
    received_at: Mapped[datetime]


class EpochPartial(Base):
    __tablename__ = "epoch_partials"
    __table_args__ = (Index("ix_epoch_partials_collection_epoch", "collection_id", "epoch"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(40))
    epoch: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)
    aggregate: Mapped[str] = mapped_column(Text)  # JSON of the SDK's Aggregate.to_dict()
    created_at: Mapped[datetime]


class EpochClosure(Base):
    __tablename__ = "epoch_closures"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    closed_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(32), default="released")


class DeviceBudget(Base):
    __tablename__ = "device_budgets"
    # client_id leads the key: a batch looks up ~1,000 devices of one collection by client_id
    __table_args__ = (PrimaryKeyConstraint("client_id", "collection_id", name="pk_device_budgets"),)

    collection_id: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(BigInteger, default=0)  # lifetime charge, in charge_epsilon units
    reports: Mapped[int] = mapped_column(BigInteger, default=0)  # accepted reports
    memo_count: Mapped[int] = mapped_column(Integer, default=0)
    window_index: Mapped[int | None] = mapped_column(BigInteger)  # latest accounting window charged
    window_units: Mapped[int] = mapped_column(BigInteger, default=0)  # units in window_index
    prev_window_units: Mapped[int] = mapped_column(BigInteger, default=0)  # units in window_index - 1
    # the device's accepted reports that a retry can still reach (epochs not yet past the
    # grace window): "epoch:report_id:digest" entries, comma-separated (services/device_budgets.py)
    recent: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class LedgerEntry(Base):
    __tablename__ = "budget_ledger"
    __table_args__ = (Index("ix_budget_ledger_collection_client", "collection_id", "client_id"),)

    collection_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    report_id: Mapped[str] = mapped_column(String(32))
    epoch: Mapped[int] = mapped_column(BigInteger)
    window: Mapped[int] = mapped_column(BigInteger)
    units: Mapped[int] = mapped_column(Integer)
    epsilon: Mapped[float] = mapped_column(Float)  # charged, under the collection's notion
    neighbouring: Mapped[str] = mapped_column(String(16))
    epsilon_record: Mapped[float] = mapped_column(Float)  # what the same charge costs at record/tuple level
    epsilon_attribute: Mapped[float | None] = mapped_column(Float)  # attribute-level cost (multidim only)
    memo_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class LedgerBlock(Base):
    """One block of a collection's ledger chain: every charge one transaction appended.

    ``seq`` is the chain number of the block's last charge (it holds ``seq - count + 1 .. seq``);
    ``charges`` is the hashed text of its charges, one JSON array per line
    (``services/ledger.py``, docs/data-model.md). Only the primary key is indexed.
    """

    __tablename__ = "ledger_blocks"

    collection_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    block_hash: Mapped[str] = mapped_column(String(64))
    charges: Mapped[str] = mapped_column(Text)


class RejectionCount(Base):
    __tablename__ = "rejection_counts"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(48), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime]
