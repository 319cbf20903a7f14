"""/v1/collections/{id}/reports: idempotent batch upload (client role)."""

from __future__ import annotations

import structlog
from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import json_response, now, operation, state
from ldpserver.auth import current_principal
from ldpserver.errors import ProblemError
from ldpserver.schemas.collections import CollectionPath
from ldpserver.schemas.reports import IngestRequest, IngestResponse
from ldpserver.services.devices import DeviceProof
from ldpserver.services.ingest import ingest

TAG = Tag(name="reports", description="batch upload of perturbed reports")
log = structlog.get_logger("ldpserver.api.reports")


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("reports", __name__, url_prefix="/v1/collections", abp_tags=[TAG])
    extras, errors = operation("POST", "/v1/collections/<collection_id>/reports", 400, 404, 413, 415, 503)

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
        result = ingest(st.engine, collection, body.reports, now(), proof)
        log.info(
            "batch_ingested",
            collection_id=collection.id,
            reports=len(body.reports),
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=result.rejected,
        )
        return json_response(result.to_dict())

    return bp
