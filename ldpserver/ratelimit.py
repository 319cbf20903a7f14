"""Per-API-key rate limits: a fixed window per key, shared through Redis across workers.

Called by the auth hook (``ldpserver/auth.py``) once a key has been authenticated, so the
limit counts requests per **key id** (never the secret). A key that has used its
``LDP_RATE_LIMIT`` requests in the current window gets ``429 Too Many Requests`` as an
``application/problem+json`` document with ``Retry-After`` (seconds until its window ends).

The window of a key starts at its first request and lasts ``LDP_RATE_LIMIT_WINDOW``
seconds (Redis: ``SET key 0 EX window NX`` then ``INCR``, one round trip; the TTL is the
Retry-After). With ``LDP_REDIS_URL`` set, every gunicorn worker (and every replica)
counts in the same Redis key, so the limit holds for the whole deployment; without it,
each process counts in memory (the limit then holds per process). If Redis cannot be
reached the process falls back to its in-memory counter (logged, at most once a minute)
rather than refusing every request.

| variable | default | meaning |
| --- | --- | --- |
| ``LDP_RATE_LIMIT`` | 0 (off) | requests per key per window; 0 disables the limiter |
| ``LDP_RATE_LIMIT_WINDOW`` | 60 | window length in seconds |
| ``LDP_REDIS_URL`` | unset | ``redis://host:6379/0``: share the counters between processes |
| ``LDP_RATE_LIMIT_PREFIX`` | ``ldp:rl:`` | Redis key prefix (several deployments on one Redis) |

Off by default so that tests, benchmarks and single-tenant installs are not throttled;
set it in production (e.g. ``LDP_RATE_LIMIT=600`` per minute for device keys).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from ldpserver.errors import PROBLEMS, ProblemError

PROBLEMS.setdefault("too-many-requests", (429, "Too many requests"))

log = structlog.get_logger("ldpserver.ratelimit")


def _now() -> float:
    return time.monotonic()


@dataclass
class MemoryCounter:
    """Fixed window per key in this process."""

    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str, window: int) -> tuple[int, float]:
        """Count one request; (requests in the window so far, seconds until it ends)."""
        now = _now()
        with self.lock:
            start, count = self.windows.get(key, (now, 0))
            if now - start >= window:
                start, count = now, 0
            count += 1
            self.windows[key] = (start, count)
            if len(self.windows) > 100_000:  # bound memory: forget expired windows
                for k in [k for k, (s, _) in self.windows.items() if now - s >= window]:
                    del self.windows[k]
            return count, window - (now - start)


class RedisCounter:
    """Fixed window per key in Redis, shared by every process that uses the same Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix

    def hit(self, key: str, window: int) -> tuple[int, float]:
        name = f"{self.prefix}{key}"
        pipe = self.client.pipeline(transaction=True)
        pipe.set(name, 0, ex=window, nx=True)
        pipe.incr(name)
        pipe.ttl(name)
        _, count, ttl = pipe.execute()
        return int(count), float(ttl if ttl and ttl > 0 else window)


@dataclass
class RateLimiter:
    limit: int
    window: int
    redis: RedisCounter | None
    memory: MemoryCounter = field(default_factory=MemoryCounter)
    _last_warning: float = -math.inf

    @classmethod
    def from_env(cls, env: Any = os.environ) -> RateLimiter:
        limit = int(env.get("LDP_RATE_LIMIT", "0") or 0)
        window = max(1, int(env.get("LDP_RATE_LIMIT_WINDOW", "60") or 60))
        url = (env.get("LDP_REDIS_URL") or "").strip()
        redis = RedisCounter(url, env.get("LDP_RATE_LIMIT_PREFIX", "ldp:rl:")) if (url and limit > 0) else None
        return cls(limit, window, redis)

    def hit(self, key_id: str) -> tuple[int, float]:
        if self.redis is not None:
            try:
                return self.redis.hit(key_id, self.window)
            except Exception as exc:  # Redis down: count locally rather than refuse everyone
                now = _now()
                if now - self._last_warning > 60:
                    self._last_warning = now
                    log.warning("rate_limit_redis_unavailable", error=type(exc).__name__)
        return self.memory.hit(key_id, self.window)

    def check(self, key_id: str) -> None:
        """Count a request of ``key_id``; raise a 429 problem when it is over the limit."""
        if self.limit <= 0:
            return
        count, remaining = self.hit(key_id)
        if count > self.limit:
            retry = max(1, math.ceil(remaining))
            raise ProblemError(
                "too-many-requests",
                f"this API key may make {self.limit} requests per {self.window} s; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )


_EXTENSION = "ldp_ratelimit"


def enforce_rate_limit(app: Any, key_id: str) -> None:
    """The auth hook's call: one limiter per app, built from the environment on first use."""
    limiter = app.extensions.get(_EXTENSION)
    if limiter is None:
        limiter = app.extensions.setdefault(_EXTENSION, RateLimiter.from_env())
    limiter.check(key_id)
