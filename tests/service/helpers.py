"""Helpers for the service tests: an authenticated client, collection and report builders."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from client_sdk import mechanisms
from ldpserver.clock import FakeClock
from ldpserver.db import write_transaction
from ldpserver.models import ApiKey, Device, DeviceBudget, EpochPartial
from ldpserver.services.audit import ledger_charges
from ldpserver.services.devices import hash_secret
from ldpserver.services.report_batches import stored_count

EPOCH_START = datetime(2025, 1, 1, tzinfo=UTC)
T0 = datetime(2025, 1, 1, 0, 30, tzinfo=UTC)  # half-way through epoch 0 of hourly epochs

BASE_COLLECTION: dict[str, Any] = {
    "name": "test",
    "kind": "frequency",
    "mechanism": {"mechanism": "oue", "epsilon": 1.0, "domain_size": 16},
    "epoch": {"seconds": 3600, "start": "2025-01-01T00:00:00Z", "grace": 1},
    "release": {"windows": [1, 24], "min_reports": 10},
    "budget": {"cap_lifetime": 1000.0},
}


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge overrides into base ("mechanism" is replaced whole; DROP removes a field)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "mechanism":
            out[key] = merged(out[key], value)
        elif value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def device_secret_for(api_key: str, client_id: str) -> str:
    """The test device secret of ``client_id`` under ``api_key`` (deterministic, 43 chars)."""
    digest = hashlib.sha256(f"{api_key}\0{client_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def provision_devices(engine: Engine, api_key: str, client_ids: Any) -> dict[str, str]:
    """Test set-up: devices with the names a test chooses, enrolled under ``api_key``.

    The API chooses random ids (``POST /v1/devices``, tested in test_devices.py); tests of
    ingestion, budgets and releases need stable names, so they put the devices straight
    into the table the enrolment writes. Returns the upload's ``devices`` map."""
    names = sorted({c for c in client_ids if isinstance(c, str) and _CLIENT_ID.match(c)})
    if not names:
        return {}
    match = re.match(r"^ldp_([0-9a-f]{12})_", api_key)
    key_id = match.group(1) if match else "unknown"
    creds = {name: device_secret_for(api_key, name) for name in names}
    table = Device.__table__
    with write_transaction(engine) as conn:
        known = set()
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            known |= set(conn.execute(select(table.c.client_id).where(table.c.client_id.in_(chunk))).scalars())
        rows = [
            {"client_id": n, "secret_hash": hash_secret(creds[n]), "key_id": key_id, "enrolled_day": "2025-01-01"}
            for n in names
            if n not in known
        ]
        if rows:
            conn.execute(table.insert(), rows)
            keys = ApiKey.__table__  # as enrolment does: the key counts its devices
            conn.execute(
                keys.update().where(keys.c.id == key_id).values(devices_enrolled=keys.c.devices_enrolled + len(rows))
            )
    return creds


def with_devices(engine: Engine, api_key: str, reports: list[Any]) -> dict[str, Any]:
    """An upload body for ``reports`` with the secrets of their (provisioned) devices."""
    ids = [r.get("client_id") for r in reports if isinstance(r, dict)]
    return {"wire": 2, "reports": reports, "devices": provision_devices(engine, api_key, ids)}


_DROP = object()
DROP = _DROP  # use as a value in overrides to remove a field


class Api:
    """The Flask test client with role-named keys: ``api.post(path, role="admin", json=...)``."""

    def __init__(self, client: Any, keys: dict[str, str], engine: Engine, clock: FakeClock) -> None:
        self.client = client
        self.keys = keys
        self.engine = engine
        self.clock = clock

    # --- releases -----------------------------------------------------------------------
    @property
    def releases(self) -> Any:
        """The app's release context (central-noise source and settings), as the API uses it."""
        return self.client.application.extensions["ldp"].releases

    def use_release_noise(self, noise: Any = None, settings: Any = None) -> None:
        """Inject the central-noise source the app's releases draw from (tests: ZeroNoise, seeded)
        and/or the server's release settings."""
        from ldpserver.services.releases import ReleaseContext

        state = self.client.application.extensions["ldp"]
        current = state.releases
        state.releases = ReleaseContext(noise or current.noise, settings or current.settings)

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}

    def get(self, path: str, role: str | None = "auditor", **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, path: str, role: str | None = "admin", **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def open(self, method: str, path: str, role: str | None, **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    # --- collections --------------------------------------------------------------------
    def create_collection(self, **overrides: Any) -> dict[str, Any]:
        response = self.post("/v1/collections", json=merged(BASE_COLLECTION, overrides))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    # --- reports ------------------------------------------------------------------------
    def upload(self, collection: dict[str, Any], reports: list[Any], role: str = "client") -> Any:
        """Upload as the devices the reports name (provisioned under the role's key)."""
        body = with_devices(self.engine, self.keys[role], reports)
        return self.post(f"/v1/collections/{collection['id']}/reports", role=role, json=body)

    # --- database -----------------------------------------------------------------------
    def counts(self, collection_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "reports": stored_count(conn, collection_id),
                "ledger": ledger_charges(conn, collection_id),
                "aggregated": int(
                    conn.execute(
                        select(func.coalesce(func.sum(EpochPartial.n), 0)).where(
                            EpochPartial.collection_id == collection_id
                        )
                    ).scalar_one()
                ),
            }

    def device(self, collection_id: str, client_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(DeviceBudget).where(
                    DeviceBudget.collection_id == collection_id, DeviceBudget.client_id == client_id
                )
            ).first()

    def partial_aggregates(self, collection_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(EpochPartial.aggregate).where(EpochPartial.collection_id == collection_id))
            return [json.loads(row.aggregate) for row in rows]

    def aggregate_counts(self, collection_id: str, epoch: int | None = None) -> tuple[int, np.ndarray]:
        """(n, support counts) summed over the epoch partials."""
        query = select(EpochPartial.n, EpochPartial.aggregate).where(EpochPartial.collection_id == collection_id)
        if epoch is not None:
            query = query.where(EpochPartial.epoch == epoch)
        n, total = 0, None
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                data = json.loads(row.aggregate)
                counts = np.asarray(data["counts"], dtype=np.int64)
                n += row.n
                total = counts if total is None else total + counts
        return n, total


def new_report_id() -> str:
    return secrets.token_hex(16)


def make_reports(
    collection: dict[str, Any],
    count: int,
    *,
    client_ids: list[str] | str | None = None,
    epoch: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Valid wire reports for a frequency collection, perturbed by the SDK."""
    m = mechanisms.from_config(collection["config"]["mechanism"])
    rng = np.random.default_rng(seed)
    payloads = m.encode(m.perturb_batch(rng.integers(0, m.domain_size, size=count), rng=rng))
    if client_ids is None:
        clients = [f"dev-{secrets.token_hex(4)}" for _ in range(count)]
    elif isinstance(client_ids, str):
        clients = [client_ids] * count
    else:
        clients = list(client_ids)
    out = []
    for client, payload in zip(clients, payloads, strict=True):
        report = {
            "report_id": new_report_id(),
            "client_id": client,
            "config_hash": collection["config_hash"],
            "epoch": collection["current_epoch"] if epoch is None else epoch,
            "payload": payload,
        }
        out.append(report)
    return out


def statuses(response: Any) -> list[tuple[str, str | None]]:
    return [(r["status"], r["reason"]) for r in response.get_json()["results"]]
