"""Canonical JSON and its hash: how a configuration (and a release) is identified on both sides.

Canonical JSON is **RFC 8785, the JSON Canonicalization Scheme (JCS)**: keys sorted by UTF-16
code units, no whitespace, strings as ECMAScript ``JSON.stringify`` writes them, numbers in
ECMAScript's shortest round-trip form (``1.0`` is written ``1``, ``1e-07`` is ``1e-7``), UTF-8.
Any language has a JCS library (the web SDK bundles npm ``canonicalize``), so no client needs
to imitate Python's ``json.dumps``. Written by ``rfc8785`` (Trail of Bits); tests check it
against the RFC's reference implementation on every shared vector. Config version 2 and later
are hashed this way (docs/wire.md); NaN, infinities and integers beyond ±(2^53 − 1) are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785


class CanonicalJSONError(ValueError, TypeError):
    """The value has no RFC 8785 form (NaN, an infinity, a huge integer, a non-string key, a
    non-JSON type); both of ``json.dumps``'s error types, so existing handlers keep working."""


def canonical_json(obj: Mapping[str, Any] | Any) -> str:
    """The RFC 8785 (JCS) text of ``obj``: the same bytes on every platform and in every language."""
    try:
        return rfc8785.dumps(obj).decode("utf-8")
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalJSONError(f"not canonicalisable as RFC 8785 JSON: {exc}") from exc


def config_hash(obj: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON, as ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
