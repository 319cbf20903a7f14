"""Per-key rate limits (``ldpserver/ratelimit.py``): in one process, and shared through
Redis by two gunicorn workers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
import pytest

pytest.importorskip("flask")

from ldpserver import ratelimit
from ldpserver import schema as db_schema
from ldpserver.app import create_app
from ldpserver.config import Settings
from ldpserver.db import make_engine
from ldpserver.services.keys import create_key

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def small_app(tmp_path, monkeypatch):
    monkeypatch.setenv("LDP_RATE_LIMIT", "5")
    monkeypatch.setenv("LDP_RATE_LIMIT_WINDOW", "30")
    monkeypatch.delenv("LDP_REDIS_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'rl.sqlite3'}"
    db_schema.upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    keys = {name: create_key(engine, role, name, now)[1] for name, role in (("a", "auditor"), ("b", "auditor"))}
    keys["client"] = create_key(engine, "client", "client", now)[1]
    app = create_app(Settings(database_url=url, log_level="ERROR"), engine=engine)
    yield app, keys
    engine.dispose()


def test_a_key_over_its_limit_gets_429_problem_with_retry_after_and_others_do_not(small_app, monkeypatch):
    app, keys = small_app
    clock = [1000.0]
    monkeypatch.setattr(ratelimit, "_now", lambda: clock[0])
    client = app.test_client()

    def get(key: str):
        return client.get("/v1/collections", headers={"Authorization": f"Bearer {keys[key]}"})

    assert [get("a").status_code for _ in range(5)] == [200] * 5
    over = get("a")
    assert over.status_code == 429
    assert over.mimetype == "application/problem+json"
    body = over.get_json()
    assert body["status"] == 429 and body["type"].endswith("/too-many-requests")
    assert over.headers["Retry-After"] == "30"
    assert keys["a"] not in over.get_data(as_text=True)
    assert get("b").status_code == 200  # per key, not global
    # forbidden requests count too (403 after the limit check would leak nothing, but cost us a lookup)
    assert client.post("/v1/collections", json={}, headers={"Authorization": f"Bearer {keys['b']}"}).status_code == 403
    clock[0] += 10
    assert get("a").headers["Retry-After"] == "20"
    clock[0] += 21  # the window is over
    assert get("a").status_code == 200
    # public endpoints and requests without a valid key are never counted against a key
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))
    assert client.get("/v1/collections", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_limiter_is_off_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("LDP_RATE_LIMIT", raising=False)
    limiter = ratelimit.RateLimiter.from_env({})
    assert limiter.limit == 0 and limiter.redis is None
    for _ in range(1000):
        limiter.check("k")


def test_redis_down_falls_back_to_the_per_process_counter():
    limiter = ratelimit.RateLimiter.from_env(
        {"LDP_RATE_LIMIT": "3", "LDP_RATE_LIMIT_WINDOW": "60", "LDP_REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    for _ in range(3):
        limiter.check("k")
    with pytest.raises(ratelimit.ProblemError) as err:
        limiter.check("k")
    assert err.value.status == 429


def _redis_or_skip():
    import os

    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable in CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc}); set CI=1 to make this a failure")
    return redis


def test_redis_counter_is_shared_between_limiters():
    _redis_or_skip()
    env = {
        "LDP_RATE_LIMIT": "4",
        "LDP_RATE_LIMIT_WINDOW": "60",
        "LDP_REDIS_URL": REDIS_URL,
        "LDP_RATE_LIMIT_PREFIX": f"ldp:test:{secrets.token_hex(6)}:",
    }
    one, two = ratelimit.RateLimiter.from_env(env), ratelimit.RateLimiter.from_env(env)
    outcomes = []
    for i in range(8):
        try:
            (one if i % 2 else two).check("shared")
            outcomes.append(200)
        except ratelimit.ProblemError as exc:
            outcomes.append(exc.status)
    assert outcomes == [200] * 4 + [429] * 4


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_two_gunicorn_workers_share_one_limit_through_redis(tmp_path):
    _redis_or_skip()
    from tests.system.test_faults import gunicorn, pg_database

    limit = 20
    env = {
        "LDP_RATE_LIMIT": str(limit),
        "LDP_RATE_LIMIT_WINDOW": "600",
        "LDP_REDIS_URL": REDIS_URL,
        "LDP_RATE_LIMIT_PREFIX": f"ldp:test:{secrets.token_hex(6)}:",
    }
    with pg_database(tmp_path) as db, gunicorn(tmp_path, db.url, workers=2, **env) as server:
        assert len(server.worker_pids()) == 2
        headers = {"Authorization": f"Bearer {db.keys['auditor']}"}
        codes = []
        for _ in range(3 * limit):  # a new connection per request: the two workers both serve
            with httpx.Client(timeout=10) as client:
                r = client.get(server.url + "/v1/collections", headers=headers)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.headers["Retry-After"].isdigit() and r.headers["content-type"].startswith(
                    "application/problem+json"
                )
        # in-memory counters would let each worker pass `limit` (up to 2 × limit in total)
        assert codes.count(200) == limit, codes
        assert codes.count(429) == 2 * limit
        # another key is not affected
        other = httpx.get(server.url + "/v1/collections", headers={"Authorization": f"Bearer {db.keys['admin']}"})
        assert other.status_code == 200


def test_enrolment_limits_are_shared_through_redis(tmp_path):
    """Two apps (two workers) on one Redis: the per-address enrolment rate holds across both."""
    import secrets
    from datetime import UTC, datetime

    from ldpserver import schema as db_schema
    from ldpserver.app import create_app
    from ldpserver.config import Settings
    from ldpserver.db import make_engine
    from ldpserver.services.keys import KeyLimits, create_key

    redis = _redis_or_skip()
    prefix = f"ldp-test-{secrets.token_hex(6)}:"
    url = f"sqlite:///{tmp_path / 'enrol.sqlite3'}"
    db_schema.upgrade(url)
    engine = make_engine(url)
    _, key = create_key(engine, "client", "t", datetime.now(UTC), limits=KeyLimits(enrol_per_address_hour=4))
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"LDP_REDIS_URL": REDIS_URL, "LDP_RATE_LIMIT_PREFIX": prefix}):
        apps = [create_app(Settings(database_url=url, log_level="WARNING"), engine=engine) for _ in range(2)]
        headers = {"Authorization": f"Bearer {key}"}
        codes = [apps[i % 2].test_client().post("/v1/devices", json={}, headers=headers).status_code for i in range(6)]
    try:
        assert codes == [201] * 4 + [429] * 2
        client = redis.Redis.from_url(REDIS_URL)
        assert client.keys(f"{prefix}enrol:*"), "the counters live in Redis"
        with engine.connect() as conn:  # and not in the database
            assert conn.exec_driver_sql("SELECT count(*) FROM enrolment_windows").scalar_one() == 0
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.keys(f"{prefix}*"):
            client.delete(name)
        engine.dispose()
