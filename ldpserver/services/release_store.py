"""The release store: the read phase of a release (one snapshot, no locks) and its single
write transaction (optimistic concurrency on the stream row).

Read (:func:`read_inputs`): the stream row (first epoch, next epoch, the release tree's
state), the epoch's partial aggregates merged (compaction), cumulative = previous cumulative
+ epoch, window(w) = cumulative(e) − cumulative(e − w) (O(1) rows per window however long the
collection has run), the memoized statistics, and the raw reports kinds such as heavy
hitters need.

Write (:func:`write`): lock the stream row, check that nobody released in the meantime
(else :class:`LostRace`), insert the compacted ``epoch_aggregates`` row, create or advance
the stream (the first release also appends ε_release to the ledger), insert the
``releases`` row. Nothing is written before that one commit, so a crash leaves either
nothing or a complete release.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from client_sdk.canonical import canonical_json
from ldpserver import release_noise
from ldpserver.clock import iso
from ldpserver.db import read_transaction, write_transaction
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS
from ldpserver.models import EpochPartial
from ldpserver.models_release import EpochAggregate, Release, ReleaseStream
from ldpserver.services import ledger
from ldpserver.services.bulk import Bulk
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.dictionaries import load_dictionary
from ldpserver.services.release_compute import STREAM_CLIENT_ID, Plan, ReleaseInputs, Scope
from ldpserver.services.release_policy import Policy, first_epoch, max_epochs_per_device, sdk_of
from ldpserver.services.release_raw import load_raw_reports
from ldpserver.services.report_batches import stored_reports

STREAM_REPORT_ID = "release-budget"
STREAM_NEIGHBOURING = "device-epoch"

streams_t = ReleaseStream.__table__
aggregates_t = EpochAggregate.__table__
releases_t = Release.__table__
partials_t = EpochPartial.__table__


class LostRace(Exception):
    """Another process released this epoch between our read and write phases."""


def checkpoint(stage: str) -> None:
    """Fault-injection point of the write phase (tests raise here to simulate a crash)."""


def stream_row(conn: Connection, collection_id: str, lock: bool = False) -> Any:
    query = select(streams_t).where(streams_t.c.collection_id == collection_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def release_row(conn: Connection, collection_id: str, *, epoch: int | None = None, number: int | None = None) -> Any:
    query = select(releases_t).where(releases_t.c.collection_id == collection_id)
    if epoch is not None:
        query = query.where(releases_t.c.epoch == epoch)
    if number is not None:
        query = query.where(releases_t.c.number == number)
    return conn.execute(query).first()


def summary(row: Any) -> dict[str, Any]:
    return {
        "number": int(row.number),
        "epoch": int(row.epoch),
        "released_at": iso(row.released_at),
        "sha256": row.sha256,
        "config_hash": row.config_hash,
        "trigger": row.trigger,
        "postprocessing": row.postprocessing,
        "url": f"/v1/collections/{row.collection_id}/releases/{int(row.number)}",
    }


# --- aggregates: the kind's SDK aggregate, stored as sorted compact JSON -----------------------


def aggregate_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def json_form(data: dict[str, Any]) -> dict[str, Any]:
    """An aggregate's ``to_dict()`` as stored JSON reads back (tuples become lists)."""
    return json.loads(json.dumps(data))


def _empty(c: CollectionRuntime) -> Any:
    return ADAPTERS[c.kind].aggregate_from_dict(json_form(sdk_of(c).empty_aggregate().to_dict()))


def _stored(c: CollectionRuntime, text: str) -> Any:
    return ADAPTERS[c.kind].aggregate_from_dict(json.loads(text))


def _cumulative_at(conn: Connection, c: CollectionRuntime, epoch: int) -> Any:
    text = conn.execute(
        select(aggregates_t.c.cumulative).where(aggregates_t.c.collection_id == c.id, aggregates_t.c.epoch == epoch)
    ).scalar_one()
    return _stored(c, text)


def first_report_per_device(conn: Connection, c: CollectionRuntime, epoch: int) -> dict[str, Any]:
    """Memoized collections: the epoch's statistics from each device's first report of the
    epoch (lowest report_id), so one device adds at most one report (u = 1) however many
    free re-reports it sent."""
    first: dict[str, tuple[str, str]] = {}  # client -> (lowest report_id, its payload)
    for report in stored_reports(conn, c.id, epoch):
        seen = first.get(report.client_id)
        if seen is None or report.report_id < seen[0]:
            first[report.client_id] = (report.report_id, report.payload)
    payloads = [json.loads(text) for _, (_, text) in sorted(first.items())]
    sdk = sdk_of(c)
    if not payloads:
        return json_form(sdk.empty_aggregate().to_dict())
    return json_form(sdk.aggregate(payloads).to_dict())


def read_inputs(
    engine: Engine, c: CollectionRuntime, epoch: int, policy: Policy, noise: release_noise.VectorNoise
) -> ReleaseInputs:
    """Everything the release of ``epoch`` (the stream's next one) is computed from."""
    budget = policy.budget
    with read_transaction(engine) as conn:
        stream = stream_row(conn, c.id)
        first = int(stream.first_epoch) if stream is not None else first_epoch(c)
        expected = int(stream.next_epoch) if stream is not None else first
        if epoch < expected:
            raise LostRace  # released meanwhile
        if epoch > expected:
            raise RuntimeError(f"epoch {epoch} is not the stream's next epoch {expected}")
        if stream is not None:
            state = json.loads(stream.counter_state)
            if "tree" not in state:  # a participation counter of the code before central DP on releases
                raise ProblemError(
                    "conflict",
                    "this collection's release stream predates central DP on releases (it kept only a "
                    "participation counter, not the noisy statistics its later scopes need); it cannot be "
                    "continued: create a new collection",
                )
            tree = release_noise.VectorTree.from_state(state["tree"], noise=noise)
            number = int(stream.releases) + 1
            # the horizon is fixed at the first release, whatever the server setting says now
            budget = dataclasses.replace(budget, horizon=tree.horizon)
        else:
            keep = max([1, *policy.windows])
            tree = release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, keep=keep, noise=noise)
            number = 1

        # compaction: the epoch's partial aggregates, merged
        total = _empty(c)
        partials = 0
        for row in conn.execute(
            select(partials_t.c.aggregate)
            .where(partials_t.c.collection_id == c.id, partials_t.c.epoch == epoch)
            .order_by(partials_t.c.id)
        ):
            total = total + _stored(c, row.aggregate)
            partials += 1
        epoch_sum = total.to_dict()

        cumulative = total + _cumulative_at(conn, c, epoch - 1) if epoch > first else total
        cumulative_sum = cumulative.to_dict()

        scopes = [Scope("epoch", 1, epoch, epoch, True, epoch_sum)]
        if policy.cumulative:
            scopes.append(Scope("cumulative", None, first, epoch, True, cumulative_sum))
        for w in policy.windows:
            start = max(first, epoch - w + 1)
            window = cumulative - _cumulative_at(conn, c, start - 1) if start > first else cumulative
            scopes.append(Scope("window", w, start, epoch, epoch - w + 1 >= first, window.to_dict()))

        # the statistics the release tree is given (exact; noised in the tree)
        statistics = first_report_per_device(conn, c, epoch) if c.memoized else epoch_sum

        raw = None
        if ADAPTERS[c.kind].needs_raw_reports:
            discovered = [s for s in scopes if s.name != "cumulative"]
            low = min(s.start for s in discovered)
            # the largest scope's report count sizes the decoded columns (one allocation)
            raw = load_raw_reports(conn, c, low, epoch, max(int(s.data["n"]) for s in discovered))
        takes_dictionary = c.protocol is not None and ADAPTERS[c.kind].takes_dictionary(c.protocol.protocol)
        dictionary = load_dictionary(conn, c) if takes_dictionary else None
    return ReleaseInputs(
        epoch=epoch,
        number=number,
        stream_releases=None if stream is None else int(stream.releases),
        first=first,
        tree=tree,
        budget=budget,
        partials=partials,
        epoch_sum=epoch_sum,
        cumulative=cumulative_sum,
        scopes=scopes,
        statistics=statistics,
        raw=raw,
        dictionary=dictionary,
    )


def write(
    engine: Engine, c: CollectionRuntime, plan: Plan, now: datetime, trigger: str, requested_by: str | None
) -> None:
    """The release's single write transaction (raises :class:`LostRace` if someone else won)."""
    inputs = plan.inputs
    with write_transaction(engine) as conn:
        stream = stream_row(conn, c.id, lock=True)
        if (stream is None) != (inputs.stream_releases is None) or (
            stream is not None and int(stream.releases) != inputs.stream_releases
        ):
            raise LostRace
        conn.execute(
            aggregates_t.insert().values(
                collection_id=c.id,
                epoch=inputs.epoch,
                n=int(inputs.epoch_sum["n"]),
                partials=inputs.partials,
                aggregate=aggregate_json(inputs.epoch_sum),
                cumulative_n=int(inputs.cumulative["n"]),
                cumulative=aggregate_json(inputs.cumulative),
                participation=plan.participation,
                created_at=now,
            )
        )
        checkpoint("compacted")
        state = json.dumps(
            {"tree": inputs.tree.state(), "budget": plan.policy.budget.statement(max_epochs_per_device(c))},
            separators=(",", ":"),
            sort_keys=True,
        )
        if stream is None:
            conn.execute(
                streams_t.insert().values(
                    collection_id=c.id,
                    first_epoch=inputs.first,
                    next_epoch=inputs.epoch + 1,
                    releases=inputs.number,
                    epsilon=plan.policy.epsilon,
                    sensitivity=plan.policy.budget.reports_per_device_epoch,
                    horizon=inputs.tree.horizon,
                    unit="devices" if c.memoized else "reports",
                    counter_state=state,
                    created_at=now,
                    updated_at=now,
                )
            )
            # the release stream's budget, recorded once in the collection's ledger
            ledger.append(
                Bulk(conn),
                c.id,
                [
                    {
                        "client_id": STREAM_CLIENT_ID,
                        "report_id": STREAM_REPORT_ID,
                        "epoch": inputs.first,
                        "window": c.window_of(inputs.first),
                        "units": 0,
                        "epsilon": plan.policy.epsilon,
                        "neighbouring": STREAM_NEIGHBOURING,
                        "epsilon_record": plan.policy.epsilon,
                        "epsilon_attribute": None,
                        "memo_count": None,
                    }
                ],
                now,
            )
        else:
            conn.execute(
                update(streams_t)
                .where(streams_t.c.collection_id == c.id)
                .values(next_epoch=inputs.epoch + 1, releases=inputs.number, counter_state=state, updated_at=now)
            )
        checkpoint("counted")
        conn.execute(
            releases_t.insert().values(
                collection_id=c.id,
                number=inputs.number,
                epoch=inputs.epoch,
                config_hash=c.config_hash,
                released_at=now,
                trigger=trigger,
                requested_by=requested_by,
                postprocessing=plan.postprocessing,
                inputs=canonical_json(plan.summary),
                body=plan.body,
                sha256=plan.sha256,
            )
        )
        checkpoint("released")
