"""HTTP layer: one APIBlueprint per resource, registered by :func:`register_blueprints`."""

from __future__ import annotations

from flask_openapi3 import OpenAPI


def register_blueprints(app: OpenAPI) -> None:
    from ldpserver.api import audit, collections, devices, dictionaries, docs, health, releases, reports

    for module in (collections, devices, reports, audit, releases, dictionaries):
        app.register_api(module.build_blueprint())
    health.register(app)
    docs.register(app)
    from ldpserver import dashboard  # issue 10: /dashboard (static shell; data only via the APIs)

    dashboard.register(app)
