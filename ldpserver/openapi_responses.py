"""Every status code and content type an operation can answer, in the OpenAPI document.

flask-openapi3 lists what each view declares; the answers that come from the layers in
front of every view are added here, so that a client written from the document alone
(and schemathesis in strict mode, tests/system/test_schemathesis.py) meets no surprise:

| status | when | operations |
| --- | --- | --- |
| 400 | malformed JSON, a NUL byte in the path or a query parameter | all |
| 401, 403 | missing/invalid key, wrong role | protected |
| 404 | no such collection or release | with path parameters |
| 413, 415 | body over ``LDP_MAX_BODY_BYTES`` (declared or chunked), not JSON | with a body |
| 429 | over the per-key rate limit (``Retry-After``) | protected |
| 503 | database unavailable (``Retry-After``) | protected, ``/readyz`` |

Operations that also serve CSV (they document 406) list ``text/csv`` for their 200.
"""

from __future__ import annotations

from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_REF = {"schema": {"$ref": "#/components/schemas/Problem"}}
_DESCRIPTIONS = {
    "400": "Bad request (malformed JSON, a NUL byte in the path or a query parameter)",
    "401": "Missing or invalid API key",
    "403": "This key's role may not use this endpoint",
    "404": "Not found",
    "413": "Request body too large",
    "415": "Unsupported media type (send application/json)",
    "429": "Too many requests for this key (Retry-After)",
    "503": "Service unavailable: the database cannot be reached (Retry-After)",
}
_HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}, "revision": {"type": "string"}},
    "required": ["status"],
}


def _problem(status: str) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[status], "content": {PROBLEM_MEDIA_TYPE: dict(_PROBLEM_REF)}}


def complete_responses(spec: dict[str, Any]) -> None:
    """Add the generic answers to every operation of ``spec`` (in place)."""
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            statuses = {"400"}
            if path in ("/healthz", "/readyz"):
                responses["200"] = {
                    "description": "alive" if path == "/healthz" else "ready",
                    "content": {"application/json": {"schema": _HEALTH}},
                }
                responses.pop("422", None)  # no parameters to validate
                if path == "/readyz":
                    statuses.add("503")
            if operation.get("security"):
                statuses |= {"401", "403", "429", "503"}
            if "{" in path:
                statuses.add("404")
            if method.lower() in ("post", "put", "patch"):
                statuses |= {"413", "415"}
            for status in sorted(statuses):
                responses.setdefault(status, _problem(status))
            if "406" in responses:
                for ok in ("200",):
                    content = responses.get(ok, {}).get("content")
                    if content is not None:
                        content.setdefault("text/csv", {"schema": {"type": "string"}})
