"""Config hashes are RFC 8785 (JCS): the SDK's canonical JSON equals the RFC's reference
implementation (PyPI ``jcs``, independent of the ``rfc8785`` library the SDK uses) on every
shared vector that carries a config hash, and its hash is SHA-256 of those bytes.

The web SDK runs the same check against npm ``json-canonicalize`` (client_sdk/web/test/jcs.test.mjs)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jcs
import pytest

from client_sdk.canonical import CanonicalJSONError, canonical_json, config_hash

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def hashed_documents() -> Iterator[tuple[str, Any, str, str | None]]:
    """(where, document, config_hash, canonical text or None) of every vector with a config hash."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, Any, str, str | None]]:
        if isinstance(node, dict):
            if "config_hash" in node and "error" not in node:
                if "config" in node:
                    document = node["config"]
                elif "text" in node:
                    document = json.loads(node["text"])
                else:
                    document = node["value"]
                yield where, document, node["config_hash"], node.get("canonical")
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{where}/{i}")

    for path in sorted(VECTORS.glob("*.json")):
        yield from walk(json.loads(path.read_text(encoding="utf-8")), path.name)


DOCUMENTS = list(hashed_documents())


def test_every_vector_file_with_configs_is_covered() -> None:
    files = {where.split("/")[0] for where, *_ in DOCUMENTS}
    assert {
        "params.json",
        "config.json",
        "canonical.json",
        "runtime.json",
        "multidim.json",
        "heavy_hitters.json",
    } <= files
    assert len(DOCUMENTS) > 700


@pytest.mark.parametrize("where,document,digest,canonical", DOCUMENTS[::1], ids=[d[0] for d in DOCUMENTS])
def test_config_hash_equals_the_reference_jcs(where: str, document: Any, digest: str, canonical: str | None) -> None:
    reference = jcs.canonicalize(document)
    assert canonical_json(document).encode("utf-8") == reference
    assert config_hash(document) == digest == "sha256:" + hashlib.sha256(reference).hexdigest()
    if canonical is not None:
        assert canonical.encode("utf-8") == reference


def test_number_forms_equal_the_reference() -> None:
    numbers = json.loads((VECTORS / "canonical.json").read_text(encoding="utf-8"))["numbers"]
    assert len(numbers) > 100
    for value, text in numbers:
        assert canonical_json(value) == text == jcs.canonicalize(value).decode()


def test_python_and_ecmascript_number_forms_differ_where_it_matters() -> None:
    """The reason for JCS: Python's json.dumps and ECMAScript disagree on these."""
    assert canonical_json({"a": 1.0, "b": 1e-7, "c": 1e16, "d": -0.0}) == '{"a":1,"b":1e-7,"c":10000000000000000,"d":0}'
    assert canonical_json({"\ue000": 1, "\U0001f600": 2}) == '{"😀":2,"\ue000":1}'  # UTF-16 order


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": float("inf")}, {"x": 2**53}, {1: 2}, {"x": object()}])
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)
    with pytest.raises((TypeError, ValueError)):  # what json.dumps raised: old handlers still work
        config_hash(value)


def test_refused_vectors() -> None:
    refused = json.loads((VECTORS / "canonical.json").read_text(encoding="utf-8"))["refused"]
    for text in refused:
        with pytest.raises(CanonicalJSONError):
            canonical_json(json.loads(text))


def test_a_config_of_another_version_is_refused_before_its_hash_with_a_clear_error() -> None:
    """Version 1 configs were hashed as Python json.dumps text: the SDK names the version
    instead of reporting a hash mismatch (runtime.json, shared with the web SDK)."""
    from client_sdk.client.config import CollectionConfig
    from client_sdk.client.errors import ConfigHashMismatchError, UnsupportedCollectionError

    old = json.loads((VECTORS / "runtime.json").read_text(encoding="utf-8"))["old_versions"]
    assert {json.loads(c["text"])["version"] for c in old} >= {1}
    for case in old:
        body = {"id": "col_test", "config": json.loads(case["text"]), "config_hash": case["config_hash"]}
        with pytest.raises(UnsupportedCollectionError) as refused:
            CollectionConfig.from_server("col_test", body)
        assert not isinstance(refused.value, ConfigHashMismatchError)
        assert str(refused.value) == case["message"]
        assert f"config version {json.loads(case['text'])['version']} is not supported" in case["message"]
