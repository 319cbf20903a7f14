"""Reading published releases: pagination cursors, the release list, estimate rows (the JSON
rows of ``/estimates`` and ``/heavy-hitters`` and every CSV) and one item's time series."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sqlalchemy import Connection, func, select

from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS
from ldpserver.services.collections import CollectionRuntime
from ldpserver.services.release_store import releases_t, summary

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


def _scope_row(body: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """A row of ``ROW_COLUMNS`` with the release's and the scope's fields; no estimate yet."""
    part = s["participation"] or {}
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    return row | {
        "release": body["release"],
        "epoch": body["epoch"],
        "scope": s["scope"],
        "window": s["window"],
        "from_epoch": s["from_epoch"],
        "to_epoch": s["to_epoch"],
        "complete": s["complete"],
        "status": s["status"],
        "reason": s["reason"],
        "participation": part.get("count"),
        "participation_variance": part.get("variance"),
        "participation_ci_lower": part.get("ci_lower"),
        "participation_ci_upper": part.get("ci_upper"),
    }


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
        base = _scope_row(body, s)
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
    absent_item: tuple[str, str],
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
    rows = [r for r in rows if r["party"] == party or r["status"] != "released"]
    for r in rows:
        if r["item"] is not None and str(r["item"]) == item:
            return {k: r.get(k) for k in SERIES_COLUMNS}
    point = _scope_row(body, s) | {"attribute": attribute, "party": party, "item": item}
    if s["status"] == "released":
        if rows and rows[0]["status"] == "missing":
            point["status"], point["reason"] = "missing", rows[0]["reason"]
        else:
            point["status"], point["reason"] = absent_item
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
        point = series_point(json.loads(row.body), ADAPTERS[c.kind].absent_item, item, scope, window, attribute, party)
        if point is not None:
            points.append(point)
    next_cursor = encode_cursor(int(rows[limit - 1].number)) if len(rows) > limit else None
    return points, next_cursor
