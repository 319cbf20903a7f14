"""/v1/collections: create (admin), list and read the public config (any valid key)."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import collection_or_404, json_response, now, operation, state
from ldpserver.auth import current_principal
from ldpserver.schemas.collections import (
    CollectionCreate,
    CollectionList,
    CollectionListQuery,
    CollectionOut,
    CollectionPath,
)
from ldpserver.services.collections import create_collection

TAG = Tag(name="collections", description="immutable measurement definitions and their public configs")


def _view(collection, at) -> dict:
    return CollectionOut.model_validate(collection.public_view(at)).model_dump(mode="json")


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("collections", __name__, url_prefix="/v1/collections", abp_tags=[TAG])

    extras, errors = operation("POST", "/v1/collections", 409)

    @bp.post("", responses={201: CollectionOut, **errors}, summary="Create a collection (admin)", **extras)
    def create(body: CollectionCreate):
        """Validate the mechanism with the SDK, check its privacy loss (OpenDP where it has the
        measurement), and store the immutable collection with its canonical config hash."""
        at = now()
        created = create_collection(state().engine, body, current_principal().key_id, at)
        collection = state().collections.get(created["id"])
        view = _view(collection, at)
        return json_response(view, 201, {"Location": f"/v1/collections/{collection.id}"})

    extras, errors = operation("GET", "/v1/collections")

    @bp.get("", responses={200: CollectionList, **errors}, summary="List collections", **extras)
    def list_collections(query: CollectionListQuery):
        at = now()
        principal = current_principal()
        items = [_view(c, at) for c in state().collections.list(query.kind) if principal.may_see(c.id)]
        return json_response({"items": items})

    extras, errors = operation("GET", "/v1/collections/<collection_id>", 404)

    @bp.get(
        "/<collection_id>",
        responses={200: CollectionOut, **errors},
        summary="Public config of one collection (what a device needs) with its hash",
        **extras,
    )
    def get_collection(path: CollectionPath):
        return json_response(_view(collection_or_404(path.collection_id), now()))

    return bp
