"""The analyst / auditor dashboard (issue 10): one static page at ``/dashboard``.

The page is a shell (HTML, CSS, vanilla JS with small hand-written SVG charts; no build
step, no CDN, no new Python dependency) served without a key under the public prefix
``/dashboard``. It holds **no data**: every number it shows comes from the existing
role-checked JSON APIs (``/v1/collections``, ``/v1/collections/{id}/releases``,
``/estimates``, ``/heavy-hitters``, ``/timeseries``, ``/v1/audit/*``), called by the
browser with the key the user types in (kept in ``sessionStorage``). A key whose role may
not call an endpoint gets the API's 403 and the page says "not permitted for this role",
so the page never shows what the role may not see, by construction.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from flask import Blueprint, Flask, send_from_directory

# package data of the server wheel (pyproject.toml: dashboard/static/*, dashboard/templates/*),
# found through importlib.resources; an installed or editable package is a real directory
HERE = Path(str(importlib.resources.files("ldpserver.dashboard")))
STATIC = HERE / "static"


def build_blueprint() -> Blueprint:
    bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

    @bp.get("")
    @bp.get("/")
    def page():
        response = send_from_directory(HERE / "templates", "dashboard.html", mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @bp.get("/static/<path:name>")
    def asset(name: str):
        return send_from_directory(STATIC, name, max_age=0)

    return bp


def register(app: Flask) -> None:
    app.register_blueprint(build_blueprint())
