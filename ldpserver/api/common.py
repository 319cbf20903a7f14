"""Helpers shared by the resource modules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Response, current_app

from ldpserver.auth import roles_for
from ldpserver.clock import iso
from ldpserver.schemas.common import ERROR_RESPONSES, Problem

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def state() -> Any:
    return current_app.extensions["ldp"]


def now() -> Any:
    return current_app.config["CLOCK"]()


def collection_or_404(collection_id: str) -> Any:
    """The collection a path names, or a 404 problem."""
    from ldpserver.errors import ProblemError

    collection = state().collections.get(collection_id)
    if collection is None:
        raise ProblemError("not-found", f"no collection {collection_id!r}")
    return collection


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default),
        status=status,
        mimetype="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def operation(method: str, rule: str, *extra_statuses: int) -> tuple[dict[str, Any], dict[str | int, Any]]:
    """OpenAPI extras of a protected operation: its roles (from the auth table) and errors."""
    responses: dict[str | int, Any] = dict(ERROR_RESPONSES)
    for status in extra_statuses:
        responses[status] = Problem
    return {"openapi_extensions": {"x-roles": roles_for(method, rule)}, "security": SECURITY}, responses
