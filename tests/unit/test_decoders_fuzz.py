"""Hypothesis fuzzing of every protocol family's report decoder (multidim, longitudinal,
heavy hitters; the frequency oracles are fuzzed in test_oracle_contract.py).

Whatever JSON a device sends, a decoder either returns a batch of one report or raises
ReportDecodeError with a stable reason and a detail — never another exception, which the
server would otherwise have to turn into a 500.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import heavy_hitters, longitudinal, mechanisms, multidim
from client_sdk.errors import ReportDecodeError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=24),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=5),
    max_leaves=16,
)

PROTOCOLS = {
    "rsfd-grr": lambda: multidim.create_multidim("rsfd-grr", epsilon=1.0, domain_sizes=[3, 5]),
    "rsfd-adp": lambda: multidim.create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[3, 40]),
    "spl": lambda: multidim.create_multidim("spl", epsilon=1.0, domain_sizes=[3, 5]),
    "smp": lambda: multidim.create_multidim("smp", epsilon=1.0, domain_sizes=[3, 5]),
    "l-grr": lambda: longitudinal.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "l-osue": lambda: longitudinal.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=12),
    "loloha": lambda: longitudinal.create_longitudinal("loloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=50),
    "pem": lambda: heavy_hitters.create("pem", epsilon=2.0, k=4, domain={"type": "string", "max_bytes": 3}),
    "treehist": lambda: heavy_hitters.create("treehist", epsilon=2.0, k=4, domain={"type": "integer", "bits": 16}),
    "known": lambda: heavy_hitters.create("known", epsilon=2.0, k=4, domain={"type": "string", "max_bytes": 3}),
}


def _valid_payload(name: str, protocol) -> dict:
    """One genuine payload, so mutations start from a realistic shape."""
    if name.startswith(("rsfd", "spl", "smp")):
        return protocol.perturb((1, 2))
    if name in ("pem", "treehist", "known"):
        return protocol.perturb(7 if name == "treehist" else "ab")
    state = protocol.new_device_state()
    memo = protocol.new_memo(1, state)
    return protocol.perturb_with_memo(memo, state)


def _check(protocol, payload) -> None:
    try:
        batch = protocol.decode([payload])
    except ReportDecodeError as exc:
        assert exc.reason and exc.detail
    else:
        assert len(batch) == 1


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=120, deadline=None)
@given(payload=json_values)
def test_arbitrary_json_is_decoded_or_refused_cleanly(name, payload):
    _check(PROTOCOLS[name](), payload)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_genuine_payloads_are_decoded_or_refused_cleanly(name, data):
    protocol = PROTOCOLS[name]()
    payload = dict(_valid_payload(name, protocol))
    assert len(protocol.decode([payload])) == 1  # the genuine one is accepted
    key = data.draw(st.sampled_from(sorted(payload) + ["extra"]))
    payload[key] = data.draw(json_values)
    _check(protocol, payload)


# --- strictness: exactly the protocol's fields, the integer version (issue 15, finding 5) ------

STRICT_PROTOCOLS = {
    **PROTOCOLS,
    **{
        name: (lambda name=name: mechanisms.create(name, epsilon=1.0, domain_size=12))
        for name in ("grr", "oue", "sue", "olh", "blh", "hr")
    },
    "rsfd-oue-z": lambda: multidim.create_multidim("rsfd-oue-z", epsilon=1.0, domain_sizes=[3, 5]),
    "l-sue": lambda: longitudinal.create_longitudinal("l-sue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=12),
    "dbitflip": lambda: longitudinal.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=64, buckets=16, d=2),
    "tap": lambda: heavy_hitters.create(
        "tap", epsilon=2.0, k=4, domain={"type": "string", "max_bytes": 3}, parties=["a", "b"]
    ),  # fmt: skip
}


def _genuine(name: str, protocol) -> dict:
    if name in ("grr", "oue", "sue", "olh", "blh", "hr"):
        return protocol.perturb(3)
    if name == "rsfd-oue-z":
        return protocol.perturb((1, 2))
    if name == "tap":
        return protocol.perturb("ab", party="a")
    return _valid_payload(name, protocol)


def _reason(protocol, payload) -> str | None:
    try:
        protocol.decode([payload])
    except ReportDecodeError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("name", sorted(STRICT_PROTOCOLS))
def test_every_decoder_refuses_unknown_fields_and_non_integer_versions(name):
    protocol = STRICT_PROTOCOLS[name]()
    genuine = dict(_genuine(name, protocol))
    assert _reason(protocol, genuine) is None
    # a third-party client must not ship the true value (or megabytes of junk) beside the report
    assert _reason(protocol, {**genuine, "true_value": 3}) == "unknown_field"
    assert _reason(protocol, {**genuine, "pad": "x" * 100_000}) == "unknown_field"
    for version in (1.0, True, "1", 1.5, None):
        assert _reason(protocol, {**genuine, "v": version}) == "bad_version", version
