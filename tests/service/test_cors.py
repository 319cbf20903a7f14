"""Finding 7 of issue 15 (CORS): the device routes answer configured origins, nothing else does.

Only APIs that existed before the fix are used (settings the old code ignores), so this
file runs — and fails — against the old code too. The browser end of it, a page on another
origin enrolling and reporting through the built web SDK in headless Chromium, is
tests/system/test_web_cors.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ldpserver.app import create_app
from ldpserver.config import Settings
from ldpserver.services.keys import create_key
from tests.service.helpers import Api

ORIGIN = "https://app.example"


@pytest.fixture
def cors_api(api, settings, engine, clock, keys):
    overrides = {"cors_origins": f"{ORIGIN}, https://b.example", "enrol_per_address_hour": 1}
    app = create_app(
        Settings(**{**settings.model_dump(), **overrides}),
        clock=clock,
        engine=engine,
    )
    return Api(app.test_client(), keys, engine, clock)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/devices"), ("GET", "/v1/collections/COL"), ("POST", "/v1/collections/COL/reports")],
)
def test_cors_preflight_on_device_routes(cors_api, method, path):
    col = cors_api.create_collection()
    r = cors_api.client.options(
        path.replace("COL", col["id"]),
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert method in r.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in r.headers
    # an origin not configured gets no CORS headers
    r = cors_api.client.options(
        path.replace("COL", col["id"]),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": method},
    )
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_headers_on_device_responses_only(cors_api):
    col = cors_api.create_collection()
    key = create_key(cors_api.engine, "client", "cors", datetime.now(UTC))[1]
    h = {"Authorization": f"Bearer {key}", "Origin": ORIGIN}
    r = cors_api.client.post("/v1/devices", json={}, headers=h)
    assert r.status_code == 201 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]
    assert "Origin" in r.headers["Vary"] and "Access-Control-Allow-Credentials" not in r.headers
    r = cors_api.client.post("/v1/devices", json={}, headers=h)  # 429: the SDK must read Retry-After
    assert r.status_code == 429 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
    # analyst / auditor / admin routes: no CORS, even for a configured origin
    for path, role in (
        (f"/v1/collections/{col['id']}/estimates", "analyst"),
        ("/v1/audit/ledger", "auditor"),
        ("/v1/collections", "admin"),
    ):
        r = cors_api.get(path, role=role, headers={"Origin": ORIGIN})
        assert "Access-Control-Allow-Origin" not in r.headers
        r = cors_api.client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert "Access-Control-Allow-Origin" not in r.headers


def test_no_cors_without_configured_origins(api):
    r = api.client.options("/v1/devices", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in r.headers
