"""The vectors the other SDKs replay beyond generate.py's (SPL/SMP, longitudinal, known
candidates) are current: a change of the Python SDK that moves any of them fails here until
the file is regenerated (and the Android tests, ``mvn -o test`` in client_sdk/android, and
the web SDK's, follow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: generator → what replays its file: SPL/SMP (Android MultidimOraclesVectorsTest), the
#: longitudinal protocols (Android LongitudinalVectorsTest), known candidates (Android
#: KnownVectorsTest, web known.test.mjs)
GENERATORS = ["generate_multidim_oracles.py", "generate_longitudinal.py", "generate_known.py"]


@pytest.mark.parametrize("script", GENERATORS)
def test_vectors_are_current(script: str) -> None:
    """The committed vector file matches what the Python SDK computes now."""
    spec = importlib.util.spec_from_file_location(f"ldp_vectors_{script[:-3]}", ROOT / "tests" / "vectors" / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "tests" / "vectors" / module.NAME).read_text(encoding="utf-8")
    assert committed == module.text(), f"stale: run .venv/bin/python tests/vectors/{script}"
