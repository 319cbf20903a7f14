"""Continual release: close an epoch, compact it, publish an immutable numbered release.

A collection's **release stream** starts at ``first = max(0, epoch_at(created_at) − grace)``
(the oldest epoch that could ever receive a report) and releases its epochs **in order**,
one release per epoch (numbered 1, 2, ... per collection). Epoch ``e`` is *due* once
``current > e + grace``: no upload for it can be accepted any more. The scheduler
(``ldp scheduler``) releases due epochs; an admin (``POST /v1/collections/{id}/releases``,
``ldp release``) may also release a past epoch still in its grace period, or — with
``force`` — the current one; both close every earlier unreleased epoch too, in order.

The release service, one job per module:

* this module — orchestration: :func:`release_epoch` and the scheduler's entry points;
* ``release_policy`` — the collection's scopes, ``min_reports`` and central-DP budget;
* ``release_store`` — the read phase (one snapshot) and the single write transaction;
* ``release_raw`` — the stored raw reports kinds such as heavy hitters need;
* ``release_compute`` — the pure computation: inputs → the release document;
* ``release_views`` — reading releases: cursors, estimate rows, time series;
* the kind adapters (``ldpserver/kinds``) — each kind's estimates of one scope.

**Releasing epoch e** (:func:`release_epoch`):

1. ``close_epoch`` (``services/epochs.py``) in its own short transaction: it waits for the
   batches in flight and, once committed, ingestion rejects late reports for ``e`` with
   ``epoch_closed``. This is the late-report rule: after the release starts, nothing can
   change the epoch's inputs.
2. Read (``release_store.read_inputs``, no locks), compute (``release_compute.compute``:
   the release tree's next step with fresh central noise, every scope's noisy statistics
   and estimates, the canonical JSON body and its SHA-256), write
   (``release_store.write``, one transaction with optimistic concurrency on the stream).

A crash anywhere leaves either nothing or a complete release: nothing is written until
the single commit, and a closed-but-unreleased epoch (crash after step 1) is simply
released by the next attempt (resumable). Noise drawn by a failed attempt was never
published, so drawing it again costs nothing. Re-requesting a released epoch returns the
existing release (idempotent).

**Scopes** of the release of epoch ``e`` (each with a 95 % interval, raw and
post-processed): ``epoch`` (e alone), ``cumulative`` (first..e, if the policy asks for it)
and ``window`` w for every configured length w > 1 (``max(first, e−w+1)..e``;
``complete: false`` while fewer than w epochs exist; w = 1 is the epoch scope). A scope
whose noisy report count is below ``min_reports`` is **withheld**: no estimates,
``status: "withheld"`` and the reason (the threshold, never the count).

**Central DP for release readers** (``ldpserver/release_noise.py``): every published
number is computed from statistics that carry discrete Gaussian noise drawn from the
injected :class:`ReleaseContext` (OpenDP in production); the guarantee, (ε_release, δ) per
device-epoch from the hashed config, is stated in docs/privacy.md and docs/releases.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ldpserver import metrics, release_noise
from ldpserver.db import read_transaction
from ldpserver.errors import ProblemError
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.epochs import close_epoch
from ldpserver.services.release_compute import compute
from ldpserver.services.release_policy import ReleaseSettings, due_through, first_epoch, policy_of, sdk_of
from ldpserver.services.release_store import LostRace, read_inputs, release_row, stream_row, summary, write

log = structlog.get_logger("ldpserver.releases")

#: attempts of the read-compute-write cycle when another process releases at the same time
ATTEMPTS = 3


@dataclass(frozen=True)
class ReleaseContext:
    """What a release is computed with besides its inputs, injected by the caller (the app,
    the scheduler, a test): the central-noise source and the server's release settings."""

    noise: release_noise.VectorNoise
    settings: ReleaseSettings

    @classmethod
    def default(cls) -> ReleaseContext:
        """Production: OpenDP's discrete Gaussian sampler, settings from the environment."""
        return cls(release_noise.OpenDPDiscreteGaussian(), ReleaseSettings())


def release_epoch(
    engine: Engine,
    c: CollectionRuntime,
    epoch: int,
    now: datetime,
    *,
    trigger: str = "scheduler",
    requested_by: str | None = None,
    context: ReleaseContext | None = None,
) -> tuple[dict[str, Any], bool]:
    """Close, compact and release ``epoch`` (the stream's next one); (summary, created)."""
    context = context or ReleaseContext.default()
    with read_transaction(engine) as conn:
        existing = release_row(conn, c.id, epoch=epoch)
    if existing is not None:
        return summary(existing), False
    started = time.perf_counter()
    close_epoch(engine, c.id, epoch, now, reason="released")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            policy = policy_of(c, context.settings)
            inputs = read_inputs(engine, c, epoch, policy, context.noise)
            plan = compute(c, inputs, policy, now, trigger, context.noise)
            write(engine, c, plan, now, trigger, requested_by)
        except (LostRace, IntegrityError):
            with read_transaction(engine) as conn:
                existing = release_row(conn, c.id, epoch=epoch)
            if existing is not None:
                return summary(existing), False
            if attempt == ATTEMPTS:
                raise
            continue
        log.info("epoch_released", collection_id=c.id, epoch=epoch, release=inputs.number, trigger=trigger)
        metrics.observe_release(c.kind, trigger, time.perf_counter() - started)
        with read_transaction(engine) as conn:
            return summary(release_row(conn, c.id, number=inputs.number)), True
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
    context: ReleaseContext | None = None,
) -> Outcome:
    """Release every unreleased epoch of the stream up to ``target``, in order."""
    sdk_of(c)
    context = context or ReleaseContext.default()
    with read_transaction(engine) as conn:
        stream = stream_row(conn, c.id)
    start = int(stream.next_epoch) if stream is not None else first_epoch(c)
    outcome = Outcome()
    for epoch in range(start, target + 1):
        item, created = release_epoch(
            engine, c, epoch, now, trigger=trigger, requested_by=requested_by, context=context
        )
        outcome.releases.append(item)
        if created:
            outcome.created.append(item["number"])
    return outcome


def release_due(
    engine: Engine,
    c: CollectionRuntime,
    now: datetime,
    *,
    trigger: str = "scheduler",
    context: ReleaseContext | None = None,
) -> Outcome:
    """Release every due epoch (``current > e + grace``) not yet released."""
    return release_through(engine, c, due_through(c, now), now, trigger=trigger, context=context)


def request_release(
    engine: Engine,
    c: CollectionRuntime,
    now: datetime,
    *,
    epoch: int | None = None,
    force: bool = False,
    trigger: str = "admin",
    requested_by: str | None = None,
    context: ReleaseContext | None = None,
) -> Outcome:
    """What ``POST /releases`` and ``ldp release`` do.

    Without ``epoch``: release every due epoch. With ``epoch``: its existing release if any;
    else close and release it now — and every earlier unreleased epoch, in order — if it is
    past (even inside its grace period: later uploads for it are rejected ``epoch_closed``).
    The current epoch needs ``force``; a future epoch is always refused.
    """
    sdk_of(c)
    if epoch is None:
        return release_due(engine, c, now, trigger=trigger, context=context)
    with read_transaction(engine) as conn:
        existing = release_row(conn, c.id, epoch=epoch)
        stream = stream_row(conn, c.id)
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
    return release_through(engine, c, epoch, now, trigger=trigger, requested_by=requested_by, context=context)


def run_scheduler_once(
    engine: Engine,
    collections: Sequence[CollectionRuntime],
    now: datetime,
    context: ReleaseContext | None = None,
) -> dict[str, Any]:
    """One pass of the scheduler: release the due epochs of every collection (errors are
    logged per collection and do not stop the others)."""
    context = context or ReleaseContext.default()
    out: dict[str, Any] = {}
    for c in collections:
        if c.protocol is None:
            out[c.id] = {"skipped": c.unavailable}
            continue
        try:
            outcome = release_due(engine, c, now, context=context)
        except Exception as exc:  # one collection's failure must not stop the others
            log.exception("release_failed", collection_id=c.id, error_type=type(exc).__name__)
            out[c.id] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[c.id] = {"created": outcome.created}
    return out
