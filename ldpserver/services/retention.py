"""Retention of raw reports.

Raw reports are kept (heavy-hitter candidates are evaluated from them later) for
``LDP_REPORT_RETENTION_DAYS``. A report is purged only when it is older than that **and**
its epoch is outside the acceptance window (before ``current - grace``): its report_id
no longer needs to be remembered, because a retry of it would be refused as
``epoch_too_old`` before deduplication. Epoch aggregates and the ledger are kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from ldpserver.db import write_transaction
from ldpserver.models import ReportBatch
from ldpserver.services.collections import CollectionCache

batches_t = ReportBatch.__table__


def purge_reports(engine: Engine, retention_days: int, now: datetime, *, dry_run: bool = False) -> dict[str, int]:
    cutoff = now - timedelta(days=retention_days)
    cache = CollectionCache(engine)
    counts: dict[str, int] = {}
    for collection in cache.list():
        oldest_open = collection.epoch_at(now) - collection.grace_epochs
        where = (
            batches_t.c.collection_id == collection.id,
            batches_t.c.received_at < cutoff,
            batches_t.c.epoch < oldest_open,
        )
        with write_transaction(engine) as conn:  # rows of a batch's reports: counted by their n
            n = conn.execute(select(func.coalesce(func.sum(batches_t.c.n), 0)).where(*where)).scalar_one()
            if not dry_run:
                conn.execute(delete(batches_t).where(*where))
        if n:
            counts[collection.id] = int(n)
    return counts
