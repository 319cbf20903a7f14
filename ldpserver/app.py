"""The application factory: ``create_app(settings=None, clock=None)``.

Refuses to start (``DatabaseNotMigrated``, message says ``ldp migrate``) unless the
database schema is at the migrations' head.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import structlog
from flask import g, request
from flask_openapi3 import Info, OpenAPI
from sqlalchemy import Engine

from ldpserver import metrics
from ldpserver.api import register_blueprints
from ldpserver.auth import init_auth
from ldpserver.bodies import parse_json_body
from ldpserver.clock import Clock, utc_now
from ldpserver.config import Settings
from ldpserver.cors import init_cors
from ldpserver.db import make_engine
from ldpserver.errors import PROBLEM_MEDIA_TYPE, openapi_validation_callback, register_error_handlers
from ldpserver.logs import configure_logging
from ldpserver.nul_bytes import refuse_nul_in_url
from ldpserver.openapi_responses import complete_responses
from ldpserver.schema import check_at_head
from ldpserver.schemas.common import Problem
from ldpserver.services.collections import CollectionCache
from ldpserver.services.releases import ReleaseContext

API_VERSION = "1.0.0"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = structlog.get_logger("ldpserver.http")


@dataclass
class LdpState:
    settings: Settings
    engine: Engine
    collections: CollectionCache
    releases: ReleaseContext  # the central-noise source and release settings of admin releases


class LdpOpenAPI(OpenAPI):
    """OpenAPI 3.1 document with problem+json error bodies."""

    def generate_spec_json(self) -> None:
        super().generate_spec_json()
        for path_item in self.spec_json.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in (operation.get("responses") or {}).items():
                    content = response.get("content") or {}
                    if str(status)[0] in "45" and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = {
                            "schema": {"$ref": "#/components/schemas/Problem"},
                        }
                        del content["application/json"]
        complete_responses(self.spec_json)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    releases: ReleaseContext | None = None,
) -> Any:
    """The WSGI app. ``clock`` and ``releases`` (the central-noise source) are injectable so
    tests and the demo are deterministic; production uses the system clock and OpenDP."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    if engine is None:
        engine = make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )
    if settings.check_migrations:
        check_at_head(engine, settings.redacted_database_url())

    app = LdpOpenAPI(
        "ldpserver",
        info=Info(
            title="LDP analytics API",
            version=API_VERSION,
            description="Collections, idempotent report ingestion, the privacy-budget ledger and its audit.",
        ),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "description": "ldp_<id>_<secret>"}},
        validation_error_status=422,
        validation_error_model=Problem,
        validation_error_callback=openapi_validation_callback,
        doc_prefix="/openapi",
    )
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, CLOCK=clock or utc_now, LDP_SETTINGS=settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["ldp"] = LdpState(
        settings=settings,
        engine=engine,
        collections=CollectionCache(engine),
        releases=releases or ReleaseContext.default(),
    )

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    app.before_request(refuse_nul_in_url)  # before authentication: nothing with a NUL reaches SQL
    init_cors(app)  # preflights are answered before authentication (they carry no key)
    init_auth(app)
    app.before_request(parse_json_body)

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        started = g.get("started")
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        )
        return response

    register_error_handlers(app)
    register_blueprints(app)
    metrics.init_app(app)  # GET /metrics and per-request HTTP metrics (ldpserver/metrics.py)
    return app
