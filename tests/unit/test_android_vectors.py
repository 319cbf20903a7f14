"""The vectors the Android/JVM SDK replays beyond generate.py's: SPL/SMP (tests/vectors/multidim_oracles.json,
written by tests/vectors/generate_multidim_oracles.py from the Python SDK) are current: a
change of client_sdk.multidim that moves any of them fails here until the file is
regenerated (and the Android SDK's MultidimOraclesVectorsTest, run by ``mvn -o test`` in
client_sdk/android, follows)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tests" / "vectors" / "generate_multidim_oracles.py"


def test_spl_smp_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("ldp_vectors_multidim_oracles", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "tests" / "vectors" / module.NAME).read_text(encoding="utf-8")
    assert committed == module.text(), "stale: run .venv/bin/python tests/vectors/generate_multidim_oracles.py"


LONGITUDINAL = ROOT / "tests" / "vectors" / "generate_longitudinal.py"


def test_longitudinal_vectors_are_current() -> None:
    """tests/vectors/longitudinal.json (replayed by the Android SDK's LongitudinalVectorsTest)
    matches what client_sdk.longitudinal computes now."""
    spec = importlib.util.spec_from_file_location("ldp_vectors_longitudinal", LONGITUDINAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "tests" / "vectors" / module.NAME).read_text(encoding="utf-8")
    assert committed == module.text(), "stale: run .venv/bin/python tests/vectors/generate_longitudinal.py"


KNOWN = ROOT / "tests" / "vectors" / "generate_known.py"


def test_known_candidate_vectors_are_current() -> None:
    """tests/vectors/known.json (replayed by the web and Android SDKs) matches what
    client_sdk.heavy_hitters.known computes now."""
    spec = importlib.util.spec_from_file_location("ldp_vectors_known", KNOWN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "tests" / "vectors" / module.NAME).read_text(encoding="utf-8")
    assert committed == module.text(), "stale: run .venv/bin/python tests/vectors/generate_known.py"
