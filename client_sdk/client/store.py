"""The device's state: one SQLite file in ``state_dir`` (WAL, ``synchronous=FULL``).

Tables:

``meta``           the memo-key secret (generated once) and, once enrolled, the server-chosen
                   ``client_id`` with its device secret (never logged; ``device_*`` keys)
``collections``    cached public configs with their hashes (re-verified on load)
``budget``         per collection: units charged, memos held, reports made/accepted/...
``charges``        the device ledger: one row per charged report (units > 0), its window
                   and what became of it (queued / acknowledged / rejected)
``outbox``         reports waiting to be sent, in creation order
``rejected``       reports the server refused for a permanent reason, with the reason
``memos``          memoized permanent responses, keyed by HMAC(device secret, memo key)
``device_states``  per-collection device state of longitudinal protocols (LOLOHA's hash key...)
``flush_leases``   which process is flushing which collection (one at a time, in order)

Every write is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so
concurrent threads and processes queue on ``busy_timeout`` instead of deadlocking); the
budget check, the charge, the memo and the outbox row of a report commit together, and
``synchronous=FULL`` makes the commit durable before ``report()`` returns.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 1
DB_NAME = "ldp-client.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    collection_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    fetched_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS budget (
    collection_id TEXT PRIMARY KEY,
    units INTEGER NOT NULL DEFAULT 0,
    memo_count INTEGER NOT NULL DEFAULT 0,
    reports INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL,
    report_id TEXT NOT NULL UNIQUE,
    epoch INTEGER NOT NULL,
    window INTEGER NOT NULL,
    units INTEGER NOT NULL,
    epsilon REAL NOT NULL,
    memo_count INTEGER,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued'
);
CREATE INDEX IF NOT EXISTS charges_by_window ON charges (collection_id, window);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    collection_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    payload TEXT NOT NULL,
    memo_count INTEGER,
    units INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_collection ON outbox (collection_id, seq);
CREATE TABLE IF NOT EXISTS rejected (
    report_id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    payload TEXT NOT NULL,
    memo_count INTEGER,
    units INTEGER NOT NULL,
    created_at REAL NOT NULL,
    rejected_at REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS rejected_by_collection ON rejected (collection_id, rejected_at);
CREATE TABLE IF NOT EXISTS memos (
    collection_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    memo TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (collection_id, key_hash)
);
CREATE TABLE IF NOT EXISTS device_states (
    collection_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (collection_id, config_hash)
);
CREATE TABLE IF NOT EXISTS flush_leases (
    collection_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class StateStore:
    """One SQLite connection per client object, serialised by a lock; SQLite's own locking
    (``BEGIN IMMEDIATE`` + ``busy_timeout``) serialises writers across processes."""

    def __init__(self, state_dir: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.dir / DB_NAME
        fresh = not self.path.exists()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        if fresh:
            try:
                os.chmod(self.path, 0o600)
            except OSError:  # pragma: no cover - best effort on odd file systems
                pass
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self.write() as c:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("memo_secret", secrets.token_hex(32)),
                ],
            )
            meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
        if int(meta["schema_version"]) > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer SDK (schema {meta['schema_version']} > {SCHEMA_VERSION})"
            )
        self.memo_secret: bytes = bytes.fromhex(meta["memo_secret"])

    # --- the device credential (POST /v1/devices) ------------------------------------------------
    def device(self) -> tuple[str, str] | None:
        """(client_id, device secret) of this device's enrolment, or None (not enrolled yet).
        Read from the file each time: another process on the same state_dir may have enrolled."""
        with self.read() as c:
            meta = dict(
                c.execute("SELECT key, value FROM meta WHERE key IN ('device_client_id', 'device_secret')").fetchall()
            )
        if "device_client_id" in meta and "device_secret" in meta:
            return meta["device_client_id"], meta["device_secret"]
        return None

    def set_device(self, client_id: str, secret: str) -> tuple[str, str]:
        """Keep a fresh enrolment unless another process stored one first (then keep that)."""
        with self.write() as c:
            have = dict(
                c.execute("SELECT key, value FROM meta WHERE key IN ('device_client_id', 'device_secret')").fetchall()
            )
            if "device_client_id" in have and "device_secret" in have:
                return have["device_client_id"], have["device_secret"]
            c.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("device_client_id", client_id), ("device_secret", secret)],
            )
        return client_id, secret

    def forget_device(self, client_id: str) -> None:
        """The server no longer knows ``client_id``: drop it (if it is still ours) to re-enrol."""
        with self.write() as c:
            row = c.execute("SELECT value FROM meta WHERE key = 'device_client_id'").fetchone()
            if row is not None and row[0] == client_id:
                c.execute("DELETE FROM meta WHERE key IN ('device_client_id', 'device_secret')")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            from client_sdk.client.errors import ClientClosedError

            raise ClientClosedError("the client's state store is closed")
        return self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error)."""
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot."""
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# --- flush leases (one flusher per collection; take them inside a write transaction) ---------------


def _holder_alive(owner: str) -> bool:
    """Whether the process named in a lease (``"<pid>:<token>"``) still runs on this host."""
    pid_text, _, _ = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or a platform without signals: assume alive
        return True
    return True


def acquire_lease(conn: sqlite3.Connection, collection_id: str, owner: str, now: float, until: float) -> bool:
    """Take (or renew) the right to flush a collection. A lease held by another owner blocks
    until it expires, unless its process is gone (state_dir is local, so the pid is ours to check)."""
    row = conn.execute(
        "SELECT owner, expires_at FROM flush_leases WHERE collection_id = ?", (collection_id,)
    ).fetchone()
    if row is not None and row[0] != owner and row[1] > now and _holder_alive(row[0]):
        return False
    conn.execute(
        "INSERT INTO flush_leases (collection_id, owner, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (collection_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
        (collection_id, owner, until),
    )
    return True


def release_lease(conn: sqlite3.Connection, collection_id: str, owner: str) -> None:
    conn.execute("DELETE FROM flush_leases WHERE collection_id = ? AND owner = ?", (collection_id, owner))
