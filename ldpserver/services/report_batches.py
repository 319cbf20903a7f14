"""Reading the stored raw reports: ``report_batches`` rows, each the accepted reports of
one upload and epoch as three texts of lines (docs/data-model.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Connection, func, select

from ldpserver.models import ReportBatch

batches_t = ReportBatch.__table__


class StoredReport(NamedTuple):
    report_id: str
    client_id: str
    epoch: int
    payload: str  # canonical JSON


def stored_reports(conn: Connection, collection_id: str, epoch: int | None = None) -> Iterator[StoredReport]:
    """The collection's stored reports (of ``epoch`` only, if given), batch row by batch row."""
    query = select(batches_t.c.epoch, batches_t.c.report_ids, batches_t.c.client_ids, batches_t.c.payloads).where(
        batches_t.c.collection_id == collection_id
    )
    if epoch is not None:
        query = query.where(batches_t.c.epoch == epoch)
    for row_epoch, report_ids, client_ids, payloads in conn.execute(query.order_by(batches_t.c.id)):
        for rid, cl, payload in zip(report_ids.split("\n"), client_ids.split("\n"), payloads.split("\n"), strict=True):
            yield StoredReport(rid, cl, row_epoch, payload)


def stored_count(conn: Connection, collection_id: str) -> int:
    """How many reports the collection has stored (the rows' ``n``, no text read)."""
    total = conn.execute(
        select(func.coalesce(func.sum(batches_t.c.n), 0)).where(batches_t.c.collection_id == collection_id)
    ).scalar_one()
    return int(total)
