"""The collection configs a device knows: memory, then state_dir, then the server.

A config is re-verified (version, hash, mechanism) whenever it is loaded from state_dir,
and a damaged cache entry is fetched again. Nothing here perturbs or charges.
"""

from __future__ import annotations

import json
import threading

from client_sdk.canonical import canonical_json
from client_sdk.client.api import ServerApi
from client_sdk.client.config import CollectionConfig
from client_sdk.client.errors import (
    ConfigHashMismatchError,
    ConfigUnavailableError,
    HTTPError,
    TransportError,
    UnsupportedCollectionError,
)
from client_sdk.client.store import StateStore
from client_sdk.client.timing import Timer


class ConfigCache:
    def __init__(self, store: StateStore, api: ServerApi, timer: Timer, request_timeout: float) -> None:
        self._store = store
        self._api = api
        self._timer = timer
        self.request_timeout = request_timeout
        self._memory: dict[str, CollectionConfig] = {}
        self._lock = threading.Lock()

    def get(self, collection_id: str) -> CollectionConfig:
        """The verified config: memory, then state_dir, then :meth:`refresh`."""
        cached = self._memory.get(collection_id)
        if cached is not None:
            return cached
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT config, config_hash FROM collections WHERE collection_id = ?", (collection_id,)
            ).fetchone()
        if row is not None:
            try:
                compiled = CollectionConfig.build(collection_id, json.loads(row[0]), row[1])
            except (ConfigHashMismatchError, UnsupportedCollectionError, ValueError):
                compiled = None  # a damaged cache entry: fetch it again
            if compiled is not None:
                with self._lock:
                    return self._memory.setdefault(collection_id, compiled)
        return self.refresh(collection_id)

    def refresh(self, collection_id: str) -> CollectionConfig:
        """Fetch the public config from the server, check its hash, keep it in state_dir."""
        try:
            resp = self._api.fetch_config(collection_id, self.request_timeout)
        except TransportError as exc:
            raise ConfigUnavailableError(
                f"collection {collection_id!r}: the public config is not cached and the server is unreachable "
                f"({exc}); nothing was perturbed"
            ) from None
        if resp.status != 200:
            detail, problem = resp.problem_detail()
            err = HTTPError(resp.status, detail, problem)
            raise ConfigUnavailableError(
                f"collection {collection_id!r}: fetching the public config failed ({err}); nothing was perturbed"
            ) from err
        try:
            body = resp.json()
        except (ValueError, UnicodeDecodeError):
            raise ConfigUnavailableError(f"collection {collection_id!r}: the server's config is not JSON") from None
        compiled = CollectionConfig.from_server(collection_id, body)
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO collections (collection_id, kind, config, config_hash, fetched_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (collection_id) DO UPDATE SET kind = excluded.kind, config = excluded.config, "
                "config_hash = excluded.config_hash, fetched_at = excluded.fetched_at",
                (
                    collection_id,
                    compiled.kind,
                    canonical_json(compiled.config),
                    compiled.config_hash,
                    self._timer.time(),
                ),
            )
        with self._lock:
            self._memory[collection_id] = compiled
        return compiled

    def hashes(self) -> dict[str, str]:
        """The config hash of every collection cached in state_dir."""
        with self._store.read() as conn:
            return dict(conn.execute("SELECT collection_id, config_hash FROM collections").fetchall())
