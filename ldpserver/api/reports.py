"""/v1/collections/{id}/reports: idempotent batch upload (client role)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import now, operation, state
from ldpserver.auth import current_principal
from ldpserver.errors import ProblemError
from ldpserver.schemas.collections import CollectionPath
from ldpserver.schemas.reports import ENVELOPE_VERSION, IngestRequest, IngestResponse
from ldpserver.services.devices import DeviceProof
from ldpserver.services.ingest import BatchResult, ingest

TAG = Tag(name="reports", description="batch upload of perturbed reports")
log = structlog.get_logger("ldpserver.api.reports")


def _results_response(result: BatchResult) -> Response:
    """The batch's results (``BatchResult.to_json``: orjson, or one join for a wholly accepted
    batch); anything orjson refuses — a rejected report's id echoed with a lone surrogate, which
    is no UTF-8 — takes the standard encoder with ASCII escapes (``\\ud800`` as it was sent)."""
    try:
        return Response(result.to_json(), mimetype="application/json")
    except TypeError:
        return Response(json.dumps(result.to_dict(), separators=(",", ":")), mimetype="application/json")


def check_wire_version(document: Any) -> None:
    """Refuse a whole body of another envelope version with one clear 400 (before per-report
    validation, which would otherwise reject every report of an old SDK one by one)."""
    if not isinstance(document, dict) or "reports" not in document:
        return  # the request model names what is missing
    wire = document.get("wire")
    if wire == ENVELOPE_VERSION and type(wire) is int:
        return
    sent = "no 'wire' field (version 1)" if "wire" not in document else f"wire = {wire!r}"
    raise ProblemError(
        "unsupported-wire-version",
        f"this server accepts report envelopes of wire version {ENVELOPE_VERSION} only; the body has {sent}. "
        f"Version 1 sent memo_count, which is no longer accepted: update the SDK "
        f'(send {{"wire": {ENVELOPE_VERSION}, "reports": [...]}} with no memo_count)',
        errors=[{"path": "/wire", "message": f"must be {ENVELOPE_VERSION}", "code": "unsupported_wire_version"}],
        supported=[ENVELOPE_VERSION],
    )


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("reports", __name__, url_prefix="/v1/collections", abp_tags=[TAG])
    extras, errors = operation("POST", "/v1/collections/<collection_id>/reports", 400, 404, 413, 415, 503)

    @bp.before_request
    def _wire_version() -> None:
        if request.method == "POST":
            check_wire_version(request.get_json(silent=True))

    @bp.post(
        "/<collection_id>/reports",
        responses={200: IngestResponse, **errors},
        summary="Upload a batch of reports (client)",
        **extras,
    )
    def upload(path: CollectionPath, body: IngestRequest):
        """One transaction per batch. Each report is accepted, a duplicate (its report_id was
        already accepted with the same body: a retried batch counts once) or rejected with a
        stable reason; good reports in a batch with bad ones are kept. Results come in
        request order. ``devices`` must hold the secret of every device reported for."""
        st = state()
        limit = st.settings.max_batch_reports
        if len(body.reports) > limit:
            raise ProblemError("too-many-reports", f"{len(body.reports)} reports in one batch; the limit is {limit}")
        collection = st.collections.get(path.collection_id)
        if collection is None:
            raise ProblemError("not-found", f"no collection {path.collection_id!r}")
        proof = DeviceProof(current_principal().key_id, body.devices)
        result = ingest(
            st.engine,
            collection,
            body.reports,
            now(),
            proof,
            per_device_epoch=st.settings.max_reports_per_device_epoch,
            device_key=st.settings.device_key_bytes,
        )
        log.info(
            "batch_ingested",
            collection_id=collection.id,
            reports=len(body.reports),
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=result.rejected,
        )
        return _results_response(result)

    return bp
