"""API keys and device secrets never reach the logs, and keys are compared in constant time.

The app is run at DEBUG level with its real structlog configuration; requests carry valid,
revoked, unknown, malformed and wrongly-schemed keys (in the header, and — wrongly — in a
JSON body), over allowed and forbidden routes, with good and bad bodies. Everything written
to stdout/stderr (file-descriptor level) and to the ``logging`` module is captured and
searched for every key and every key's secret part. A live gunicorn run (2 workers, access
log on) is checked the same way.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import UTC, datetime

import httpx
import pytest

pytest.importorskip("flask")

from ldpserver import schema as db_schema
from ldpserver.app import create_app
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.services import keys as keys_service
from ldpserver.services.keys import create_key, revoke_key
from tests.service.helpers import BASE_COLLECTION, make_reports


def _secrets_of(keys: dict[str, str]) -> list[str]:
    out = []
    for key in keys.values():
        out.append(key)
        if key.startswith("ldp_") and key.count("_") >= 2:
            out.append(key.split("_", 2)[2])  # the secret part alone
    return [s for s in out if len(s) >= 16]


def _traffic(get, post, keys: dict[str, str]) -> None:
    for name, key in keys.items():
        auth = {"Authorization": f"Bearer {key}"}
        get("/v1/collections", auth)
        get("/v1/audit/summary", auth)
        post("/v1/collections", auth, BASE_COLLECTION)
        post("/v1/collections", auth, {"bad": key})  # the key inside a body (a client bug)
        post("/v1/collections/nope/reports", auth, {"reports": [{"client_id": key}]})
        get("/v1/collections", {"Authorization": f"Basic {key}"})
        get("/v1/collections", {"Authorization": key})
        get(f"/v1/collections/{name}", auth)


@pytest.mark.parametrize("json_logs", [True, False])
def test_no_key_material_in_app_logs(tmp_path, capfd, caplog, json_logs):
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'logs.sqlite3'}"
    db_schema.upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    keys = {role: create_key(engine, role, role, now)[1] for role in ("client", "analyst", "auditor", "admin")}
    revoked_id, keys["revoked"] = create_key(engine, "admin", "revoked", now)
    revoke_key(engine, revoked_id, now)
    keys["unknown"] = f"ldp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    keys["malformed"] = secrets.token_urlsafe(40)
    app = create_app(Settings(database_url=url, log_level="DEBUG", log_json=json_logs), engine=engine)
    client = app.test_client()
    codes: list[int] = []

    def get(path, headers):
        codes.append(client.get(path, headers=headers).status_code)

    def post(path, headers, body):
        codes.append(client.post(path, headers=headers, json=body).status_code)

    _traffic(get, post, keys)
    # device secrets: enrolment answers, uploads carrying them (right and wrong), a bad map
    client_auth = {"Authorization": f"Bearer {keys['client']}"}
    admin_auth = {"Authorization": f"Bearer {keys['admin']}"}
    col = client.post("/v1/collections", headers=admin_auth, json=BASE_COLLECTION).get_json()
    enrolled = client.post("/v1/devices", headers=client_auth, json={"count": 2}).get_json()["devices"]
    device_secrets = [d["device_secret"] for d in enrolled]
    a = enrolled[0]["client_id"]
    for proof in ({a: device_secrets[0]}, {a: device_secrets[1]}, {"x" * 70: device_secrets[0]}):
        post(
            f"/v1/collections/{col['id']}/reports",
            client_auth,
            {"wire": 2, "reports": make_reports(col, 1, client_ids=a), "devices": proof},
        )
    post("/v1/devices", client_auth, {"count": 1, "device_secret": device_secrets[1]})  # refused: unknown field
    engine.dispose()
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert {200, 201, 401, 403}.issubset(codes)
    assert len(logged) > 1000, "nothing was logged: the test would prove nothing"
    for secret in _secrets_of(keys) + device_secrets:
        assert secret not in logged


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_no_key_material_in_gunicorn_logs(tmp_path):
    from tests.system.test_faults import gunicorn, pg_database

    with pg_database(tmp_path) as db:
        keys = dict(db.keys)
        keys["unknown"] = f"ldp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        env = {"LDP_LOG_LEVEL": "DEBUG", "LDP_ACCESS_LOG": "-", "LDP_GUNICORN_LOG_LEVEL": "debug"}
        with gunicorn(tmp_path, db.url, workers=2, **env) as server, httpx.Client(timeout=30) as http:

            def get(path, headers):
                http.get(server.url + path, headers=headers)

            def post(path, headers, body):
                http.post(server.url + path, headers=headers, json=body)

            _traffic(get, post, keys)
        logged = server.log_path.read_text(errors="replace")
    assert "GET /v1/collections" in logged  # the access log is on
    for secret in _secrets_of(keys):
        assert secret not in logged


def test_key_verification_uses_a_constant_time_comparison(monkeypatch, tmp_path):
    """Every authentication — known id or not — goes through hmac.compare_digest on SHA-256 digests."""
    url = f"sqlite:///{tmp_path / 'ct.sqlite3'}"
    db_schema.upgrade(url)
    engine = make_engine(url)
    _, key = create_key(engine, "admin", "ct", datetime.now(UTC))
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_service.hmac, "compare_digest", spy)
    unknown = f"ldp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    wrong_secret = key[:17] + secrets.token_urlsafe(32)  # "ldp_" + 12-hex id + "_"
    with engine.connect() as conn:
        for presented, ok in ((key, True), (unknown, False), (wrong_secret, False)):
            principal, _ = keys_service.authenticate(conn, presented)
            assert (principal is not None) == ok
    engine.dispose()
    assert len(calls) == 3  # one comparison each, also for an unknown id
    assert all(len(a) == len(b) == 64 for a, b in calls)  # fixed-length digests, never the raw secret
