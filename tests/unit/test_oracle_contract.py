"""The mechanism contract: configs, wire forms, decoders, merging, hash vectors, errors."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from client_sdk import mechanisms
from client_sdk.errors import AggregateMismatchError, ConfigError, ReportDecodeError
from client_sdk.mechanisms.olh import EXPAND_BLOCK, WIDE_KEYS, hash_value, hash_values, support_counts

NAMES = ["grr", "sue", "oue", "olh", "blh", "hr"]


# --- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epsilon": 0, "domain_size": 4}, "epsilon"),
        ({"epsilon": -1.0, "domain_size": 4}, "epsilon"),
        ({"epsilon": float("nan"), "domain_size": 4}, "epsilon"),
        ({"epsilon": float("inf"), "domain_size": 4}, "epsilon"),
        ({"epsilon": 100.0, "domain_size": 4}, "epsilon"),
        ({"epsilon": "1", "domain_size": 4}, "epsilon"),
        ({"epsilon": 1.0, "domain_size": 1}, "domain_size"),
        ({"epsilon": 1.0, "domain_size": 2.5}, "domain_size"),
        ({"epsilon": 1.0, "domain_size": True}, "domain_size"),
    ],
)
@pytest.mark.parametrize("name", NAMES + ["auto"])
def test_bad_configs_are_refused_clearly(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        mechanisms.create(name, **kwargs)


def test_unknown_mechanism_and_huge_unary_domain():
    with pytest.raises(ConfigError, match="unknown mechanism 'rappor'.*available"):
        mechanisms.create("rappor", epsilon=1.0, domain_size=4)
    with pytest.raises(ConfigError, match="too large for oue"):
        mechanisms.create("oue", epsilon=1.0, domain_size=10**6)
    with pytest.raises(ConfigError, match="too large for sue"):
        mechanisms.create("sue", epsilon=1.0, domain_size=10**6)
    with pytest.raises(ConfigError, match="hash range g"):
        mechanisms.create("olh", epsilon=1.0, domain_size=10, g=1)
    with pytest.raises(ConfigError, match="bad options"):
        mechanisms.create("grr", epsilon=1.0, domain_size=10, g=3)
    with pytest.raises(ConfigError, match="no frequency oracle fits"):
        mechanisms.create("auto", epsilon=1.0, domain_size=10**6, max_report_bits=8)


def test_auto_respects_report_size_limit():
    m = mechanisms.create("auto", epsilon=1.0, domain_size=1000)
    assert m.name == "oue"
    assert mechanisms.create("auto", epsilon=1.0, domain_size=1000, max_report_bits=100).name == "olh"
    assert mechanisms.create("auto", epsilon=1.0, domain_size=1000, max_report_bits=40).name == "hr"


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_hash(name):
    m = mechanisms.create(name, epsilon=1.5, domain_size=37)
    again = mechanisms.from_config(json.loads(json.dumps(m.config)))
    assert again.config == m.config
    assert again.config_hash == m.config_hash
    assert m.config_hash.startswith("sha256:")
    assert m.privacy.epsilon == 1.5 and m.privacy.neighbouring == "record"


def test_out_of_domain_values_are_refused():
    m = mechanisms.create("grr", epsilon=1.0, domain_size=4)
    for bad in (-1, 4, 2.0, True, "1"):
        with pytest.raises(ValueError):
            m.perturb(bad)
    with pytest.raises(ValueError):
        m.perturb_batch(np.array([0, 4]), np.random.default_rng(0))
    with pytest.raises(ValueError):
        m.perturb_batch(np.array([0.5]), np.random.default_rng(0))


# --- wire forms and decoders ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_wire_round_trip_is_json_safe(name):
    m = mechanisms.create(name, epsilon=1.0, domain_size=21)
    batch = m.perturb_batch(np.arange(21).repeat(5), np.random.default_rng(1))
    wire = json.loads(json.dumps(m.encode(batch)))
    assert m.aggregate(wire) == m.aggregate(batch)
    single = m.perturb(3)
    assert json.loads(json.dumps(single)) == single
    m.validate_payload(single)


@pytest.mark.parametrize(
    "name,payload,reason",
    [
        ("grr", {"v": 1, "m": "grr", "y": 21}, "out_of_range"),
        ("grr", {"v": 1, "m": "grr", "y": -1}, "out_of_range"),
        ("grr", {"v": 1, "m": "grr", "y": 1.0}, "bad_type"),
        ("grr", {"v": 1, "m": "grr", "y": True}, "bad_type"),
        ("grr", {"v": 1, "m": "grr"}, "bad_type"),
        ("grr", {"v": 2, "m": "grr", "y": 1}, "bad_version"),
        ("grr", {"v": 1, "m": "oue", "y": 1}, "wrong_mechanism"),
        ("grr", [1, 2], "not_an_object"),
        ("oue", {"v": 1, "m": "oue", "bits": "!!"}, "bad_encoding"),
        ("oue", {"v": 1, "m": "oue", "bits": base64.b64encode(b"\x00\x00").decode()}, "bad_length"),
        ("oue", {"v": 1, "m": "oue", "bits": base64.b64encode(b"\x00\x00\xff").decode()}, "out_of_range"),
        ("oue", {"v": 1, "m": "oue", "bits": 5}, "bad_type"),
        ("olh", {"v": 1, "m": "olh", "s": "zz" * 8, "y": 0}, "bad_encoding"),
        ("olh", {"v": 1, "m": "olh", "s": "00", "y": 0}, "bad_type"),
        ("olh", {"v": 1, "m": "olh", "s": "0" * 16, "y": 99}, "out_of_range"),
        ("hr", {"v": 1, "m": "hr", "y": 32}, "out_of_range"),
    ],
)
def test_malformed_payloads_raise_clear_errors(name, payload, reason):
    m = mechanisms.create(name, epsilon=1.0, domain_size=21)
    good = m.perturb(0)
    with pytest.raises(ReportDecodeError) as info:
        m.decode([good, payload])
    assert info.value.reason == reason
    assert info.value.index == 1
    assert "report 1" in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(
    payload=json_values
    | st.fixed_dictionaries(
        {"v": st.just(1), "m": st.text(max_size=4)}, optional={"y": json_values, "bits": json_values, "s": json_values}
    )
)
def test_decoder_never_crashes_on_arbitrary_json(name, payload):
    m = mechanisms.create(name, epsilon=1.0, domain_size=13)
    try:
        batch = m.decode([payload])
    except ReportDecodeError as exc:
        assert exc.reason and exc.detail
    else:
        assert len(batch) == 1


@pytest.mark.parametrize("name", ["grr", "hr"])
@settings(max_examples=100, deadline=None)
@given(y=st.integers(min_value=-(2**70), max_value=2**70))
def test_index_decoders_accept_exactly_the_valid_range(name, y):
    m = mechanisms.create(name, epsilon=1.0, domain_size=13)
    upper = m.K if name == "hr" else 13
    payload = {"v": 1, "m": name, "y": y}
    if 0 <= y < upper:
        m.validate_payload(payload)
    else:
        with pytest.raises(ReportDecodeError):
            m.validate_payload(payload)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(min_size=0, max_size=6))
def test_unary_decoder_checks_length_and_padding(raw):
    m = mechanisms.create("oue", epsilon=1.0, domain_size=13)  # 2 bytes, 3 padding bits
    payload = {"v": 1, "m": "oue", "bits": base64.b64encode(raw).decode()}
    valid = len(raw) == 2 and raw[1] >> 5 == 0
    if valid:
        m.validate_payload(payload)
    else:
        with pytest.raises(ReportDecodeError):
            m.validate_payload(payload)


# --- aggregation -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_aggregates_merge_by_addition(name):
    m = mechanisms.create(name, epsilon=1.0, domain_size=30)
    rng = np.random.default_rng(9)
    values = rng.integers(0, 30, 3000)
    batch = m.perturb_batch(values, rng)
    wire = m.encode(batch)
    whole = m.aggregate(wire)
    parts = m.aggregate(wire[:1000]) + m.aggregate(wire[1000:2500]) + m.aggregate(wire[2500:])
    assert parts == whole
    assert whole + m.empty_aggregate() == whole
    restored = type(whole).from_dict(json.loads(json.dumps(whole.to_dict())))
    assert restored == whole
    assert np.allclose(m.estimate(restored).frequencies, m.estimate(whole).frequencies)


def test_aggregates_of_different_configs_do_not_merge():
    a = mechanisms.create("oue", epsilon=1.0, domain_size=8)
    b = mechanisms.create("oue", epsilon=2.0, domain_size=8)
    with pytest.raises(AggregateMismatchError):
        a.empty_aggregate() + b.empty_aggregate()
    with pytest.raises(AggregateMismatchError):
        a.estimate(b.empty_aggregate())
    with pytest.raises(ValueError, match="empty"):
        a.estimate(a.empty_aggregate())


# --- OLH hash family -------------------------------------------------------------------------


def test_olh_hash_vectors_are_pinned():
    # any change here changes every stored OLH report's meaning: bump the family version
    assert [hash_value(1, key, 4) for key in range(10)] == [2, 1, 3, 1, 0, 2, 0, 2, 1, 3]
    assert (
        hash_value(0xDEADBEEFCAFEF00D, 123456789, 21)
        == hash_values(np.array([0xDEADBEEFCAFEF00D], dtype=np.uint64), np.array([123456789]), 21)[0]
    )
    assert [hash_value(2**64 - 1, 2**32 - 1, g) for g in (2, 3, 8, 1000)] == [
        hash_value(2**64 - 1, 2**32 - 1, g) for g in (2, 3, 8, 1000)
    ]


def test_olh_fast_support_counts_equal_direct_hashing():
    rng = np.random.default_rng(4)
    for g in (2, 3, 4, 7, 21):
        seeds = rng.integers(0, 2**64, 500, dtype=np.uint64)
        ys = rng.integers(0, g, 500)
        keys = rng.integers(0, 2**32, 40, dtype=np.uint64)
        direct = np.array([np.sum(hash_values(seeds, np.full(500, key), g) == ys) for key in keys])
        assert np.array_equal(support_counts(seeds, ys, g, keys, chunk=64), direct)


@pytest.mark.parametrize("n_keys", [3, WIDE_KEYS - 1, WIDE_KEYS, 1500])
def test_olh_support_counts_in_both_layouts_equal_direct_hashing(n_keys):
    """Keys-major (few keys) and reports-major steps, over several hash-expansion blocks
    and a partial last step, with and without the per-report clipping."""
    rng = np.random.default_rng(n_keys)
    g, n = 7, EXPAND_BLOCK + 300
    seeds = rng.integers(0, 2**64, n, dtype=np.uint64)
    ys = rng.integers(0, g, n)
    keys = rng.integers(0, 2**32, n_keys, dtype=np.uint64)
    hits = np.stack([hash_values(seeds, np.full(n, key), g) == ys for key in keys])  # keys × reports
    assert np.array_equal(support_counts(seeds, ys, g, keys, chunk=1000), hits.sum(axis=1))
    bound = int(np.median(hits.sum(axis=0)))
    kept = hits[:, hits.sum(axis=0) <= bound]
    assert 0 < kept.shape[1] < n
    assert np.array_equal(support_counts(seeds, ys, g, keys, max_per_report=bound), kept.sum(axis=1))


def test_olh_hash_is_uniform_and_pairwise_collision_is_one_over_g():
    rng = np.random.default_rng(8)
    g, trials = 5, 200_000
    seeds = rng.integers(0, 2**64, trials, dtype=np.uint64)
    h1 = hash_values(seeds, np.full(trials, 17), g)
    h2 = hash_values(seeds, np.full(trials, 18), g)
    assert stats.chisquare(np.bincount(h1, minlength=g)).pvalue > 1e-6
    collisions = np.mean(h1 == h2)
    assert abs(collisions - 1 / g) < 5 * np.sqrt((1 / g) * (1 - 1 / g) / trials)


@pytest.mark.parametrize("batch", [False, True], ids=["csprng", "batch"])
def test_olh_both_samplers_keep_the_hashed_value_with_probability_p(batch):
    m = mechanisms.create("olh", epsilon=1.0, domain_size=10)
    draws = 20_000 if batch else 5_000
    if batch:
        reports = m.perturb_batch(np.full(draws, 7), np.random.default_rng(2))
        seeds, ys = reports.seeds, reports.ys
    else:
        decoded = m.decode([m.perturb(7) for _ in range(draws)])
        seeds, ys = decoded.seeds, decoded.ys
    hashed = hash_values(seeds, np.full(draws, 7), m.g)
    kept = int(np.sum(hashed == ys))
    assert stats.binomtest(kept, draws, m.p_star).pvalue > 1e-6
    shifts = (ys - hashed)[ys != hashed] % m.g
    assert stats.chisquare(np.bincount(shifts, minlength=m.g)[1:]).pvalue > 1e-6


def test_base_install_pulls_no_server_dependency():
    """The SDK distribution requires numpy and its RFC 8785 library only (docs/wire.md), and
    importing it loads no server library."""
    import importlib.metadata

    requires = importlib.metadata.requires("ldp-analytics-sdk") or []
    base = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].strip() for r in base) == ["numpy", "rfc8785"]
    code = (
        "import sys, client_sdk, client_sdk.mechanisms, client_sdk.postprocess;"
        "bad = {'flask', 'sqlalchemy', 'alembic', 'opendp', 'psycopg', 'pydantic'} & set(sys.modules);"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("seed", ["-123456789abcdef", "0x23456789abcdef", "1_23456789abcdef", " 123456789abcdef"])
def test_olh_seed_must_be_plain_hex(seed):
    m = mechanisms.create("olh", epsilon=1.0, domain_size=8)
    with pytest.raises(ReportDecodeError) as info:
        m.validate_payload({"v": 1, "m": "olh", "s": seed, "y": 0})
    assert info.value.reason == "bad_encoding"


def test_boolean_version_is_refused():
    m = mechanisms.create("grr", epsilon=1.0, domain_size=8)
    with pytest.raises(ReportDecodeError) as info:
        m.validate_payload({"v": True, "m": "grr", "y": 0})
    assert info.value.reason == "bad_version"
