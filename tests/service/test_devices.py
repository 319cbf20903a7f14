"""Device credentials, enrolment limits, key scope, the enrolments audit, CORS (issue 15: 2, 7).

The threat model these tests pin down (docs/api.md, "Threat model"):

* a client key enrols devices (within its quota) and uploads for devices *it* enrolled,
  and only with their secrets; it reads public configs; it cannot read estimates or audit;
* a device secret lets its holder spend that one device's budget, nothing else;
* analysts read estimates/releases, auditors the ledger and enrolment counts, of the
  collections their key is scoped to; only admins create collections and releases.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ldpserver.app import create_app
from ldpserver.config import Settings
from ldpserver.models import ApiKey, Device
from ldpserver.services.keys import KeyLimits, create_key
from tests.service.conftest import TEST_DEVICE_KEY
from tests.service.helpers import Api, make_reports


@pytest.fixture(params=["device key", "no device key"])
def settings(database_url: str, request) -> Settings:
    """Every test here runs with a server device key (tagged secrets, no look-up) and without
    (each secret's hash looked up)."""
    key = TEST_DEVICE_KEY if request.param == "device key" else None
    return Settings(database_url=database_url, log_level="WARNING", device_key=key)  # type: ignore[arg-type]


def _key(api: Api, role: str = "client", **kwargs) -> str:
    return create_key(api.engine, role, f"test {role}", datetime.now(UTC), **kwargs)[1]


def _enrol(api: Api, key: str, count: int = 1, address: str = "127.0.0.1"):
    return api.client.post(
        "/v1/devices",
        json={"count": count},
        headers={"Authorization": f"Bearer {key}"},
        environ_base={"REMOTE_ADDR": address},
    )


def _device(api: Api, key: str) -> tuple[str, str]:
    r = _enrol(api, key)
    assert r.status_code == 201, r.get_json()
    dev = r.get_json()["devices"][0]
    return dev["client_id"], dev["device_secret"]


def _upload(api: Api, col: dict, key: str, reports: list, devices: dict | None = None):
    body = {"wire": 2, "reports": reports}
    if devices is not None:
        body["devices"] = devices
    r = api.client.post(f"/v1/collections/{col['id']}/reports", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# --- finding 2: device identity -------------------------------------------------------------
def test_enrolment_gives_a_random_id_and_a_secret_stored_only_hashed(api):
    key = _key(api)
    r = _enrol(api, key, count=2)
    assert r.status_code == 201
    assert r.headers["Cache-Control"] == "no-store"
    devices = r.get_json()["devices"]
    assert len(devices) == 2 and devices[0]["client_id"] != devices[1]["client_id"]
    for dev in devices:
        assert len(dev["client_id"]) == 32 and len(dev["device_secret"]) == 43
    with api.engine.connect() as conn:
        rows = conn.execute(select(Device.__table__).where(Device.client_id.in_([d["client_id"] for d in devices])))
        stored = [dict(row._mapping) for row in rows]
    assert len(stored) == 2
    for row in stored:
        assert set(row) == {"client_id", "secret_hash", "key_id", "enrolled_day"}  # nothing about the person
        assert all(dev["device_secret"] not in str(v) for dev in devices for v in row.values())


def test_other_key_cannot_spend_an_enrolled_devices_budget(api):
    """Finding 2: another app's key sent reports under an honest device's id and the device's
    own next report was refused budget_exceeded_lifetime. Now: 0 accepted, budget untouched."""
    col = api.create_collection(
        mechanism={"mechanism": "oue", "epsilon": 1.0, "domain_size": 16}, budget={"cap_lifetime": 2.0}
    )
    honest_key, other_key = _key(api), _key(api)
    client_id, secret = _device(api, honest_key)

    forged = make_reports(col, 3, client_ids=client_id, seed=1)
    # a second client key: without the secret, and even with it (the device is not its own)
    assert _upload(api, col, other_key, forged)["accepted"] == 0
    out = _upload(api, col, other_key, forged, {client_id: secret})
    assert out["accepted"] == 0
    assert {r["reason"] for r in out["results"]} == {"device_unauthenticated"}
    # the same key without the secret, or with a wrong one
    assert _upload(api, col, honest_key, forged)["accepted"] == 0
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert _upload(api, col, honest_key, forged, {client_id: wrong})["accepted"] == 0
    assert api.device(col["id"], client_id) is None  # nothing charged
    assert api.counts(col["id"]) == {"reports": 0, "ledger": 0, "aggregated": 0}

    # the device itself still has its whole budget
    own = make_reports(col, 2, client_ids=client_id, seed=2)
    assert _upload(api, col, honest_key, own, {client_id: secret})["accepted"] == 2
    assert api.device(col["id"], client_id).units == 2


def test_one_key_cannot_pose_as_thousands_of_devices(api):
    """Finding 2: one client key posed as 4,000 made-up devices. Made-up ids are refused, and
    real ones cost an enrolment each, within the key's quota."""
    col = api.create_collection()
    key = _key(api)
    reports = make_reports(col, 4000, seed=3)  # 4,000 distinct made-up client ids
    out = _upload(api, col, key, reports)
    assert out["accepted"] == 0 and out["rejected"] == 4000
    assert {r["reason"] for r in out["results"]} == {"device_unauthenticated"}
    assert api.counts(col["id"])["reports"] == 0


def test_mixed_batch_accepts_exactly_the_proven_devices(api):
    col = api.create_collection()
    key = _key(api, limits=KeyLimits(enrol_per_address_hour=100))
    devices = [_device(api, key) for _ in range(3)]
    reports = [make_reports(col, 1, client_ids=cid, seed=i)[0] for i, (cid, _) in enumerate(devices)]
    reports += make_reports(col, 2, seed=9)  # two strangers
    proof = {cid: sec for cid, sec in devices[:2]}  # the third device's secret is missing
    out = _upload(api, col, key, reports, proof)
    assert [r["status"] for r in out["results"]] == ["accepted", "accepted", "rejected", "rejected", "rejected"]
    assert api.counts(col["id"])["ledger"] == 2


# --- abuse limits -----------------------------------------------------------------------------
def test_one_client_key_cannot_enrol_past_its_quota(api):
    key = _key(api, limits=KeyLimits(max_devices=5, enrol_per_address_hour=1000))
    assert _enrol(api, key, count=3).status_code == 201
    assert _enrol(api, key, count=2).status_code == 201
    for count in (1, 3):
        r = _enrol(api, key, count=count)
        assert r.status_code == 403 and r.mimetype == "application/problem+json"
        assert r.get_json()["type"].endswith("/enrolment-quota")
    with api.engine.connect() as conn:
        kid = key.split("_")[1]
        n = conn.execute(select(Device.client_id).where(Device.key_id == kid)).all()
        counted = conn.execute(select(ApiKey.devices_enrolled).where(ApiKey.id == kid)).scalar_one()
    assert len(n) == 5 and counted == 5  # the key's own count, which the cap check reads, agrees


def test_enrolments_per_address_and_per_key_are_rate_limited(api):
    key = _key(api, limits=KeyLimits(enrol_per_hour=6, enrol_per_address_hour=3))
    assert _enrol(api, key, count=3, address="192.0.2.1").status_code == 201
    r = _enrol(api, key, address="192.0.2.1")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert _enrol(api, key, count=3, address="192.0.2.2").status_code == 201  # another address
    r = _enrol(api, key, address="192.0.2.3")  # per-key hourly rate: 6 reached
    assert r.status_code == 429 and "this client key" in r.get_json()["detail"]
    api.clock.advance(seconds=3600)
    assert _enrol(api, key, address="192.0.2.1").status_code == 201  # next window


def test_server_default_enrolment_limits_apply_without_per_key_ones(api, settings, engine, clock):
    app = create_app(Settings(**{**settings.model_dump(), "enrol_per_address_hour": 2}), clock=clock, engine=engine)
    key = _key(api)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/devices", json={"count": 2}, headers=headers).status_code == 201
    assert client.post("/v1/devices", json={}, headers=headers).status_code == 429


@pytest.mark.parametrize("body", [{"count": 0}, {"count": 1001}, {"count": "1"}, {"count": 1, "name": "x"}, []])
def test_bad_enrolment_bodies_are_4xx(api, body):
    r = api.post("/v1/devices", role="client", json=body)
    assert 400 <= r.status_code < 500 and r.mimetype == "application/problem+json"


def test_auditor_sees_enrolments_per_key_per_day(api):
    key = _key(api, limits=KeyLimits(enrol_per_address_hour=100))
    kid = key.split("_")[1]
    assert _enrol(api, key, count=4).status_code == 201
    api.clock.advance(seconds=86400)
    assert _enrol(api, key, count=1).status_code == 201
    r = api.get(f"/v1/audit/enrolments?key_id={kid}", role="auditor")
    assert r.status_code == 200
    body = r.get_json()
    day0 = api.clock().date()
    assert [(i["key_id"], i["enrolments"]) for i in body["items"]] == [(kid, 4), (kid, 1)]
    assert body["items"][1]["day"] == day0.isoformat() and body["total"] == 5
    for role in ("client", "analyst", "admin"):
        assert api.get("/v1/audit/enrolments", role=role).status_code == 403


# --- key scope ----------------------------------------------------------------------------------
def test_collection_scoped_keys(api):
    mine, other = api.create_collection(), api.create_collection()
    client = _key(api, collections=[mine["id"]], limits=KeyLimits(enrol_per_address_hour=100))
    analyst = _key(api, "analyst", collections=[mine["id"]])
    auditor = _key(api, "auditor", collections=[mine["id"]])

    def get(key: str, path: str):
        return api.client.get(path, headers={"Authorization": f"Bearer {key}"})

    cid, secret = _device(api, client)
    assert _upload(api, mine, client, make_reports(mine, 1, client_ids=cid), {cid: secret})["accepted"] == 1
    r = api.client.post(
        f"/v1/collections/{other['id']}/reports",
        json={"wire": 2, "reports": make_reports(other, 1, client_ids=cid), "devices": {cid: secret}},
        headers={"Authorization": f"Bearer {client}"},
    )
    assert r.status_code == 403
    assert get(client, f"/v1/collections/{other['id']}").status_code == 403
    listed = {c["id"] for c in get(analyst, "/v1/collections").get_json()["items"]}
    assert listed == {mine["id"]}
    assert get(analyst, f"/v1/collections/{mine['id']}/estimates").status_code != 403
    assert get(analyst, f"/v1/collections/{other['id']}/estimates").status_code == 403
    assert get(auditor, f"/v1/audit/ledger?collection={mine['id']}").status_code == 200
    assert get(auditor, f"/v1/audit/ledger?collection={other['id']}").status_code == 403
    assert get(auditor, "/v1/audit/ledger").status_code == 403  # all collections: not for a scoped key
    assert get(auditor, "/v1/audit/verify").status_code == 403
    with pytest.raises(ValueError):
        _key(api, "admin", collections=[mine["id"]])
    with pytest.raises(ValueError):
        _key(api, "analyst", limits=KeyLimits(max_devices=3))


def test_a_device_secret_is_not_an_api_key_and_spends_only_its_own_device(api):
    col = api.create_collection()
    key = _key(api, limits=KeyLimits(enrol_per_address_hour=100))
    (a, secret_a), (b, _) = _device(api, key), _device(api, key)
    for bearer in (secret_a, f"ldp_{a[:12]}_{secret_a}"):
        r = api.client.get("/v1/collections", headers={"Authorization": f"Bearer {bearer}"})
        assert r.status_code == 401
    out = _upload(api, col, key, make_reports(col, 1, client_ids=b), {b: secret_a})  # A's secret for B
    assert out["accepted"] == 0 and out["results"][0]["reason"] == "device_unauthenticated"
    assert api.device(col["id"], b) is None


def test_production_configuration_turns_per_key_rate_limits_on():
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker" / "compose.yaml").read_text())
    env = compose["x-app-env"]
    default = str(env["LDP_RATE_LIMIT"]).split(":-", 1)[1].rstrip("}")
    assert int(default) > 0
    assert "LDP_CORS_ORIGINS" in env
    # behind nginx, per-address enrolment limits must see the client's address, not nginx's
    assert compose["services"]["app"]["environment"]["LDP_FORWARDED_HOPS"] == "1"


def test_behind_a_proxy_the_per_address_limit_uses_the_forwarded_address(api, settings, engine, clock):
    overrides = {"forwarded_hops": 1, "enrol_per_address_hour": 1}
    app = create_app(Settings(**{**settings.model_dump(), **overrides}), clock=clock, engine=engine)
    key = _key(api)
    client = app.test_client()

    def enrol_from(address: str) -> int:
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": address}
        return client.post(
            "/v1/devices", json={}, headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}
        ).status_code

    assert enrol_from("198.51.100.1") == 201
    assert enrol_from("198.51.100.2") == 201  # same proxy, another client: its own limit
    assert enrol_from("198.51.100.1") == 429


def test_one_wrong_secret_or_foreign_device_in_a_batch_refuses_only_its_reports(api):
    """The batch's devices are judged together when every proof holds; one wrong secret, one
    device of another client key or one unknown device among good ones is refused on its own."""
    col = api.create_collection()
    key, other_key = _key(api, limits=KeyLimits(enrol_per_address_hour=100)), _key(api)
    mine = [_device(api, key) for _ in range(4)]
    foreign = _device(api, other_key)
    devices = dict(mine)
    devices[mine[1][0]] = mine[2][1]  # device 1 sent with device 2's secret
    devices[foreign[0]] = foreign[1]  # the right secret, but enrolled by another key
    ids = [cid for cid, _ in mine] + [foreign[0], "never_enrolled"]
    out = _upload(api, col, key, make_reports(col, len(ids), client_ids=ids), devices)
    verdicts = [(r["status"], r["reason"]) for r in out["results"]]
    refused = ("rejected", "device_unauthenticated")
    assert verdicts == [("accepted", None), refused, ("accepted", None), ("accepted", None), refused, refused]
    again = _upload(api, col, key, make_reports(col, 1, client_ids=mine[1][0], seed=9), {mine[1][0]: mine[1][1]})
    assert again["accepted"] == 1  # its own secret: accepted


def test_client_ids_lead_with_the_enrolment_day():
    """32 hex digits: the UTC day (days since 1970-01-01) in 5, then 108 random bits, so a day's
    devices sort together (index locality) and nothing but the day is told by the id."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    import numpy as np

    from ldpserver.services.devices import CLIENT_ID, new_client_id

    day = datetime(2026, 12, 7, 23, 59, tzinfo=UTC)
    ids = [new_client_id(day) for _ in range(2000)]
    assert all(CLIENT_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    assert {i[:5] for i in ids} == {f"{20794:05x}"}  # 2026-12-07 is day 20794
    # the rest is uniform: every hex digit about equally often in each random position
    counts = np.array([[sum(i[p] == d for i in ids) for d in "0123456789abcdef"] for p in (5, 18, 31)])
    assert counts.min() > 2000 / 16 * 0.6 and counts.max() < 2000 / 16 * 1.4
    # a later day sorts after, whatever the random part; the local time zone does not matter
    assert new_client_id(day + timedelta(minutes=2)) > max(ids)
    east = datetime(2026, 12, 7, 20, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))  # 8 December there
    assert new_client_id(east)[:5] == f"{20794:05x}"


# --- tagged secrets (LDP_DEVICE_KEY) ----------------------------------------------------------
class _NoDatabase:
    """An engine that fails if used: proves that a batch was judged without a look-up."""

    def connect(self):
        raise AssertionError("the device proof read the database")

    begin = connect


def test_with_a_device_key_a_batch_of_tagged_secrets_is_proven_without_the_database(api, settings):
    from ldpserver.services.devices import RANDOM_CHARS, DeviceProof, hash_secret, prove

    key = _key(api, limits=KeyLimits(enrol_per_address_hour=100))
    r = _enrol(api, key, count=50)
    devices = {d["client_id"]: d["device_secret"] for d in r.get_json()["devices"]}
    with api.engine.connect() as conn:
        rows = conn.execute(select(Device.__table__).where(Device.client_id.in_(list(devices)))).all()
    stored = {row.client_id: row for row in rows}
    assert all(stored[cid].secret_hash == hash_secret(sec) for cid, sec in devices.items())  # only hashed, as ever
    assert len({sec[:RANDOM_CHARS] for sec in devices.values()}) == 50  # each with its own random part
    key_id = next(iter(stored.values())).key_id
    server_key = settings.device_key_bytes
    if server_key is None:
        return  # no key: nothing is tagged, every proof is the look-up (the tests above)
    assert prove(_NoDatabase(), DeviceProof(key_id, devices), list(devices), server_key) == set(devices)
    # another client key's id, another server key, or one changed character: not proven by the tag
    other = DeviceProof("key_someone_else", devices)
    with pytest.raises(AssertionError, match="read the database"):
        prove(_NoDatabase(), other, list(devices), server_key)
    with pytest.raises(AssertionError, match="read the database"):
        prove(_NoDatabase(), DeviceProof(key_id, devices), list(devices), b"another server key, 32 bytes long")
    first = next(iter(devices))
    changed = dict(devices, **{first: devices[first][:-1] + ("A" if devices[first][-1] != "A" else "B")})
    assert prove(api.engine, DeviceProof(key_id, changed), list(devices), server_key) == set(devices) - {first}
    assert prove(api.engine, other, list(devices), server_key) == set()


def test_rotating_the_device_key_keeps_enrolled_devices_and_voids_forged_secrets(api, settings, engine, clock):
    """After a key is replaced (a leak, say), devices enrolled under it still upload (their
    secrets' hashes are looked up), and secrets forged with the old key no longer pass."""
    from ldpserver.services.devices import RANDOM_CHARS, _tags

    # the server's first key (whichever variant this runs in)
    first = Settings(database_url=settings.database_url, log_level="WARNING", device_key=TEST_DEVICE_KEY)  # type: ignore[arg-type]
    assert first.device_key_bytes is not None
    api = Api(create_app(first, clock=clock, engine=engine).test_client(), api.keys, engine, clock)
    col = api.create_collection(mechanism={"mechanism": "oue", "epsilon": 1.0, "domain_size": 16})
    key = _key(api)
    client_id, secret = _device(api, key)
    with api.engine.connect() as conn:
        key_id = conn.execute(select(Device.key_id).where(Device.client_id == client_id)).scalar_one()
    forged_random = "F" * RANDOM_CHARS
    forged = forged_random + _tags(first.device_key_bytes, key_id, [client_id], [forged_random])
    # while the old key is the server's, a secret forged with it passes (a leaked key must be replaced)
    assert (
        _upload(api, col, key, make_reports(col, 1, client_ids=client_id, seed=1), {client_id: forged})["accepted"] == 1
    )

    rotated = Settings(database_url=settings.database_url, log_level="WARNING", device_key="a-new-key-" + "x" * 30)  # type: ignore[arg-type]
    after = Api(create_app(rotated, clock=clock, engine=engine).test_client(), api.keys, engine, clock)
    out = _upload(after, col, key, make_reports(col, 1, client_ids=client_id, seed=2), {client_id: forged})
    assert out["results"][0]["reason"] == "device_unauthenticated"
    assert (
        _upload(after, col, key, make_reports(col, 1, client_ids=client_id, seed=3), {client_id: secret})["accepted"]
        == 1
    )
    # and with no key at all (the look-up only)
    keyless = Settings(database_url=settings.database_url, log_level="WARNING")
    plain = Api(create_app(keyless, clock=clock, engine=engine).test_client(), api.keys, engine, clock)
    assert (
        _upload(plain, col, key, make_reports(col, 1, client_ids=client_id, seed=4), {client_id: secret})["accepted"]
        == 1
    )


def test_the_device_key_is_a_secret_setting():
    key = "k" * 40
    settings = Settings(database_url="sqlite://", device_key=key)  # type: ignore[arg-type]
    assert key not in repr(settings) and key not in str(settings.model_dump())
    assert settings.device_key_bytes == key.encode()
    assert Settings(database_url="sqlite://", device_key="").device_key is None  # type: ignore[arg-type]  # unset
    with pytest.raises(ValueError) as refused:
        Settings(database_url="sqlite://", device_key="short-key")  # type: ignore[arg-type]
    assert "short-key" not in str(refused.value)  # refused without echoing it
