"""Collection models: the admin's creation request and the public view devices read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ldpserver.release_noise import DEFAULT_DELTA as DEFAULT_RELEASE_DELTA
from ldpserver.release_noise import DEFAULT_EPSILON as DEFAULT_RELEASE_EPSILON

Kind = Literal["frequency", "multidim", "heavy_hitters", "longitudinal"]
PositiveEpsilon = Field(gt=0, le=100, allow_inf_nan=False)
#: the range of an epoch policy's start (UTC): epoch arithmetic stays far inside datetime's
START_MIN = datetime(1970, 1, 1, tzinfo=UTC)
START_MAX = datetime(9000, 1, 1, tzinfo=UTC)


class EpochPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=1, le=366 * 86400, description="epoch length in seconds (e.g. 3600, 86400)")
    start: AwareDatetime | None = Field(
        default=None,
        description="start of epoch 0 (whole seconds, with a time zone); default: the current epoch "
        "boundary, counted from the Unix epoch in UTC",
    )
    grace: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="reports are accepted for epochs current-grace .. current (unless closed)",
    )

    @field_validator("start")
    @classmethod
    def _whole_seconds(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.microsecond:
            raise ValueError("start must be a whole second")
        if value is not None:
            # bounded so that epoch arithmetic never leaves datetime's range (year 1 at +14:00
            # or 9999-12-31 at -14:00 overflowed: a 500)
            try:
                utc = value.astimezone(UTC)
            except OverflowError:
                utc = None
            if utc is None or not START_MIN <= utc < START_MAX:
                raise ValueError(f"start must lie in [{START_MIN:%Y-%m-%d}, {START_MAX:%Y-%m-%d}) UTC")
        return value


class ReleasePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    windows: list[int] = Field(
        default=[1],
        min_length=1,
        max_length=16,
        description="sliding-window lengths in epochs to release (1 = per epoch)",
    )
    cumulative: bool = Field(default=True, description="also release cumulative estimates")
    min_reports: int = Field(
        default=100, ge=1, le=10**9, description="withhold a scope whose noisy report count is below this"
    )
    epsilon: float = Field(
        default=DEFAULT_RELEASE_EPSILON,
        gt=0,
        le=10,
        strict=True,
        allow_inf_nan=False,
        description="ε_release: central (ε, δ)-DP of everything a release reader sees, per device-epoch "
        "(docs/privacy.md)",
    )
    delta: float = Field(
        default=DEFAULT_RELEASE_DELTA, gt=0, le=1e-3, strict=True, allow_inf_nan=False, description="δ of ε_release"
    )

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[int]) -> list[int]:
        if any(w < 1 or w > 100_000 for w in value):
            raise ValueError("window lengths must lie in [1, 100000] epochs")
        if len(set(value)) != len(value):
            raise ValueError("window lengths must be distinct")
        return sorted(value)


class BudgetPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap_lifetime: float = Field(gt=0, le=1e6, allow_inf_nan=False, description="epsilon a device may spend in total")
    cap_per_window: float | None = Field(
        default=None, gt=0, le=1e6, allow_inf_nan=False, description="epsilon a device may spend per window"
    )
    window_epochs: int = Field(default=1, ge=1, le=100_000, description="accounting window length in epochs")
    memoized: bool = Field(
        default=False,
        description="longitudinal collections only (required there; refused for other kinds): devices memoize "
        "their permanent response and charge epsilon_per_memo per new memo on the device; the server charges "
        "the lifetime bound (privacy.charge.lifetime_units) at a device's first report, nothing afterwards",
    )
    epsilon_per_memo: float | None = Field(
        default=None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="ε∞ charged per new memo (memoized only; default: the per-report epsilon)",
    )


class CollectionCreate(BaseModel):
    """An immutable collection; a change is a new collection."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "favourite colour",
                    "kind": "frequency",
                    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 128},
                    "epoch": {"seconds": 86400, "start": "2025-01-01T00:00:00Z", "grace": 1},
                    "release": {"windows": [1, 7], "min_reports": 100},
                    "budget": {"cap_lifetime": 30.0, "cap_per_window": 2.0, "window_epochs": 1},
                }
            ]
        },
    )

    name: str = Field(default="", max_length=200)
    kind: Kind
    mechanism: dict[str, Any] = Field(
        description='the SDK\'s mechanism config, e.g. {"mechanism": "oue", "epsilon": 1.0, "domain_size": 128}'
    )
    epsilon: float | None = Field(
        default=None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="declared epsilon per report (what the ledger charges); refused if below the computed "
        "loss; default: the computed loss",
    )
    neighbouring: str | None = Field(
        default=None,
        max_length=16,
        description="optional check of the notion the mechanism promises: 'record' (frequency, heavy hitters, "
        "longitudinal); 'tuple' or 'attribute' for multidim, set by the mechanism config's 'neighbouring'",
    )
    epoch: EpochPolicy
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)
    budget: BudgetPolicy
    parties: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="heavy_hitters only, optional: must equal the federated protocol's mechanism.parties "
        "(the public config lists them either way)",
    )

    @field_validator("parties")
    @classmethod
    def _parties(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        import re

        for party in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", party):
                raise ValueError(f"party names are 1-64 characters [A-Za-z0-9_.-], got {party!r}")
        if len(set(value)) != len(value):
            raise ValueError("party names must be distinct")
        return value


class CollectionOut(BaseModel):
    id: str
    name: str
    kind: str
    config: dict[str, Any] = Field(description="the public config a device needs; config_hash is its hash")
    config_hash: str = Field(description="sha256:<hex> of the canonical JSON of config")
    privacy: dict[str, Any] = Field(description="how the privacy loss was computed (OpenDP or closed form)")
    current_epoch: int
    created_at: datetime


class CollectionList(BaseModel):
    items: list[CollectionOut]


class CollectionPath(BaseModel):
    collection_id: str = Field(max_length=40)


class CollectionListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
