"""Who may call what: one declarative table, enforced before every request.

``ROUTE_ROLES`` maps (method, Flask rule) to the roles allowed; every ``/v1`` route must
appear in it (a route missing from the table is refused for everyone: fail closed), and
the service tests iterate over it (every route × every role × missing, malformed,
unknown and revoked keys). Auditors only read. ``PUBLIC_PREFIXES`` are served without a
key (liveness, readiness, the OpenAPI document and the docs page); ``/metrics`` is not one
of them (admin on the public listener; Prometheus scrapes its own loopback listener).

Header: ``Authorization: Bearer ldp_<id>_<secret>``. 401 for a missing, malformed,
unknown or revoked key; 403 for a valid key whose role is not allowed.

A key may be scoped to a list of collections (``ldp keys create --collections``): then a
route naming another collection (path ``collection_id`` or query ``collection``) is 403,
and an audit route over all collections needs ``?collection=`` (the collection listing is
filtered in its view). Enrolment counts are per key, not per collection: any auditor.
"""

from __future__ import annotations

import structlog
from flask import Flask, current_app, g, request

from ldpserver.db import single_read
from ldpserver.errors import ProblemError
from ldpserver.ratelimit import enforce_rate_limit
from ldpserver.services.keys import ROLES, Principal, authenticate

ALL_ROLES = frozenset(ROLES)

ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/collections"): frozenset({"admin"}),
    ("GET", "/v1/collections"): ALL_ROLES,
    ("GET", "/v1/collections/<collection_id>"): ALL_ROLES,
    ("POST", "/v1/collections/<collection_id>/reports"): frozenset({"client"}),
    ("POST", "/v1/devices"): frozenset({"client"}),
    ("GET", "/v1/audit/enrolments"): frozenset({"auditor"}),
    ("GET", "/v1/audit/ledger"): frozenset({"auditor"}),
    ("GET", "/v1/audit/summary"): frozenset({"auditor"}),
    ("GET", "/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/v1/audit/rejections"): frozenset({"auditor"}),
    ("POST", "/v1/collections/<collection_id>/releases"): frozenset({"admin"}),
    ("GET", "/v1/collections/<collection_id>/releases"): frozenset({"analyst", "auditor", "admin"}),
    ("GET", "/v1/collections/<collection_id>/releases/<int:number>"): frozenset({"analyst", "auditor", "admin"}),
    ("GET", "/v1/collections/<collection_id>/estimates"): frozenset({"analyst", "admin"}),
    ("GET", "/v1/collections/<collection_id>/heavy-hitters"): frozenset({"analyst", "admin"}),
    ("GET", "/v1/collections/<collection_id>/timeseries"): frozenset({"analyst", "admin"}),
    ("PUT", "/v1/collections/<collection_id>/dictionary"): frozenset({"analyst", "admin"}),
    ("GET", "/v1/collections/<collection_id>/dictionary"): frozenset({"analyst", "auditor", "admin"}),
    # exact per-kind counters move by one with one device's upload: never public; Prometheus
    # scrapes the separate loopback listener (ldpserver/metrics_listener.py), operators may use a key
    ("GET", "/metrics"): frozenset({"admin"}),
}

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/openapi", "/docs", "/dashboard")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ldp"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="ldp", error="invalid_token"'}


def roles_for(method: str, rule: str) -> list[str]:
    """Sorted roles of a route (for the OpenAPI ``x-roles`` extension)."""
    return sorted(ROUTE_ROLES[(method, rule)])


def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ProblemError("unauthorized", "use the header 'Authorization: Bearer <key>'", headers=_INVALID)
    return value.strip()


def enforce_roles() -> None:
    """before_request hook: authenticate and authorise, or raise a 401/403 problem."""
    rule = request.url_rule
    if rule is None:
        return  # 404 / 405 follow from routing
    path = rule.rule
    if path.startswith(PUBLIC_PREFIXES) or request.method == "OPTIONS":
        return
    method = "GET" if request.method == "HEAD" else request.method
    allowed = ROUTE_ROLES.get((method, path))
    if allowed is None:
        raise ProblemError("forbidden", f"{method} {path} has no access rule; refused for every role")
    presented = _bearer()
    if presented is None:
        raise ProblemError(
            "unauthorized", "this endpoint needs an API key: 'Authorization: Bearer <key>'", headers=_CHALLENGE
        )
    engine = current_app.extensions["ldp"].engine
    with single_read(engine) as conn:
        principal, why = authenticate(conn, presented)
    if principal is None:
        raise ProblemError("unauthorized", why, headers=_INVALID)
    structlog.contextvars.bind_contextvars(key_id=principal.key_id, role=principal.role)
    enforce_rate_limit(current_app, principal.key_id)  # 429 over LDP_RATE_LIMIT (off by default)
    if principal.role not in allowed:
        raise ProblemError(
            "forbidden",
            f"role {principal.role!r} may not {method} {path}; allowed: {', '.join(sorted(allowed))}",
        )
    _enforce_scope(principal, path)
    g.principal = principal


_UNSCOPED_ROUTES = frozenset({"/v1/collections", "/v1/devices", "/v1/audit/enrolments"})


def _enforce_scope(principal: Principal, path: str) -> None:
    """403 when a collection-scoped key names (or would read across) another collection."""
    if principal.collections is None or path in _UNSCOPED_ROUTES:
        return
    named = (request.view_args or {}).get("collection_id")
    if named is None and path.startswith("/v1/audit/"):
        named = request.args.get("collection")
        if named is None:
            raise ProblemError("forbidden", "this key is scoped to some collections; name one with ?collection=")
    if named is not None and not principal.may_see(str(named)):
        raise ProblemError("forbidden", f"this key is not scoped to collection {named!r}")


def current_principal() -> Principal:
    return g.principal


def init_auth(app: Flask) -> None:
    app.before_request(enforce_roles)
