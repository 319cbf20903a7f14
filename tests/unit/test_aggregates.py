"""The SDK aggregates are the one additive form the server stores and combines: ``+`` merges
partials, ``−`` takes a window out of two cumulative sums."""

from __future__ import annotations

import numpy as np
import pytest

from client_sdk import mechanisms, multidim
from client_sdk.errors import AggregateMismatchError


def test_frequency_aggregates_add_and_subtract_exactly() -> None:
    m = mechanisms.create("oue", epsilon=1.0, domain_size=8)
    rng = np.random.default_rng(7)
    a = m.aggregate(m.perturb_batch(rng.integers(0, 8, 500), rng=rng))
    b = m.aggregate(m.perturb_batch(rng.integers(0, 8, 300), rng=rng))
    assert (a + b) - b == a and ((a + b) - a).n == 300
    assert type(a).from_dict(a.to_dict()) - a == m.empty_aggregate()
    other = mechanisms.create("oue", epsilon=2.0, domain_size=8).empty_aggregate()
    with pytest.raises(AggregateMismatchError):
        _ = a - other


def test_multidim_aggregates_add_and_subtract_exactly() -> None:
    m = multidim.create_multidim("spl", epsilon=2.0, domain_sizes=[3, 4])
    rng = np.random.default_rng(8)
    tuples = np.stack([rng.integers(0, 3, 400), rng.integers(0, 4, 400)], axis=1)
    a = m.aggregate(m.perturb_batch(tuples[:250], rng=rng))
    b = m.aggregate(m.perturb_batch(tuples[250:], rng=rng))
    total = a + b
    assert total - b == a and (total - a).attribute_n == b.attribute_n
