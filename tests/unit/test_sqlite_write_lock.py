"""SQLite writers wait for the write lock by polling it (``ldpserver.db.begin_immediate``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from ldpserver.db import begin_immediate, make_engine, write_transaction

#: the lock is held this long; SQLite's own busy handler (sleeps of 1, 2, 5, 10, 15, 20, 25, 25,
#: 25, 50, 50 ms) would take it at 228 ms, the poll within a pause (≤ 1 ms) of 185 ms: the
#: bound between leaves a loaded machine's scheduler 30 ms
HOLD_S = 0.185
SQLITE_HANDLER_ANSWERS_S = 0.215


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return conn


def test_a_writer_gets_the_lock_soon_after_it_is_freed_and_keeps_its_timeout(tmp_path):
    holder, waiter = _connect(tmp_path / "db", 5000), _connect(tmp_path / "db", 5000)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(HOLD_S, holder.commit).start()
    started = time.monotonic()
    begin_immediate(waiter, 5000)
    waited = time.monotonic() - started
    assert HOLD_S <= waited < SQLITE_HANDLER_ANSWERS_S, waited
    assert waiter.in_transaction
    waiter.commit()
    assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # restored


def test_a_writer_gives_up_after_its_timeout_as_sqlite_would(tmp_path):
    holder, waiter = _connect(tmp_path / "db", 5000), _connect(tmp_path / "db", 40)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        begin_immediate(waiter, 40)
    assert 0.04 <= time.monotonic() - started < 0.5
    assert not waiter.in_transaction
    assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == 40
    holder.commit()


def test_the_engine_takes_the_write_lock_this_way(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db'}", busy_timeout_ms=5000)
    holder = _connect(tmp_path / "db", 5000)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(HOLD_S, holder.commit).start()
    started = time.monotonic()
    with write_transaction(engine) as conn:
        waited = time.monotonic() - started
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    assert HOLD_S <= waited < SQLITE_HANDLER_ANSWERS_S, waited
    engine.dispose()
