"""Issue 10: the dashboard (/dashboard), end to end in headless Chromium.

A live server (``test_client_harness.live_server``) is seeded with a frequency collection
with four released epochs, a multidim one and a federated heavy-hitter one; then
``ldpserver/dashboard/e2e/run.mjs`` (playwright-core driving Debian's /usr/bin/chromium,
no browser download) opens the page with each role's key and checks what it shows. The
script writes screenshots to ``test-artifacts/dashboard/``; with
``LDP_DASHBOARD_UPDATE_DOCS=1`` the test also copies the analyst and auditor views to
``docs/img/dashboard-*.png`` (the README's screenshots).

Without Chromium (or node/npm) the test is skipped, or fails when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.system.ops_helpers import provision
from tests.system.test_client_harness import REPO, ldp_cli, live_server

CHROMIUM = os.environ.get("LDP_CHROMIUM", "/usr/bin/chromium")
E2E = REPO / "ldpserver" / "dashboard" / "e2e"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
START = datetime(2026, 1, 1, tzinfo=UTC)
K = 8  # frequency domain size
EPOCHS = 4  # released epochs of the frequency collection


def _need_browser() -> None:
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    if missing:
        reason = f"the dashboard e2e test needs Chromium ({CHROMIUM}), node and npm; missing: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _npm_ci() -> None:
    if (E2E / "node_modules" / "playwright-core" / "package.json").exists():
        return
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=E2E, env=env, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        reason = f"npm ci failed in {E2E}: {done.stderr[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class Seeder:
    def __init__(self, server: Any, analyst_key: str) -> None:
        self.s = server
        self.analyst_key = analyst_key

    def _req(self, method: str, key: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, self.s.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kw)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def at(self, epoch: int) -> None:
        self.s.clock.set(START + timedelta(hours=epoch, minutes=30))

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("epoch", {"seconds": 3600, "start": "2026-01-01T00:00:00Z", "grace": 1})
        return self._req("POST", self.s.admin_key, "/v1/collections", json=body)

    def upload(self, col: dict[str, Any], payloads: list[Any], epoch: int, prefix: str, extra: list | None = None):
        reports = [
            {
                "report_id": os.urandom(16).hex(),
                "client_id": f"{prefix}-{i}",
                "config_hash": col["config_hash"],
                "epoch": epoch,
                "payload": payload,
            }
            for i, payload in enumerate(payloads)
        ] + (extra or [])
        devices = provision(self.s.env["DATABASE_URL"], self.s.client_key, [r["client_id"] for r in reports])
        body = {"wire": 2, "reports": reports, "devices": devices}
        return self._req("POST", self.s.client_key, f"/v1/collections/{col['id']}/reports", json=body)

    def release(self, col: dict[str, Any], epoch: int) -> None:
        self._req(
            "POST", self.s.admin_key, f"/v1/collections/{col['id']}/releases", json={"epoch": epoch, "force": True}
        )

    def seed(self) -> dict[str, Any]:
        from client_sdk import heavy_hitters, mechanisms, multidim

        self.at(0)
        freq = self.create(
            name="favourite colour",
            kind="frequency",
            mechanism={"mechanism": "oue", "epsilon": 1.0, "domain_size": K},
            release={"windows": [1, 2], "cumulative": True, "min_reports": 50},
            budget={"cap_lifetime": 3.0, "cap_per_window": 1.0, "window_epochs": 1},
        )
        m = mechanisms.from_config(freq["config"]["mechanism"])
        weights = np.array([8, 6, 5, 4, 3, 2, 1, 1], dtype=float)
        for epoch in range(EPOCHS):
            self.at(epoch)
            rng = np.random.default_rng(epoch)
            values = rng.choice(K, size=400, p=weights / weights.sum())
            payloads = m.encode(m.perturb_batch(values, rng=rng))
            # devices dev-0..dev-(n) recur across epochs, so budget spent differs per device
            n = 300 + 30 * epoch
            stale = [  # rejected: a wrong config hash (a rejection counter for the auditor view)
                {
                    "report_id": os.urandom(16).hex(),
                    "client_id": f"bad-{epoch}",
                    "config_hash": "sha256:" + "0" * 64,
                    "epoch": epoch,
                    "payload": payloads[0],
                }
            ]
            answer = self.upload(freq, payloads[:n], epoch, "dev", extra=stale)
            # epoch 3: the devices that reported in epochs 0-2 hit the lifetime cap (3 x 1.0)
            assert answer["accepted"] >= 50 and answer["rejected"] >= 1, {
                k: answer[k] for k in ("accepted", "rejected")
            }
            self.release(freq, epoch)

        self.at(0)
        md = self.create(
            name="device profile",
            kind="multidim",
            mechanism={"mechanism": "rsfd-adp", "epsilon": 1.0, "domain_sizes": [4, 2, 6]},
            release={"windows": [1], "min_reports": 20},
            budget={"cap_lifetime": 10.0},
        )
        mm = multidim.from_config(md["config"]["mechanism"])
        for epoch in range(2):
            self.at(epoch)
            rng = np.random.default_rng(10 + epoch)
            payloads = mm.encode(mm.perturb_batch(rng.integers(0, [4, 2, 6], size=(200, 3)), rng=rng))
            self.upload(md, payloads, epoch, f"md{epoch}")
            self.release(md, epoch)

        self.at(0)
        mechanism = heavy_hitters.create(
            "tap", epsilon=4.0, k=2, domain={"type": "integer", "bits": 8}, eta=2, parties=["eu", "us"]
        ).config
        hhc = self.create(
            name="top apps",
            kind="heavy_hitters",
            mechanism=mechanism,
            parties=["eu", "us"],
            release={"windows": [1], "cumulative": False, "min_reports": 50},
            budget={"cap_lifetime": 8.0},
        )
        hh = heavy_hitters.from_config(hhc["config"]["mechanism"])
        items = [7] * 500 + [9] * 250 + [200] * 300 + [31] * 350
        parties = ["eu"] * 750 + ["us"] * 650
        for epoch in range(2):
            self.at(epoch)
            reports = hh.perturb_batch(np.asarray(items), np.random.default_rng(20 + epoch), parties=parties)
            self.upload(hhc, hh.encode(reports), epoch, f"hh{epoch}")
            self.release(hhc, epoch)
        self.at(EPOCHS + 2)
        return {"frequency": freq, "multidim": md, "heavy_hitters": hhc}


def _run_browser(server: Any, analyst_key: str, cols: dict[str, Any]) -> dict[str, Any]:
    cfg = {
        "url": server.url,
        "chromium": CHROMIUM,
        "artifacts": str(ARTIFACTS),
        "keys": {"analyst": analyst_key, "auditor": server.auditor_key},
        "collections": {name: col["id"] for name, col in cols.items()},
    }
    done = subprocess.run(
        ["node", str(E2E / "run.mjs"), json.dumps(cfg)], cwd=E2E, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"browser run failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    _need_browser()
    _npm_ci()
    with live_server(tmp_path / "server") as server:
        analyst_key = ldp_cli(server.env, "keys", "create", "--role", "analyst", "--name", "dashboard-e2e")
        cols = Seeder(server, analyst_key).seed()
        obs = _run_browser(server, analyst_key, cols)
    (ARTIFACTS / "observations.json").write_text(json.dumps(obs, indent=1))

    assert obs["consoleErrors"] == [], obs["consoleErrors"]  # no script error
    # the only failed requests: the role checks the test provokes (and the browser's favicon probe)
    expected = {
        "403 /v1/audit/summary",
        "403 /v1/collections/{col}/estimates",
        "401 /v1/collections",
        "404 /favicon.ico",
    }
    seen = {e.replace(cols["frequency"]["id"], "{col}") for e in obs["httpErrors"]}
    assert seen <= expected and "403 /v1/audit/summary" in seen, obs["httpErrors"]
    assert obs["foreignRequests"] == []  # no CDN, nothing but the server

    analyst = obs["analyst"]
    assert analyst["estPoints"] == K and analyst["estCI"] == K  # one bar (with its CI) per item
    assert analyst["tsPoints"] == EPOCHS and analyst["tsBand"] == 1  # one point per released epoch
    assert analyst["releaseNumber"] == str(EPOCHS) and analyst["releaseOptions"] == EPOCHS
    assert analyst["configHash"] == cols["frequency"]["config_hash"]
    assert analyst["denied"] == 0
    assert analyst["olderRelease"] == "2" and analyst["olderEstPoints"] == K

    assert obs["multidim"]["marginals"] == 3 and obs["multidim"]["pointsPerMarginal"] == [4, 2, 6]
    assert obs["multidim"]["tsPoints"] == 2

    heavy = obs["heavy"]
    assert heavy["globalRows"] == 2 and heavy["chartPoints"] == 2  # k = 2
    assert heavy["partyBlocks"] == ["eu", "us"] and heavy["partyRows"] == 4
    assert heavy["tsPoints"] >= 1

    wrong = obs["analystOnAuditor"]  # an analyst key gets no audit data
    assert wrong["denied"] == ["audit: not permitted for this role"]
    assert wrong["points"] == wrong["verify"] == wrong["rejections"] == wrong["params"] == 0

    auditor = obs["auditor"]
    assert auditor["verifyOk"] == "true" and "OK" in auditor["verifyText"]
    assert set(auditor["rejections"]) == {"budget_exceeded_lifetime", "config_mismatch"}
    assert int(auditor["rejectionsTotal"]) > EPOCHS
    assert auditor["budgetBars"] == 10 and auditor["capMarker"] == 1
    assert auditor["releaseRows"] == EPOCHS and auditor["denied"] == 0
    params = " ".join(auditor["params"])
    for needle in ("neighbouring notion", "record", "derived p", "derived q", "memo policy", "not memoized"):
        assert needle in params, needle

    back = obs["auditorOnAnalyst"]  # an auditor key cannot load estimates
    assert back["denied"] == ["estimates: not permitted for this role"] and back["points"] == 0

    assert obs["badKey"]["points"] == 0 and obs["badKey"]["options"] == 0 and "401" in obs["badKey"]["status"]
    assert obs["keyInStorageOnly"] is True

    for name in ("analyst-frequency", "analyst-multidim", "analyst-heavy-hitters", "auditor-frequency"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
    if os.environ.get("LDP_DASHBOARD_UPDATE_DOCS"):  # regenerate the README's screenshots
        img = REPO / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "analyst-frequency.png", img / "dashboard-analyst.png")
        shutil.copyfile(ARTIFACTS / "auditor-frequency.png", img / "dashboard-auditor.png")
