"""Continual release: close an epoch, compact it, publish an immutable numbered release.

A collection's **release stream** starts at ``first = max(0, epoch_at(created_at) − grace)``
(the oldest epoch that could ever receive a report) and releases its epochs **in order**,
one release per epoch (numbered 1, 2, ... per collection). Epoch ``e`` is *due* once
``current > e + grace``: no upload for it can be accepted any more. The scheduler
(``ldp scheduler``) releases due epochs; an admin (``POST /v1/collections/{id}/releases``,
``ldp release``) may also release a past epoch still in its grace period, or — with
``force`` — the current one; both close every earlier unreleased epoch too, in order.

**Releasing epoch e** (:func:`release_epoch`):

1. ``close_epoch`` (``services/epochs.py``) in its own short transaction: it waits for the
   batches in flight and, once committed, ingestion rejects late reports for ``e`` with
   ``epoch_closed``. This is the late-report rule: after the release starts, nothing can
   change the epoch's inputs.
2. Read phase (no locks): the epoch's ``epoch_partials``, the previous epoch's compacted
   row (for the cumulative sum), the compacted rows at the windows' left edges, the
   release tree's state; heavy hitters also read the raw reports of the widest window.
3. Compute: the epoch's merged aggregate (compaction), cumulative = previous cumulative +
   epoch, window(w) = cumulative(e) − cumulative(e − w) (O(1) rows per window however
   long the collection has run) — exact, internal; the release tree's next step (OpenDP
   noise on the epoch's statistics vector); every scope's noisy statistics and estimates;
   the canonical JSON body and its SHA-256.
4. Write phase, **one transaction**: lock the stream row, check that nobody released in
   the meantime (else the work is discarded and the existing release returned), insert
   the compacted ``epoch_aggregates`` row, create or advance the stream (the first
   release also appends ε_release to the ledger), insert the ``releases`` row.

A crash anywhere leaves either nothing or a complete release: steps 2–4 write nothing
until the single commit, and a closed-but-unreleased epoch (crash after step 1) is simply
released by the next attempt (resumable). Noise drawn by a failed attempt was never
published, so drawing it again costs nothing. Re-requesting a released epoch returns the
existing release (idempotent).

**Scopes** of the release of epoch ``e`` (each with a 95 % interval, raw and
post-processed): ``epoch`` (e alone), ``cumulative`` (first..e, if the policy asks for it)
and ``window`` w for every configured length w > 1 (``max(first, e−w+1)..e``;
``complete: false`` while fewer than w epochs exist; w = 1 is the epoch scope). A scope
whose noisy report count is below ``min_reports`` is **withheld**: no estimates,
``status: "withheld"`` and the reason (the threshold, never the count).

**Central DP for release readers** (``ldpserver/release_noise.py``): exact aggregates
reveal each scope's report count (through the plug-in variance, or the rationals C/n),
so every published number — participation, withheld decisions, estimates, variances,
intervals, heavy hitters and per-party figures — is computed from statistics that carry
OpenDP discrete Gaussian noise: the per-epoch statistics vectors feed a binary tree whose
nodes are noised once; a scope reads the noisy nodes covering its epochs. The guarantee,
(ε_release, δ) per device-epoch from the hashed config, is stated in docs/privacy.md and
docs/releases.md.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from client_sdk.canonical import canonical_json
from ldpserver import metrics, release_noise
from ldpserver.clock import iso
from ldpserver.db import read_transaction, write_transaction
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS, KindAdapter
from ldpserver.models import EpochPartial, Report
from ldpserver.models_release import EpochAggregate, Release, ReleaseStream
from ldpserver.release_stats import CI_LEVEL, ScopeInputs, Withheld, noisy_scope
from ldpserver.services import ledger
from ldpserver.services.bulk import Bulk
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.epochs import close_epoch

log = structlog.get_logger("ldpserver.releases")

FORMAT = "ldp-release/1"
#: the ledger entry that records ε_release (device ids cannot contain ':')
STREAM_CLIENT_ID = "_stream:release"
STREAM_REPORT_ID = "release-budget"
STREAM_NEIGHBOURING = "device-epoch"
ATTEMPTS = 3

streams_t = ReleaseStream.__table__
aggregates_t = EpochAggregate.__table__
releases_t = Release.__table__
partials_t = EpochPartial.__table__
reports_t = Report.__table__


class ReleaseSettings(BaseSettings):
    """Server-wide defaults of the release tree's horizon (a collection's config may
    override it with ``release.horizon``; ε_release and δ are in the hashed config)."""

    model_config = SettingsConfigDict(env_prefix="LDP_RELEASE_", extra="ignore", frozen=True)

    horizon: int = Field(default=release_noise.DEFAULT_HORIZON, ge=2, le=1 << 30)


_noise: release_noise.VectorNoise | None = None


def noise_source() -> release_noise.VectorNoise:
    """OpenDP's discrete Gaussian sampler (one per process)."""
    global _noise
    if _noise is None:
        _noise = release_noise.OpenDPDiscreteGaussian()
    return _noise


def _checkpoint(stage: str) -> None:
    """Fault-injection point of the write phase (tests raise here to simulate a crash)."""


# --- the collection's release policy ------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    windows: tuple[int, ...]  # window lengths > 1 (1 is the epoch scope)
    cumulative: bool
    min_reports: int
    budget: release_noise.ReleaseBudget

    @property
    def epsilon(self) -> float:
        return self.budget.epsilon

    @property
    def horizon(self) -> int:
        return self.budget.horizon


def reports_per_device_epoch(memoized: bool, units_lifetime: int, units_window: int | None) -> int:
    """u: the most reports of one device counted in one epoch's statistics.

    Every accepted report of a non-memoized collection costs one budget unit, so a device
    has at most ``min(lifetime units, units per accounting window)`` reports in an epoch.
    Memoized collections charge only new memos (re-reports are free and unbounded), so
    their epoch statistics count one report per device (its first of the epoch): u = 1.
    """
    if memoized:
        return 1
    units = units_lifetime if units_window is None else min(units_lifetime, units_window)
    return max(1, int(units))


def max_epochs_per_device(c: CollectionRuntime) -> int | None:
    """How many epochs one device can report in (None: unbounded, memoized collections)."""
    return None if c.memoized else max(1, int(c.max_units_lifetime))


def budget_for(
    kind: str,
    sdk: Any,
    release: dict[str, Any],
    *,
    memoized: bool,
    units_lifetime: int,
    units_window: int | None,
    settings: ReleaseSettings | None = None,
) -> release_noise.ReleaseBudget:
    """ε_release, δ and the sensitivity of a collection's release statistics."""
    settings = settings or ReleaseSettings()
    adapter = ADAPTERS[kind]
    derived = adapter.derived_n(sdk)
    dimension = int(release_noise.flatten(sdk.empty_aggregate().to_dict(), derived).size)
    return release_noise.ReleaseBudget(
        epsilon=float(release.get("epsilon", release_noise.DEFAULT_EPSILON)),
        delta=float(release.get("delta", release_noise.DEFAULT_DELTA)),
        horizon=int(release.get("horizon", settings.horizon)),
        reports_per_device_epoch=reports_per_device_epoch(memoized, units_lifetime, units_window),
        report_l2=adapter.report_l2(sdk, dimension),
        dimension=dimension,
        derived_n=derived,
        tree_share=adapter.tree_share(),
        discovery_scopes=adapter.discovery_scopes(release),
    )


def release_budget(c: CollectionRuntime, settings: ReleaseSettings | None = None) -> release_noise.ReleaseBudget:
    return budget_for(
        c.kind,
        _sdk(c),
        c.config.get("release", {}),
        memoized=c.memoized,
        units_lifetime=c.max_units_lifetime,
        units_window=c.max_units_window,
        settings=settings,
    )


def expected_noise(kind: str, sdk: Any, budget: release_noise.ReleaseBudget, n: int) -> dict[str, Any] | None:
    """What the central noise adds to one epoch's estimates at ``n`` reports (told to the
    admin at creation for ``n = min_reports``): the largest added variance per value, the
    LDP variance Var*/n, and their ratio (None for kinds without per-value estimates)."""
    return ADAPTERS[kind].expected_noise(sdk, budget, n)


def policy_of(c: CollectionRuntime, settings: ReleaseSettings | None = None) -> Policy:
    release = c.config.get("release", {})
    return Policy(
        windows=tuple(sorted(int(w) for w in release.get("windows", [1]) if int(w) > 1)),
        cumulative=bool(release.get("cumulative", True)),
        min_reports=int(release.get("min_reports", 1)),
        budget=release_budget(c, settings),
    )


def first_epoch(c: CollectionRuntime) -> int:
    """The stream's first epoch: the oldest epoch that could receive a report."""
    return max(0, c.epoch_at(c.created_at) - c.grace_epochs)


def due_through(c: CollectionRuntime, now: datetime) -> int:
    """The last epoch that is due (``current > e + grace``)."""
    return c.epoch_at(now) - c.grace_epochs - 1


# --- additive aggregates (the kind's SDK aggregate; stored as sorted compact JSON) -----------


def _aggregate_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _json_form(data: dict[str, Any]) -> dict[str, Any]:
    """An aggregate's ``to_dict()`` as stored JSON reads back (tuples become lists)."""
    return json.loads(json.dumps(data))


def _adapter(c: CollectionRuntime) -> KindAdapter:
    return ADAPTERS[c.kind]


def _empty(c: CollectionRuntime) -> Any:
    return _adapter(c).aggregate_from_dict(_json_form(_sdk(c).empty_aggregate().to_dict()))


def _stored(c: CollectionRuntime, text: str) -> Any:
    return _adapter(c).aggregate_from_dict(json.loads(text))


def _sdk(c: CollectionRuntime) -> Any:
    if c.protocol is None:
        raise ProblemError("kind-unavailable", c.unavailable or "the collection's protocol is not available")
    return c.protocol.protocol


# --- planning one release -------------------------------------------------------------------


@dataclass
class Scope:
    name: str  # epoch, cumulative, window
    window: int | None
    start: int
    end: int
    complete: bool
    data: dict[str, Any]  # the scope's aggregate (JSON form)


@dataclass
class Plan:
    epoch: int
    number: int
    stream_releases: int | None  # the stream's release count when read (None: no stream yet)
    first: int
    policy: Policy
    epoch_sum: dict[str, Any]
    partials: int
    cumulative: dict[str, Any]
    participation: int  # the epoch's exact report count (internal)
    tree: release_noise.VectorTree
    body: str
    sha256: str
    inputs: dict[str, Any]
    postprocessing: str


class _LostRace(Exception):
    """Another process released this epoch between our read and write phases."""


def _stream(conn: Connection, collection_id: str, lock: bool = False) -> Any:
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


#: rows per block when a release streams the stored raw reports of a heavy-hitter scope
RAW_BLOCK = 50_000


def _load_prefix_reports(conn: Connection, c: CollectionRuntime, low: int, high: int) -> tuple[np.ndarray, Any]:
    """Raw reports of epochs low..high, decoded by the SDK (epochs, PrefixReports or None).

    Streamed in blocks of ``RAW_BLOCK`` rows (a server-side cursor on PostgreSQL), each
    block decoded at once by the SDK's ``decode_stored`` (the stored compact JSON, with
    the strict decoder as the fallback), so a release holds packed arrays (≈ 17–34 bytes
    per report), never a million Python objects. No ORDER BY: discovery depends only on
    integer support counts, which do not depend on the order of the reports."""
    sdk = _sdk(c)
    if conn.dialect.name == "postgresql" and hasattr(sdk, "decode_stored_rows"):
        copied = _copy_prefix_reports(conn, sdk, c.id, low, high)
        if copied is not None:
            return copied
    decode = getattr(sdk, "decode_stored", None)
    result = conn.execution_options(yield_per=RAW_BLOCK).execute(
        select(reports_t.c.epoch, reports_t.c.payload).where(
            reports_t.c.collection_id == c.id, reports_t.c.epoch >= low, reports_t.c.epoch <= high
        )
    )
    epochs: list[np.ndarray] = []
    batches = []
    for rows in result.partitions():
        epochs.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        texts = [r[1] for r in rows]
        batches.append(decode(texts) if decode is not None else sdk.decode([json.loads(t) for t in texts]))
    if not batches:
        return np.zeros(0, dtype=np.int64), None
    from client_sdk.heavy_hitters import PrefixReports

    return np.concatenate(epochs), PrefixReports.concat(batches)


#: bytes per block when a release reads stored heavy-hitter reports with COPY (PostgreSQL):
#: small, so the per-block Python strings stay a few MB
COPY_BLOCK = 1 << 20


def _copy_prefix_reports(
    conn: Connection, sdk: Any, collection_id: str, low: int, high: int
) -> tuple[np.ndarray, Any] | None:
    """PostgreSQL: the (epoch, payload) text of the scope's reports through ``COPY … TO
    STDOUT`` in the release's read transaction (same snapshot), decoded a block of ~1 MB at
    a time by the SDK's ``decode_stored_rows`` — no Python object per row. None when any
    block is not in the stored form (the caller then reads row by row)."""
    from psycopg import sql

    from client_sdk.heavy_hitters import PrefixReports

    statement = sql.SQL(
        "COPY (SELECT epoch, payload FROM reports WHERE collection_id = {} AND epoch >= {} AND epoch <= {}) TO STDOUT"
    ).format(sql.Literal(collection_id), sql.Literal(int(low)), sql.Literal(int(high)))
    raw = conn.connection.driver_connection
    epochs: list[np.ndarray] = []
    batches = []
    pending = bytearray()

    def flush(data: bytes) -> bool:
        decoded = sdk.decode_stored_rows(data.decode("utf-8"))
        if decoded is None:
            return False
        epochs.append(decoded[0])
        batches.append(decoded[1])
        return True

    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        ok = True
        for chunk in copy:  # psycopg yields about one row per chunk: append, never re-copy
            if not ok:
                continue  # drain the COPY stream before giving up
            pending += chunk
            if len(pending) >= COPY_BLOCK:
                cut = pending.rfind(b"\n") + 1
                ok = flush(bytes(pending[:cut]))
                del pending[:cut]
        if ok and pending:
            ok = flush(bytes(pending))
    if not ok:
        return None
    if not batches:
        return np.zeros(0, dtype=np.int64), None
    return np.concatenate(epochs), PrefixReports.concat(batches)


def _first_report_per_device(conn: Connection, c: CollectionRuntime, epoch: int) -> dict[str, Any]:
    """Memoized collections: the epoch's statistics from each device's first report of the
    epoch (lowest report_id), so one device adds at most one report (u = 1) however many
    free re-reports it sent."""
    rows = conn.execute(
        select(reports_t.c.client_id, reports_t.c.report_id, reports_t.c.payload)
        .where(reports_t.c.collection_id == c.id, reports_t.c.epoch == epoch)
        .order_by(reports_t.c.client_id, reports_t.c.report_id)
    ).all()
    payloads = []
    previous = None
    for row in rows:
        if row.client_id != previous:
            payloads.append(json.loads(row.payload))
            previous = row.client_id
    sdk = _sdk(c)
    if not payloads:
        return _json_form(sdk.empty_aggregate().to_dict())
    return _json_form(sdk.aggregate(payloads).to_dict())


def _new_tree(policy: Policy, keep: int) -> release_noise.VectorTree:
    budget = policy.budget
    return release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, keep=keep, noise=noise_source())


def _plan(engine: Engine, c: CollectionRuntime, epoch: int, now: datetime, trigger: str) -> Plan:
    """Read phase and computation of the release of ``epoch`` (writes nothing)."""
    policy = policy_of(c)
    budget = policy.budget
    sdk = _sdk(c)
    adapter = _adapter(c)
    keep = max([1, *policy.windows])
    with read_transaction(engine) as conn:
        stream = _stream(conn, c.id)
        first = int(stream.first_epoch) if stream is not None else first_epoch(c)
        expected = int(stream.next_epoch) if stream is not None else first
        if epoch < expected:
            raise _LostRace  # released meanwhile
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
            tree = release_noise.VectorTree.from_state(state["tree"], noise=noise_source())
            number = int(stream.releases) + 1
            # the horizon is fixed at the first release, whatever the server setting says now
            budget = dataclasses.replace(budget, horizon=tree.horizon)
        else:
            tree = _new_tree(policy, keep)
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

        # cumulative = previous cumulative + epoch
        cumulative = total
        if epoch > first:
            previous = conn.execute(
                select(aggregates_t.c.cumulative).where(
                    aggregates_t.c.collection_id == c.id, aggregates_t.c.epoch == epoch - 1
                )
            ).scalar_one()
            cumulative = cumulative + _stored(c, previous)
        cumulative_sum = cumulative.to_dict()

        # windows: cumulative(e) − cumulative(e − w), one stored row per window
        scopes = [Scope("epoch", 1, epoch, epoch, True, epoch_sum)]
        if policy.cumulative:
            scopes.append(Scope("cumulative", None, first, epoch, True, cumulative_sum))
        for w in policy.windows:
            start = max(first, epoch - w + 1)
            window = cumulative
            if start > first:
                edge = conn.execute(
                    select(aggregates_t.c.cumulative).where(
                        aggregates_t.c.collection_id == c.id, aggregates_t.c.epoch == start - 1
                    )
                ).scalar_one()
                window = window - _stored(c, edge)
            scopes.append(Scope("window", w, start, epoch, epoch - w + 1 >= first, window.to_dict()))

        # the statistics the release tree is given (exact; noised in the tree)
        statistics = _first_report_per_device(conn, c, epoch) if c.memoized else epoch_sum
        participation = int(statistics["n"])

        raw_epochs, raw = (None, None)
        if adapter.needs_raw_reports:
            low = min(s.start for s in scopes if s.name != "cumulative")
            raw_epochs, raw = _load_prefix_reports(conn, c, low, epoch)

    # the tree's next step (fresh OpenDP noise for the nodes this step completes)
    step = epoch - first + 1
    exhausted = step > tree.horizon
    if not exhausted:
        if tree.steps != step - 1:
            raise RuntimeError(f"release tree at step {tree.steps}, expected {step - 1}")
        tree.append(release_noise.flatten(statistics, budget.derived_n))

    scope_bodies = []
    inputs: dict[str, Any] = {"partials": partials, "participation": participation, "scopes": []}
    for s in scopes:
        n = int(s.data["n"])
        after, through = s.start - first, s.end - first + 1
        noisy = None if exhausted else noisy_scope(tree, statistics, after, through, budget.derived_n)
        body: dict[str, Any] = {
            "scope": s.name,
            "window": s.window,
            "from_epoch": s.start,
            "to_epoch": s.end,
            "epochs": s.end - s.start + 1,
            "complete": s.complete,
            "participation": None if noisy is None else noisy.participation(),
            "status": "released",
            "reason": None,
            "estimates": None,
        }
        scope_inputs: dict[str, Any] = {"scope": s.name, "window": s.window, "n": n}
        if noisy is None:
            body["status"] = "withheld"
            body["reason"] = f"the release tree's horizon of {tree.horizon} epochs is exhausted"
        elif s.name in adapter.withheld_scopes:
            body["status"] = "withheld"
            body["reason"] = adapter.withheld_scopes[s.name]
        elif noisy.n < policy.min_reports:  # decided on the noisy count: post-processing
            body["status"] = "withheld"
            body["reason"] = f"fewer than min_reports ({policy.min_reports}) reports (noisy count)"
        else:
            scoped, stored = None, n
            if adapter.needs_raw_reports:
                mask = (raw_epochs >= s.start) & (raw_epochs <= s.end)
                stored = int(mask.sum())
                scope_inputs["raw_reports"] = stored
                if raw is not None:
                    scoped = raw if mask.all() else raw.subset(mask)  # no copy when the scope is all of them
            try:
                if adapter.needs_raw_reports and stored != n:
                    raise Withheld("raw reports of this scope are no longer stored (retention): discovery needs them")
                body["estimates"] = adapter.estimate_scope(sdk, ScopeInputs(noisy, budget, noise_source(), scoped))
            except Withheld as withheld:
                body["status"] = "withheld"
                body["reason"] = str(withheld)
        scope_bodies.append(body)
        inputs["scopes"].append(scope_inputs)

    postprocessing = adapter.postprocessing
    start_at = c.epoch_start + timedelta(seconds=c.epoch_seconds * epoch)
    document = {
        "format": FORMAT,
        "collection_id": c.id,
        "kind": c.kind,
        "config_hash": c.config_hash,
        "release": number,
        "epoch": epoch,
        "epoch_start": iso(start_at),
        "epoch_end": iso(start_at + timedelta(seconds=c.epoch_seconds)),
        "released_at": iso(now),
        "trigger": trigger,
        "policy": {
            "windows": [1, *policy.windows],
            "cumulative": policy.cumulative,
            "min_reports": policy.min_reports,
        },
        "ci_level": CI_LEVEL,
        "postprocessing": adapter.postprocessing_note(),
        "computation": _computation_note(c),
        "participation": {
            **budget.statement(max_epochs_per_device(c)),
            "unit": "reports" if not c.memoized else "devices (first report per device and epoch)",
            "step": None if exhausted else step,
            "status": "horizon_exhausted" if exhausted else "published",
            "interval": "count ± z·sqrt(variance), z = Φ⁻¹(0.975) (normal approximation)",
            "ledger_client_id": STREAM_CLIENT_ID,
        },
        "scopes": scope_bodies,
    }
    text = canonical_json(document)
    return Plan(
        epoch=epoch,
        number=number,
        stream_releases=None if stream is None else int(stream.releases),
        first=first,
        policy=policy,
        epoch_sum=epoch_sum,
        partials=partials,
        cumulative=cumulative_sum,
        participation=participation,
        tree=tree,
        body=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        inputs=inputs,
        postprocessing=postprocessing,
    )


def _computation_note(c: CollectionRuntime) -> dict[str, Any]:
    sdk = _sdk(c)
    return {
        "protocol": {k: sdk.config[k] for k in ("mechanism", "protocol", "epsilon") if k in sdk.config},
        "estimator": _adapter(c).estimator_note(),
        "interval": "frequency ± z·sqrt(variance), z = Φ⁻¹(0.975) (normal approximation)",
        "aggregates": "epoch = the tree's leaf of the epoch; cumulative and window w = the sum of the tree's "
        "noisy dyadic nodes covering the scope's epochs",
        "statistics": "each epoch's aggregate (counts, n) gets discrete Gaussian noise in the release tree "
        "(see participation); every number below is computed from the noisy integers only",
        "variance": "the SDK's plug-in closed-form variance at the noisy n, plus the variance the central "
        "noise adds (delta method over the noisy statistics)",
        "counts": "frequency × max(0, participation.count): exact report counts are never published",
    }


def _write(engine: Engine, c: CollectionRuntime, plan: Plan, now: datetime, trigger: str, requested_by: str | None):
    with write_transaction(engine) as conn:
        stream = _stream(conn, c.id, lock=True)
        if (stream is None) != (plan.stream_releases is None) or (
            stream is not None and int(stream.releases) != plan.stream_releases
        ):
            raise _LostRace
        conn.execute(
            aggregates_t.insert().values(
                collection_id=c.id,
                epoch=plan.epoch,
                n=int(plan.epoch_sum["n"]),
                partials=plan.partials,
                aggregate=_aggregate_json(plan.epoch_sum),
                cumulative_n=int(plan.cumulative["n"]),
                cumulative=_aggregate_json(plan.cumulative),
                participation=plan.participation,
                created_at=now,
            )
        )
        _checkpoint("compacted")
        state = json.dumps(
            {"tree": plan.tree.state(), "budget": plan.policy.budget.statement(max_epochs_per_device(c))},
            separators=(",", ":"),
            sort_keys=True,
        )
        if stream is None:
            conn.execute(
                streams_t.insert().values(
                    collection_id=c.id,
                    first_epoch=plan.first,
                    next_epoch=plan.epoch + 1,
                    releases=plan.number,
                    epsilon=plan.policy.epsilon,
                    sensitivity=plan.policy.budget.reports_per_device_epoch,
                    horizon=plan.tree.horizon,
                    unit="devices" if c.memoized else "reports",
                    counter_state=state,
                    created_at=now,
                    updated_at=now,
                )
            )
            # the participation stream's budget, recorded once in the collection's ledger
            ledger.append(
                conn,
                Bulk(conn),
                c.id,
                [
                    {
                        "client_id": STREAM_CLIENT_ID,
                        "report_id": STREAM_REPORT_ID,
                        "epoch": plan.first,
                        "window": c.window_of(plan.first),
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
                .values(next_epoch=plan.epoch + 1, releases=plan.number, counter_state=state, updated_at=now)
            )
        _checkpoint("counted")
        conn.execute(
            releases_t.insert().values(
                collection_id=c.id,
                number=plan.number,
                epoch=plan.epoch,
                config_hash=c.config_hash,
                released_at=now,
                trigger=trigger,
                requested_by=requested_by,
                postprocessing=plan.postprocessing,
                inputs=canonical_json(plan.inputs),
                body=plan.body,
                sha256=plan.sha256,
            )
        )
        _checkpoint("released")


def release_epoch(
    engine: Engine,
    c: CollectionRuntime,
    epoch: int,
    now: datetime,
    *,
    trigger: str = "scheduler",
    requested_by: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Close, compact and release ``epoch`` (the stream's next one); (summary, created)."""
    with read_transaction(engine) as conn:
        existing = release_row(conn, c.id, epoch=epoch)
    if existing is not None:
        return summary(existing), False
    started = time.perf_counter()
    close_epoch(engine, c.id, epoch, now, reason="released")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            plan = _plan(engine, c, epoch, now, trigger)
            _write(engine, c, plan, now, trigger, requested_by)
        except (_LostRace, IntegrityError):
            with read_transaction(engine) as conn:
                existing = release_row(conn, c.id, epoch=epoch)
            if existing is not None:
                return summary(existing), False
            if attempt == ATTEMPTS:
                raise
            continue
        log.info("epoch_released", collection_id=c.id, epoch=epoch, release=plan.number, trigger=trigger)
        metrics.observe_release(c.kind, trigger, time.perf_counter() - started)
        with read_transaction(engine) as conn:
            return summary(release_row(conn, c.id, number=plan.number)), True
    raise AssertionError("unreachable")


@dataclass
class Outcome:
    created: list[int] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "releases": self.releases}


def release_through(
    engine: Engine,
    c: CollectionRuntime,
    target: int,
    now: datetime,
    *,
    trigger: str = "scheduler",
    requested_by: str | None = None,
) -> Outcome:
    """Release every unreleased epoch of the stream up to ``target``, in order."""
    _sdk(c)
    with read_transaction(engine) as conn:
        stream = _stream(conn, c.id)
    start = int(stream.next_epoch) if stream is not None else first_epoch(c)
    outcome = Outcome()
    for epoch in range(start, target + 1):
        item, created = release_epoch(engine, c, epoch, now, trigger=trigger, requested_by=requested_by)
        outcome.releases.append(item)
        if created:
            outcome.created.append(item["number"])
    return outcome


def release_due(engine: Engine, c: CollectionRuntime, now: datetime, *, trigger: str = "scheduler") -> Outcome:
    """Release every due epoch (``current > e + grace``) not yet released."""
    return release_through(engine, c, due_through(c, now), now, trigger=trigger)


def request_release(
    engine: Engine,
    c: CollectionRuntime,
    now: datetime,
    *,
    epoch: int | None = None,
    force: bool = False,
    trigger: str = "admin",
    requested_by: str | None = None,
) -> Outcome:
    """What ``POST /releases`` and ``ldp release`` do.

    Without ``epoch``: release every due epoch. With ``epoch``: its existing release if any;
    else close and release it now — and every earlier unreleased epoch, in order — if it is
    past (even inside its grace period: later uploads for it are rejected ``epoch_closed``).
    The current epoch needs ``force``; a future epoch is always refused.
    """
    _sdk(c)
    if epoch is None:
        return release_due(engine, c, now, trigger=trigger)
    with read_transaction(engine) as conn:
        existing = release_row(conn, c.id, epoch=epoch)
        stream = _stream(conn, c.id)
    if existing is not None:
        return Outcome([], [summary(existing)])
    first = int(stream.first_epoch) if stream is not None else first_epoch(c)
    current = c.epoch_at(now)
    if epoch < first:
        raise ProblemError(
            "validation",
            f"epoch {epoch} is before the collection's release stream, which starts at epoch {first}",
            errors=[{"path": "/epoch", "message": f"must be at least {first}", "code": "before_stream"}],
        )
    if epoch > current:
        raise ProblemError(
            "validation",
            f"epoch {epoch} is in the future (the current epoch is {current}); it cannot be released",
            errors=[{"path": "/epoch", "message": f"must be at most {current}", "code": "epoch_in_future"}],
        )
    if epoch == current and not force:
        raise ProblemError(
            "conflict",
            f'epoch {epoch} is the current epoch and still accepts reports; send "force": true to close '
            "and release it now (later uploads for it are then rejected with epoch_closed)",
        )
    return release_through(engine, c, epoch, now, trigger=trigger, requested_by=requested_by)


def run_scheduler_once(engine: Engine, collections: Sequence[CollectionRuntime], now: datetime) -> dict[str, Any]:
    """One pass of the scheduler: release the due epochs of every collection (errors are
    logged per collection and do not stop the others)."""
    out: dict[str, Any] = {}
    for c in collections:
        if c.protocol is None:
            out[c.id] = {"skipped": c.unavailable}
            continue
        try:
            outcome = release_due(engine, c, now)
        except Exception as exc:  # one collection's failure must not stop the others
            log.exception("release_failed", collection_id=c.id, error_type=type(exc).__name__)
            out[c.id] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[c.id] = {"created": outcome.created}
    return out


# --- reading releases --------------------------------------------------------------------------


#: release numbers and row offsets fit a 32-bit column; a forged cursor beyond that is a 422,
#: never an integer the database cannot bind (SQLite stops at 2**63, PostgreSQL int4 at 2**31)
CURSOR_MAX = 2**31 - 1


def encode_cursor(*values: int) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if (
            not isinstance(values, list)
            or len(values) != arity
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= CURSOR_MAX for v in values)
        ):
            raise ValueError
        return values
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(
            "validation",
            "cursor is not a value returned as next_cursor",
            errors=[{"path": "/cursor", "message": "invalid cursor", "code": "invalid_cursor"}],
        ) from None


def list_releases(
    conn: Connection, collection_id: str, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    after = decode_cursor(cursor, 1)[0] if cursor else 0
    rows = conn.execute(
        select(
            releases_t.c.collection_id,
            releases_t.c.number,
            releases_t.c.epoch,
            releases_t.c.released_at,
            releases_t.c.sha256,
            releases_t.c.config_hash,
            releases_t.c.trigger,
            releases_t.c.postprocessing,
        )
        .where(releases_t.c.collection_id == collection_id, releases_t.c.number > after)
        .order_by(releases_t.c.number)
        .limit(limit + 1)
    ).all()
    items = [summary(r) for r in rows[:limit]]
    return items, (encode_cursor(items[-1]["number"]) if len(rows) > limit else None)


def latest_number(conn: Connection, collection_id: str) -> int | None:
    return conn.execute(
        select(func.max(releases_t.c.number)).where(releases_t.c.collection_id == collection_id)
    ).scalar_one()


ROW_COLUMNS = (
    "release",
    "epoch",
    "scope",
    "window",
    "from_epoch",
    "to_epoch",
    "complete",
    "status",
    "reason",
    "attribute",
    "party",
    "rank",
    "item",
    "frequency",
    "variance",
    "ci_lower",
    "ci_upper",
    "postprocessed",
    "count",
    "p_value",
    "participation",
    "participation_variance",
    "participation_ci_lower",
    "participation_ci_upper",
)


def _scope_matches(scope: dict[str, Any], name: str | None, window: int | None) -> bool:
    if name is None:
        return window is None or scope["window"] == window
    if name == "window" and window == 1:
        return scope["scope"] == "epoch"
    if scope["scope"] != name:
        return False
    return name != "window" or window is None or scope["window"] == window


def estimate_rows(
    body: dict[str, Any],
    *,
    scope: str | None = None,
    window: int | None = None,
    attribute: int | None = None,
    party: str | None = None,
    hitters_only: bool = False,
) -> list[dict[str, Any]]:
    """A release body flattened into rows (one per item estimate; one per withheld scope):
    the JSON rows of ``/estimates`` and ``/heavy-hitters`` and the CSV of a release."""
    out: list[dict[str, Any]] = []
    for s in body["scopes"]:
        if not _scope_matches(s, scope, window):
            continue
        part = s["participation"] or {}
        base = {
            "release": body["release"],
            "epoch": body["epoch"],
            "scope": s["scope"],
            "window": s["window"],
            "from_epoch": s["from_epoch"],
            "to_epoch": s["to_epoch"],
            "complete": s["complete"],
            "status": s["status"],
            "reason": s["reason"],
            "attribute": None,
            "party": None,
            "rank": None,
            "item": None,
            "frequency": None,
            "variance": None,
            "ci_lower": None,
            "ci_upper": None,
            "postprocessed": None,
            "count": None,
            "p_value": None,
            "participation": part.get("count"),
            "participation_variance": part.get("variance"),
            "participation_ci_lower": part.get("ci_lower"),
            "participation_ci_upper": part.get("ci_upper"),
        }
        est = s["estimates"]
        if est is None:
            out.append(base)
            continue
        if est["type"] == "heavy_hitters":
            lists = [] if party is not None else [(None, est["heavy_hitters"])]
            for name, hitters in sorted((est.get("parties") or {}).items()):
                if party is None or party == name:
                    lists.append((name, hitters))
            for name, hitters in lists:
                for h in hitters:
                    out.append(
                        base
                        | {
                            "party": name,
                            "rank": h["rank"],
                            "item": h["item"],
                            "frequency": h["frequency"],
                            "variance": h["variance"],
                            "ci_lower": h["ci_lower"],
                            "ci_upper": h["ci_upper"],
                            "postprocessed": h["consistent_frequency"],
                            "count": h.get("count"),
                            "p_value": h.get("p_value"),
                        }
                    )
            continue
        if hitters_only:
            continue
        histograms = [(a["attribute"], a) for a in est["attributes"]] if est["type"] == "marginals" else [(None, est)]
        for j, hist in histograms:
            if attribute is not None and j != attribute:
                continue
            if hist.get("status") == "missing":
                out.append(base | {"attribute": j, "status": "missing", "reason": hist["reason"]})
                continue
            for v in range(hist["domain_size"]):
                out.append(
                    base
                    | {
                        "attribute": j,
                        "item": v,
                        "frequency": hist["frequencies"][v],
                        "variance": hist["variance"][v],
                        "ci_lower": hist["ci_lower"][v],
                        "ci_upper": hist["ci_upper"][v],
                        "postprocessed": hist["postprocessed"][v],
                        "count": hist["counts"][v],
                    }
                )
    return out


SERIES_COLUMNS = ROW_COLUMNS


def series_point(
    body: dict[str, Any],
    absent_item: tuple[str, str],
    item: str,
    scope: str,
    window: int | None,
    attribute: int | None,
    party: str | None,
) -> dict[str, Any] | None:
    """One release's value of ``item`` in the asked scope (None if the release lacks the scope).

    Without a value the point says why: ``withheld`` (below min_reports, ...), ``missing``
    (multidim attribute no report informed) or ``not_in_top`` (heavy hitters)."""
    matching = [s for s in body["scopes"] if _scope_matches(s, scope, window if scope == "window" else None)]
    if not matching:
        return None
    s = matching[0]
    rows = estimate_rows({**body, "scopes": [s]}, attribute=attribute, party=party)
    rows = [r for r in rows if r["party"] == party or r["status"] != "released"]
    for r in rows:
        if r["item"] is not None and str(r["item"]) == item:
            return {k: r.get(k) for k in SERIES_COLUMNS}
    point = {k: None for k in SERIES_COLUMNS}
    part = s["participation"] or {}
    point |= {
        "release": body["release"],
        "epoch": body["epoch"],
        "scope": s["scope"],
        "window": s["window"],
        "from_epoch": s["from_epoch"],
        "to_epoch": s["to_epoch"],
        "complete": s["complete"],
        "status": s["status"],
        "reason": s["reason"],
        "attribute": attribute,
        "party": party,
        "item": item,
        "participation": part.get("count"),
        "participation_variance": part.get("variance"),
        "participation_ci_lower": part.get("ci_lower"),
        "participation_ci_upper": part.get("ci_upper"),
    }
    if s["status"] == "released":
        if rows and rows[0]["status"] == "missing":
            point["status"], point["reason"] = "missing", rows[0]["reason"]
        else:
            point["status"], point["reason"] = absent_item
    return point


def timeseries(
    conn: Connection,
    c: CollectionRuntime,
    *,
    item: str,
    scope: str,
    window: int | None,
    attribute: int | None,
    party: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    after = decode_cursor(cursor, 1)[0] if cursor else 0
    rows = conn.execute(
        select(releases_t.c.number, releases_t.c.body)
        .where(releases_t.c.collection_id == c.id, releases_t.c.number > after)
        .order_by(releases_t.c.number)
        .limit(limit + 1)
    ).all()
    points = []
    for row in rows[:limit]:
        point = series_point(json.loads(row.body), _adapter(c).absent_item, item, scope, window, attribute, party)
        if point is not None:
            points.append(point)
    next_cursor = encode_cursor(int(rows[limit - 1].number)) if len(rows) > limit else None
    return points, next_cursor
