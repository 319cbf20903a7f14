"""The request body reader (ldpserver/bodies.py) gives the standard library's document.

orjson reads bodies about three times faster; where it would differ — integers beyond 64
bits (orjson makes them floats), NaN/Infinity, lone surrogates, a byte order mark, UTF-16 —
the standard library reads them, so every body still parses to exactly what ``json.loads``
gives (and is refused with its messages)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldpserver.bodies import _loads, _no_constants

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(_scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)


def _same(a, b) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 differ; -0.0 and 0.0 too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_document_reads_as_the_standard_library_reads_it(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, separators=(",", ":"))):
        data = text.encode("utf-8")
        assert _same(_loads(data), json.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b'{"epoch": 123456789012345678901234567890}',  # beyond 64 bits: an int, not a float
        b'{"a": 1, "a": 2}',  # the last duplicate key wins in both
        b'"\\ud800"',  # a lone surrogate escape
        b"\xef\xbb\xbf[1]",  # a byte order mark
        '[1, "\u00e9"]'.encode("utf-16"),  # another Unicode encoding
        b'{"x": 1e400}',  # overflows to infinity in the standard library
        b"[18446744073709551616]",  # 2^64
        b"[-9223372036854775809]",  # -2^63 - 1
    ],
)
def test_bodies_orjson_would_read_otherwise(data):
    assert _same(_loads(data), json.loads(data))


@pytest.mark.parametrize("data", [b"[NaN]", b"[Infinity]", b'{"a": }', b"[1,]"])
def test_refused_bodies_are_refused_with_the_standard_librarys_error(data):
    with pytest.raises(ValueError) as ours:
        _loads(data)
    with pytest.raises(ValueError) as theirs:
        json.loads(data, parse_constant=_no_constants)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
