"""Unary payloads decoded for the whole batch at once (decode_canonical_bits) give exactly what
decoding them one by one gives: the same bytes, or — for any batch it does not take — the
same first error."""

from __future__ import annotations

import base64

import numpy as np
import pytest

import client_sdk.mechanisms.unary as unary
from client_sdk import mechanisms
from client_sdk.errors import ReportDecodeError


def _outcome(m, payloads, batch: bool, monkeypatch):
    with monkeypatch.context() as patch:
        if not batch:
            patch.setattr(unary, "decode_canonical_bits", lambda *args: None)
        try:
            return "ok", m.decode(payloads).packed.tolist()
        except ReportDecodeError as exc:
            return "error", exc.reason, exc.index


@pytest.mark.parametrize("mechanism", ["oue", "sue"])
@pytest.mark.parametrize("k", [2, 7, 8, 9, 16, 17, 24, 128, 1000])
def test_canonical_batches_decode_to_the_same_bytes(mechanism, k, monkeypatch):
    m = mechanisms.from_config({"mechanism": mechanism, "epsilon": 1.0, "domain_size": k})
    rng = np.random.default_rng(k)
    payloads = m.encode(m.perturb_batch(rng.integers(0, k, 300), rng=rng))
    assert unary.decode_canonical_bits(payloads, m.name, m._width, k) is not None
    assert _outcome(m, payloads, True, monkeypatch) == _outcome(m, payloads, False, monkeypatch)


def _flip_spare_bit(bits: str) -> str:
    data = bytearray(base64.b64decode(bits))
    data[-1] |= 0x80
    return base64.b64encode(bytes(data)).decode()


MUTATIONS = {
    "extra field": lambda p: p | {"x": 1},
    "missing bits": lambda p: {"v": p["v"], "m": p["m"]},
    "bool version": lambda p: p | {"v": True},
    "float version": lambda p: p | {"v": 1.0},
    "other version": lambda p: p | {"v": 2},
    "other mechanism": lambda p: p | {"m": "sue"},
    "bits not a string": lambda p: p | {"bits": 5},
    "no padding": lambda p: p | {"bits": p["bits"].rstrip("=")},
    "padding inside": lambda p: p | {"bits": "=" + p["bits"][1:]},
    "url-safe alphabet": lambda p: p | {"bits": p["bits"][:-3] + "-=="},
    "non-ascii": lambda p: p | {"bits": p["bits"][:-3] + "é=="},
    "one byte short": lambda p: p | {"bits": base64.b64encode(base64.b64decode(p["bits"])[:-1]).decode()},
    "trailing bits set": lambda p: p | {"bits": p["bits"][:-3] + "B=="},
    "bit past the domain": lambda p: p | {"bits": _flip_spare_bit(p["bits"])},
    "not an object": lambda p: [p],
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_any_other_batch_gets_the_one_by_one_verdict(name, monkeypatch):
    m = mechanisms.from_config({"mechanism": "oue", "epsilon": 1.0, "domain_size": 127})  # one spare bit
    rng = np.random.default_rng(3)
    payloads = m.encode(m.perturb_batch(rng.integers(0, 127, 6), rng=rng))
    payloads[4] = MUTATIONS[name](payloads[4])
    assert _outcome(m, payloads, True, monkeypatch) == _outcome(m, payloads, False, monkeypatch)
