"""Known-candidate mode through the server: a ``known`` heavy-hitter collection, the analyst's
dictionary uploaded (validated, stored with its keys, replaceable), releases that estimate it
(equal to the SDK on the same reports, naming the dictionary's SHA-256) and a clear answer
for every misuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldpserver import release_noise
from tests.service.release_helpers import at_epoch, upload_ok, wire

DOMAIN = {"type": "string", "alphabet": "lower", "max_chars": 6}
MECHANISM = {"protocol": "known", "epsilon": 4.0, "k": 4, "domain": DOMAIN}


def _dictionary(size: int) -> list[str]:
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["apple", "pear", "kiwi", "plum"] + ["".join(r) for r in letters[rng.integers(0, 26, (size, 5))]]
    return list(dict.fromkeys(words))[:size]


def _create(api):
    return api.create_collection(
        kind="heavy_hitters",
        mechanism=MECHANISM,
        release={"min_reports": 50, "epsilon": 10.0},
        budget={"cap_lifetime": 8.0},
    )


def test_dictionary_upload_and_release(api):
    from client_sdk import heavy_hitters

    api.use_release_noise(release_noise.ZeroNoise())
    col = _create(api)
    path = f"/v1/collections/{col['id']}/dictionary"
    assert api.get(path, role="analyst").status_code == 404  # none yet
    hh = heavy_hitters.from_config(col["config"]["mechanism"])
    users = ["apple"] * 3000 + ["pear"] * 1800 + ["fig"] * 1200
    payloads = hh.encode(hh.perturb_batch(users, np.random.default_rng(3)))
    at_epoch(api, 0)
    upload_ok(api, col, wire(col, payloads, 0))

    # a release before any dictionary: the scope is withheld, saying what to do
    at_epoch(api, 0, minutes=50)
    first = api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 0, "force": True})
    assert first.status_code == 201, first.get_json()
    body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/1", role="analyst").data)
    epoch_scope = next(s for s in body["scopes"] if s["scope"] == "epoch")
    assert epoch_scope["status"] == "withheld" and "dictionary" in epoch_scope["reason"]

    dictionary = _dictionary(3000)
    put = api.open("PUT", path, role="analyst", json={"items": dictionary})
    assert put.status_code == 200, put.get_json()
    meta = put.get_json()
    assert meta["items"] == 3000 and meta["sha256"].startswith("sha256:")
    assert api.get(path, role="auditor").get_json()["sha256"] == meta["sha256"]

    at_epoch(api, 1)
    upload_ok(api, col, wire(col, hh.encode(hh.perturb_batch(users, np.random.default_rng(4))), 1))
    at_epoch(api, 3)
    assert api.post(f"/v1/collections/{col['id']}/releases", json={"epoch": 1}).status_code == 201
    body = json.loads(api.get(f"/v1/collections/{col['id']}/releases/2", role="analyst").data)
    published = next(s for s in body["scopes"] if s["scope"] == "epoch")["estimates"]
    assert published["protocol"] == "known"
    assert published["significance"]["dictionary_sha256"] == meta["sha256"]
    assert published["significance"]["dictionary"] == 3000
    items = [h["item"] for h in published["heavy_hitters"]]
    assert items[:2] == ["apple", "pear"] and "fig" not in items, json.dumps(
        published["significance"]
    )  # "fig": not in the dictionary
    reference = hh.discover(
        hh.decode(hh.encode(hh.perturb_batch(users, np.random.default_rng(4)))), dictionary, ci_level=0.95
    )
    assert items == reference.items
    for h, ref in zip(published["heavy_hitters"], reference.heavy_hitters, strict=True):
        assert h["frequency"] == pytest.approx(ref.frequency, abs=1e-12)


def test_dictionary_misuse_gets_clear_errors(api):
    col = _create(api)
    path = f"/v1/collections/{col['id']}/dictionary"
    cases = [
        ({"items": ["apple", "apple"]}, 422, "distinct"),
        ({"items": ["Apple"]}, 422, "dictionary refused"),
        ({"items": []}, 422, None),
        ({"items": ["apple"], "extra": 1}, 422, None),
        ({"items": "apple"}, 422, None),
    ]
    for body, status, text in cases:
        response = api.open("PUT", path, role="admin", json=body)
        assert response.status_code == status, (body, response.get_json())
        if text:
            assert text in response.get_json()["detail"]
    assert api.open("PUT", path, role="client", json={"items": ["apple"]}).status_code == 403
    assert api.open("PUT", path, role="auditor", json={"items": ["apple"]}).status_code == 403
    pem = api.create_collection(
        kind="heavy_hitters",
        mechanism={"protocol": "pem", "epsilon": 4.0, "k": 2, "domain": {"type": "integer", "bits": 8}},
        budget={"cap_lifetime": 8.0},
    )
    other = api.open("PUT", f"/v1/collections/{pem['id']}/dictionary", role="admin", json={"items": [1]})
    assert other.status_code == 409 and "protocol 'known'" in other.get_json()["detail"]
    missing = api.open("PUT", "/v1/collections/nope/dictionary", role="admin", json={"items": ["a"]})
    assert missing.status_code == 404
