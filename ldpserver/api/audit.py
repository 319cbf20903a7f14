"""/v1/audit: the budget ledger, budget summaries, chain verification, rejection counters.

Auditor role only; every endpoint reads (GET), nothing here writes.
"""

from __future__ import annotations

import csv
import io
import time
from urllib.parse import urlencode

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import collection_or_404, json_response, now, operation, state
from ldpserver.csv_cells import safe_row
from ldpserver.db import read_transaction
from ldpserver.errors import ProblemError
from ldpserver.schemas.audit import (
    BudgetSummary,
    LedgerPage,
    LedgerQuery,
    RejectionList,
    RejectionsQuery,
    SummaryQuery,
    VerifyQuery,
    VerifyResult,
)
from ldpserver.schemas.devices import EnrolmentList, EnrolmentQuery
from ldpserver.services import ledger_verify
from ldpserver.services.audit import (
    LEDGER_COLUMNS,
    VERIFY_SECONDS,
    budget_summary,
    decode_verify_cursor,
    encode_verify_cursor,
    ledger_page,
    rejection_rows,
)
from ldpserver.services.devices import enrolments_per_day

TAG = Tag(name="audit", description="read-only views for auditors")


def _wants_csv(explicit: str | None) -> bool:
    if explicit is not None:
        return explicit == "csv"
    if not request.headers.get("Accept"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    if best is None:
        raise ProblemError("not-acceptable", "the ledger is served as application/json or text/csv")
    return best == "text/csv"


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("audit", __name__, url_prefix="/v1/audit", abp_tags=[TAG])

    extras, errors = operation("GET", "/v1/audit/ledger", 406)

    @bp.get(
        "/ledger",
        responses={200: LedgerPage, **errors},
        summary="Budget ledger rows, paginated (JSON, or CSV via Accept: text/csv or ?format=csv)",
        **extras,
    )
    def get_ledger(query: LedgerQuery):
        as_csv = _wants_csv(query.format)
        with read_transaction(state().engine) as conn:
            items, next_cursor = ledger_page(conn, query.collection, query.client_id, query.cursor, query.limit)
        headers = {}
        if next_cursor:
            params = {k: v for k, v in query.model_dump().items() if v is not None and k != "cursor"}
            params["cursor"] = next_cursor
            headers["Link"] = f'</v1/audit/ledger?{urlencode(params)}>; rel="next"'
            headers["X-Next-Cursor"] = next_cursor
        if not as_csv:
            return json_response({"items": items, "next_cursor": next_cursor}, headers=headers)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=LEDGER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for item in items:
            writer.writerow(safe_row(item, LEDGER_COLUMNS))
        response = Response(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'inline; filename="ledger.csv"'
        for name, value in headers.items():
            response.headers[name] = value
        return response

    extras, errors = operation("GET", "/v1/audit/summary", 404)

    @bp.get(
        "/summary",
        responses={200: BudgetSummary, **errors},
        summary="Per-collection budget totals: devices, spent-epsilon quantiles and histogram, max vs cap",
        **extras,
    )
    def get_summary(query: SummaryQuery):
        collection = collection_or_404(query.collection)
        with read_transaction(state().engine) as conn:
            return json_response(budget_summary(conn, collection, query.bins))

    extras, errors = operation("GET", "/v1/audit/verify", 404)

    @bp.get(
        "/verify",
        responses={200: VerifyResult, **errors},
        summary="Check the ledger's hash chains (all collections, or one); names the first bad row",
        **extras,
    )
    def get_verify(query: VerifyQuery):
        """Streams each chain (constant memory) until ``VERIFY_SECONDS`` have passed; a longer ledger
        answers ``complete: false`` with ``next_cursor``, and the auditor calls again with it
        (the cursor carries the last checked row's hash: nothing is trusted from the server's
        earlier answers that the auditor does not hold)."""
        if query.collection is not None:
            collection_or_404(query.collection)
        resume = decode_verify_cursor(query.cursor) if query.cursor is not None else None
        if resume is not None and query.collection is not None and resume[0] != query.collection:
            raise ProblemError(
                "validation",
                "cursor belongs to another collection's walk",
                errors=[{"path": "/cursor", "message": "cursor of another collection", "code": "invalid_cursor"}],
            )
        deadline = time.monotonic() + VERIFY_SECONDS
        started = time.perf_counter()
        with read_transaction(state().engine) as conn:
            ledger_verify.snapshot(conn)
            chains, stopped = ledger_verify.verify_all(conn, query.collection, resume=resume, deadline=deadline)
        rows = sum(chain.rows for chain in chains)
        body = {
            "ok": all(chain.ok for chain in chains),
            "checked_at": now().isoformat(),
            "chains": [chain.to_dict() for chain in chains],
            "complete": stopped is None,
            "next_cursor": encode_verify_cursor(*stopped) if stopped is not None else None,
            "rows_per_s": round(rows / max(time.perf_counter() - started, 1e-9), 1),
        }
        return json_response(body)

    extras, errors = operation("GET", "/v1/audit/rejections", 404)

    @bp.get(
        "/rejections",
        responses={200: RejectionList, **errors},
        summary="Rejected reports counted by collection and reason",
        **extras,
    )
    def get_rejections(query: RejectionsQuery):
        if query.collection is not None:
            collection_or_404(query.collection)
        with read_transaction(state().engine) as conn:
            rows = rejection_rows(conn, query.collection)
        return json_response({"items": rows, "total": sum(int(r["count"]) for r in rows)})

    extras, errors = operation("GET", "/v1/audit/enrolments")

    @bp.get(
        "/enrolments",
        responses={200: EnrolmentList, **errors},
        summary="Devices enrolled per client key and UTC day",
        **extras,
    )
    def get_enrolments(query: EnrolmentQuery):
        with read_transaction(state().engine) as conn:
            rows = enrolments_per_day(conn, query.key_id)
        return json_response({"items": rows, "total": sum(r["enrolments"] for r in rows)})

    return bp
