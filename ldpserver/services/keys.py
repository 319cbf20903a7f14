"""API keys: ``ldp_<id>_<secret>``, stored as SHA-256 of the whole key, looked up by id.

The id (12 hex digits) is public and names the key in logs and listings; the secret
(32 random bytes, URL-safe base64) is shown once at creation. Verification hashes the
presented key and compares with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from ldpserver.db import read_transaction, write_transaction
from ldpserver.models import ApiKey

ROLES = ("client", "analyst", "auditor", "admin")
KEY_PATTERN = re.compile(r"^ldp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class KeyLimits:
    """A client key's enrolment limits (None: the server's default, ``Settings``)."""

    max_devices: int | None = None
    enrol_per_hour: int | None = None
    enrol_per_address_hour: int | None = None


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    name: str
    collections: frozenset[str] | None = None  # the key's scope; None: every collection
    limits: KeyLimits = KeyLimits()

    def may_see(self, collection_id: str) -> bool:
        return self.collections is None or collection_id in self.collections


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


COLLECTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def create_key(
    engine: Engine,
    role: str,
    name: str,
    now: datetime,
    *,
    collections: list[str] | None = None,
    limits: KeyLimits | None = None,
) -> tuple[str, str]:
    """Create a key; returns (key id, the full key — shown once, never stored).

    ``collections`` scopes the key (client, analyst, auditor) to those collection ids;
    ``limits`` (client keys) overrides the server's enrolment defaults."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if collections is not None:
        if role == "admin":
            raise ValueError("admin keys cannot be scoped: an admin creates collections")
        bad = [c for c in collections if not COLLECTION_ID.match(c)]
        if bad or not collections:
            raise ValueError(f"collection scope must be a non-empty list of collection ids, got {collections!r}")
    limits = limits or KeyLimits()
    if role != "client" and limits != KeyLimits():
        raise ValueError("enrolment limits apply to client keys only")
    for field_name, value in vars(limits).items():
        if value is not None and value < 0:
            raise ValueError(f"{field_name} must be >= 0, got {value}")
    key_id = secrets.token_hex(6)
    key = f"ldp_{key_id}_{secrets.token_urlsafe(32)}"
    assert KEY_PATTERN.match(key)
    with write_transaction(engine) as conn:
        conn.execute(
            ApiKey.__table__.insert().values(
                id=key_id,
                name=name,
                role=role,
                key_hash=hash_key(key),
                created_at=now,
                revoked_at=None,
                collections=json.dumps(sorted(set(collections))) if collections is not None else None,
                max_devices=limits.max_devices,
                enrol_per_hour=limits.enrol_per_hour,
                enrol_per_address_hour=limits.enrol_per_address_hour,
            )
        )
    return key_id, key


def list_keys(engine: Engine) -> list[dict]:
    with read_transaction(engine) as conn:
        rows = conn.execute(select(ApiKey.__table__).order_by(ApiKey.created_at, ApiKey.id)).mappings().all()
    out = []
    for row in rows:
        item = {k: v for k, v in row.items() if k != "key_hash"}
        item["collections"] = json.loads(row["collections"]) if row["collections"] is not None else None
        out.append(item)
    return out


def revoke_key(engine: Engine, key_id: str, now: datetime) -> bool:
    """Revoke a key; False when no active key has this id."""
    table = ApiKey.__table__
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(table).where(table.c.id == key_id, table.c.revoked_at.is_(None)).values(revoked_at=now)
        )
    return result.rowcount == 1


#: the columns :func:`authenticate` reads, in its unpacking order
_KEY_COLUMNS = "id, role, name, key_hash, revoked_at, collections, max_devices, enrol_per_hour, enrol_per_address_hour"


def authenticate(conn: Connection, presented: str) -> tuple[Principal | None, str]:
    """(principal, "") for a valid active key, else (None, why) — why is safe to show.

    Every request runs this, so the look-up goes to the driver's cursor directly (one
    statement by primary key): SQLAlchemy's statement building and result objects cost
    several times the query itself."""
    match = KEY_PATTERN.match(presented)
    if match is None:
        return None, "the API key is malformed"
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = {mark}", (match.group(1),))
        row = cursor.fetchone()
    finally:
        cursor.close()
    digest = hash_key(presented)
    # compare even when the id is unknown, so timing does not tell which ids exist
    stored = row[3] if row is not None else "0" * 64
    if not hmac.compare_digest(digest, stored) or row is None:
        return None, "the API key is not valid"
    key_id, role, name, _, revoked_at, collections, max_devices, per_hour, per_address_hour = row
    if revoked_at is not None:
        return None, "the API key has been revoked"
    scope = frozenset(json.loads(collections)) if collections is not None else None
    return Principal(key_id, role, name, scope, KeyLimits(max_devices, per_hour, per_address_hour)), ""
