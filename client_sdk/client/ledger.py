"""The device budget ledger: caps checked and charges counted in units, memos, device states.

Every function takes a connection inside a transaction of the
:class:`~client_sdk.client.store.StateStore`. The unit rules are the public config's
(:class:`client_sdk.public_config.BudgetRule`): a cap allows ``max_units`` charges of
``unit_epsilon``; the lifetime cap is checked first, then the accounting window's.

Tables (``docs/sdk.md``): ``budget`` (per collection counters), ``charges`` (one row per
charged report with its window and status: queued / acknowledged / rejected), ``memos``
(keyed by an HMAC of the memo key, never by the value) and ``device_states``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from client_sdk.client.config import CollectionConfig
from client_sdk.client.errors import DeviceBudgetExceededError
from client_sdk.client.results import BudgetStatus, Spend

#: the per-collection delivery counters of the ``budget`` table
OUTCOMES = ("accepted", "duplicates", "rejected")


def dumps(obj: Any) -> str:
    """The JSON text kept in state_dir (payloads, memos, device states)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def totals(conn: sqlite3.Connection, collection_id: str) -> tuple[int, int]:
    """(units charged over the lifetime, memos held) of a collection."""
    row = conn.execute("SELECT units, memo_count FROM budget WHERE collection_id = ?", (collection_id,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def window_units(conn: sqlite3.Connection, collection_id: str, window: int) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(units), 0) FROM charges WHERE collection_id = ? AND window = ?", (collection_id, window)
    ).fetchone()
    return int(row[0])


def check_caps(conn: sqlite3.Connection, cfg: CollectionConfig, units_total: int, window: int, units: int) -> None:
    """Raise :class:`DeviceBudgetExceededError` if ``units`` more would pass a cap."""
    policy = cfg.budget
    unit = policy.unit_epsilon
    common: dict[str, Any] = {"charge": units * unit, "memoized": policy.memoized}
    if units_total + units > policy.max_units_lifetime:
        raise DeviceBudgetExceededError(
            cfg.collection_id,
            "lifetime",
            spent=units_total * unit,
            cap=policy.cap_lifetime,
            units=units_total,
            max_units=policy.max_units_lifetime,
            **common,
        )
    if policy.max_units_window is not None:
        in_window = window_units(conn, cfg.collection_id, window)
        if in_window + units > policy.max_units_window:
            raise DeviceBudgetExceededError(
                cfg.collection_id,
                "window",
                spent=in_window * unit,
                cap=float(policy.cap_per_window or 0.0),
                units=in_window,
                max_units=policy.max_units_window,
                window=window,
                **common,
            )


def charge(
    conn: sqlite3.Connection,
    cfg: CollectionConfig,
    *,
    report_id: str,
    epoch: int,
    window: int,
    units: int,
    memo_count: int | None,
    total_memos: int,
    now: float,
) -> None:
    """Record one report: its charge (if ``units``) and the collection's counters."""
    collection_id = cfg.collection_id
    if units:
        conn.execute(
            "INSERT INTO charges (collection_id, report_id, epoch, window, units, epsilon, memo_count, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (collection_id, report_id, epoch, window, units, units * cfg.budget.unit_epsilon, memo_count, now),
        )
    conn.execute(
        "INSERT INTO budget (collection_id, units, memo_count, reports) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (collection_id) DO UPDATE SET units = units + excluded.units, "
        "memo_count = MAX(memo_count, excluded.memo_count), reports = reports + 1",
        (collection_id, units, total_memos),
    )


def count_outcome(conn: sqlite3.Connection, collection_id: str, outcome: str) -> None:
    """One more report ``accepted``, ``duplicates`` or ``rejected`` by the server."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    conn.execute(
        f"INSERT INTO budget (collection_id, {outcome}) VALUES (?, 1) "
        f"ON CONFLICT (collection_id) DO UPDATE SET {outcome} = {outcome} + 1",
        (collection_id,),
    )


# --- memos and device states (memoized collections) -----------------------------------------


def find_memo(conn: sqlite3.Connection, collection_id: str, key_hash: str) -> Any | None:
    row = conn.execute(
        "SELECT memo FROM memos WHERE collection_id = ? AND key_hash = ?", (collection_id, key_hash)
    ).fetchone()
    return None if row is None else json.loads(row[0])


def keep_memo(conn: sqlite3.Connection, cfg: CollectionConfig, key_hash: str, memo: Any, now: float) -> None:
    conn.execute(
        "INSERT INTO memos (collection_id, key_hash, config_hash, memo, created_at) VALUES (?, ?, ?, ?, ?)",
        (cfg.collection_id, key_hash, cfg.config_hash, dumps(memo), now),
    )


def device_state(conn: sqlite3.Connection, cfg: CollectionConfig) -> Any:
    """The collection's device state (LOLOHA's hash key, ...), made once and kept."""
    row = conn.execute(
        "SELECT state FROM device_states WHERE collection_id = ? AND config_hash = ?",
        (cfg.collection_id, cfg.config_hash),
    ).fetchone()
    if row is not None:
        return json.loads(row[0])
    state = cfg.perturber.new_state()
    conn.execute(
        "INSERT INTO device_states (collection_id, config_hash, state) VALUES (?, ?, ?)",
        (cfg.collection_id, cfg.config_hash, dumps(state)),
    )
    return state


# --- inspection ----------------------------------------------------------------------------------


def status(conn: sqlite3.Connection, cfg: CollectionConfig, epoch: int, window: int) -> BudgetStatus:
    """Spent and remaining epsilon of one collection, per window and over the lifetime."""
    collection_id = cfg.collection_id
    policy = cfg.budget
    unit = policy.unit_epsilon
    units_total, memo_count = totals(conn, collection_id)
    in_window = window_units(conn, collection_id, window)
    by_status = dict(
        conn.execute(
            "SELECT status, COALESCE(SUM(units), 0) FROM charges WHERE collection_id = ? GROUP BY status",
            (collection_id,),
        ).fetchall()
    )
    reports, accepted, duplicates, refused = conn.execute(
        "SELECT reports, accepted, duplicates, rejected FROM budget WHERE collection_id = ?", (collection_id,)
    ).fetchone() or (0, 0, 0, 0)

    def spend(units: int, cap: float | None, max_u: int | None) -> Spend:
        spent = units * unit
        return Spend(spent, cap, None if cap is None else max(cap - spent, 0.0), units, max_u)

    return BudgetStatus(
        collection_id=collection_id,
        unit=policy.unit,
        unit_epsilon=unit,
        epoch=epoch,
        window_index=window,
        lifetime=spend(units_total, policy.cap_lifetime, policy.max_units_lifetime),
        window=spend(in_window, policy.cap_per_window, policy.max_units_window),
        acknowledged=by_status.get("acknowledged", 0) * unit,
        pending=by_status.get("queued", 0) * unit,
        rejected=by_status.get("rejected", 0) * unit,
        acknowledged_units=int(by_status.get("acknowledged", 0)),
        memo_count=memo_count,
        reports=int(reports),
        reports_accepted=int(accepted),
        reports_duplicate=int(duplicates),
        reports_rejected=int(refused),
    )


def counters(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Per collection: units charged, memos, reports made / accepted / duplicates / rejected."""
    rows = conn.execute(
        "SELECT collection_id, units, memo_count, reports, accepted, duplicates, rejected FROM budget"
    ).fetchall()
    names = ("units", "memo_count", "reports", "accepted", "duplicates", "rejected")
    return {row[0]: dict(zip(names, (int(v) for v in row[1:]), strict=True)) for row in rows}
