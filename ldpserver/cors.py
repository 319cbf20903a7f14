"""CORS for the device endpoints only: enrolment, the public config, report upload.

A web app on another origin runs the web SDK in the browser, so these three routes answer
cross-origin requests from the origins in ``LDP_CORS_ORIGINS`` (exact match of scheme,
host and port; nothing when it is empty). Preflights (``OPTIONS`` with
``Access-Control-Request-Method``) get 204 with the allowed method and headers;
``Retry-After`` and ``X-Request-ID`` are exposed so the SDK can honour 429/503 back-off.
Credentials (cookies) are never allowed: the SDK authenticates with its client key and
device secret, not with ambient browser state. Every other route (analyst, auditor,
admin) sends no CORS headers, so browsers keep other origins away from it.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

DEVICE_ROUTES: dict[str, str] = {
    "/v1/devices": "POST",
    "/v1/collections/<collection_id>": "GET",
    "/v1/collections/<collection_id>/reports": "POST",
}
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID"
EXPOSED_HEADERS = "Retry-After, X-Request-ID"
PREFLIGHT_MAX_AGE = "600"


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    rule = request.url_rule
    if not origin or rule is None or rule.rule not in DEVICE_ROUTES:
        return None
    allowed = current_app.extensions["ldp"].settings.cors_origin_set
    return origin if origin.rstrip("/") in allowed else None


def preflight() -> Response | None:
    """before_request: answer a device route's CORS preflight (before authentication)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = _allowed_origin()
    if origin is None:
        return None  # Flask's automatic OPTIONS answer, without CORS headers: the browser refuses
    method = DEVICE_ROUTES[request.url_rule.rule]  # type: ignore[union-attr]
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = method
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    response.headers["Vary"] = "Origin"
    return response


def add_headers(response: Response) -> Response:
    """after_request: CORS headers on a device route's actual response (errors included)."""
    origin = _allowed_origin()
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.vary.add("Origin")
    return response


def init_cors(app: Flask) -> None:
    app.before_request(preflight)
    app.after_request(add_headers)
