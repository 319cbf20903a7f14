"""The shared test vectors are current, and the Web SDK passes its tests against them.

``tests/vectors/*.json`` are generated from the Python SDK by ``tests/vectors/generate.py``;
the web package (``client_sdk/web``) checks its TypeScript code against them — the frequency
oracles (parameters, OLH hashes, sampling thresholds and replayed draws, canonical JSON and
config hashes, wire encodings and decoder verdicts, whole perturbations), RS+FD
(``multidim.json``: parameters, privacy, replayed perturbations, encodings, decoder
verdicts, exact output laws), the heavy-hitter clients (``heavy_hitters.json``: item codes,
prefix keys, configs and hashes, replayed PEM/TAP/TAPS/TreeHist reports, decoder verdicts)
and the device runtime's rules (``runtime.json``: config hashes of served JSON, epochs,
budget units) — and runs chi-square distribution tests (oracles and RS+FD) and the
runtime's tests against a fake server. Here:

1. the vectors are regenerated in memory and must equal the committed files (so a change
   of the Python SDK that moves any vector fails until the vectors, and the web SDK, follow);
2. if Node.js and npm are on PATH, ``npm ci`` and ``npm test`` run in ``client_sdk/web``
   (TypeScript build, browser bundle, ``node --test``); without them the test is skipped,
   except on CI (env ``CI`` set), where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "client_sdk" / "web"
VECTORS = ROOT / "tests" / "vectors"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ldp_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return load_generator().build_all()


def test_committed_vectors_are_current(fresh: dict[str, str]) -> None:
    stale = [
        name
        for name, text in fresh.items()
        if not (VECTORS / name).exists() or (VECTORS / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale vectors {stale}: run .venv/bin/python tests/vectors/generate.py (then the web tests)"


def test_vectors_cover_every_mechanism_and_reason(fresh: dict[str, str]) -> None:
    perturb = json.loads(fresh["perturb.json"])["cases"]
    assert {c["config"]["mechanism"] for c in perturb} == {"grr", "sue", "oue", "olh", "blh", "hr"}
    decode = json.loads(fresh["wire.json"])["decode"]
    reasons = {c["expect"].get("reason") for c in decode} - {None}
    assert reasons == {
        "not_an_object",
        "bad_version",
        "wrong_mechanism",
        "bad_type",
        "out_of_range",
        "bad_encoding",
        "bad_length",
        "unknown_field",
    }
    # where the web decoder departs from Python's, the vector says why
    assert all("note" in c for c in decode if "python" in c)


def test_vectors_cover_multidim_heavy_hitters_and_runtime(fresh: dict[str, str]) -> None:
    multidim = json.loads(fresh["multidim.json"])
    names = {"rsfd-grr", "rsfd-oue-z", "rsfd-oue-r", "rsfd-adp"}
    assert {c["config"]["mechanism"] for c in multidim["perturb"]} == names
    assert {c["name"] for c in multidim["grid"]} == names
    assert {c["config"]["mechanism"] for c in multidim["output_distribution"]} == names
    reasons = {c["expect"].get("reason") for c in multidim["decode"]} - {None}
    assert {
        "not_an_object",
        "bad_version",
        "wrong_mechanism",
        "bad_type",
        "bad_length",
        "bad_encoding",
        "out_of_range",
        "unknown_field",
    } <= reasons
    assert all("note" in c for c in multidim["decode"] if "python" in c)

    hh = json.loads(fresh["heavy_hitters.json"])
    assert {c["config"]["protocol"] for c in hh["perturb"]} == {"pem", "tap", "taps", "treehist"}
    assert {c["domain"]["type"] for c in hh["items"]} == {"string", "integer"}
    reasons = {c["expect"].get("reason") for c in hh["decode"]} - {None}
    assert {"missing_field", "unknown_field", "bad_version", "wrong_mechanism", "bad_type", "out_of_range"} <= reasons
    assert all("note" in c for c in hh["decode"] if "python" in c)

    runtime = json.loads(fresh["runtime.json"])
    assert {c["compiled"]["kind"] for c in runtime["configs"] if "compiled" in c} == {
        "frequency",
        "multidim",
        "heavy_hitters",
    }


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command, cwd=WEB, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} timed out after {timeout:.0f} s:\n{(exc.stdout or '')[-4000:]}")
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed in client_sdk/web (exit {result.returncode}):\n"
            f"--- stdout (tail) ---\n{result.stdout[-6000:]}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"
        )
    return result


@pytest.mark.system  # builds the bundle and runs the web SDK's own suite with npm: a minute, not for the quick loop
def test_web_sdk_builds_and_passes_its_tests() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is not on PATH on CI: the web SDK's tests (client_sdk/web) must run there")
        pytest.skip(
            f"{missing} is not on PATH: the web SDK's build and tests (client_sdk/web, Node.js >= 20) did not run"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1)) if re.match(r"v(\d+)", version) else 0
    assert major >= 20, f"the web SDK needs Node.js >= 20 (crypto.getRandomValues global, node --test); found {version}"

    install = ["ci"] if (WEB / "package-lock.json").exists() else ["install"]
    _run([npm, *install, "--no-audit", "--no-fund", "--prefer-offline"], timeout=600)
    result = _run([npm, "test"], timeout=300)

    # node's test runner closes with "# pass N" / "# fail N" (TAP, when not on a terminal) or "ℹ pass N" (spec)
    passed = re.search(r"^(?:#|ℹ) pass (\d+)$", result.stdout, re.MULTILINE)
    failed = re.search(r"^(?:#|ℹ) fail (\d+)$", result.stdout, re.MULTILINE)
    assert passed and failed, f"no test summary in the output of npm test:\n{result.stdout[-3000:]}"
    assert int(failed.group(1)) == 0 and int(passed.group(1)) > 20, result.stdout[-3000:]
    assert (WEB / "dist" / "ldp-sdk.min.js").is_file(), "npm test must build the browser bundle"
