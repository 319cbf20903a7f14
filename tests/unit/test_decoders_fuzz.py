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

from client_sdk import heavy_hitters, longitudinal, multidim
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
}


def _valid_payload(name: str, protocol) -> dict:
    """One genuine payload, so mutations start from a realistic shape."""
    if name.startswith(("rsfd", "spl", "smp")):
        return protocol.perturb((1, 2))
    if name in ("pem", "treehist"):
        return protocol.perturb("ab" if name == "pem" else 7)
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
