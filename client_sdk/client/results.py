"""What the runtime returns: report receipts, budget status, rejected reports, flush results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BudgetStatus", "FlushResult", "RejectedReport", "ReportReceipt", "Spend"]


@dataclass(frozen=True)
class ReportReceipt:
    """What ``report()`` queued: the report id and epoch, and what it charged."""

    report_id: str
    collection_id: str
    epoch: int
    window: int
    units: int
    epsilon_charged: float
    memo_count: int | None
    new_memo: bool


@dataclass(frozen=True)
class Spend:
    spent: float
    cap: float | None
    remaining: float | None
    units: int
    max_units: int | None

    @property
    def remaining_units(self) -> int | None:
        return None if self.max_units is None else max(self.max_units - self.units, 0)


@dataclass(frozen=True)
class BudgetStatus:
    """The device ledger of one collection.

    ``lifetime`` and ``window`` (the current accounting window) count everything this device
    charged; of that, ``acknowledged`` the server accepted (its ledger holds exactly this
    for the device, or for memoized collections the lifetime bound, which is at least
    this: the memo account never leaves the device), ``pending`` waits in the outbox,
    ``rejected`` the server refused (still counted here: the perturbed report left the device).
    """

    collection_id: str
    unit: str  # "report" or "memo"
    unit_epsilon: float
    epoch: int
    window_index: int
    lifetime: Spend
    window: Spend
    acknowledged: float
    pending: float
    rejected: float
    acknowledged_units: int
    memo_count: int
    reports: int
    reports_accepted: int
    reports_duplicate: int
    reports_rejected: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lifetime"]["remaining_units"] = self.lifetime.remaining_units
        data["window"]["remaining_units"] = self.window.remaining_units
        return data


@dataclass(frozen=True)
class RejectedReport:
    report_id: str
    collection_id: str
    config_hash: str
    epoch: int
    memo_count: int | None
    units: int
    created_at: float
    rejected_at: float
    reason: str
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FlushResult:
    """What one ``flush()`` did. ``remaining`` reports are still queued (nothing is dropped)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    deferred: int = 0
    requests: int = 0
    remaining: int = 0
    timed_out: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        """Reports the server now holds (accepted now, or already: duplicates count as success)."""
        return self.accepted + self.duplicates

    @property
    def ok(self) -> bool:
        return self.remaining == 0 and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delivered": self.delivered, "ok": self.ok}
