"""A device's budget within one batch: its stored state, and the verdict on each of its new
reports (accepted and charged, a retry of one it accepted before, or refused past a cap)
in request order.

The rules (docs/algorithms.md, "What the ledger charges"): one unit per accepted report, or —
memoized collections — the lifetime bound topped up at the device's first accepted report
and nothing after, so the charge depends on participation only; a report is refused past
the lifetime cap or past the accounting window's cap, and a window older than the two kept
is closed to the device. ``services/ingest.py`` stores the resulting states and charges.

**Idempotency.** A device's row also keeps, in ``recent``, the reports of it that were
accepted in epochs a retry can still reach (``current - grace`` and later; an older epoch
is refused before this point), as comma-separated ``epoch:report_id:digest`` entries, the
digest being ``c`` and the decimal CRC-32 of the report's canonical payload
(:func:`payload_digest`; entries written before it hold the first 8 hex digits of the
payload's MD5, :func:`legacy_digest`, and are compared as such). A report
whose (epoch, report_id) is there is a ``duplicate`` when its digest matches (a retry
resends the same body) and a ``report_id_conflict`` otherwise; it is not charged again.
The device's row is locked for the batch, so two uploads of one report cannot both miss it.
"""

from __future__ import annotations

import hashlib
import operator
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple

from ldpserver.services.batch_check import Report
from ldpserver.services.collections import CollectionRuntime


class Candidate(NamedTuple):
    """A report staged for its device's verdict (built by :func:`candidates`, a batch at a time)."""

    index: int  # type: ignore[assignment]  # the report's place in the batch (shadows tuple.index)
    report: Report
    payload_json: str
    window: int
    #: :func:`payload_digest` of ``payload_json``, computed when the report is staged, before
    #: the transaction (not while its device rows are locked)
    digest: str


def payload_digest(payload_json: str) -> str:
    """What tells a retry (the same body) from a reused report_id: ``c`` and the decimal
    CRC-32 of the canonical payload (UTF-8) — a checksum, not a secret: a device that makes
    two bodies collide only turns its own conflicting report into a duplicate."""
    return "c" + str(zlib.crc32(payload_json.encode()))


def legacy_digest(payload_json: str) -> str:
    """The digest of ``recent`` entries written before :func:`payload_digest` (and by
    migration 0011): the first 8 hex digits of the MD5 of the canonical payload."""
    return hashlib.md5(payload_json.encode(), usedforsecurity=False).hexdigest()[:8]


def same_body(stored: str, cand: Candidate) -> bool:
    """Whether a stored ``recent`` digest is this candidate's payload's (either form)."""
    if stored.startswith("c"):
        return stored == cand.digest
    return stored == legacy_digest(cand.payload_json)


_C = "c".__add__


def candidates(
    indices: Iterable[int], reports: Iterable[Report], payload_jsons: Sequence[str], windows: Iterable[int]
) -> list[Candidate]:
    """Candidates of a batch's columns, their digests (:func:`payload_digest`) included: C
    calls mapped over the batch, no Python call per report."""
    digests = map(_C, map(str, map(zlib.crc32, map(str.encode, payload_jsons))))
    return list(
        map(tuple.__new__, repeat(Candidate), zip(indices, reports, payload_jsons, windows, digests, strict=True))
    )


def candidate(index: int, report: Report, payload_json: str, window: int) -> Candidate:
    """One candidate (tests, and anything staging a report on its own)."""
    return Candidate(index, report, payload_json, window, payload_digest(payload_json))


def recent_entry(epoch: int, report_id: str, digest: str) -> str:
    return f"{epoch}:{report_id}:{digest}"


def parse_recent(text: str | None) -> dict[tuple[int, str], str]:
    """``device_budgets.recent`` as {(epoch, report_id): digest}."""
    out: dict[tuple[int, str], str] = {}
    for entry in text.split(",") if text else ():
        epoch, report_id, digest = entry.split(":")
        out[(int(epoch), report_id)] = digest
    return out


def recent_text(entries: dict[tuple[int, str], str], lowest: int) -> str:
    """The entries a retry can still reach (epoch >= ``lowest``), as stored ("" for none)."""
    return ",".join([recent_entry(e, r, d) for (e, r), d in entries.items() if e >= lowest])


#: a device's stored state, in ``bulk.DEVICE_FIELDS`` order after the client id: units,
#: reports, memo_count, window_index, window_units, prev_window_units
StateRow = tuple[int, int, int, int | None, int, int]

#: one ledger charge, its values in ``ledger.CHARGE_FIELDS`` order: client_id, report_id,
#: epoch, window, units, epsilon, epsilon_record, epsilon_attribute, memo_count, neighbouring
Charge = tuple[Any, ...]


@dataclass(slots=True)
class DeviceState:
    units: int
    reports: int
    memo_count: int
    window_index: int | None
    window_units: int
    prev_window_units: int
    #: (epoch, report_id) -> payload digest of its accepted reports a retry can reach
    recent: dict[tuple[int, str], str] = field(default_factory=dict)

    @classmethod
    def new(cls) -> DeviceState:
        return cls(0, 0, 0, None, 0, 0)

    def units_in(self, window: int) -> int | None:
        """Units already charged in ``window`` (None: older than the two windows kept)."""
        if self.window_index is None or window > self.window_index:
            return 0
        if window == self.window_index:
            return self.window_units
        if window == self.window_index - 1:
            return self.prev_window_units
        return None

    def charge(self, window: int, units: int) -> None:
        if self.window_index is None or window > self.window_index:
            carried = self.window_units if self.window_index is not None and window == self.window_index + 1 else 0
            self.prev_window_units = carried
            self.window_units = 0
            self.window_index = window
        if window == self.window_index:
            self.window_units += units
        else:
            self.prev_window_units += units
        self.units += units


class DevicePlan:
    """One device's verdicts for this batch and the state they leave it in."""

    __slots__ = ("state", "accepted", "charges", "rejections", "repeats")

    def __init__(self, state: DeviceState) -> None:
        self.state = state
        self.accepted: list[Candidate] = []
        self.charges: list[tuple[int, Charge]] = []
        self.rejections: list[tuple[Candidate, str, str]] = []
        #: reports already accepted from this device: (report, same body?)
        self.repeats: list[tuple[Candidate, bool]] = []

    def refuse(self, cand: Candidate, reason: str, detail: str) -> None:
        self.rejections.append((cand, reason, detail))

    def row(self) -> StateRow:
        """The state to store (see :data:`StateRow`)."""
        st = self.state
        return (st.units, st.reports, st.memo_count, st.window_index, st.window_units, st.prev_window_units)


def plan_device(
    c: CollectionRuntime, state: DeviceState, cands: list[Candidate], per_epoch: int | None = None
) -> DevicePlan:
    """Judge one device's new reports (in request order) against its state. ``per_epoch``:
    the most reports the device may have accepted in one epoch (None: no limit) — what
    bounds its ``recent`` entries, which every batch of the device rewrites."""
    plan = DevicePlan(state)
    cap_l, cap_w = c.max_units_lifetime, c.max_units_window
    recent = state.recent
    in_epoch = Counter(epoch for epoch, _ in recent)  # accepted reports per live epoch
    for cand in cands:
        report = cand.report
        if recent and (stored := recent.get((report.epoch, report.report_id))) is not None:
            plan.repeats.append((cand, same_body(stored, cand)))
            continue
        if per_epoch is not None and in_epoch[report.epoch] >= per_epoch:
            plan.refuse(
                cand,
                "device_epoch_limit",
                f"this device already has {per_epoch} reports accepted in epoch {report.epoch} "
                "(LDP_MAX_REPORTS_PER_DEVICE_EPOCH)",
            )
            continue
        # memoized: the lifetime bound, topped up at the first accepted report, then
        # nothing — the charge depends on participation only, never on the device's values
        units = max(0, c.lifetime_units - state.units) if c.memoized else 1
        if units:
            in_window = state.units_in(cand.window)
            if in_window is None:
                plan.refuse(cand, "epoch_too_old", "the accounting window has moved on")
                continue
            if state.units + units > cap_l:
                plan.refuse(
                    cand,
                    "budget_exceeded_lifetime",
                    f"this device has spent {state.units * c.charge_epsilon:g} of its lifetime "
                    f"cap {c.cap_lifetime:g}; this report would cost {units * c.charge_epsilon:g}",
                )
                continue
            # memoized: window caps limit memo creation, which only the device sees (it
            # enforces them); the server's single charge is a lifetime bound, not a window spend
            if cap_w is not None and not c.memoized and in_window + units > cap_w:
                plan.refuse(
                    cand,
                    "budget_exceeded_window",
                    f"this device has spent {in_window * c.charge_epsilon:g} of its cap "
                    f"{c.cap_window:g} in accounting window {cand.window}",
                )
                continue
            state.charge(cand.window, units)
            plan.charges.append(
                (
                    cand.index,
                    (
                        report.client_id,
                        report.report_id,
                        report.epoch,
                        cand.window,
                        units,
                        units * c.charge_epsilon,
                        units * c.charge_epsilon_record,
                        units * c.charge_epsilon_attribute if c.charge_epsilon_attribute is not None else None,
                        None,  # memo_count: none since wire version 2
                        c.neighbouring,
                    ),
                )
            )
        state.reports += 1
        recent[report.epoch, report.report_id] = cand.digest
        in_epoch[report.epoch] += 1
        plan.accepted.append(cand)
    return plan


@dataclass(slots=True)
class BatchVerdicts:
    """Verdicts for many devices at once: their states and ``recent`` texts to store (by
    client id), accepted reports, charges (with the report's batch index), refusals and
    repeats of reports accepted before (with: same body?)."""

    rows: dict[str, StateRow] = field(default_factory=dict)
    recents: dict[str, str] = field(default_factory=dict)
    accepted: list[Candidate] = field(default_factory=list)
    charges: list[tuple[int, Charge]] = field(default_factory=list)
    rejections: list[tuple[Candidate, str, str]] = field(default_factory=list)
    repeats: list[tuple[Candidate, bool]] = field(default_factory=list)

    @classmethod
    def of_plans(cls, plans: dict[str, DevicePlan], lowest: int) -> BatchVerdicts:
        """``lowest``: the oldest epoch a report is accepted for now (``recent`` keeps no older)."""
        out = cls(
            {cl: plan.row() for cl, plan in plans.items()},
            {cl: recent_text(plan.state.recent, lowest) for cl, plan in plans.items()},
        )
        for plan in plans.values():
            out.accepted += plan.accepted
            out.charges += plan.charges
            out.rejections += plan.rejections
            out.repeats += plan.repeats
        return out

    def without(self, clients: set[str]) -> BatchVerdicts:
        """These verdicts minus the given devices' (to be judged again from their stored state)."""
        return BatchVerdicts(
            {cl: row for cl, row in self.rows.items() if cl not in clients},
            {cl: text for cl, text in self.recents.items() if cl not in clients},
            [cand for cand in self.accepted if cand.report.client_id not in clients],
            [(i, charge) for i, charge in self.charges if charge[0] not in clients],
            [r for r in self.rejections if r[0].report.client_id not in clients],
            [r for r in self.repeats if r[0].report.client_id not in clients],
        )

    def merge(self, other: BatchVerdicts) -> None:
        self.rows.update(other.rows)
        self.recents.update(other.recents)
        self.accepted += other.accepted
        self.charges += other.charges
        self.rejections += other.rejections
        self.repeats += other.repeats


_WINDOW = attrgetter("window")
_INDEX = attrgetter("index")
_DIGEST = attrgetter("digest")
_REPORT = attrgetter("report")
_CLIENT_ID = attrgetter("client_id")
_REPORT_ID = attrgetter("report_id")
_EPOCH = attrgetter("epoch")
_CHARGE_HEAD = attrgetter("client_id", "report_id", "epoch")  # a charge's first values (ledger.CHARGE_FIELDS)


def plan_new_singles(c: CollectionRuntime, cands: list[Candidate]) -> BatchVerdicts:
    """Verdicts for devices that have no stored state and one new report each (the common
    batch). Such a verdict depends only on the report's accounting window, so it is
    :func:`plan_device`'s, computed once per window and applied to every report in it; equal
    to planning each device on its own (tested). The devices of one window share one state
    tuple, and a charge is its report's three values joined to the window's shared tail.
    Each accepted report is its device's one ``recent`` entry."""
    windows = set(map(_WINDOW, cands))
    probes = {w: plan_device(c, DeviceState.new(), [next(x for x in cands if x.window == w)]) for w in windows}
    out = BatchVerdicts()
    for window, probe in probes.items():
        group = cands if len(probes) == 1 else [cand for cand in cands if cand.window == window]
        # columns by C calls mapped over the group (no Python call per report)
        reports = list(map(_REPORT, group))
        clients = list(map(_CLIENT_ID, reports))
        out.rows.update(dict.fromkeys(clients, probe.row()))
        if probe.rejections:
            _, reason, detail = probe.rejections[0]
            out.rejections += [(cand, reason, detail) for cand in group]
            out.recents.update(dict.fromkeys(clients, ""))
            continue
        # recent_entry(epoch, report_id, digest) of each: "epoch:report_id:digest"
        epochs, report_ids = map(str, map(_EPOCH, reports)), map(_REPORT_ID, reports)
        entries = map(":".join, zip(epochs, report_ids, map(_DIGEST, group), strict=True))
        out.recents.update(zip(clients, entries, strict=True))
        out.accepted += group
        if probe.charges:
            tail = probe.charges[0][1][3:]  # window, units, epsilon, ... : the same for the whole group
            # (client_id, report_id, epoch) of each report, then the shared tail
            heads = map(_CHARGE_HEAD, reports)
            out.charges += zip(map(_INDEX, group), map(operator.add, heads, repeat(tail, len(reports))), strict=True)
    if len(probes) > 1:  # in batch order, as planning device by device gives them
        out.accepted.sort(key=lambda cand: cand.index)
    return out
