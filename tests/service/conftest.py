"""Service-test fixtures: the real app over HTTP, on SQLite and on PostgreSQL.

Every test that uses ``app``/``api`` runs twice, once per ``backend``:

* ``sqlite``: a migrated temporary file;
* ``postgresql``: a uniquely named database created on 127.0.0.1:5432 for the session
  (``LDP_TEST_PG_URL`` overrides the admin URL) and dropped afterwards. When the server
  is unreachable these tests are skipped with a message — unless ``CI`` is set, where
  they fail instead.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from ldpserver import schema
from ldpserver.app import create_app
from ldpserver.clock import FakeClock
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.services.keys import create_key, revoke_key
from tests.service.helpers import T0, Api

PG_ADMIN_URL = os.environ.get("LDP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_pg_state: dict[str, object] = {}


def postgres_reachable() -> str | None:
    """None when the server answers, else why not (cached for the session)."""
    if "error" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["error"] = None
        except Exception as exc:  # any failure means "not reachable"
            _pg_state["error"] = f"{type(exc).__name__}: {exc}".strip()
    return _pg_state["error"]  # type: ignore[return-value]


def require_postgres() -> None:
    error = postgres_reachable()
    if error is None:
        return
    message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the PostgreSQL service tests", pytrace=False)
    pytest.skip(f"{message}; skipping the PostgreSQL variant (set CI=1 to make this a failure)")


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@contextmanager
def fresh_database(backend: str, tmp_dir) -> Iterator[str]:
    """An empty database (no schema), removed afterwards; yields its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / f'ldp-{secrets.token_hex(4)}.sqlite3'}"
        return
    require_postgres()
    import psycopg

    name = f"ldp_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request) -> str:
    if request.param == "postgresql":
        require_postgres()
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory) -> Iterator[str]:
    with fresh_database(backend, tmp_path_factory.mktemp(backend)) as url:
        schema.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=10, max_overflow=60)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def keys(engine: Engine) -> dict[str, str]:
    """One key per role, plus a revoked key and two that never existed."""
    now = datetime.now(UTC)
    out = {role: create_key(engine, role, f"test {role}", now)[1] for role in ("client", "analyst", "auditor", "admin")}
    revoked_id, revoked = create_key(engine, "admin", "revoked", now)
    revoke_key(engine, revoked_id, now)
    out["revoked"] = revoked
    out["unknown"] = f"ldp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    out["malformed"] = "not-a-key"
    return out


#: the server's device key of the service tests (devices are proven by their secrets' tags, as
#: in production; tests/service/test_devices.py also runs without one: the database look-up)
TEST_DEVICE_KEY = "service-tests-device-key-0123456789abcdef"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        log_level="WARNING",
        max_body_bytes=2 * 1024 * 1024,
        device_key=TEST_DEVICE_KEY,  # type: ignore[arg-type]  # pydantic turns the text into a SecretStr
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FakeClock):
    return create_app(settings, clock=clock, engine=engine)


@pytest.fixture
def api(app, keys: dict[str, str], engine: Engine, clock: FakeClock) -> Api:
    return Api(app.test_client(), keys, engine, clock)


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The same app on a real threaded HTTP server on 127.0.0.1 (port chosen by the OS)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
