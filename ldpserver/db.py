"""Database engines: SQLite (embedded default) and PostgreSQL, with the right settings.

SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged report survives a power cut),
``busy_timeout``, foreign keys and a 32 MiB page cache on every connection; the driver's own transaction
handling is switched off so that writers start with ``BEGIN IMMEDIATE`` (taking the
write lock up front: no lock upgrade, no deadlock, writers queue on busy_timeout) and
readers with a plain ``BEGIN``.

PostgreSQL (``postgresql+psycopg://``): READ COMMITTED, session time zone UTC; row
locks (``SELECT ... FOR UPDATE`` / upserts) serialise what must be serialised. A pooled
connection that sat idle for :data:`PING_AFTER_IDLE_S` or more is pinged before use and
replaced if it is dead (a restart, an idle timeout, a dropped TCP session); one reused
sooner is not (``pool_pre_ping`` would spend a round trip on every checkout: two per
upload, about 0.5 ms of the worker's CPU). A connection that dies under a statement fails
that request with a 503 (``ldpserver/errors.py``; the client retries), and the rollback
that finds it dead makes SQLAlchemy drop it and every connection pooled before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

#: seconds a pooled PostgreSQL connection may sit idle and still be used without a ping
PING_AFTER_IDLE_S = 1.0


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 20,
    busy_timeout_ms: int = 30_000,
    null_pool: bool = False,
) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if backend == "postgresql":
        kwargs = {"connect_args": {"options": "-c timezone=UTC"}}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60)
        engine = create_engine(url, **kwargs)
        _ping_when_idle(engine)
        return engine
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it was idle for :data:`PING_AFTER_IDLE_S`
    (SQLAlchemy's "pessimistic disconnect handling" with a custom checkout event): a dead one
    raises ``DisconnectionError``, on which the pool discards it and checks out another."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # absent: connected for this checkout
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's error for a dead connection
            raise DisconnectionError(f"connection lost while idle: {exc}") from exc
        if not alive:
            raise DisconnectionError("connection lost while idle")


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB page cache per connection (default 2 MiB)
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("sqlite_immediate"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-write transaction: ``BEGIN IMMEDIATE`` on SQLite, plain on PostgreSQL."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def single_read(engine: Engine) -> Iterator[Connection]:
    """A connection for one read-only statement (every request's API-key look-up). PostgreSQL
    runs it in autocommit — a single statement is its own snapshot, so a transaction would only
    add the BEGIN and COMMIT round trips; SQLite in a read transaction (no round trips there)."""
    if is_sqlite(engine):
        with read_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")
