"""Device enrolment and proof of possession: only the holder of a device secret spends its budget.

A device enrolls once with the app's client key (``POST /v1/devices``) and receives a
server-chosen ``client_id`` (32 hex digits: the UTC day of enrolment in 5, then 108
random bits in 27; see :func:`new_client_id`) and a device secret (43 URL-safe base64
characters, shown once: 32 random bytes, or a tagged secret, below). The server keeps the SHA-256 of the
secret, the enrolling key's id and the UTC day of enrolment — nothing else: no address,
no user agent, nothing that ties the device to a person (enrolment is pseudonymous).

Every upload names, next to its reports, the secret of each device it reports for
(``{"reports": [...], "devices": {"<client_id>": "<secret>"}}``, sent over TLS like the
API key). :func:`prove` accepts tagged secrets at once (below); for the others
:func:`verify` hashes each distinct presented secret once and looks the devices of a
batch up in one query (PostgreSQL: ``= ANY(array)``; SQLite: one per 1,000 ids); a
report is accepted for budget accounting only if its device exists, was enrolled by the
**same** client key and the secret matches (``device_unauthenticated`` otherwise).
Devices are the unit of the local-DP guarantee (docs/privacy.md); this check is what
makes "a device's budget" mean one holder.

**Tagged secrets** (when ``LDP_DEVICE_KEY`` is set, as docs/operations.md recommends): a
new device's secret is 23 random characters (136 bits) followed by a 20-character tag, 120
bits of a MAC of its client id and random part under a key derived from the server's key
and the enrolling client key's id, in URL-safe base64 (:func:`issue_secrets`, :func:`_tags`).
An upload whose secret carries the right tag proves, without reading the database, that
this server enrolled that device for that client key (only the server knows the key;
devices are never deleted): :func:`prove` checks the tags of a whole batch with one
constant-time comparison and looks up only the devices whose tag does not verify. The
SHA-256 of every secret is still stored, so a secret issued under an earlier key (or with
no key) verifies by the look-up, and rotating the key — after a leak, say — is only a
change of setting: secrets forged with a leaked key fail the look-up once the key is
replaced, because their random part is not the stored one.

Enrolment limits (docs/api.md, "Devices"): per client key a total cap and a per-hour rate,
and per (client key, source address) a per-hour rate. Counters are fixed windows shared
through Redis when ``LDP_REDIS_URL`` is set, else kept in the database
(``enrolment_windows``: one row per scope and window, deleted once the window is over; a
source address is stored only as a SHA-256 digest, and only for that window).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, delete, func, select

from ldpserver.config import Settings
from ldpserver.db import read_transaction, write_transaction
from ldpserver.errors import PROBLEMS, ProblemError
from ldpserver.models import ApiKey, Device, EnrolmentWindow
from ldpserver.services.keys import Principal

PROBLEMS.setdefault("too-many-requests", (429, "Too many requests"))
PROBLEMS.setdefault("enrolment-quota", (403, "This client key has enrolled all the devices it may"))

log = structlog.get_logger("ldpserver.devices")

devices_t = Device.__table__
windows_t = EnrolmentWindow.__table__
keys_t = ApiKey.__table__

CLIENT_ID = re.compile(r"^[0-9a-f]{32}$")
DEVICE_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
ENROL_WINDOW_SECONDS = 3600
MAX_ENROL_PER_REQUEST = 1000


#: day 0 of the day numbers that lead client ids
EPOCH_DAY = date(1970, 1, 1)


def new_client_id(now: datetime) -> str:
    """A new device's id: the UTC day of enrolment (days since 1970-01-01, 5 hex digits)
    followed by 108 random bits (27 hex digits).

    The day leads so that the devices enrolled on one day sit together in every index keyed
    by client_id (``devices``, ``device_budgets``): a day's new devices land on that day's
    few index pages instead of on random pages of every device ever enrolled, which keeps
    enrolment and ingestion as fast with 10^7 devices as with none (docs/data-model.md).
    The day is what the server keeps of the enrolment anyway (``devices.enrolled_day``);
    it depends on nothing the device measures. 108 random bits keep ids unguessable and
    collisions out of reach (below 10^-18 for 10^7 devices enrolled on one day)."""
    day = (now.astimezone(UTC).date() - EPOCH_DAY).days
    return f"{day:05x}{secrets.token_hex(14)[:27]}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


# --- tagged secrets (LDP_DEVICE_KEY) --------------------------------------------------------
RANDOM_CHARS = 23  # secrets.token_urlsafe(17): 136 random bits
TAG_CHARS = 20  # 15 bytes (120 bits) of the MAC, URL-safe base64; RANDOM_CHARS + TAG_CHARS = 43, DEVICE_SECRET's length
_TAG_BYTES = 15  # a multiple of 3: the tags of a batch are encoded by one base64 call, 20 characters each
_RANDOM_PART = itemgetter(slice(0, RANDOM_CHARS))
_TAG_PART = itemgetter(slice(RANDOM_CHARS, None))
_URL_SAFE = bytes.maketrans(b"+/", b"-_")
_DIGEST = methodcaller("digest")
_COPY = methodcaller("copy")
_UPDATE = hashlib.blake2b.update


def key_for_client_key(server_key: bytes, key_id: str) -> bytes:
    """The MAC key of one client key's device tags: BLAKE2b-256 of the key id, keyed with
    SHA-256 of ``LDP_DEVICE_KEY`` (a tag made for one client key proves nothing for another)."""
    master = hashlib.sha256(server_key).digest()
    return hashlib.blake2b(key_id.encode("utf-8"), key=master, digest_size=32, person=b"ldp-device-v1").digest()


def _tags(server_key: bytes, key_id: str, client_ids: Iterable[str], randoms: Iterable[str]) -> str:
    """The tags of (client id, random part) pairs, joined, :data:`TAG_CHARS` characters each:
    keyed BLAKE2b-120 (RFC 7693's MAC mode) of client id + random part (the random part has
    a fixed length, so the concatenation is unambiguous), in C calls mapped over the batch."""
    messages = list(map(str.encode, map(str.__add__, client_ids, randoms)))
    # the key is absorbed once (its own 128-byte block) and the keyed state copied per message:
    # a third less than keying every MAC anew
    keyed = hashlib.blake2b(key=key_for_client_key(server_key, key_id), digest_size=_TAG_BYTES)
    macs = list(map(_COPY, repeat(keyed, len(messages))))
    deque(map(_UPDATE, macs, messages), maxlen=0)  # update() answers None: nothing to keep
    return binascii.b2a_base64(b"".join(map(_DIGEST, macs)), newline=False).translate(_URL_SAFE).decode("ascii")


def issue_secrets(key: bytes | None, key_id: str, client_ids: Sequence[str]) -> list[str]:
    """New devices' secrets (43 URL-safe characters each): tagged under ``key`` when the
    server has one (``LDP_DEVICE_KEY``), else 32 random bytes."""
    if key is None:
        return [secrets.token_urlsafe(32) for _ in client_ids]
    randoms = [secrets.token_urlsafe(17) for _ in client_ids]
    tags = _tags(key, key_id, client_ids, randoms)
    return [r + tags[i * TAG_CHARS : (i + 1) * TAG_CHARS] for i, r in enumerate(randoms)]


def tagged(key: bytes, proof: DeviceProof, client_ids: Iterable[str]) -> set[str]:
    """The devices among ``client_ids`` whose presented secret carries its tag under ``key``
    for ``proof.key_id``: enrolled by this server for this client key, no look-up needed.
    The whole batch's tags are compared at once, in constant time; device by device only
    when one differs."""
    presented = proof.secrets
    ids = list(set(client_ids).intersection(presented))
    if not ids:
        return set()
    # each secret is 43 characters (the request model's pattern); one of another length
    # only fails its own comparison below
    given = list(map(presented.__getitem__, ids))
    expected = _tags(key, proof.key_id, ids, map(_RANDOM_PART, given))
    if hmac.compare_digest(expected, "".join(map(_TAG_PART, given))):
        return set(ids)
    return {
        cl
        for i, (cl, secret) in enumerate(zip(ids, given, strict=True))
        if hmac.compare_digest(expected[i * TAG_CHARS : (i + 1) * TAG_CHARS], secret[RANDOM_CHARS:])
    }


def prove(engine: Engine, proof: DeviceProof, client_ids: Iterable[str], key: bytes | None) -> set[str]:
    """The client ids (of ``client_ids``) whose device ``proof`` proves: tagged secrets
    (:func:`tagged`, when the server has a ``key``) without the database, the others by
    :func:`verify` (one query, only if any remain)."""
    wanted = set(client_ids).intersection(proof.secrets)
    ok = tagged(key, proof, wanted) if key is not None and wanted else set()
    rest = wanted - ok if ok else wanted
    if rest:
        with read_transaction(engine) as conn:
            ok |= verify(conn, proof, rest)
    return ok


@dataclass(frozen=True)
class DeviceProof:
    """What an upload proves: the client key that sent it and the device secrets it holds."""

    key_id: str
    secrets: Mapping[str, str]


@dataclass(frozen=True)
class Enrolled:
    client_id: str
    device_secret: str


def verify(conn: Connection, proof: DeviceProof, client_ids: Iterable[str]) -> set[str]:
    """The client ids of this batch whose device was enrolled by ``proof.key_id`` and whose
    secret the upload holds. One hash per distinct device; one query.

    The common batch — every device found, enrolled by this key, every secret right — is
    judged in one step: the presented hashes, joined in the rows' order, are compared with
    the stored ones, joined, by one constant-time comparison; any other batch device by device.
    """
    secrets = proof.secrets
    wanted = list(set(client_ids).intersection(secrets))  # any order: a look-up, no lock taken
    ok: set[str] = set()
    if not wanted:
        return ok
    if conn.dialect.name == "postgresql":
        # one text parameter split server-side (ids match [A-Za-z0-9_-], never the unit separator):
        # no per-element adaptation of a 1,000-element array in Python
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor:  # the driver's tuples, one fetchall
            cursor.execute(
                "SELECT client_id, secret_hash, key_id FROM devices "
                "WHERE client_id = ANY(string_to_array(%(ids)s, chr(31)))",
                {"ids": "\x1f".join(wanted)},
            )
            rows: Sequence[Any] = cursor.fetchall()
    else:  # the ids as one JSON array, split by SQLite (json_each): no bound parameter per id
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        try:
            rows = cursor.execute(
                "SELECT client_id, secret_hash, key_id FROM devices "
                "WHERE client_id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        finally:
            cursor.close()
    if not rows:
        return ok
    ids, stored, keys = zip(*rows, strict=True)
    presented = list(map(_HEXDIGEST, map(hashlib.sha256, map(str.encode, map(secrets.__getitem__, ids)))))
    if set(keys) == {proof.key_id} and hmac.compare_digest("".join(presented), "".join(stored)):
        return set(ids)
    for client_id, presented_hash, secret_hash, key_id in zip(ids, presented, stored, keys, strict=True):
        if hmac.compare_digest(presented_hash, secret_hash) and key_id == proof.key_id:
            ok.add(client_id)
    return ok


_HEXDIGEST = methodcaller("hexdigest")


# --- enrolment limits ----------------------------------------------------------------------
@dataclass(frozen=True)
class EnrolLimits:
    max_devices: int
    per_hour: int
    per_address_hour: int

    @classmethod
    def of(cls, principal: Principal, settings: Settings) -> EnrolLimits:
        lim = principal.limits
        return cls(
            settings.enrol_max_devices if lim.max_devices is None else lim.max_devices,
            settings.enrol_per_hour if lim.enrol_per_hour is None else lim.enrol_per_hour,
            settings.enrol_per_address_hour if lim.enrol_per_address_hour is None else lim.enrol_per_address_hour,
        )


def address_scope(key_id: str, address: str) -> str:
    digest = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:40]
    return f"addr:{key_id}:{digest}"


def _too_many(what: str, limit: int, retry: float) -> ProblemError:
    seconds = max(1, math.ceil(retry))
    return ProblemError(
        "too-many-requests",
        f"{what} may enrol {limit} devices per hour; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class RedisWindows:
    """Fixed enrolment windows in Redis (shared by every worker and replica)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix

    def add(self, scope: str, n: int, window: int) -> tuple[int, float]:
        name = f"{self.prefix}{scope}"
        pipe = self.client.pipeline(transaction=True)
        pipe.set(name, 0, ex=window, nx=True)
        pipe.incrby(name, n)
        pipe.ttl(name)
        _, count, ttl = pipe.execute()
        return int(count), float(ttl if ttl and ttl > 0 else window)

    def undo(self, scope: str, n: int) -> None:
        self.client.decrby(f"{self.prefix}{scope}", n)


def redis_windows_from_env(env: Mapping[str, str] = os.environ) -> RedisWindows | None:
    url = (env.get("LDP_REDIS_URL") or "").strip()
    if not url:
        return None
    return RedisWindows(url, env.get("LDP_RATE_LIMIT_PREFIX", "ldp:rl:") + "enrol:")


def _db_window_add(conn: Connection, scope: str, n: int, now_s: float) -> tuple[int, float]:
    start = int(now_s // ENROL_WINDOW_SECONDS) * ENROL_WINDOW_SECONDS
    conn.execute(delete(windows_t).where(windows_t.c.window_start < start))  # past windows: forget them
    row = conn.execute(
        select(windows_t.c.count).where(windows_t.c.scope == scope, windows_t.c.window_start == start)
    ).first()
    if row is None:
        conn.execute(windows_t.insert().values(scope=scope, window_start=start, count=n))
        count = n
    else:
        count = int(row[0]) + n
        conn.execute(
            windows_t.update().where(windows_t.c.scope == scope, windows_t.c.window_start == start).values(count=count)
        )
    return count, start + ENROL_WINDOW_SECONDS - now_s


def enrol(
    engine: Engine,
    principal: Principal,
    count: int,
    address: str,
    now: datetime,
    settings: Settings,
    redis: RedisWindows | None,
) -> list[Enrolled]:
    """Enrol ``count`` devices for ``principal`` (a client key), within its limits.

    The key's row is locked (PostgreSQL ``FOR UPDATE``; SQLite writers are serialised) so
    that concurrent enrolments cannot pass the cap together."""
    if not 1 <= count <= MAX_ENROL_PER_REQUEST:
        raise ProblemError("validation", f"count must lie in [1, {MAX_ENROL_PER_REQUEST}]", status=422)
    limits = EnrolLimits.of(principal, settings)
    scopes = [
        (f"key:{principal.key_id}", limits.per_hour, "this client key"),
        (address_scope(principal.key_id, address), limits.per_address_hour, "one source address with this key"),
    ]
    counted: list[str] = []
    now_s = now.timestamp()
    try:
        if redis is not None:
            for scope, limit, what in scopes:
                try:
                    total, retry = redis.add(scope, count, ENROL_WINDOW_SECONDS)
                except Exception as exc:  # Redis down: count in the database instead
                    log.warning("enrol_limit_redis_unavailable", error=type(exc).__name__)
                    for done in counted:
                        try:
                            redis.undo(done, count)
                        except Exception:
                            pass
                    counted, redis = [], None
                    break
                counted.append(scope)
                if total > limit:
                    raise _too_many(what, limit, retry)
        client_ids = [new_client_id(now) for _ in range(count)]
        issued = issue_secrets(settings.device_key_bytes, principal.key_id, client_ids)
        made = list(map(Enrolled, client_ids, issued))
        with write_transaction(engine) as conn:
            # the key's row, locked (PostgreSQL FOR UPDATE; SQLite writers are serialised), holds its count
            query = select(keys_t.c.devices_enrolled).where(keys_t.c.id == principal.key_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            have = conn.execute(query).scalar_one()
            if redis is None:
                for scope, limit, what in scopes:
                    total, retry = _db_window_add(conn, scope, count, now_s)
                    if total > limit:
                        raise _too_many(what, limit, retry)
            if have + count > limits.max_devices:
                raise ProblemError(
                    "enrolment-quota",
                    f"this client key has enrolled {have} of its {limits.max_devices} devices; "
                    f"{count} more would pass the cap (an admin can create a key with a larger --max-devices)",
                )
            day = now.date().isoformat()
            conn.execute(
                devices_t.insert(),
                [
                    {
                        "client_id": d.client_id,
                        "secret_hash": hash_secret(d.device_secret),
                        "key_id": principal.key_id,
                        "enrolled_day": day,
                    }
                    for d in made
                ],
            )
            conn.execute(
                keys_t.update()
                .where(keys_t.c.id == principal.key_id)
                .values(devices_enrolled=keys_t.c.devices_enrolled + count)
            )
    except ProblemError:
        if redis is not None:  # refused: give the counted enrolments back
            for scope in counted:
                try:
                    redis.undo(scope, count)
                except Exception:  # the window expires anyway
                    pass
        raise
    return made


def enrolments_per_day(conn: Connection, key_id: str | None = None) -> list[dict[str, Any]]:
    """Devices enrolled per client key and UTC day (the auditor's view)."""
    query = select(devices_t.c.key_id, devices_t.c.enrolled_day, func.count().label("enrolments")).group_by(
        devices_t.c.key_id, devices_t.c.enrolled_day
    )
    if key_id is not None:
        query = query.where(devices_t.c.key_id == key_id)
    rows = conn.execute(query.order_by(devices_t.c.enrolled_day, devices_t.c.key_id)).all()
    return [{"key_id": k, "day": d, "enrolments": int(n)} for k, d, n in rows]


def read_enrolments(engine: Engine, key_id: str | None = None) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        return enrolments_per_day(conn, key_id)
