"""Epochs: the acceptance window and closing an epoch.

**Acceptance rule.** With ``current = floor((now - start) / epoch_seconds)``, a report for
epoch ``e`` is accepted iff ``current - grace <= e <= current`` and ``e`` is not closed.
Future epochs are refused (``epoch_in_future``), older ones too (``epoch_too_old``).

**Closing an epoch** (on release, or on request) must not race with a batch that is
being ingested into it. Ingestion holds a *share* lock on the collection row for its
whole transaction (PostgreSQL ``SELECT ... FOR SHARE``; SQLite writers are serialised
by ``BEGIN IMMEDIATE``); :func:`close_epoch` takes the *exclusive* lock (``FOR UPDATE``)
before recording the closure. So the closure waits for in-flight batches to commit,
and every batch that starts after it sees the epoch closed: once ``close_epoch``
returns, the epoch's partial aggregates are final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from ldpserver.db import write_transaction
from ldpserver.models import Collection, EpochClosure

collections_t = Collection.__table__
closures_t = EpochClosure.__table__


def close_epoch(engine: Engine, collection_id: str, epoch: int, now: datetime, reason: str = "released") -> bool:
    """Close ``epoch`` to uploads; False if it was already closed. Waits for in-flight batches."""
    with write_transaction(engine) as conn:
        found = conn.execute(
            select(collections_t.c.id).where(collections_t.c.id == collection_id).with_for_update()
        ).first()
        if found is None:
            raise LookupError(f"no collection {collection_id!r}")
        exists = conn.execute(
            select(closures_t.c.epoch).where(closures_t.c.collection_id == collection_id, closures_t.c.epoch == epoch)
        ).first()
        if exists is not None:
            return False
        conn.execute(closures_t.insert().values(collection_id=collection_id, epoch=epoch, closed_at=now, reason=reason))
    return True
