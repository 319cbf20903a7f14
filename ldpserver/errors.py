"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Each problem has a stable ``type`` URI (``https://ldp.example/problems/<slug>``), a
``title``, the HTTP ``status``, a readable ``detail`` and, for validation errors, an
``errors`` list with JSON-pointer ``path``s. Bad input always gets a 4xx; only a bug
gives a 500, and its body says nothing about internals.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, cast

import structlog
from flask import Flask, Response, request
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

PROBLEM_BASE = "https://ldp.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger("ldpserver.errors")

#: what a 503 for a lost database tells the client to wait (a restart or failover takes seconds)
DATABASE_RETRY_AFTER_SECONDS = 5

# slug -> (status, title): the catalogue of problem types (documented in docs/api.md)
PROBLEMS: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "Malformed JSON"),
    "bad-request": (400, "Bad request"),
    "unsupported-wire-version": (400, "Unsupported report envelope version"),
    "unauthorized": (401, "Missing or invalid API key"),
    "forbidden": (403, "This key's role may not use this endpoint"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "conflict": (409, "Conflict"),
    "payload-too-large": (413, "Request body too large"),
    "too-many-reports": (413, "Too many reports in one batch"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "validation": (422, "Validation failed"),
    "invalid-config": (422, "Invalid collection configuration"),
    "privacy-check-failed": (422, "Declared epsilon is below the mechanism's privacy loss"),
    "kind-unavailable": (422, "Collection kind not available"),
    "unavailable": (503, "Service unavailable"),
    "internal": (500, "Internal server error"),
}


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if slug not in PROBLEMS:
            raise ValueError(f"unknown problem type {slug!r}")
        default_status, self.title = PROBLEMS[slug]
        self.slug = slug
        self.status = status or default_status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{slug}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(error: ProblemError) -> Response:
    response = Response(
        json.dumps(error.to_dict(), ensure_ascii=False), status=error.status, mimetype=PROBLEM_MEDIA_TYPE
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def json_pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as a JSON pointer (``/reports/3/client_id``)."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in loc]
    return "/" + "/".join(parts) if parts else ""


def validation_errors(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Field paths and messages of a pydantic error (never the offending input itself)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        out.append({"path": json_pointer((*prefix, *err["loc"])), "message": err["msg"], "code": err["type"]})
    return out


def validation_problem(exc: ValidationError, detail: str | None = None) -> ProblemError:
    errors = validation_errors(exc)
    if detail is None:
        first = errors[0] if errors else {"path": "", "message": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        detail = f"{first['path'] or 'request'}: {first['message']}{more}"
    return ProblemError("validation", detail, errors=errors)


def openapi_validation_callback(exc: ValidationError) -> Response:
    """flask-openapi3's hook for request-model validation errors."""
    return problem_response(validation_problem(exc))


_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProblemError)
    def _problem(error: ProblemError) -> Response:
        return problem_response(error)

    @app.errorhandler(ValidationError)
    def _validation(error: ValidationError) -> Response:
        return problem_response(validation_problem(error))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        if error.response is not None and error.response.mimetype == PROBLEM_MEDIA_TYPE:
            return cast(Response, error.response)  # already a problem (flask-openapi3 validation abort)
        status = error.code or 500
        slug = _HTTP_SLUGS.get(status)
        if slug is None:
            if status >= 500:
                slug = "internal"
            else:
                slug = "bad-request"
        detail = {
            404: f"no resource at {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body exceeds the limit of {app.config.get('MAX_CONTENT_LENGTH')} bytes",
        }.get(status, error.description or PROBLEMS[slug][1])
        problem = ProblemError(slug, detail, status=status)
        response = problem_response(problem)
        allowed = getattr(error, "valid_methods", None)  # MethodNotAllowed only
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeoutError)
    @app.errorhandler(sqlite3.OperationalError)  # the hot path's statements run on the raw drivers
    def _database_unavailable(error: Exception) -> Response:
        # the database is down, restarting or out of connections: the client should retry
        # later (docs/api.md promises 503 with Retry-After); the driver's text stays in the log
        log.warning("database_unavailable", path=request.path, method=request.method, error_type=type(error).__name__)
        problem = ProblemError(
            "unavailable",
            "the database is unavailable; retry later (uploads are idempotent)",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
        return problem_response(problem)

    try:  # psycopg is needed only with PostgreSQL
        import psycopg
    except ImportError:
        pass
    else:
        # a connection lost or terminated under a raw-driver statement (OperationalError: 08xxx, 57Pxx)
        app.register_error_handler(psycopg.OperationalError, _database_unavailable)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled_error", path=request.path, method=request.method, error_type=type(error).__name__)
        return problem_response(ProblemError("internal", "an unexpected error occurred; it has been logged"))
