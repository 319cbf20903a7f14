"""Wire form, decoders, aggregates, registry and configs of the longitudinal protocols."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from client_sdk import longitudinal as L
from client_sdk.errors import AggregateMismatchError, ConfigError, ReportDecodeError

PROTOCOLS = {
    "l-grr": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10),
    "l-osue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10),
    "l-sue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10),
    "l-oue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10),
    "rappor": dict(domain_size=10, f=0.5, p=0.5, q=0.75),
    "loloha": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10),
    "biloloha": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=10, tight=True),
    "dbitflip": dict(epsilon_perm=2.0, domain_size=10, buckets=5, d=3),
}


def make(name: str) -> L.LongitudinalMechanism:
    return L.create_longitudinal(name, **PROTOCOLS[name])


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_encode_decode_roundtrip_and_additive_aggregate(name: str) -> None:
    m = make(name)
    rng = np.random.default_rng(0)
    values = rng.integers(0, m.domain_size, 300)
    batch = m.perturb_batch(values, rng)
    payloads = m.encode(batch)
    assert json.loads(json.dumps(payloads)) == payloads
    assert all(p["v"] == 1 and p["m"] == name for p in payloads)
    assert m.aggregate(payloads) == m.aggregate(batch)
    assert m.aggregate(payloads[:100]) + m.aggregate(payloads[100:]) == m.aggregate(payloads)
    assert m.aggregate(payloads) + m.empty_aggregate() == m.aggregate(payloads)
    store = L.InMemoryMemoStore()
    single = [m.report(int(v), store, "c").payload for v in values[:20]]
    m.decode(single)
    est = m.estimate(m.aggregate(payloads + single))
    assert est.n == 320
    other = L.create_longitudinal(name, **(PROTOCOLS[name] | {"domain_size": 12}))
    with pytest.raises(AggregateMismatchError):
        m.aggregate(payloads) + other.empty_aggregate()
    with pytest.raises(AggregateMismatchError):
        other.estimate(m.aggregate(payloads))
    with pytest.raises(ValueError):
        m.estimate(m.empty_aggregate())


def _bad_payloads(m: L.LongitudinalMechanism, good: dict) -> list[tuple[object, str]]:
    bad: list[tuple[object, str]] = [
        ("not json object", "not_an_object"),
        (None, "not_an_object"),
        (good | {"v": 2}, "bad_version"),
        ({k: v for k, v in good.items() if k != "v"}, "bad_version"),
        (good | {"m": "grr"}, "wrong_mechanism"),
        (good | {"extra": 1}, "unknown_field"),
    ]
    if "y" in good:
        upper = m.g if hasattr(m, "g") else m.domain_size
        bad += [
            (good | {"y": upper}, "out_of_range"),
            (good | {"y": -1}, "out_of_range"),
            (good | {"y": True}, "bad_type"),
            (good | {"y": 1.0}, "bad_type"),
            (good | {"y": "1"}, "bad_type"),
            ({k: v for k, v in good.items() if k != "y"}, "bad_type"),
        ]
    if "s" in good:
        bad += [
            (good | {"s": "12"}, "bad_type"),
            (good | {"s": "zzzzzzzzzzzzzzzz"}, "bad_type"),
            (good | {"s": 5}, "bad_type"),
        ]
    if "bits" in good:
        nbits = m.d if hasattr(m, "d") else m.domain_size
        width = (nbits + 7) // 8
        bad += [
            (good | {"bits": "%%%"}, "bad_encoding"),
            (good | {"bits": 7}, "bad_type"),
            (good | {"bits": base64.b64encode(bytes(width + 1)).decode()}, "bad_length"),
            (good | {"bits": base64.b64encode(b"\xff" * width).decode()}, "out_of_range"),  # padding bits set
        ]
    if "j" in good:
        bad += [
            (good | {"j": [0, 0, 1]}, "bad_indices"),
            (good | {"j": [2, 1, 0]}, "bad_indices"),
            (good | {"j": [0, 1, m.buckets]}, "bad_indices"),
            (good | {"j": [0, 1]}, "bad_indices"),
            (good | {"j": "0,1,2"}, "bad_indices"),
            (good | {"j": [0, 1, True]}, "bad_indices"),
        ]
    return bad


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_decoder_rejects_malformed_payloads_with_reason_and_index(name: str) -> None:
    m = make(name)
    store = L.InMemoryMemoStore()
    good = m.report(1, store, "c").payload
    m.validate_payload(good)
    for payload, reason in _bad_payloads(m, good):
        with pytest.raises(ReportDecodeError) as info:
            m.decode([good, payload])
        assert info.value.reason == reason, (payload, info.value)
        assert info.value.index == 1
    with pytest.raises(ReportDecodeError):
        m.decode(good)  # a single object, not a list


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_config_roundtrip_and_privacy_statement(name: str) -> None:
    m = make(name)
    config = json.loads(json.dumps(m.config))
    assert config["kind"] == "longitudinal" and config["mechanism"] == name
    again = L.from_config(config)
    assert again.config == m.config and again.config_hash == m.config_hash
    # the server may keep the mechanism config without its "kind"
    assert L.from_config({k: v for k, v in config.items() if k != "kind"}).config_hash == m.config_hash
    statement = m.privacy.to_dict()
    assert json.loads(json.dumps(statement)) == statement
    assert statement["charge_rule"] == "per_new_memo"
    assert statement["epsilon"] == statement["charge_per_new_memo"]
    assert statement["lifetime_bound"] == pytest.approx(statement["max_memos"] * statement["charge_per_new_memo"])
    assert m.privacy.epsilon_first_actual <= m.privacy.epsilon_first + 1e-9
    with pytest.raises(ConfigError):
        L.from_config(config | {"surprise": 1})
    with pytest.raises(ConfigError):
        L.from_config({k: v for k, v in config.items() if k != "domain_size"})
    assert name in repr(m) or type(m).__name__ in repr(m)


def test_registry_errors() -> None:
    assert set(L.available()) >= {"l-grr", "l-osue", "l-sue", "loloha", "biloloha", "dbitflip"}
    with pytest.raises(ConfigError, match="unknown"):
        L.create_longitudinal("grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    with pytest.raises(ConfigError):
        L.create_longitudinal(3, epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bad options"):
        L.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4, g=3)
    with pytest.raises(ConfigError):
        L.create_longitudinal("rappor", epsilon_perm=2.0, domain_size=4, f=0.5, p=0.5, q=0.75)
    with pytest.raises(ConfigError):
        L.create_longitudinal("rappor", domain_size=4, f=0.5, p=0.5)
    with pytest.raises(ConfigError):
        L.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=8)
    with pytest.raises(ConfigError):
        L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4, tight="yes")
    with pytest.raises(ConfigError):
        L.from_config({"kind": "multidim", "mechanism": "l-grr"})
    with pytest.raises(ConfigError):
        L.from_config({"kind": "longitudinal", "mechanism": "nope"})
    with pytest.raises(ConfigError):
        L.from_config(["not", "a", "mapping"])  # type: ignore[arg-type]
    upper = L.create_longitudinal("LOLOHA", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    assert upper.name == "loloha"


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_values_are_validated(name: str) -> None:
    m = make(name)
    store = L.InMemoryMemoStore()
    for bad in (-1, m.domain_size, 1.5, True, "3", None):
        with pytest.raises(ValueError):
            m.report(bad, store, "c")  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for bad_batch in ([0, m.domain_size], [[0, 1]], [0.5, 1.0]):
        with pytest.raises(ValueError):
            m.perturb_batch(bad_batch, rng)
    with pytest.raises(ValueError):
        m.simulate_epochs(np.zeros(5, dtype=int), rng)  # needs n × T
    assert store.count("c") == 0


def test_dbitflip_estimates_buckets() -> None:
    m = L.create_longitudinal("dbitflip", epsilon_perm=2.0, domain_size=12, buckets=4, d=2)
    assert m.bucket_of(np.arange(12)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    values = np.repeat([0, 4, 11], [5000, 3000, 2000])
    est = m.estimate(m.aggregate(m.perturb_batch(values, np.random.default_rng(8))))
    assert est.frequencies.shape == (4,)
    assert np.allclose(est.frequencies, [0.5, 0.3, 0.0, 0.2], atol=5 * np.sqrt(est.variance.max()))
    assert m.empty_aggregate().counts.shape == (8,)
