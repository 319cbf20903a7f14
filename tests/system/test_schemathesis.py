"""Property-based API fuzzing with schemathesis against the app's own OpenAPI document.

The schema is the one the app serves (``/openapi/openapi.json``), loaded through the WSGI
app (no socket). Every operation is exercised — ``MAX_EXAMPLES`` generated cases each
(positive and negative data), so several thousand requests in total. Each case carries a
valid API key of a role allowed on that operation (the operation's ``x-roles``), and half
of the cases that take a ``collection_id`` are pointed at an existing collection (one per
kind), so generation reaches the validation, ingestion and release code, not only 401/404.

Checks (strict): ``not_a_server_error`` (no 5xx), ``response_schema_conformance`` (every
response matches the documented schema), ``status_code_conformance`` (every status code is
documented for its operation) and ``content_type_conformance`` (every content type too;
ldpserver/openapi_responses.py adds the answers of the layers in front of the views).

Database: a migrated SQLite file; ``LDP_SCHEMATHESIS_DATABASE=postgresql`` runs the same
fuzzing against a uniquely named PostgreSQL database on the test server (dropped at exit),
e.g. ``LDP_SCHEMATHESIS_DATABASE=postgresql .venv/bin/pytest tests/system/test_schemathesis.py``.
"""

from __future__ import annotations

import os
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("flask")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from ldpserver import schema as db_schema  # noqa: E402
from ldpserver.app import create_app  # noqa: E402
from ldpserver.config import Settings  # noqa: E402
from ldpserver.db import make_engine  # noqa: E402
from ldpserver.services.keys import create_key  # noqa: E402
from tests.service.helpers import BASE_COLLECTION  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("LDP_SCHEMATHESIS_EXAMPLES", "150"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

_state: dict[str, object] = {}


def _postgres_database() -> str:
    """A fresh database on the test PostgreSQL server, dropped when the test process exits."""
    import atexit
    import secrets

    import psycopg

    from tests.service.conftest import PG_ADMIN_URL, _pg_url

    name = f"ldp_fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def _drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(_drop)
    return _pg_url(name)


def _build_app():
    """The app on a fresh migrated SQLite file, with one key per role and one collection.

    Built at import time: ``schema.parametrize`` needs the schema when the module is
    collected (``schemathesis.pytest.from_fixture`` does not work with this pytest)."""
    if os.environ.get("LDP_SCHEMATHESIS_DATABASE") == "postgresql":
        url = _postgres_database()
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ldp-schemathesis-')) / 'fuzz.sqlite3'}"
    db_schema.upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    keys = {
        role: create_key(engine, role, f"fuzz {role}", now)[1] for role in ("client", "analyst", "auditor", "admin")
    }
    app = create_app(Settings(database_url=url, log_level="ERROR", max_body_bytes=2 * 1024 * 1024), engine=engine)
    body = {**BASE_COLLECTION, "epoch": {"seconds": 3600, "grace": 1}}
    created = app.test_client().post("/v1/collections", json=body, headers={"Authorization": f"Bearer {keys['admin']}"})
    assert created.status_code == 201, created.get_json()
    _state.update(keys=keys, collection_ids=[created.get_json()["id"]], cases=0, statuses={})
    return app


schema = schemathesis.openapi.from_wsgi("/openapi/openapi.json", _build_app())


def _roles(case) -> list[str]:
    raw = case.operation.definition.raw
    return list(raw.get("x-roles") or [])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_openapi_document(case):
    keys: dict[str, str] = _state["keys"]  # type: ignore[assignment]
    roles = _roles(case)
    headers = {}
    if roles:
        headers["Authorization"] = f"Bearer {keys[roles[0]]}"
    params = case.path_parameters or {}
    if "collection_id" in params and random.Random(repr(case.body) + repr(params)).random() < 0.5:
        params["collection_id"] = _state["collection_ids"][0]  # type: ignore[index]
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    _state["cases"] = int(_state["cases"]) + 1  # type: ignore[arg-type]
    statuses: dict[int, int] = _state["statuses"]  # type: ignore[assignment]
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1


def test_zz_the_fuzzing_ran_thousands_of_cases_without_a_server_error():
    """Runs after the parametrized test (file order): how much was generated, and what came back."""
    cases, statuses = int(_state["cases"]), dict(_state["statuses"])  # type: ignore[arg-type]
    if cases == 0:
        pytest.skip("the schemathesis test was not selected in this run")
    assert not [code for code in statuses if code >= 500], statuses
    assert cases >= 10 * MAX_EXAMPLES, (cases, statuses)
    assert any(200 <= code < 300 for code in statuses), statuses  # deep paths were reached
    target = os.environ.get("LDP_RELIABILITY_LOG")
    if target:
        import json

        with open(target, "a", encoding="utf-8") as handle:
            record = {
                "test": "schemathesis",
                "cases": cases,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
            }
            handle.write(json.dumps(record) + "\n")
