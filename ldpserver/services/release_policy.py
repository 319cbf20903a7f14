"""A collection's release policy: scopes, ``min_reports`` and the central-DP budget of its
release tree (ε_release, δ, horizon, sensitivity), and the epochs its stream covers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ldpserver import release_noise
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS
from ldpserver.services.collections import CollectionRuntime


class ReleaseSettings(BaseSettings):
    """Server-wide defaults of the release tree's horizon (a collection's config may
    override it with ``release.horizon``; ε_release and δ are in the hashed config)."""

    model_config = SettingsConfigDict(env_prefix="LDP_RELEASE_", extra="ignore", frozen=True)

    horizon: int = Field(default=release_noise.DEFAULT_HORIZON, ge=2, le=1 << 30)


_noise: release_noise.VectorNoise | None = None


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
        sdk_of(c),
        c.public.release,
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
    release = c.public.release
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


def sdk_of(c: CollectionRuntime) -> Any:
    """The collection's SDK protocol object (a 422 problem when its kind is unavailable)."""
    if c.protocol is None:
        raise ProblemError("kind-unavailable", c.unavailable or "the collection's protocol is not available")
    return c.protocol.protocol
