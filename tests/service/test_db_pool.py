"""PostgreSQL connection pool: a connection reused at once is not pinged; one that sat idle is,
and is replaced if it died meanwhile (``ldpserver/db.py``)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ldpserver import db
from tests.service.conftest import PG_ADMIN_URL, fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        engine = db.make_engine(url, pool_size=1, max_overflow=0)
        try:
            yield engine
        finally:
            engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _count_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_reused_at_once_is_not_pinged(pg_engine, monkeypatch):
    pings = _count_pings(pg_engine, monkeypatch)
    first = _backend_pid(pg_engine)  # a new connection: nothing to ping
    assert _backend_pid(pg_engine) == first  # reused within PING_AFTER_IDLE_S
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    assert _backend_pid(pg_engine) == first  # idle "long enough": pinged, alive, kept
    assert pings == [1]


def test_a_connection_that_died_while_idle_is_replaced(pg_engine, monkeypatch):
    import psycopg

    first = _backend_pid(pg_engine)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    second = _backend_pid(pg_engine)  # the ping found it dead: the pool connected again
    assert second != first
