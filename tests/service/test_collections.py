"""Collections: creation, immutability of the public config and its hash, refusals with reasons."""

from __future__ import annotations

import math

import pytest

from client_sdk.canonical import config_hash
from ldpserver import kinds as protocols
from tests.service.helpers import BASE_COLLECTION, DROP, merged


def test_create_serves_public_config_with_its_hash(api):
    col = api.create_collection(name="colour")
    assert col["id"].startswith("col_") and col["kind"] == "frequency"
    assert col["config_hash"] == config_hash(col["config"])
    assert col["config"]["mechanism"] == {"mechanism": "oue", "epsilon": 1.0, "domain_size": 16}
    assert col["config"]["epoch"] == {"seconds": 3600, "start": "2025-01-01T00:00:00Z", "grace": 1}
    assert col["config"]["budget"]["cap_lifetime"] == 1000.0
    assert col["current_epoch"] == 0
    for role in ("client", "analyst", "auditor", "admin"):
        got = api.get(f"/v1/collections/{col['id']}", role=role).get_json()
        assert got["config"] == col["config"] and got["config_hash"] == col["config_hash"]
    listed = api.get("/v1/collections?kind=frequency", role="client").get_json()["items"]
    assert col["id"] in {c["id"] for c in listed}
    assert api.get("/v1/collections/col_missing", role="client").status_code == 404


def test_auto_mechanism_is_resolved_into_the_canonical_config(api):
    col = api.create_collection(mechanism={"mechanism": "auto", "epsilon": 1.0, "domain_size": 8})
    assert col["config"]["mechanism"]["mechanism"] == "grr"


def test_default_epoch_start_is_the_current_boundary(api):
    col = api.create_collection(epoch={"seconds": 86400, "start": DROP})
    assert col["config"]["epoch"]["start"] == "2025-01-01T00:00:00Z" and col["current_epoch"] == 0


def test_opendp_computes_grr_and_sue_loss(api):
    grr = api.create_collection(mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    assert grr["privacy"]["calculator"] == "opendp"
    details = grr["privacy"]["details"]
    assert details["measurement"].endswith("make_randomized_response")
    assert details["opendp_epsilon"] == pytest.approx(1.0, abs=1e-12)
    assert grr["config"]["epsilon"] == 1.0
    sue = api.create_collection(mechanism={"mechanism": "sue", "epsilon": 2.0, "domain_size": 8})
    assert sue["privacy"]["calculator"] == "opendp"
    assert sue["privacy"]["details"]["measurement"].endswith("make_randomized_response_bitvec")
    assert sue["privacy"]["epsilon_computed"] == pytest.approx(2.0, abs=1e-12)
    oue = api.create_collection()
    assert oue["privacy"]["calculator"] == "closed-form"
    assert oue["privacy"]["details"]["opendp_upper_bound"] > 1.0  # the looser symmetric bound, for information
    # a declared epsilon above the loss is allowed (and charged)
    generous = api.create_collection(epsilon=1.5, mechanism={"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
    assert generous["privacy"]["charge"]["epsilon"] == 1.5


def _refused(api, overrides, status=422):
    response = api.post("/v1/collections", json=merged(BASE_COLLECTION, overrides))
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_declared_epsilon_below_opendp_loss_is_refused(api):
    problem = _refused(api, {"epsilon": 0.5, "mechanism": {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4}})
    assert problem["type"].endswith("/privacy-check-failed")
    assert "OpenDP" in problem["detail"] and "make_randomized_response" in problem["detail"]
    assert problem["calculator"] == "opendp" and problem["computed_epsilon"] == pytest.approx(1.0)
    assert problem["errors"][0]["path"] == "/epsilon"
    sue = _refused(api, {"epsilon": 1.9, "mechanism": {"mechanism": "sue", "epsilon": 2.0, "domain_size": 8}})
    assert "make_randomized_response_bitvec" in sue["detail"]


def test_declared_epsilon_below_closed_form_loss_is_refused(api):
    problem = _refused(api, {"epsilon": 0.9, "mechanism": {"mechanism": "olh", "epsilon": 1.0, "domain_size": 100}})
    assert problem["type"].endswith("/privacy-check-failed") and "closed form" in problem["detail"]


@pytest.mark.parametrize(
    ("overrides", "slug", "path", "needle"),
    [
        ({"mechanism": {"mechanism": "nope", "epsilon": 1.0, "domain_size": 4}}, "invalid-config", "/mechanism",
         "unknown mechanism"),
        ({"mechanism": {"mechanism": "grr", "epsilon": 1.0, "domain_size": 1}}, "invalid-config", "/mechanism",
         "at least 2"),
        ({"mechanism": {"mechanism": "grr", "epsilon": -1.0, "domain_size": 4}}, "invalid-config", "/mechanism",
         "epsilon"),
        ({"mechanism": {"mechanism": "grr", "epsilon": 1.0}}, "invalid-config", "/mechanism", "domain_size"),
        ({"epsilon": 0}, "validation", "/epsilon", "greater than 0"),
        ({"budget": {"cap_lifetime": 0.5}}, "invalid-config", "/budget/cap_lifetime", "below one charge"),
        ({"budget": {"cap_per_window": 0.1}}, "invalid-config", "/budget/cap_per_window", "below one charge"),
        ({"epoch": {"grace": 3}, "budget": {"cap_per_window": 2.0, "window_epochs": 2}}, "invalid-config",
         "/epoch/grace", "must not exceed window_epochs"),
        ({"budget": {"memoized": True, "epsilon_per_memo": 0.5}}, "invalid-config", "/budget/memoized",
         "second randomisation round ('longitudinal')"),
        ({"budget": {"epsilon_per_memo": 2.0}}, "invalid-config", "/budget/epsilon_per_memo", "memoized"),
        ({"parties": ["eu", "us"]}, "invalid-config", "/parties", "take no parties"),
        ({"neighbouring": "attribute"}, "invalid-config", "/neighbouring", "promises 'record'"),
        ({"kind": "telepathy"}, "validation", "/kind", "Input should be"),
        ({"surprise": 1}, "validation", "/surprise", "Extra inputs"),
        ({"epoch": {"seconds": 0}}, "validation", "/epoch/seconds", "greater than or equal to 1"),
        ({"epoch": {"start": "2025-01-01T00:00:00"}}, "validation", "/epoch/start", "timezone"),
        ({"budget": DROP}, "validation", "/budget", "Field required"),
        ({"release": {"windows": [7, 7]}}, "validation", "/release/windows", "distinct"),
    ],
)  # fmt: skip
def test_invalid_configs_are_refused_with_the_reason(api, overrides, slug, path, needle):
    problem = _refused(api, overrides)
    assert problem["type"] == f"https://ldp.example/problems/{slug}"
    assert path in [e["path"] for e in problem["errors"]], problem
    assert needle in problem["detail"] + " ".join(e["message"] for e in problem["errors"]), problem


def test_kind_not_available_is_a_clear_4xx(api, monkeypatch):
    monkeypatch.setattr(protocols.MultidimAdapter, "module_name", "client_sdk.not_written_yet")
    problem = _refused(api, {"kind": "multidim", "mechanism": {"mechanism": "smp"}})
    assert problem["type"].endswith("/kind-unavailable") and "not available" in problem["detail"]
    assert problem["kind"] == "multidim"


def test_multidim_rsfd_charges_tuple_level_epsilon_prime(api):
    if not protocols.ADAPTERS["multidim"].available():
        pytest.skip("client_sdk.multidim is not importable yet")
    col = api.create_collection(
        kind="multidim", mechanism={"mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [3, 3, 3]}
    )
    eps_prime = math.log(3 * (math.e - 1) + 1)
    assert col["config"]["neighbouring"] == "tuple"
    assert col["privacy"]["charge"]["epsilon"] == pytest.approx(eps_prime, abs=1e-9)
    assert col["privacy"]["epsilon_attribute"] == pytest.approx(1.0, abs=1e-9)
    attribute = api.create_collection(
        kind="multidim",
        mechanism={"mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [3, 3, 3], "neighbouring": "attribute"},
    )
    assert attribute["config"]["neighbouring"] == "attribute"
    assert attribute["privacy"]["charge"]["epsilon_record"] == pytest.approx(eps_prime, abs=1e-9)
    # declaring less than ε' for a tuple-level promise is refused
    problem = _refused(
        api,
        {"kind": "multidim", "epsilon": 1.0,
         "mechanism": {"mechanism": "rsfd-grr", "epsilon": 1.0, "domain_sizes": [3, 3, 3]}},
    )  # fmt: skip
    assert problem["type"].endswith("/privacy-check-failed")


def test_collections_are_immutable(api):
    col = api.create_collection()
    for method in ("PUT", "PATCH", "DELETE"):
        response = api.open(method, f"/v1/collections/{col['id']}", "admin", json={})
        assert response.status_code == 405 and response.mimetype == "application/problem+json"
