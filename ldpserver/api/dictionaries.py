"""/v1/collections/<id>/dictionary: the candidate dictionary of a known-candidate heavy-hitter
collection (upload: analysts and admins; read its description: also auditors)."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from ldpserver.api.common import collection_or_404, json_response, now, operation, state
from ldpserver.auth import current_principal
from ldpserver.schemas.collections import CollectionPath
from ldpserver.schemas.dictionaries import DictionaryOut, DictionaryPut
from ldpserver.services import dictionaries as service

TAG = Tag(name="dictionaries", description="candidate dictionaries of known-candidate heavy-hitter collections")
RULE = "/v1/collections/<collection_id>/dictionary"


def build_blueprint() -> APIBlueprint:
    bp = APIBlueprint("dictionaries", __name__, url_prefix="/v1/collections", abp_tags=[TAG])

    extras, errors = operation("PUT", RULE, 404, 409)

    @bp.put(
        "/<collection_id>/dictionary",
        responses={200: DictionaryOut, **errors},
        summary="Upload (or replace) the candidate dictionary of a 'known' collection",
        **extras,
    )
    def put_dictionary(path: CollectionPath, body: DictionaryPut):
        """Validated and encoded by the SDK (distinct items of the domain, ≤ 10^6; up to
        LDP_MAX_DICTIONARY_BYTES of JSON). Releases from now on estimate its items; each names
        the dictionary's SHA-256."""
        collection = collection_or_404(path.collection_id)
        out = service.put_dictionary(state().engine, collection, list(body.items), current_principal().key_id, now())
        return json_response(out)

    extras, errors = operation("GET", RULE, 404, 409)

    @bp.get(
        "/<collection_id>/dictionary",
        responses={200: DictionaryOut, **errors},
        summary="The stored dictionary's SHA-256, size and upload time",
        **extras,
    )
    def get_dictionary(path: CollectionPath):
        return json_response(service.get_metadata(state().engine, collection_or_404(path.collection_id)))

    return bp
