"""Continual release: release now (admin), the immutable release log, estimates, time series,
heavy hitters (analysts; the release log also for auditors). docs/releases.md has the rules."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import collection_or_404, json_response, now, operation, state
from ldpserver.auth import current_principal
from ldpserver.csv_cells import safe_cell
from ldpserver.db import read_transaction
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS, SeriesQueryError
from ldpserver.schemas.collections import CollectionPath
from ldpserver.schemas.releases import (
    EstimatesPage,
    EstimatesQuery,
    ReleaseCreated,
    ReleaseDocument,
    ReleaseList,
    ReleaseListQuery,
    ReleasePath,
    ReleaseQuery,
    ReleaseRequest,
    TimeseriesPage,
    TimeseriesQuery,
)
from ldpserver.services import release_store as store
from ldpserver.services import release_views as views
from ldpserver.services import releases as service

TAG = Tag(name="releases", description="continual release: immutable numbered releases, estimates, time series")
PREFIX = "/v1/collections"


def _wants_csv(explicit: str | None) -> bool:
    if explicit is not None:
        return explicit == "csv"
    if not request.headers.get("Accept"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    if best is None:
        raise ProblemError("not-acceptable", "releases and estimates are served as application/json or text/csv")
    return best == "text/csv"


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...], filename: str, headers: dict[str, str]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _cell(row[k])) for k in columns})
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: the CSV carries the same numbers as the JSON
    return safe_cell(value)  # strings only: a number (even negative) stays a number


def _next_link(path: str, params: dict[str, Any], cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    query = {k: v for k, v in params.items() if v is not None and k != "cursor"}
    query["cursor"] = cursor
    return {"Link": f'<{path}?{urlencode(query)}>; rel="next"', "X-Next-Cursor": cursor}


def _release_or_404(conn, collection_id: str, number: int | None):
    if number is None:
        number = views.latest_number(conn, collection_id)
        if number is None:
            raise ProblemError("not-found", f"collection {collection_id!r} has no release yet")
    row = store.release_row(conn, collection_id, number=number)
    if row is None:
        raise ProblemError("not-found", f"collection {collection_id!r} has no release {number}")
    return row


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("releases", __name__, url_prefix=PREFIX, abp_tags=[TAG])

    rule = f"{PREFIX}/<collection_id>/releases"
    extras, errors = operation("POST", rule, 404, 409, 503)

    @bp.post(
        "/<collection_id>/releases",
        responses={200: ReleaseCreated, 201: ReleaseCreated, **errors},
        summary="Close and release epochs now (admin); idempotent per epoch",
        **extras,
    )
    def create_release(path: CollectionPath, body: ReleaseRequest):
        """With ``{}`` (a JSON body is required): release every due epoch (``current > epoch + grace``).
        With ``{"epoch": e}``: close epoch e (even inside its grace period) and release it, and
        every earlier unreleased epoch first, in order; ``"force": true`` is needed for the
        current epoch; future epochs are refused. 201 when a release was created, 200 when
        everything asked for already existed."""
        collection = collection_or_404(path.collection_id)
        outcome = service.request_release(
            state().engine,
            collection,
            now(),
            epoch=body.epoch,
            force=body.force,
            trigger="admin",
            requested_by=current_principal().key_id,
            context=state().releases,
        )
        return json_response(outcome.to_dict(), 201 if outcome.created else 200)

    extras, errors = operation("GET", rule, 404)

    @bp.get(
        "/<collection_id>/releases",
        responses={200: ReleaseList, **errors},
        summary="The collection's release log, oldest first (cursor-paginated)",
        **extras,
    )
    def list_releases(path: CollectionPath, query: ReleaseListQuery):
        collection_or_404(path.collection_id)
        with read_transaction(state().engine) as conn:
            items, cursor = views.list_releases(conn, path.collection_id, query.cursor, query.limit)
        headers = _next_link(f"{PREFIX}/{path.collection_id}/releases", query.model_dump(), cursor)
        return json_response({"items": items, "next_cursor": cursor}, headers=headers)

    rule = f"{PREFIX}/<collection_id>/releases/<int:number>"
    extras, errors = operation("GET", rule, 404, 406)

    @bp.get(
        "/<collection_id>/releases/<int:number>",
        responses={200: ReleaseDocument, **errors},
        summary="One release: the stored document, byte for byte (or its estimates as CSV)",
        **extras,
    )
    def get_release(path: ReleasePath, query: ReleaseQuery):
        """JSON: the exact stored bytes (``ETag`` and ``X-Release-SHA256`` carry their
        SHA-256). CSV (``?format=csv`` or ``Accept: text/csv``): one row per estimate."""
        collection_or_404(path.collection_id)
        as_csv = _wants_csv(query.format)
        with read_transaction(state().engine) as conn:
            row = _release_or_404(conn, path.collection_id, path.number)
        headers = {"X-Release-SHA256": row.sha256, "X-Release-Number": str(row.number)}
        if as_csv:
            rows = views.estimate_rows(json.loads(row.body))
            return _csv(rows, views.ROW_COLUMNS, f"release-{row.number}.csv", headers)
        response = Response(row.body.encode("utf-8"), mimetype="application/json")
        for name, value in headers.items():
            response.headers[name] = value
        response.set_etag(row.sha256)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response.make_conditional(request)

    def _rows_page(collection, query, hitters_only: bool):
        with read_transaction(state().engine) as conn:
            if query.cursor:
                number, offset = views.decode_cursor(query.cursor, 2)
                if query.release is not None and query.release != number:
                    raise ProblemError("validation", "cursor belongs to another release")
            else:
                number, offset = query.release, 0
            row = _release_or_404(conn, collection.id, number)
        rows = views.estimate_rows(
            json.loads(row.body),
            scope=query.scope,
            window=query.window,
            attribute=query.attribute,
            party=query.party,
            hitters_only=hitters_only,
        )
        page = rows[offset : offset + query.limit]
        cursor = (
            views.encode_cursor(int(row.number), offset + query.limit) if offset + query.limit < len(rows) else None
        )
        return row, page, cursor

    def _rows_response(collection, query, row, page, cursor, name: str):
        headers = _next_link(f"{PREFIX}/{collection.id}/{name}", query.model_dump(), cursor)
        headers["X-Release-Number"] = str(row.number)
        if _wants_csv(query.format):
            return _csv(page, views.ROW_COLUMNS, f"{name}-{row.number}.csv", headers)
        body = {
            "collection_id": collection.id,
            "release": int(row.number),
            "epoch": int(row.epoch),
            "sha256": row.sha256,
            "items": page,
            "next_cursor": cursor,
        }
        return json_response(body, headers=headers)

    rule = f"{PREFIX}/<collection_id>/estimates"
    extras, errors = operation("GET", rule, 404, 406)

    @bp.get(
        "/<collection_id>/estimates",
        responses={200: EstimatesPage, **errors},
        summary="Estimates of the latest release (or ?release=n), one row per value; JSON or CSV",
        **extras,
    )
    def get_estimates(path: CollectionPath, query: EstimatesQuery):
        """Rows of every scope (filter with scope / window / attribute / party), each with its
        95 % interval, the post-processed value and the noisy participation count. Pages of
        ``limit`` rows; ``next_cursor`` stays on the same release."""
        collection = collection_or_404(path.collection_id)
        _wants_csv(query.format)
        row, page, cursor = _rows_page(collection, query, hitters_only=False)
        return _rows_response(collection, query, row, page, cursor, "estimates")

    rule = f"{PREFIX}/<collection_id>/heavy-hitters"
    extras, errors = operation("GET", rule, 404, 406)

    @bp.get(
        "/<collection_id>/heavy-hitters",
        responses={200: EstimatesPage, **errors},
        summary="Top items of the latest heavy-hitter release (global and per party); JSON or CSV",
        **extras,
    )
    def get_heavy_hitters(path: CollectionPath, query: EstimatesQuery):
        collection = collection_or_404(path.collection_id)
        if not ADAPTERS[collection.kind].has_heavy_hitters:
            raise ProblemError(
                "not-found", f"collection {collection.id!r} is a {collection.kind} collection: it has no heavy hitters"
            )
        _wants_csv(query.format)
        row, page, cursor = _rows_page(collection, query, hitters_only=True)
        return _rows_response(collection, query, row, page, cursor, "heavy-hitters")

    rule = f"{PREFIX}/<collection_id>/timeseries"
    extras, errors = operation("GET", rule, 404, 406)

    @bp.get(
        "/<collection_id>/timeseries",
        responses={200: TimeseriesPage, **errors},
        summary="One item's estimate across releases (per epoch, cumulative or a window); JSON or CSV",
        **extras,
    )
    def get_timeseries(path: CollectionPath, query: TimeseriesQuery):
        """One point per release, oldest first (cursor-paginated): the item's estimate with its
        interval and post-processed value, or the reason there is none (``withheld``,
        ``missing``, ``not_in_top``). Histograms take the value's index as ``item``; multidim
        also needs ``attribute``; heavy hitters take the item itself (and optionally ``party``)."""
        collection = collection_or_404(path.collection_id)
        as_csv = _wants_csv(query.format)
        _check_series_query(collection, query)
        with read_transaction(state().engine) as conn:
            points, cursor = views.timeseries(
                conn,
                collection,
                item=query.item,
                scope=query.scope,
                window=query.window,
                attribute=query.attribute,
                party=query.party,
                cursor=query.cursor,
                limit=query.limit,
            )
        headers = _next_link(f"{PREFIX}/{collection.id}/timeseries", query.model_dump(), cursor)
        if as_csv:
            return _csv(points, views.ROW_COLUMNS, "timeseries.csv", headers)
        body = {
            "collection_id": collection.id,
            "item": query.item,
            "scope": query.scope,
            "window": query.window,
            "attribute": query.attribute,
            "party": query.party,
            "points": points,
            "next_cursor": cursor,
        }
        return json_response(body, headers=headers)

    return bp


def _invalid(path: str, message: str) -> ProblemError:
    return ProblemError(
        "validation", f"{path}: {message}", errors=[{"path": path, "message": message, "code": "invalid"}]
    )


def _check_series_query(collection, query: TimeseriesQuery) -> None:
    if query.scope == "window" and query.window is None:
        raise _invalid("/window", "scope=window needs the window length")
    if query.scope == "window":
        windows = collection.public.release.get("windows", [1])
        if query.window not in windows:
            raise _invalid("/window", f"not a configured window; the collection releases windows {windows}")
    sdk = collection.protocol.protocol if collection.protocol is not None else None
    try:
        ADAPTERS[collection.kind].check_series_query(collection.public, sdk, query)
    except SeriesQueryError as exc:
        raise _invalid(exc.path, exc.message) from None
