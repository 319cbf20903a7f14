"""Canonical JSON and its hash: how a configuration is identified on both sides."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(obj: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8: the same bytes on every platform."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def config_hash(obj: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON, as ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
