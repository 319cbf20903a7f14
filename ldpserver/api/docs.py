"""/docs: a self-contained HTML page generated from the OpenAPI document (works offline).

The machine-readable document is at ``/openapi/openapi.json`` (OpenAPI 3.1).
"""

from __future__ import annotations

import json
from html import escape

from flask import Response
from flask_openapi3 import OpenAPI

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;
vertical-align:top}}code{{background:#f4f4f4;padding:0 .2rem}}.m{{font-weight:bold;font-family:monospace}}
details{{margin:.5rem 0}}pre{{background:#f8f8f8;padding:.5rem;overflow:auto;font-size:.85rem}}
</style></head><body>
<h1>{title} <small>{version}</small></h1>
<p>OpenAPI 3.1 document: <a href="/openapi/openapi.json"><code>/openapi/openapi.json</code></a>.
Authenticate with <code>Authorization: Bearer &lt;key&gt;</code> (keys from <code>ldp keys create</code>).
Errors are <code>application/problem+json</code>.</p>
<table><tr><th>method</th><th>path</th><th>roles</th><th>summary</th></tr>{rows}</table>
<h2>Schemas</h2>{schemas}
</body></html>"""


def register(app: OpenAPI) -> None:
    @app.get("/docs", doc_ui=False)
    def docs_page():
        spec = app.api_doc
        rows = []
        for path, item in sorted(spec.get("paths", {}).items()):
            for method, op in item.items():
                roles = ", ".join(op.get("x-roles", [])) or "public"
                rows.append(
                    f"<tr><td class=m>{escape(method.upper())}</td><td><code>{escape(path)}</code></td>"
                    f"<td>{escape(roles)}</td><td>{escape(op.get('summary', ''))}</td></tr>"
                )
        schemas = []
        for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
            body = escape(json.dumps(schema, indent=2))
            schemas.append(f"<details><summary><code>{escape(name)}</code></summary><pre>{body}</pre></details>")
        info = spec.get("info", {})
        html = PAGE.format(
            title=escape(info.get("title", "API")),
            version=escape(info.get("version", "")),
            rows="".join(rows),
            schemas="".join(schemas),
        )
        return Response(html, mimetype="text/html")
