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
import io
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist
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
from ldpserver.models import EpochPartial, Report
from ldpserver.models_release import EpochAggregate, Release, ReleaseStream
from ldpserver.services import ledger
from ldpserver.services.bulk import Bulk
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.epochs import close_epoch

log = structlog.get_logger("ldpserver.releases")

FORMAT = "ldp-release/1"
CI_LEVEL = 0.95
Z = NormalDist().inv_cdf(0.5 + CI_LEVEL / 2)
#: the ledger entry that records ε_release (device ids cannot contain ':')
STREAM_CLIENT_ID = "_stream:release"
STREAM_REPORT_ID = "release-budget"
STREAM_NEIGHBOURING = "device-epoch"
HISTOGRAM_POSTPROCESSING = "norm-sub"
HH_POSTPROCESSING = "hierarchical-consistency"
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
    derived = kind == "heavy_hitters" or (kind == "frequency" and sdk.config.get("mechanism") in release_noise.ONE_HOT)
    dimension = int(release_noise.flatten(sdk.empty_aggregate().to_dict(), derived).size)
    return release_noise.ReleaseBudget(
        epsilon=float(release.get("epsilon", release_noise.DEFAULT_EPSILON)),
        delta=float(release.get("delta", release_noise.DEFAULT_DELTA)),
        horizon=int(release.get("horizon", settings.horizon)),
        reports_per_device_epoch=reports_per_device_epoch(memoized, units_lifetime, units_window),
        report_l2=1.0 if derived else math.sqrt(dimension),
        dimension=dimension,
        derived_n=derived,
        # heavy hitters: half of ρ for the tree (sizes, min_reports), half for the discoveries of
        # the epoch scope and of every window w (a device-epoch enters w window releases)
        tree_share=0.5 if kind == "heavy_hitters" else 1.0,
        discovery_scopes=(1 + sum(int(w) for w in release.get("windows", [1]) if int(w) > 1))
        if kind == "heavy_hitters"
        else 0,
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


def expected_noise(kind: str, sdk: Any, budget: release_noise.ReleaseBudget, n: int) -> dict[str, Any]:
    """What the central noise adds to one epoch's estimates at ``n`` reports (told to the
    admin at creation for ``n = min_reports``): the largest added variance per value, the
    LDP variance Var*/n, and their ratio."""
    template = sdk.empty_aggregate().to_dict()
    if budget.derived_n:
        k = len(template["counts"])
        template["counts"] = [n // k + (1 if v < n % k else 0) for v in range(k)]
    template["n"] = n
    if template.get("attribute_n") is not None:
        template["attribute_n"] = [n] * len(template["attribute_n"])

    def flat(data: dict[str, Any]) -> np.ndarray:
        if kind == "multidim":
            from client_sdk.multidim import MultidimAggregate

            est = sdk.estimate(MultidimAggregate.from_dict(data))
            return np.concatenate([np.asarray(e.frequencies, dtype=np.float64) for e in est])
        from client_sdk.mechanisms import Aggregate

        return np.asarray(sdk.estimate(Aggregate.from_dict(data)).frequencies, dtype=np.float64)

    added = float(np.max(release_noise.added_variance(flat, template, budget.derived_n, budget.sigmas[0] ** 2)))
    per_user = sdk.variance_approx_per_user
    ldp = float(min(per_user) if isinstance(per_user, list | tuple) else per_user) / n
    return {"reports": n, "added_variance": added, "ldp_variance": ldp, "ratio": added / ldp}


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


# --- additive aggregates in their JSON form ------------------------------------------------


def _vector(values: Any) -> Any:
    """An aggregate's counts as numpy (one vector, or one per attribute)."""
    if values and isinstance(values[0], list):
        return [np.asarray(v, dtype=np.int64) for v in values]
    return np.asarray(values, dtype=np.int64)


def _plain(values: Any) -> Any:
    if isinstance(values, list):
        return [v.tolist() for v in values]
    return values.tolist()


@dataclass
class Sum:
    """A running sum of aggregates (``Aggregate.to_dict()`` / ``MultidimAggregate.to_dict()``)."""

    config: dict[str, Any]
    n: int
    counts: Any
    attribute_n: np.ndarray | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> Sum:
        extra = data.get("attribute_n")
        return cls(
            json.loads(json.dumps(data["config"])),  # the JSON form (tuples become lists)
            int(data["n"]),
            _vector(data["counts"]),
            None if extra is None else np.asarray(extra, dtype=np.int64),
        )

    def add(self, data: dict[str, Any], sign: int = 1) -> None:
        if data["config"] != self.config:
            raise ValueError("aggregates of different configurations cannot be merged")
        other = Sum.of(data)
        self.n += sign * other.n
        if isinstance(self.counts, list):
            self.counts = [a + sign * b for a, b in zip(self.counts, other.counts, strict=True)]
        else:
            self.counts = self.counts + sign * other.counts
        if self.attribute_n is not None:
            self.attribute_n = self.attribute_n + sign * other.attribute_n

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config": self.config, "n": int(self.n), "counts": _plain(self.counts)}
        if self.attribute_n is not None:
            out["attribute_n"] = self.attribute_n.tolist()
        return out


def _aggregate_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _sdk_aggregate(c: CollectionRuntime, data: dict[str, Any]) -> Any:
    if c.kind == "multidim":
        from client_sdk.multidim import MultidimAggregate

        return MultidimAggregate.from_dict(data)
    from client_sdk.mechanisms import Aggregate

    return Aggregate.from_dict(data)


def _sdk(c: CollectionRuntime) -> Any:
    if c.protocol is None:
        raise ProblemError("kind-unavailable", c.unavailable or "the collection's protocol is not available")
    return c.protocol.protocol


# --- noisy statistics: the release tree (ldpserver/release_noise.py) ------------------------


def _interval(count: float, variance: float) -> dict[str, Any]:
    half = Z * math.sqrt(variance)
    return {"count": count, "variance": variance, "ci_lower": count - half, "ci_upper": count + half}


@dataclass
class NoisyScope:
    """A scope's noisy statistics: the aggregate (JSON form, noisy integers) and the
    per-coordinate variance of its central noise."""

    data: dict[str, Any]
    noise_variance: float
    derived_n: bool

    @property
    def n(self) -> int:
        return int(self.data["n"])

    def participation(self) -> dict[str, Any]:
        """The noisy report count with its variance and normal-approximation interval
        (a derived n sums the noisy counts: one noise term per count)."""
        terms = len(self.data["counts"]) if self.derived_n else 1
        return _interval(self.n, terms * self.noise_variance)


def noisy_scope(tree: release_noise.VectorTree, template: dict[str, Any], after: int, through: int, derived_n: bool):
    vector, variance = tree.span(after, through)
    return NoisyScope(release_noise.unflatten(template, vector, derived_n), variance, derived_n)


# --- estimates per kind (post-processing of the noisy statistics) ----------------------------


def _histogram(est: Any, added: np.ndarray, scale: int) -> dict[str, Any]:
    """One unbiased Estimate from noisy statistics: raw, variance = LDP plug-in + central
    noise, interval, Norm-Sub, counts scaled by the noisy count."""
    post = est.postprocessed(HISTOGRAM_POSTPROCESSING).frequencies
    freqs = np.asarray(est.frequencies, dtype=np.float64)
    variance = np.asarray(est.variance, dtype=np.float64) + added
    half = Z * np.sqrt(variance)
    return {
        "domain_size": int(freqs.size),
        "frequencies": freqs.tolist(),
        "variance": variance.tolist(),
        "ci_lower": (freqs - half).tolist(),
        "ci_upper": (freqs + half).tolist(),
        "postprocessed": np.asarray(post, dtype=np.float64).tolist(),
        "counts": (freqs * scale + 0.0).tolist(),  # + 0.0: no negative zeros
    }


def _clip_attribute_n(data: dict[str, Any]) -> dict[str, Any]:
    """Noisy per-attribute counts below 1 mean "no report informed it" (post-processing)."""
    if data.get("attribute_n") is None:
        return data
    return {**data, "attribute_n": [max(0, int(m)) for m in data["attribute_n"]]}


def _flat_frequencies(c: CollectionRuntime, data: dict[str, Any]) -> np.ndarray:
    """Every estimated value of an aggregate as one vector (missing attributes: zeros)."""
    sdk = _sdk(c)
    estimate = sdk.estimate(_sdk_aggregate(c, _clip_attribute_n(data)))
    if c.kind == "multidim":
        sizes = [len(v) for v in data["counts"]]
        return np.concatenate(
            [
                np.zeros(k) if e is None else np.asarray(e.frequencies, dtype=np.float64)
                for k, e in zip(sizes, estimate, strict=True)
            ]
        )
    return np.asarray(estimate.frequencies, dtype=np.float64)


def _estimate_aggregate(c: CollectionRuntime, scope: NoisyScope) -> dict[str, Any]:
    sdk = _sdk(c)
    data = _clip_attribute_n(scope.data)
    estimate = sdk.estimate(_sdk_aggregate(c, data))
    added = release_noise.added_variance(
        lambda d: _flat_frequencies(c, d), scope.data, scope.derived_n, scope.noise_variance
    )
    scale = max(0, scope.n)
    if c.kind == "multidim":
        attributes = []
        pos = 0
        for j, est in enumerate(estimate):
            k = len(data["counts"][j])
            if est is None:
                attributes.append({"attribute": j, "status": "missing", "reason": "no report informed it"})
            else:
                attributes.append(
                    {"attribute": j, "status": "estimated", **_histogram(est, added[pos : pos + k], scale)}
                )
            pos += k
        return {"type": "marginals", "mechanism": sdk.config.get("mechanism"), "attributes": attributes}
    return {"type": "histogram", "mechanism": sdk.config.get("mechanism"), **_histogram(estimate, added, scale)}


def _hitter(h: Any, rank: int, scale: int | None, local: bool = False) -> dict[str, Any]:
    out = {
        "rank": rank,
        "item": h.item,
        "code": str(h.code),
        "frequency": float(h.frequency),
        "variance": float(h.variance),
        "ci_lower": float(h.ci_lower),
        "ci_upper": float(h.ci_upper),
        "consistent_frequency": None if h.consistent_frequency is None else float(h.consistent_frequency),
        "p_value": None if getattr(h, "p_value", None) is None else float(h.p_value),
    }
    if not local:
        out["count"] = None if scale is None else float(h.frequency) * scale + 0.0
    return out


#: reports per step of the heavy hitters' support counting in a release
DISCOVERY_CHUNK = 1024


def _heavy_hitters(
    c: CollectionRuntime, reports: Any, scale: int | None, budget: release_noise.ReleaseBudget
) -> dict[str, Any]:
    """Discovery over stored raw reports (client_sdk.heavy_hitters) on centrally noised
    statistics (every level group's count and support-count query: ``DiscoveryNoise``), so
    items, scores, intervals, p-values and per-party figures (party sizes included) reveal
    only noisy statistics: global top items with counts from the noisy total; per-party
    top items (federated) as frequencies within the party. The SDK's significance test and
    intervals include the central noise (docs/heavy_hitters.md, "Publishing")."""
    from client_sdk.heavy_hitters import _common as hh_common

    sdk = _sdk(c)
    noise = release_noise.DiscoveryNoise(
        budget.discovery_rho, release_noise.discovery_queries(sdk), budget.reports_per_device_epoch, noise_source()
    )
    token = hh_common.CENTRAL_NOISE.set(noise)
    try:
        # support counts are computed DISCOVERY_CHUNK reports at a time: the buffer is
        # |candidates| × chunk × 8 bytes (≈ 14 MB at 1,700 candidates), part of the peak RSS
        result = sdk.discover(reports, ci_level=CI_LEVEL, chunk=DISCOVERY_CHUNK)
    finally:
        hh_common.CENTRAL_NOISE.reset(token)
    out: dict[str, Any] = {
        "type": "heavy_hitters",
        "protocol": result.protocol,
        "k": int(result.k),
        "heavy_hitters": [_hitter(h, i + 1, scale) for i, h in enumerate(result.heavy_hitters)],
        # how many candidates were tested and withheld, the level and the correction (all
        # post-processing of the LDP reports; no exact count of users)
        "significance": result.significance,
    }
    if getattr(sdk, "federated", False):
        out["parties"] = {
            party: [_hitter(h, i + 1, None, local=True) for i, h in enumerate(hitters)]
            for party, hitters in sorted(result.local.items())
        }
    return out


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

#: the per-report columns of decoded heavy-hitter reports (PrefixReports' fields)
_REPORT_FIELDS = ("levels", "seeds", "ys", "parties", "item_seeds", "item_ys")


@dataclass
class StoredReports:
    """The decoded raw reports of epochs ``low..`` a release reads: each report's epoch as
    ``offsets`` (epoch − low, compact dtype) and the reports (PrefixReports, None when
    there is none)."""

    low: int
    offsets: np.ndarray
    reports: Any

    def scope(self, start: int, end: int) -> tuple[int, Any]:
        """(count, reports) of epochs start..end; no copy when that is all of them."""
        if self.reports is None:
            return 0, None
        mask = (self.offsets >= max(0, start - self.low)) & (self.offsets <= end - self.low)
        count = int(np.count_nonzero(mask))
        if count == len(self.reports):
            return count, self.reports
        return count, (self.reports.subset(mask) if count else None)


class _ReportColumns:
    """Decoded reports appended block by block into compact columns (as the SDK's decoder
    gives them: 8- or 16-bit levels and values, 64-bit seeds; the epoch as an offset),
    allocated once for the expected count and grown by half beyond it: a release holds
    ≈ 11–12 bytes per report, never the blocks and their concatenation at once."""

    def __init__(self, low: int, high: int, expected: int) -> None:
        self.low = low
        self.offset_type = np.min_scalar_type(max(0, high - low))
        self.capacity = max(1, expected)
        self.size = 0
        self.offsets = np.empty(self.capacity, dtype=self.offset_type)
        self.columns: dict[str, np.ndarray] | None = None

    def append(self, epochs: np.ndarray, reports: Any) -> None:
        count = len(reports)
        if count == 0:
            return
        if self.columns is None:
            self.columns = {
                name: np.empty(self.capacity, dtype=getattr(reports, name).dtype)
                for name in _REPORT_FIELDS
                if getattr(reports, name) is not None
            }
        if self.size + count > self.capacity:
            self._grow(max(self.size + count, self.capacity + self.capacity // 2))
        end = self.size + count
        self.offsets[self.size : end] = np.asarray(epochs) - self.low
        for name, column in self.columns.items():
            column[self.size : end] = getattr(reports, name)
        self.size = end

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty(capacity, dtype=a.dtype)
            out[: self.size] = a[: self.size]
            return out

        self.offsets = grown(self.offsets)
        self.columns = {name: grown(column) for name, column in (self.columns or {}).items()}
        self.capacity = capacity

    def finish(self) -> StoredReports:
        """The columns trimmed to their size (views, no copy)."""
        if self.columns is None or self.size == 0:
            return StoredReports(self.low, np.zeros(0, dtype=self.offset_type), None)
        from client_sdk.heavy_hitters import PrefixReports

        size = self.size
        fields = {name: (self.columns[name][:size] if name in self.columns else None) for name in _REPORT_FIELDS}
        return StoredReports(self.low, self.offsets[:size], PrefixReports(**fields))


def _load_prefix_reports(conn: Connection, c: CollectionRuntime, low: int, high: int, expected: int) -> StoredReports:
    """Raw reports of epochs low..high, decoded by the SDK into compact columns.

    PostgreSQL: one ``COPY … TO STDOUT`` decoded in blocks (:func:`_copy_prefix_reports`);
    otherwise (or when a block is not in the stored form) streamed in blocks of
    ``RAW_BLOCK`` rows, each decoded at once by the SDK's ``decode_stored`` (the stored
    compact JSON, with the strict decoder as the fallback). ``expected`` (the scopes'
    report count) sizes the columns. No ORDER BY: discovery depends only on integer
    support counts, which do not depend on the order of the reports."""
    sdk = _sdk(c)
    if conn.dialect.name == "postgresql" and hasattr(sdk, "decode_stored_rows"):
        copied = _copy_prefix_reports(conn, sdk, c.id, low, high, expected)
        if copied is not None:
            return copied
    decode = getattr(sdk, "decode_stored", None)
    result = conn.execution_options(yield_per=RAW_BLOCK).execute(
        select(reports_t.c.epoch, reports_t.c.payload).where(
            reports_t.c.collection_id == c.id, reports_t.c.epoch >= low, reports_t.c.epoch <= high
        )
    )
    columns = _ReportColumns(low, high, expected)
    for rows in result.partitions():
        texts = [r[1] for r in rows]
        epochs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        columns.append(epochs, decode(texts) if decode is not None else sdk.decode([json.loads(t) for t in texts]))
    return columns.finish()


#: bytes per block when a release reads stored heavy-hitter reports with COPY (PostgreSQL):
#: small, so the per-block buffers stay a few MB
COPY_BLOCK = 1 << 20


def _copy_prefix_reports(
    conn: Connection, sdk: Any, collection_id: str, low: int, high: int, expected: int
) -> StoredReports | None:
    """PostgreSQL: the (epoch, payload) text of the scope's reports through ``COPY … TO
    STDOUT`` in the release's read transaction (same snapshot), decoded a block of ~1 MB at
    a time by the SDK's vectorised ``decode_stored_rows`` into compact columns — no Python
    object per report beyond the row's bytes. None when any block is not in the stored
    form (the caller then reads row by row)."""
    from psycopg import sql

    statement = sql.SQL(
        "COPY (SELECT epoch, payload FROM reports WHERE collection_id = {} AND epoch >= {} AND epoch <= {}) TO STDOUT"
    ).format(sql.Literal(collection_id), sql.Literal(int(low)), sql.Literal(int(high)))
    raw = conn.connection.driver_connection
    columns = _ReportColumns(low, high, expected)
    buffer = io.BytesIO()
    ok = True
    for row in _copy_rows(raw, statement.as_bytes(raw)):
        if not ok:
            continue  # drain the COPY stream before giving up
        buffer.write(row)
        if buffer.tell() >= COPY_BLOCK:
            data = buffer.getvalue()
            cut = data.rfind(b"\n") + 1
            ok = _decode_rows_into(columns, sdk, data[:cut])
            buffer = io.BytesIO()
            buffer.write(data[cut:])
    if ok and buffer.tell():
        ok = _decode_rows_into(columns, sdk, buffer.getvalue())
    return columns.finish() if ok else None


def _copy_rows(connection: Any, statement: bytes) -> Iterator[bytes]:
    """The rows of ``COPY … TO STDOUT`` on a psycopg connection, read with libpq's own
    blocking calls (psycopg's documented low-level ``pgconn``): one C call per row, where
    psycopg's ``Copy`` iteration costs ≈ 0.5 µs more per row (0.3 s of a 10^6-report
    release). The stream is always read to its end, also when the caller stops early or
    fails (the connection stays usable, in its transaction); an error of the statement
    raises psycopg's exception for it."""
    import select as select_module

    import psycopg
    from psycopg import pq

    pgconn = connection.pgconn
    with connection.lock:
        pgconn.send_query(statement)
        while pgconn.flush():  # a non-blocking connection: wait until the query is sent
            select_module.select([], [pgconn.socket], [])
        result = pgconn.get_result()
        try:
            if result is None or result.status != pq.ExecStatus.COPY_OUT:
                raise _result_error(psycopg, result)
            done = False
            try:
                while True:
                    size, data = pgconn.get_copy_data(0)
                    if size < 0:
                        done = True
                        break
                    yield data
            finally:
                while not done and pgconn.get_copy_data(0)[0] >= 0:
                    pass
            result = pgconn.get_result()
            if result is None or result.status != pq.ExecStatus.COMMAND_OK:
                raise _result_error(psycopg, result)
        finally:
            while pgconn.get_result() is not None:
                pass


def _result_error(psycopg: Any, result: Any) -> Exception:
    if result is None:
        return psycopg.OperationalError("COPY returned no result")
    message = (result.error_message or b"").decode("utf-8", "replace").strip()
    state = result.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
    try:
        error_class = psycopg.errors.lookup(state.decode()) if state else psycopg.DatabaseError
    except KeyError:
        error_class = psycopg.DatabaseError
    return error_class(message or f"unexpected COPY result {result.status!r}")


def _decode_rows_into(columns: _ReportColumns, sdk: Any, block: bytes) -> bool:
    decoded = sdk.decode_stored_rows(block)
    if decoded is None:
        return False
    columns.append(*decoded)
    return True


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
        return sdk.empty_aggregate().to_dict()
    return Sum.of(sdk.aggregate(payloads).to_dict()).to_dict()


def _new_tree(policy: Policy, keep: int) -> release_noise.VectorTree:
    budget = policy.budget
    return release_noise.VectorTree(sigmas=budget.sigmas, dimension=budget.dimension, keep=keep, noise=noise_source())


def _plan(engine: Engine, c: CollectionRuntime, epoch: int, now: datetime, trigger: str) -> Plan:
    """Read phase and computation of the release of ``epoch`` (writes nothing)."""
    policy = policy_of(c)
    budget = policy.budget
    sdk = _sdk(c)
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
        total = Sum.of(sdk.empty_aggregate().to_dict())
        partials = 0
        for row in conn.execute(
            select(partials_t.c.aggregate)
            .where(partials_t.c.collection_id == c.id, partials_t.c.epoch == epoch)
            .order_by(partials_t.c.id)
        ):
            total.add(json.loads(row.aggregate))
            partials += 1
        epoch_sum = total.to_dict()

        # cumulative = previous cumulative + epoch
        cumulative = Sum.of(epoch_sum)
        if epoch > first:
            previous = conn.execute(
                select(aggregates_t.c.cumulative).where(
                    aggregates_t.c.collection_id == c.id, aggregates_t.c.epoch == epoch - 1
                )
            ).scalar_one()
            cumulative.add(json.loads(previous))
        cumulative_sum = cumulative.to_dict()

        # windows: cumulative(e) − cumulative(e − w), one stored row per window
        scopes = [Scope("epoch", 1, epoch, epoch, True, epoch_sum)]
        if policy.cumulative:
            scopes.append(Scope("cumulative", None, first, epoch, True, cumulative_sum))
        for w in policy.windows:
            start = max(first, epoch - w + 1)
            window = Sum.of(cumulative_sum)
            if start > first:
                edge = conn.execute(
                    select(aggregates_t.c.cumulative).where(
                        aggregates_t.c.collection_id == c.id, aggregates_t.c.epoch == start - 1
                    )
                ).scalar_one()
                window.add(json.loads(edge), sign=-1)
            scopes.append(Scope("window", w, start, epoch, epoch - w + 1 >= first, window.to_dict()))

        # the statistics the release tree is given (exact; noised in the tree)
        statistics = _first_report_per_device(conn, c, epoch) if c.memoized else epoch_sum
        participation = int(statistics["n"])

        raw: StoredReports | None = None
        if c.kind == "heavy_hitters":
            discovered = [s for s in scopes if s.name != "cumulative"]
            low = min(s.start for s in discovered)
            raw = _load_prefix_reports(conn, c, low, epoch, max(int(s.data["n"]) for s in discovered))

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
        elif c.kind == "heavy_hitters" and s.name == "cumulative":
            body["status"] = "withheld"
            body["reason"] = (
                "heavy hitters are released per epoch and per window only: cumulative discovery would need "
                "every raw report since the start"
            )
        elif noisy.n < policy.min_reports:  # decided on the noisy count: post-processing
            body["status"] = "withheld"
            body["reason"] = f"fewer than min_reports ({policy.min_reports}) reports (noisy count)"
        elif c.kind == "heavy_hitters":
            assert raw is not None
            stored, scoped = raw.scope(s.start, s.end)
            scope_inputs["raw_reports"] = stored
            if stored != n:
                body["status"] = "withheld"
                body["reason"] = "raw reports of this scope are no longer stored (retention): discovery needs them"
            else:
                from client_sdk.heavy_hitters import InsufficientReportsError

                try:
                    if scoped is None:  # no report at all although the noisy count passed min_reports
                        raise InsufficientReportsError("no reports")
                    body["estimates"] = _heavy_hitters(c, scoped, max(0, noisy.n), budget)
                except InsufficientReportsError:  # only for a scope without any report (noise off: see docs)
                    body["status"] = "withheld"
                    body["reason"] = "insufficient reports for discovery"
        else:
            body["estimates"] = _estimate_aggregate(c, noisy)
        scope_bodies.append(body)
        inputs["scopes"].append(scope_inputs)

    postprocessing = HH_POSTPROCESSING if c.kind == "heavy_hitters" else HISTOGRAM_POSTPROCESSING
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
        "postprocessing": _postprocessing_note(c.kind),
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


def _postprocessing_note(kind: str) -> dict[str, Any]:
    if kind == "heavy_hitters":
        return {
            "method": HH_POSTPROCESSING,
            "field": "consistent_frequency",
            "description": "weighted least-squares consistency over the estimated prefix tree "
            "(ALGORITHMS §12.1): every expanded prefix equals the sum of its children; intervals are "
            "those of the unbiased estimate; null when the frequency comes from the final estimation "
            "round (docs/heavy_hitters.md), which is not a tree node",
        }
    return {
        "method": HISTOGRAM_POSTPROCESSING,
        "field": "postprocessed",
        "description": "Norm-Sub = Euclidean projection of the raw frequencies onto the probability "
        "simplex (non-negative, sum 1; ALGORITHMS §12), per histogram; intervals are those of the "
        "unbiased estimate",
    }


def _computation_note(c: CollectionRuntime) -> dict[str, Any]:
    sdk = _sdk(c)
    return {
        "protocol": {k: sdk.config[k] for k in ("mechanism", "protocol", "epsilon") if k in sdk.config},
        "estimator": "the SDK's unbiased estimator (client_sdk."
        + {"frequency": "mechanisms", "multidim": "multidim", "longitudinal": "longitudinal"}.get(
            c.kind, "heavy_hitters discovery over the scope's stored raw reports"
        )
        + ")",
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
    kind: str,
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
    if kind == "heavy_hitters":
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
        elif kind == "heavy_hitters":
            point["status"], point["reason"] = (
                "not_in_top",
                "the item is not among this release's published (significant) top items",
            )
        else:
            point["status"], point["reason"] = "not_found", "no estimate for this item"
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
        point = series_point(json.loads(row.body), c.kind, item, scope, window, attribute, party)
        if point is not None:
            points.append(point)
    next_cursor = encode_cursor(int(rows[limit - 1].number)) if len(rows) > limit else None
    return points, next_cursor
