"""Tables of the continual release (migration ``0002``); the rest of the schema is in ``models``.

* ``release_streams`` — one row per collection that has released anything: where its
  release stream started, the next epoch to release, how many releases exist, and the
  release tree that noises every published statistic (``ldpserver/release_noise.py``: its
  parameters and its state; the state holds exact partial sums, so it is a server secret
  and never served). The
  row is also the lock that serialises the releases of one collection.
* ``epoch_aggregates`` — compaction: one row per released epoch with the sum of that
  epoch's ``epoch_partials`` and the cumulative sum since the stream's first epoch, so a
  release reads O(1 + windows) rows however long the collection has run (a window of w
  epochs ending at e is ``cumulative(e) − cumulative(e − w)``). Insert-only.
* ``releases`` — the immutable, numbered release log: the exact canonical JSON body that
  the API serves byte for byte, its SHA-256, the config hash, the post-processing applied,
  and the inputs' exact counts (``inputs``: internal, never served — see docs/releases.md).
  UPDATE and DELETE are refused by triggers (as for the budget ledger).
* ``dictionaries`` (migration ``0007``) — the analyst's candidate dictionary of a
  known-candidate heavy-hitter collection (``protocol: "known"``): the items as uploaded
  (zlib-compressed, one JSON value per line), their 32-bit keys (little-endian uint32, so a
  release does not re-encode 10^6 items) and the SHA-256 every release names. One row per
  collection, replaced by a new upload; releases state which dictionary they used.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ldpserver.models import Base


class ReleaseStream(Base):
    __tablename__ = "release_streams"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    first_epoch: Mapped[int] = mapped_column(BigInteger)
    next_epoch: Mapped[int] = mapped_column(BigInteger)
    releases: Mapped[int] = mapped_column(Integer)  # releases so far = the last release number
    epsilon: Mapped[float] = mapped_column(Float)  # ε_release (ledger entry)
    sensitivity: Mapped[int] = mapped_column(BigInteger)  # u: most reports of a device in one epoch
    horizon: Mapped[int] = mapped_column(BigInteger)  # epochs the release tree can publish
    unit: Mapped[str] = mapped_column(String(16))  # what is counted: "reports" or "devices"
    counter_state: Mapped[str] = mapped_column(Text)  # {"tree": VectorTree.state(), "budget": ...} JSON (secret)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EpochAggregate(Base):
    __tablename__ = "epoch_aggregates"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    partials: Mapped[int] = mapped_column(Integer)  # epoch_partials rows merged
    aggregate: Mapped[str] = mapped_column(Text)  # JSON of the epoch's merged Aggregate.to_dict()
    cumulative_n: Mapped[int] = mapped_column(BigInteger)
    cumulative: Mapped[str] = mapped_column(Text)  # JSON of the merged aggregate of first_epoch..epoch
    participation: Mapped[int] = mapped_column(BigInteger)  # the epoch's exact report count in the tree's statistics
    created_at: Mapped[datetime]


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("collection_id", "epoch"),)

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    config_hash: Mapped[str] = mapped_column(String(80))
    released_at: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))  # scheduler, admin, cli
    requested_by: Mapped[str | None] = mapped_column(String(24))  # the admin key id, if any
    postprocessing: Mapped[str] = mapped_column(String(48))
    inputs: Mapped[str] = mapped_column(Text)  # exact input counts (internal, never served)
    body: Mapped[str] = mapped_column(Text)  # canonical JSON served byte for byte
    sha256: Mapped[str] = mapped_column(String(64))


class Dictionary(Base):
    __tablename__ = "dictionaries"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(71))  # "sha256:" + hex of the items' canonical JSON
    item_count: Mapped[int] = mapped_column(Integer)
    items: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(the items, one JSON value per line)
    keys: Mapped[bytes] = mapped_column(LargeBinary)  # the items' 32-bit keys, little-endian uint32
    uploaded_at: Mapped[datetime]
    uploaded_by: Mapped[str] = mapped_column(String(24))  # the key id
