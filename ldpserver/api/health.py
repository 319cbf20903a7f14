"""Liveness and readiness (public; the ops issue extends them)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from ldpserver.api.common import json_response, state
from ldpserver.errors import DATABASE_RETRY_AFTER_SECONDS, ProblemError
from ldpserver.schema import current_revision, head_revision

_RETRY = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}  # every 503 says when to come back


def register(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        """The process answers."""
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        """The database answers and its schema is at the migrations' head."""
        st = state()
        try:
            sqlite_file_reachable(st.engine)
            with st.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = current_revision(st.engine)
        except Exception as exc:
            raise ProblemError("unavailable", f"database unreachable: {type(exc).__name__}", headers=_RETRY) from None
        head = head_revision()
        if revision != head:
            raise ProblemError(
                "unavailable", f"database at revision {revision}, expected {head}: run `ldp migrate`", headers=_RETRY
            )
        return json_response({"status": "ready", "database": st.engine.dialect.name, "revision": revision})


def sqlite_file_reachable(engine) -> None:
    """SQLite: open the database file afresh, read-write and without creating it.

    Pooled connections keep a moved or deleted database file open (and ``connect`` would
    create an empty file at the path), so they alone cannot tell that the file is gone.
    """
    if engine.dialect.name != "sqlite":
        return
    import sqlite3
    from urllib.parse import quote

    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    conn = sqlite3.connect(f"file:{quote(database)}?mode=rw", uri=True, timeout=5)
    try:
        conn.execute("SELECT 1 FROM alembic_version").fetchall()
    finally:
        conn.close()
