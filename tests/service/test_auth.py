"""Roles: every route × every role × missing / malformed / unknown / revoked keys (table-driven)."""

from __future__ import annotations

import pytest

from ldpserver.auth import PUBLIC_PREFIXES, ROUTE_ROLES
from ldpserver.services.keys import ROLES
from tests.service.helpers import make_reports
from tests.service.release_helpers import RELEASE_RULES, release_request

BAD_KEYS = ("unknown", "revoked", "malformed")


def _concrete(rule: str, collection_id: str) -> str:
    return rule.replace("<collection_id>", collection_id)


def _request_for(api, method: str, rule: str, collection: dict, role: str | None, **kwargs):
    if rule in RELEASE_RULES:  # these need a released epoch first (tests/service/release_helpers.py)
        return release_request(api, method, rule, collection, role, **kwargs)
    path = _concrete(rule, collection["id"])
    if rule == "/v1/audit/summary":
        path += f"?collection={collection['id']}"
    body = None
    if method == "POST" and rule.endswith("/reports"):
        body = {"wire": 2, "reports": make_reports(collection, 1)}
    elif method == "PUT" and rule.endswith("/dictionary"):
        body = {"items": ["apple", "pear"]}
    elif method == "POST" and rule == "/v1/devices":
        body = {"count": 1}
    elif method == "POST":
        body = {
            "kind": "frequency",
            "mechanism": {"mechanism": "grr", "epsilon": 1.0, "domain_size": 3},
            "epoch": {"seconds": 3600},
            "budget": {"cap_lifetime": 5.0},
        }
    return api.open(method, path, role, json=body, **kwargs)


def test_every_v1_route_is_in_the_role_table(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, rule.rule))
    protected = {r for r in routes if not r[1].startswith(PUBLIC_PREFIXES) and not r[1].startswith("/static")}
    assert protected == set(ROUTE_ROLES), "a route is missing from (or stale in) ldpserver.auth.ROUTE_ROLES"
    assert all(r[1].startswith("/v1/") or r[1] == "/metrics" for r in protected)


@pytest.mark.parametrize(("method", "rule"), sorted(ROUTE_ROLES))
def test_route_refuses_every_role_it_should(api, method, rule):
    collection = api.create_collection()
    if rule.endswith("/dictionary"):  # a known-candidate collection that has a dictionary
        collection = api.create_collection(
            kind="heavy_hitters",
            mechanism={"protocol": "known", "epsilon": 2.0, "k": 2, "domain": {"type": "string", "max_bytes": 6}},
            budget={"cap_lifetime": 8.0},
        )
        path = _concrete(rule, collection["id"])
        assert api.open("PUT", path, "admin", json={"items": ["apple"]}).status_code == 200
    allowed = ROUTE_ROLES[(method, rule)]
    for role in ROLES:
        response = _request_for(api, method, rule, collection, role)
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.get_json())
            assert response.status_code < 300, (role, response.status_code, response.get_json())
        else:
            assert response.status_code == 403, (role, response.status_code)
            problem = response.get_json()
            assert response.mimetype == "application/problem+json"
            assert problem["type"].endswith("/forbidden") and role in problem["detail"]
    missing = _request_for(api, method, rule, collection, None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    for bad in BAD_KEYS:
        response = _request_for(api, method, rule, collection, bad)
        assert response.status_code == 401, (bad, response.status_code)
        assert response.get_json()["type"].endswith("/unauthorized")
    wrong_scheme = _request_for(api, method, rule, collection, None, headers={"Authorization": "Basic abc"})
    assert wrong_scheme.status_code == 401


def test_revoked_key_says_so_and_unknown_key_does_not_leak(api):
    revoked = api.get("/v1/collections", role="revoked").get_json()
    assert "revoked" in revoked["detail"]
    unknown = api.get("/v1/collections", role="unknown").get_json()
    assert unknown["detail"] == "the API key is not valid"


def test_public_endpoints_need_no_key(api):
    for path in ("/healthz", "/readyz", "/openapi/openapi.json", "/docs"):
        assert api.get(path, role=None).status_code == 200, path


def test_auditors_only_read(api):
    """No route that writes accepts the auditor role."""
    for (method, _rule), roles in ROUTE_ROLES.items():
        if method != "GET":
            assert "auditor" not in roles
