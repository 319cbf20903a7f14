"""The OpenAPI 3.1 document is generated from the models and states each route's roles."""

from __future__ import annotations

import re

from ldpserver.auth import ROUTE_ROLES


def test_openapi_document_matches_the_role_table(api):
    spec = api.get("/openapi/openapi.json", role=None).get_json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for (method, rule), roles in ROUTE_ROLES.items():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        operation = spec["paths"][path][method.lower()]
        assert operation["x-roles"] == sorted(roles), (method, rule)
        assert operation["security"] == [{"bearer": []}]
        assert "application/problem+json" in operation["responses"]["401"]["content"]
    report = spec["paths"]["/v1/collections/{collection_id}/reports"]["post"]
    schema = report["requestBody"]["content"]["application/json"]["schema"]
    assert "IngestRequest" in schema["$ref"]
    items = spec["components"]["schemas"]["IngestRequest"]["properties"]["reports"]["items"]
    assert items["properties"]["report_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert "CollectionCreate" in spec["components"]["schemas"]


def test_docs_page_lists_every_operation(api):
    page = api.get("/docs", role=None)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for _method, rule in ROUTE_ROLES:
        assert re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule) in html
