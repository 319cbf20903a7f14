"""Auditor views: the ledger, per-collection budget summaries, chain verification, rejections."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LedgerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(default=None, max_length=40)
    client_id: str | None = Field(default=None, max_length=64)
    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of the previous page")
    limit: int = Field(default=500, ge=1, le=10_000)
    format: Literal["json", "csv"] | None = Field(default=None, description="overrides the Accept header")


class LedgerRow(BaseModel):
    collection_id: str
    seq: int
    client_id: str
    report_id: str
    epoch: int
    window: int
    units: int
    epsilon: float
    neighbouring: str
    epsilon_record: float
    epsilon_attribute: float | None
    memo_count: int | None
    created_at: str
    prev_hash: str = Field(description="the hash before this charge's row or block in the chain")
    row_hash: str = Field(description="the hash of this charge's row, or of the block holding it")
    block_seq: int | None = Field(
        description="the block holding this charge (its last charge's seq); null: a row of its own"
    )
    block_count: int | None = Field(description="how many charges that block holds; null: a row of its own")


class LedgerPage(BaseModel):
    items: list[LedgerRow]
    next_cursor: str | None


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(max_length=40)
    bins: int = Field(default=10, ge=1, le=100)


class HistogramBin(BaseModel):
    lower: float
    upper: float
    devices: int


class BudgetSummary(BaseModel):
    collection_id: str
    neighbouring: str
    charge_epsilon: float
    cap_lifetime: float
    cap_per_window: float | None
    window_epochs: int
    memoized: bool
    devices: int
    reports_accepted: int
    ledger_rows: int
    epsilon_total: float
    quantiles: dict[str, float] = Field(description="epsilon spent per device: p50, p90, p99, max")
    histogram: list[HistogramBin]
    max_spent: float
    max_over_cap: bool = Field(description="true would mean the cap was exceeded (never expected)")
    max_window_spent: float
    rejections: dict[str, int]


class VerifyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(default=None, max_length=40)
    cursor: str | None = Field(
        default=None,
        max_length=200,
        description="next_cursor of an incomplete answer: continue the walk where it stopped",
    )


class ChainProblem(BaseModel):
    seq: int
    problem: str
    detail: str


class ChainResult(BaseModel):
    collection_id: str
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    first_bad: ChainProblem | None
    complete: bool = Field(description="false: the time budget ran out inside this chain (see next_cursor)")
    from_seq: int = Field(description="the first row checked in this answer (1 unless resumed)")


class VerifyResult(BaseModel):
    ok: bool = Field(description="no bad row in what this answer checked")
    checked_at: datetime
    chains: list[ChainResult]
    complete: bool = Field(description="false: call again with cursor=next_cursor to check the rest")
    next_cursor: str | None
    rows_per_s: float = Field(description="rows checked per second in this answer")


class RejectionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(default=None, max_length=40)


class RejectionRow(BaseModel):
    collection_id: str
    reason: str
    count: int
    last_at: datetime


class RejectionList(BaseModel):
    items: list[RejectionRow]
    total: int
