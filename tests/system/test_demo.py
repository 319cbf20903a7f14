"""The main job, ``ldp demo``, end to end at a small scale (the README's first command runs it
at full scale): a fresh SQLite database, gunicorn, SDK devices over HTTP, releases through
the API, the audit, /metrics, and an HTML report with its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.ops_helpers import REPO

pytestmark = pytest.mark.timeout(180)


def test_demo_runs_end_to_end_and_writes_the_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("wordfreq")
    from ldpserver.evaluation.datasets import DatasetUnavailable, load_adult

    try:
        load_adult(("education",))
    except DatasetUnavailable as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "ldpserver.cli", "demo", "--scale", "0.06", "--seed", "5", "--no-oracles"]
        + ["--processes", "1", "--threads", "32", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=str(REPO),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in (
        "ldp migrate: database at revision",
        "gunicorn, 2 workers",
        "released epoch 3: frequency #4, multidim #4, heavy_hitters #4",
        "ledger hash chains (GET /v1/audit/verify): all intact",
        "was refused on the device",
        "ldp_reports_total{status='accepted'}",
    ):
        assert expected in out, expected
    report = data_dir / "report" / "index.html"
    assert f"report: {report}" in out
    page = report.read_text()
    assert page.count('src="data:image/png;base64,') == 5  # frequency x2, multidim, heavy hitters, budget
    for name in ("frequency_cumulative.png", "frequency_per_epoch.png", "multidim_marginals.png", "budget.png"):
        assert (data_dir / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    results = json.loads((data_dir / "report" / "results.json").read_text())
    assert {k: len(v) for k, v in results["releases"].items()} == {"frequency": 4, "multidim": 4, "heavy_hitters": 4}
    assert results["results"]["verify"]["ok"]
    outcomes = results["outcomes"]
    assert all(o["pending"] == 0 and o["rejected"] == 0 for o in outcomes.values()), outcomes
    accepted = sum(o["accepted"] for o in outcomes.values())
    assert results["results"]["metrics"]["reports"]["accepted"] == accepted
    audit = results["results"]["audit"]
    assert sum(a["reports_accepted"] for a in audit.values()) == accepted
    assert not any(a["max_over_cap"] for a in audit.values())
    assert not list((data_dir / "devices").glob("*")) if (data_dir / "devices").exists() else True
