"""The release of one epoch as a pure computation: inputs read from the store → the release
document (canonical JSON and its SHA-256). No database here; the only side effect is the
central noise the release tree draws from the injected source.

What :func:`compute` does (docs/releases.md):

1. the tree's next step: the epoch's exact statistics vector gets fresh discrete Gaussian
   noise for the dyadic nodes this step completes (``ldpserver/release_noise.py``);
2. every scope (epoch, cumulative, windows) reads the noisy nodes covering its epochs; a
   scope is withheld when the horizon is exhausted, when its kind never estimates it, or
   when its **noisy** report count is below ``min_reports``; otherwise the kind's adapter
   computes its estimates from the noisy statistics (``ldpserver/kinds``);
3. the document: the policy, the stated guarantee, how everything was computed, the scopes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from client_sdk.canonical import canonical_json
from ldpserver import release_noise
from ldpserver.clock import iso
from ldpserver.kinds import ADAPTERS
from ldpserver.release_stats import CI_LEVEL, ScopeInputs, Withheld, noisy_scope
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.release_policy import Policy, max_epochs_per_device, sdk_of
from ldpserver.services.release_raw import StoredReports

FORMAT = "ldp-release/1"
#: the ledger entry that records ε_release (device ids cannot contain ':')
STREAM_CLIENT_ID = "_stream:release"


@dataclass
class Scope:
    name: str  # epoch, cumulative, window
    window: int | None
    start: int
    end: int
    complete: bool
    data: dict[str, Any]  # the scope's exact aggregate (JSON form; internal, never published)


@dataclass
class ReleaseInputs:
    """What the store read for the release of ``epoch`` (one consistent snapshot)."""

    epoch: int
    number: int  # the release's number in the stream
    stream_releases: int | None  # the stream's release count when read (None: no stream yet)
    first: int  # the stream's first epoch
    tree: release_noise.VectorTree  # the release tree before this epoch's step
    budget: release_noise.ReleaseBudget  # with the horizon fixed at the stream's first release
    partials: int  # partial aggregates compacted into the epoch
    epoch_sum: dict[str, Any]
    cumulative: dict[str, Any]
    scopes: list[Scope]
    statistics: dict[str, Any]  # what the tree is given (memoized: first report per device)
    raw: StoredReports | None = None  # kinds that need raw reports: the scopes' reports, decoded
    dictionary: Any = None  # known-candidate collections: the uploaded dictionary (None: none yet)


@dataclass
class Plan:
    """A computed release, ready for the store's single write transaction."""

    inputs: ReleaseInputs
    policy: Policy
    participation: int  # the epoch's exact report count (internal)
    body: str
    sha256: str
    summary: dict[str, Any]  # the exact counts behind the release, kept in the private `inputs` column
    postprocessing: str


def compute(
    c: CollectionRuntime,
    inputs: ReleaseInputs,
    policy: Policy,
    now: datetime,
    trigger: str,
    noise: release_noise.VectorNoise,
) -> Plan:
    """The release document of ``inputs.epoch`` (advances ``inputs.tree`` by one step)."""
    sdk = sdk_of(c)
    adapter = ADAPTERS[c.kind]
    budget, tree, first, epoch = inputs.budget, inputs.tree, inputs.first, inputs.epoch
    statistics = inputs.statistics
    participation = int(statistics["n"])

    # the tree's next step (fresh noise for the nodes this step completes)
    step = epoch - first + 1
    exhausted = step > tree.horizon
    if not exhausted:
        if tree.steps != step - 1:
            raise RuntimeError(f"release tree at step {tree.steps}, expected {step - 1}")
        tree.append(release_noise.flatten(statistics, budget.derived_n))

    scope_bodies = []
    summary: dict[str, Any] = {"partials": inputs.partials, "participation": participation, "scopes": []}
    for s in inputs.scopes:
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
        scope_summary: dict[str, Any] = {"scope": s.name, "window": s.window, "n": n}
        try:
            if noisy is None:
                raise Withheld(f"the release tree's horizon of {tree.horizon} epochs is exhausted")
            if s.name in adapter.withheld_scopes:
                raise Withheld(adapter.withheld_scopes[s.name])
            if noisy.n < policy.min_reports:  # decided on the noisy count: post-processing
                raise Withheld(f"fewer than min_reports ({policy.min_reports}) reports (noisy count)")
            raw = None
            if adapter.needs_raw_reports:
                assert inputs.raw is not None
                stored, raw = inputs.raw.scope(s.start, s.end)  # no copy when the scope is all of them
                scope_summary["raw_reports"] = stored
                if stored != n:
                    raise Withheld("raw reports of this scope are no longer stored (retention): discovery needs them")
            body["estimates"] = adapter.estimate_scope(sdk, ScopeInputs(noisy, budget, noise, raw, inputs.dictionary))
        except Withheld as withheld:
            body["status"] = "withheld"
            body["reason"] = str(withheld)
        scope_bodies.append(body)
        summary["scopes"].append(scope_summary)

    start_at = c.epoch_start + timedelta(seconds=c.epoch_seconds * epoch)
    document = {
        "format": FORMAT,
        "collection_id": c.id,
        "kind": c.kind,
        "config_hash": c.config_hash,
        "release": inputs.number,
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
        "computation": computation_note(c),
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
        inputs=inputs,
        policy=policy,
        participation=participation,
        body=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        summary=summary,
        postprocessing=adapter.postprocessing,
    )


def computation_note(c: CollectionRuntime) -> dict[str, Any]:
    sdk = sdk_of(c)
    return {
        "protocol": {k: sdk.config[k] for k in ("mechanism", "protocol", "epsilon") if k in sdk.config},
        "estimator": ADAPTERS[c.kind].estimator_note(),
        "interval": "frequency ± z·sqrt(variance), z = Φ⁻¹(0.975) (normal approximation)",
        "aggregates": "epoch = the tree's leaf of the epoch; cumulative and window w = the sum of the tree's "
        "noisy dyadic nodes covering the scope's epochs",
        "statistics": "each epoch's aggregate (counts, n) gets discrete Gaussian noise in the release tree "
        "(see participation); every number below is computed from the noisy integers only",
        "variance": "the SDK's plug-in closed-form variance at the noisy n, plus the variance the central "
        "noise adds (delta method over the noisy statistics)",
        "counts": "frequency × max(0, participation.count): exact report counts are never published",
    }
