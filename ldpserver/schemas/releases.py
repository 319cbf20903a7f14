"""Release models: the admin's release request, the release log, estimates and time series.

A release document itself (``GET /v1/collections/{id}/releases/{n}``) is served as the
stored bytes; :class:`ReleaseDocument` describes its top level (docs/releases.md has the
full format).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ldpserver.schemas.collections import CollectionPath

Format = Literal["json", "csv"]
ScopeName = Literal["epoch", "cumulative", "window"]


class ReleaseRequest(BaseModel):
    """Release now. Without ``epoch``: every due epoch (``current > e + grace``). With
    ``epoch``: that epoch (and every earlier unreleased one, in order), closing it early if
    it is still in its grace period; the current epoch needs ``force``; future epochs are
    refused. An epoch already released returns its existing release (idempotent)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"epoch": 41}, {}]})

    epoch: int | None = Field(default=None, ge=-(2**62), le=2**62, description="the epoch to close and release")
    force: bool = Field(default=False, description="allow closing and releasing the current epoch")


class ReleaseSummary(BaseModel):
    number: int = Field(description="release number, 1, 2, ... per collection")
    epoch: int
    released_at: str
    sha256: str = Field(description="SHA-256 (hex) of the release document's bytes")
    config_hash: str
    trigger: str = Field(description="scheduler, admin or cli")
    postprocessing: str = Field(description="norm-sub (histograms) or hierarchical-consistency (heavy hitters)")
    url: str


class ReleaseCreated(BaseModel):
    created: list[int] = Field(description="numbers of the releases this request created (empty: all existed)")
    releases: list[ReleaseSummary]


class ReleaseList(BaseModel):
    items: list[ReleaseSummary]
    next_cursor: str | None


class ReleaseListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=500)


class ReleasePath(CollectionPath):
    number: int = Field(ge=1, le=2**31 - 1)


class ReleaseQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Format | None = Field(default=None, description="csv: the estimates as CSV; overrides Accept")


class ParticipationOut(BaseModel):
    count: float = Field(description="noisy report count of the scope from the release tree (central DP, ε_release)")
    variance: float
    ci_lower: float
    ci_upper: float


class ScopeOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    scope: ScopeName
    window: int | None
    from_epoch: int
    to_epoch: int
    epochs: int
    complete: bool
    participation: ParticipationOut | None
    status: Literal["released", "withheld"]
    reason: str | None
    estimates: dict[str, Any] | None


class ReleaseDocument(BaseModel):
    """The stored release document (canonical JSON: sorted keys, no spaces)."""

    model_config = ConfigDict(extra="allow")

    format: str
    collection_id: str
    kind: str
    config_hash: str
    release: int
    epoch: int
    epoch_start: str
    epoch_end: str
    released_at: str
    trigger: str
    policy: dict[str, Any]
    ci_level: float
    postprocessing: dict[str, Any]
    computation: dict[str, Any]
    participation: dict[str, Any]
    scopes: list[ScopeOut]


class EstimatesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: int | None = Field(default=None, ge=1, le=2**31 - 1, description="a release number (default: the latest)")
    scope: ScopeName | None = None
    window: int | None = Field(default=None, ge=1, le=100_000)
    attribute: int | None = Field(default=None, ge=0, le=2**31 - 1, description="multidim: one attribute")
    party: str | None = Field(default=None, max_length=64, description="heavy hitters: one party's list")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=1000, ge=1, le=10_000)
    format: Format | None = None


class EstimateRow(BaseModel):
    release: int
    epoch: int
    scope: ScopeName
    window: int | None
    from_epoch: int
    to_epoch: int
    complete: bool
    status: str
    reason: str | None
    attribute: int | None
    party: str | None
    rank: int | None
    item: int | str | None
    frequency: float | None
    variance: float | None
    ci_lower: float | None
    ci_upper: float | None
    postprocessed: float | None
    count: float | None
    participation: float | None
    participation_variance: float | None
    participation_ci_lower: float | None
    participation_ci_upper: float | None


class EstimatesPage(BaseModel):
    collection_id: str
    release: int
    epoch: int
    sha256: str
    items: list[EstimateRow]
    next_cursor: str | None


class TimeseriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=256, description="value index (histograms) or item (heavy hitters)")
    scope: ScopeName = "epoch"
    window: int | None = Field(default=None, ge=1, le=100_000, description="scope=window: the window length")
    attribute: int | None = Field(default=None, ge=0, le=2**31 - 1, description="multidim: the attribute (required)")
    party: str | None = Field(default=None, max_length=64, description="heavy hitters: a party's own list")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=200, ge=1, le=1000)
    format: Format | None = None


class TimeseriesPage(BaseModel):
    collection_id: str
    item: str
    scope: ScopeName
    window: int | None
    attribute: int | None
    party: str | None
    points: list[EstimateRow]
    next_cursor: str | None
