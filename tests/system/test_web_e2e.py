"""The Web SDK end to end: headless Chromium (the system's), the built bundle, a live server.

A page (``client_sdk/web/test/e2e/page.html``) loads ``dist/ldp-sdk.min.js`` and, with the
SDK's ``Client`` (IndexedDB device ledger and outbox), reports values to a frequency (OUE),
a multidim (RS+FD[ADP]) and a heavy-hitter (PEM) collection on a live ``ldpserver``
process, checks that the device refuses the report past a cap, and flushes. Then:

* the server's audit API holds exactly those reports, all accepted, charged to the page's
  device id (ledger verified);
* an admin release of the epoch reflects them: the OUE estimate peaks at the page's mode,
  every RS+FD marginal at its attribute's mode, and PEM discovers the page's top items;
* a second visit queues reports and leaves the page: the page-hide ``fetch(keepalive)``
  delivers them (a third visit's flush finds only duplicates, and the server counts each
  report once).

The server has no CORS support, so the page is served from the server's origin: a tiny
same-origin reverse proxy here serves the page, the bundle and a plan, and forwards
``/v1/*`` to the server. A screenshot goes to ``test-artifacts/web-e2e.png``.

Needs Node.js + npm (the bundle is built here if stale) and Chromium (``/usr/bin/chromium``,
Debian package ``chromium``; ``LDP_CHROMIUM`` overrides). Without them the test is skipped,
except on CI (env ``CI`` set), where it fails.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.test_client_harness import REPO, live_server

pytestmark = pytest.mark.timeout(240)

WEB = REPO / "client_sdk" / "web"
E2E = WEB / "test" / "e2e"
BUNDLE = WEB / "dist" / "ldp-sdk.min.js"
ARTIFACTS = REPO / "test-artifacts"


def _need(what: str, found: Any) -> Any:
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing on CI: the web SDK end-to-end test must run there")
    pytest.skip(f"{what} is missing: the web SDK end-to-end test (headless Chromium) did not run")


def chromium_path() -> str:
    candidates = [os.environ.get("LDP_CHROMIUM"), "/usr/bin/chromium"] + [
        shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
    ]
    found = next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)
    return _need("Chromium (apt-get install -y chromium; or set LDP_CHROMIUM)", found)


def _npm(*args: str, timeout: float) -> None:
    done = subprocess.run(
        ["npm", *args], cwd=WEB, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def build_bundle() -> None:
    """npm ci if playwright-core (or anything) is missing; npm run build if the bundle is stale."""
    _need("Node.js and npm", shutil.which("node") and shutil.which("npm"))
    if not (WEB / "node_modules" / "playwright-core").is_dir() or not (WEB / "node_modules" / "typescript").is_dir():
        _npm("ci", "--no-audit", "--no-fund", "--prefer-offline", timeout=600)
    sources = [p.stat().st_mtime for p in (WEB / "src").rglob("*.ts")]
    if not BUNDLE.is_file() or BUNDLE.stat().st_mtime < max(sources):
        _npm("run", "build", timeout=300)


class SameOriginProxy:
    """Serves the page, the bundle and the plan, and forwards /v1/* to the live server."""

    def __init__(self, upstream: str, plan: dict[str, Any]) -> None:
        self.upstream = upstream
        self.plan = json.dumps(plan).encode()
        self.posts: list[tuple[str, int]] = []  # (path, number of reports) of the POSTs the server answered
        files = {
            "/": (E2E / "page.html", "text/html; charset=utf-8"),
            "/page.js": (E2E / "page.js", "text/javascript; charset=utf-8"),
            "/ldp-sdk.min.js": (BUNDLE, "text/javascript; charset=utf-8"),
        }
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path.startswith("/v1/"):
                    return self._forward()
                if path == "/plan.json":
                    return self._send(200, proxy.plan, {"Content-Type": "application/json"})
                if path == "/e2e/answered":  # reports per collection the server has answered for
                    counts: dict[str, int] = {}
                    for post_path, n_reports in list(proxy.posts):
                        cid = post_path.split("/")[3]
                        counts[cid] = counts.get(cid, 0) + n_reports
                    return self._send(200, json.dumps(counts).encode(), {"Content-Type": "application/json"})
                if path in files:
                    file, mime = files[path]
                    return self._send(200, file.read_bytes(), {"Content-Type": mime})
                return self._send(404, b"not found", {"Content-Type": "text/plain"})

            def do_POST(self) -> None:
                if self.path.startswith("/v1/"):
                    return self._forward()
                return self._send(404, b"not found", {"Content-Type": "text/plain"})

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")
                }
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=60)
                out = {k: r.headers[k] for k in ("Content-Type", "Retry-After") if k in r.headers}
                if self.command == "POST" and body and r.status_code == 200:
                    proxy.posts.append((self.path, len(json.loads(body)["reports"])))
                self._send(r.status_code, r.content, out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def collection(kind: str, mechanism: dict[str, Any], *, cap: float = 1e6, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"web e2e {kind}",
        "kind": kind,
        "mechanism": mechanism,
        "epoch": {"seconds": 86400, "grace": 1},
        "release": {"windows": [1, 2], "min_reports": 10},
        "budget": {"cap_lifetime": cap},
        **extra,
    }


def admin(server, method: str, path: str, **kwargs: Any) -> Any:
    r = httpx.request(
        method, server.url + path, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60, **kwargs
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def estimates(server, cid: str, **params: Any) -> list[dict[str, Any]]:
    return admin(server, "GET", f"/v1/collections/{cid}/estimates", params={"limit": 10000, **params})["items"]


def test_web_sdk_in_headless_chromium_against_a_live_server(tmp_path: Path) -> None:
    browser = chromium_path()
    build_bundle()
    rng = random.Random(20301)
    n = 400

    # one device (the page) sends every report: central DP per device-epoch hides exactly that
    # device, so the release is checked with the central noise off (tested on its own elsewhere)
    with live_server(tmp_path / "server", release_noise=False) as server:
        server.clock.set(None)  # real time on both sides: the browser has its own clock
        freq = server.create_collection(
            collection("frequency", {"mechanism": "oue", "epsilon": 2.0, "domain_size": 16})
        )
        md = server.create_collection(
            collection("multidim", {"mechanism": "rsfd-adp", "epsilon": 2.0, "domain_sizes": [4, 2, 12]})
        )
        hh = server.create_collection(
            collection(
                "heavy_hitters",
                {"protocol": "pem", "epsilon": 6.0, "k": 2, "domain": {"type": "string", "max_bytes": 2}},
            )
        )
        cap = server.create_collection(
            collection("frequency", {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4}, cap=3.0)
        )
        hide = server.create_collection(collection("frequency", {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4}))

        freq_values = [3] * 240 + [11] * 120 + [rng.randrange(16) for _ in range(n - 360)]
        md_values = [
            [
                2 if rng.random() < 0.8 else rng.randrange(4),
                1 if rng.random() < 0.75 else 0,
                5 if rng.random() < 0.6 else rng.randrange(12),
            ]
            for _ in range(n)
        ]
        hh_values = ["hi"] * 240 + ["ok"] * 120 + ["no"] * 40
        for values in (freq_values, md_values, hh_values):
            rng.shuffle(values)
        plan = {
            "apiKey": server.client_key,
            "namespace": "e2e",
            "collections": [
                {"id": freq["id"], "label": "colour (OUE, ε=2, k=16)", "values": freq_values},
                {"id": md["id"], "label": "profile (RS+FD[ADP], ε=2, k=[4,2,12])", "values": md_values},
                {"id": hh["id"], "label": "words (PEM, ε=6, 2 bytes)", "values": hh_values},
            ],
            "capCollection": {"id": cap["id"], "allowed": 3},
            "hideCollection": {"id": hide["id"], "values": [0, 1, 2, 3, 1]},
        }
        proxy = SameOriginProxy(server.url, plan)
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            screenshot = ARTIFACTS / "web-e2e.png"
            done = subprocess.run(
                ["node", str(E2E / "drive.mjs"), proxy.url, str(screenshot), browser, str(tmp_path / "profile")],
                cwd=WEB,
                capture_output=True,
                text=True,
                timeout=180,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, f"driver failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            result = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            proxy.close()

        main, hide_phase, after = result["main"], result["hide"], result["after"]
        assert main["errors"] == [] and hide_phase["errors"] == [] and after["errors"] == [], result
        assert main["storage"] == "indexeddb", "the browser runtime must keep its ledger and outbox in IndexedDB"
        device = main["clientId"]
        assert hide_phase["clientId"] == after["clientId"] == device, "the device id persists across visits"

        # the device refused the 4th report to a collection capped at 3, before perturbing
        refusal = main["refusal"]
        assert refusal["refused"] and refusal["refused"]["name"] == "DeviceBudgetExceededError", refusal
        assert refusal["refused"]["scope"] == "lifetime" and refusal["pending"] == 3

        flush = main["flush"]
        total = 3 * n + 3
        assert flush["accepted"] == total and flush["rejected"] == 0 and flush["ok"], flush
        assert main["pendingAfterFlush"] == 0
        for c in (freq, md, hh):
            assert main["collections"][c["id"]]["configHash"] == c["config_hash"]
            budget = main["budgets"][c["id"]]
            assert budget["acknowledgedUnits"] == n and budget["pending"] == 0

        # the server holds exactly these reports, all accepted, on this device's ledger
        for c, expected in ((freq, n), (md, n), (hh, n), (cap, 3)):
            summary = server.summary(c["id"])
            assert summary["reports_accepted"] == expected, summary
            ledger = server.ledger(c["id"], device)
            assert len(ledger) == expected and all(row["client_id"] == device for row in ledger)
            assert server.verify(c["id"])

        # page hide: fetch keepalive delivered the 5 queued reports; the next visit found only duplicates
        assert hide_phase["pending"] == 5
        assert result["keepaliveAnswered"] == 5, "the page-hide keepalive request did not reach the server"
        assert after["flush"]["accepted"] == 0 and after["flush"]["rejected"] == 0, after
        assert after["flush"]["duplicates"] == after["pendingBeforeFlush"], after
        assert after["pendingAfterFlush"] == 0
        assert server.summary(hide["id"])["reports_accepted"] == 5
        assert sorted(r["report_id"] for r in server.ledger(hide["id"], device)) == sorted(hide_phase["receipts"])

        # release the epoch(s) and read what the analyst API publishes
        current = max(e for c in (freq, md, hh) for e in main["collections"][c["id"]]["epochs"])
        for c in (freq, md, hh):
            admin(server, "POST", f"/v1/collections/{c['id']}/releases", json={"epoch": current, "force": True})
        scope = {"scope": "window", "window": 2}  # covers a day boundary crossed while the page reported

        rows = [r for r in estimates(server, freq["id"], **scope) if r["status"] == "released"]
        freqs = {int(r["item"]): r["frequency"] for r in rows}
        assert len(freqs) == 16
        assert max(freqs, key=freqs.get) == 3 and 0.4 < freqs[3] < 0.8, freqs
        assert 0.1 < freqs[11] < 0.5, freqs

        rows = [r for r in estimates(server, md["id"], **scope) if r["status"] == "released"]
        by_attribute: dict[int, dict[int, float]] = {}
        for r in rows:
            by_attribute.setdefault(r["attribute"], {})[int(r["item"])] = r["frequency"]
        modes = {a: max(f, key=f.get) for a, f in by_attribute.items()}
        assert modes == {0: 2, 1: 1, 2: 5}, by_attribute

        hitters = admin(server, "GET", f"/v1/collections/{hh['id']}/heavy-hitters", params=scope)["items"]
        top = [r["item"] for r in hitters if r.get("party") is None and r["status"] == "released"]
        # only items significant with the central noise are published (400 reports: maybe none)
        assert set(top) <= {"hi", "ok"} and (not top or top[0] == "hi"), hitters

        assert screenshot.is_file() and screenshot.stat().st_size > 5000
