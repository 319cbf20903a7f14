"""Bad input gets a 4xx problem document, never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.helpers import make_reports

PROBLEM = "application/problem+json"


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == f"https://ldp.example/problems/{slug}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_bad_bodies_on_ingest(api, app):
    col = api.create_collection()
    url = f"/v1/collections/{col['id']}/reports"
    key = api.headers("client")
    post = api.client.post

    _problem(post(url, data=b'{"reports": [', headers=key | {"Content-Type": "application/json"}), 400,
             "malformed-json")  # fmt: skip
    _problem(post(url, data=b"", headers=key | {"Content-Type": "application/json"}), 400, "malformed-json")
    _problem(post(url, data=b"\xff\xfe\x00garbage", headers=key | {"Content-Type": "application/json"}), 400,
             "malformed-json")  # fmt: skip
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"reports": [{"epoch": ' + constant + b"}]}"
        problem = _problem(post(url, data=body, headers=key | {"Content-Type": "application/json"}), 400,
                           "malformed-json")  # fmt: skip
        assert "non-finite" in problem["detail"]
    deep = b'{"reports": ' + b"[" * 40 + b"]" * 40 + b"}"
    assert "nested" in _problem(post(url, data=deep, headers=key | {"Content-Type": "application/json"}), 400,
                                "malformed-json")["detail"]  # fmt: skip
    very_deep = b"[" * 100_000 + b"]" * 100_000
    _problem(post(url, data=very_deep, headers=key | {"Content-Type": "application/json"}), 400, "malformed-json")
    huge_number = b'{"reports": [' + b"9" * 5000 + b"]}"
    _problem(post(url, data=huge_number, headers=key | {"Content-Type": "application/json"}), 400, "malformed-json")
    _problem(post(url, data=b"reports=1", headers=key | {"Content-Type": "application/x-www-form-urlencoded"}),
             415, "unsupported-media-type")  # fmt: skip
    _problem(post(url, data=json.dumps({"reports": []}), headers=key | {"Content-Type": "text/plain"}), 415,
             "unsupported-media-type")  # fmt: skip
    _problem(post(url, data=json.dumps({"reports": []}), headers=key), 415, "unsupported-media-type")
    big = json.dumps({"reports": [{"pad": "x" * (3 * 1024 * 1024)}]})
    _problem(post(url, data=big, headers=key | {"Content-Type": "application/json"}), 413, "payload-too-large")
    settings_ = app.extensions["ldp"].settings
    many = make_reports(col, 1) * (settings_.max_batch_reports + 1)
    _problem(api.upload(col, many), 413, "too-many-reports")
    _problem(post(url, json=[1, 2], headers=key), 422, "validation")
    _problem(post(url, json={"wire": 2, "reports": "nope"}, headers=key), 422, "validation")
    _problem(api.client.get(url, headers=key), 405, "method-not-allowed")
    _problem(api.client.get("/v1/nothing-here", headers=key), 404, "not-found")
    _problem(api.client.get("/nothing-here"), 404, "not-found")


def test_validation_problem_lists_field_paths(api):
    response = api.post(
        "/v1/collections",
        json={"kind": "frequency", "mechanism": {}, "epoch": {"seconds": -5}, "budget": {"cap_lifetime": "lots"}},
    )
    body = _problem(response, 422, "validation")
    paths = {e["path"] for e in body["errors"]}
    assert {"/epoch/seconds", "/budget/cap_lifetime"} <= paths
    assert all(e["message"] and e["code"] for e in body["errors"])


def test_query_validation_is_a_problem(api):
    _problem(api.get("/v1/audit/ledger?limit=abc"), 422, "validation")
    _problem(api.get("/v1/collections?kind=nope", role="client"), 422, "validation")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def fuzz_target(api):
    col = api.create_collection()
    good = make_reports(col, 1)[0]
    return api, col, good


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    report=st.fixed_dictionaries(
        {},
        optional={
            "report_id": st.text(max_size=40) | st.integers(),
            "client_id": st.text(max_size=70),
            "config_hash": st.text(max_size=10),
            "epoch": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
            "payload": json_values,
            "memo_count": json_values,
        },
    ),
    body=json_values,
)
def test_fuzzed_reports_and_bodies_never_500(fuzz_target, report, body):
    api, col, good = fuzz_target
    mutated = {**good, **report}
    r = api.upload(col, [mutated, good])
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.get_json()["results"][0]["status"] in {"accepted", "rejected", "duplicate"}
    r = api.post(f"/v1/collections/{col['id']}/reports", role="client", json=body)
    assert 400 <= r.status_code < 500
    r = api.post("/v1/collections", json=body)
    assert 400 <= r.status_code < 500
