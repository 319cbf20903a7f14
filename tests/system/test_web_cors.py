"""Finding 7 (CORS): a web app on another origin enrols and reports through the built web SDK.

The live server runs with ``LDP_CORS_ORIGINS`` set to one page origin. Two static page
servers on other ports (other origins) serve the end-to-end page, the bundle and a plan
whose ``baseUrl`` is the API server; headless Chromium (``/usr/bin/chromium``) opens both:

* from the allowed origin the browser's preflights pass, the SDK enrols (a server-chosen
  id and a device secret in IndexedDB), reports and flushes: the server holds every
  report on that device's ledger;
* from an origin that is not configured the browser blocks the requests: the SDK cannot
  even fetch the public config (so it perturbs nothing), and nothing is enrolled or stored.
"""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.test_client_harness import live_server
from tests.system.test_web_e2e import BUNDLE, E2E, WEB, build_bundle, chromium_path, collection

pytestmark = pytest.mark.timeout(240)


class PageOrigin:
    """A static origin: the page, its script, the bundle and the plan (read per request, so
    the test can fill it in once the API server is up) — no API behind it."""

    def __init__(self, plan: dict[str, Any]) -> None:
        files = {
            "/": (E2E / "page.html", "text/html; charset=utf-8"),
            "/page.js": (E2E / "page.js", "text/javascript; charset=utf-8"),
            "/ldp-sdk.min.js": (BUNDLE, "text/javascript; charset=utf-8"),
        }

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/plan.json":
                    body, mime = json.dumps(plan).encode(), "application/json"
                elif path in files:
                    body, mime = files[path][0].read_bytes(), files[path][1]
                else:
                    body, mime = b"not found", "text/plain"
                self.send_response(200 if mime != "text/plain" else 404)
                self.send_header("Content-Type", mime)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_page_on_another_origin_enrols_and_reports_through_the_web_sdk(tmp_path: Path) -> None:
    browser = chromium_path()
    build_bundle()
    values = [1, 2, 3, 1, 0, 2, 1]
    allowed_page = denied_page = None
    try:
        # the page origins exist before the server starts: the allowed one goes into its config
        plan: dict[str, Any] = {"namespace": "cors", "corsCollection": {"values": values}, "flushTimeout": 8}
        allowed_page, denied_page = PageOrigin(plan), PageOrigin(plan)
        with live_server(tmp_path / "server", LDP_CORS_ORIGINS=allowed_page.url) as server:
            server.clock.set(None)
            col = server.create_collection(
                collection("frequency", {"mechanism": "grr", "epsilon": 1.0, "domain_size": 4})
            )
            plan.update(apiKey=server.client_key, baseUrl=server.url)
            plan["corsCollection"]["id"] = col["id"]
            assert allowed_page.url != server.url and denied_page.url != server.url  # other origins (ports)

            # preflight as the browser sends it: allowed origin answered, the other one not
            pre = httpx.options(
                f"{server.url}/v1/devices",
                headers={
                    "Origin": allowed_page.url,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == allowed_page.url
            assert "access-control-allow-credentials" not in pre.headers
            denied_pre = httpx.options(
                f"{server.url}/v1/devices",
                headers={"Origin": denied_page.url, "Access-Control-Request-Method": "POST"},
            )
            assert "access-control-allow-origin" not in denied_pre.headers

            done = subprocess.run(
                ["node", str(E2E / "drive_cors.mjs"), browser, str(tmp_path / "profile"), allowed_page.url,
                 denied_page.url],
                cwd=WEB, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert done.returncode == 0, f"driver failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            out = json.loads(done.stdout.strip().splitlines()[-1])
            allowed, denied = out["results"][allowed_page.url], out["results"][denied_page.url]

            # allowed origin: enrolled, every report accepted and on the device's ledger
            assert allowed["errors"] == [], allowed
            assert allowed["storage"] == "indexeddb"
            assert allowed["flush"]["accepted"] == len(values) and allowed["flush"]["ok"], allowed
            device = allowed["clientId"]
            assert device and len(device) == 32
            ledger = server.ledger(col["id"], device)
            assert len(ledger) == len(values) and server.verify(col["id"])
            assert server.summary(col["id"])["reports_accepted"] == len(values)

            # not configured: the browser blocks it, nothing reaches the server
            # (already the public config cannot be fetched: the SDK perturbs nothing without it)
            assert "flush" not in denied and denied["clientId"] is None, denied
            assert any("ConfigUnavailableError" in e for e in denied["errors"]), denied
            enrolments = httpx.get(
                f"{server.url}/v1/audit/enrolments", headers={"Authorization": f"Bearer {server.auditor_key}"}
            ).json()
            assert enrolments["total"] == 1, enrolments
    finally:
        for page in (allowed_page, denied_page):
            if page is not None:
                page.close()
