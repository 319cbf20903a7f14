"""Multidimensional protocols: wire form, input validation, additive aggregates, and the
equality of the CSPRNG (``perturb``) and vectorised (``perturb_batch``) output distributions."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from scipy import stats

from client_sdk.errors import AggregateMismatchError, ReportDecodeError
from client_sdk.multidim import MultidimAggregate, create_multidim

PROTOCOLS = [
    ("rsfd-grr", {}),
    ("rsfd-oue-z", {}),
    ("rsfd-oue-r", {}),
    ("rsfd-adp", {}),
    ("spl", {}),
    ("spl", {"oracle": "oue"}),
    ("smp", {}),
    ("smp", {"oracle": "oue"}),
]
IDS = [f"{n}-{o.get('oracle', 'default')}" for n, o in PROTOCOLS]
KS = [3, 12, 2]
EPS = 0.5  # rsfd-adp then picks GRR, OUE, GRR for KS


def make(name, options, ks=KS, eps=EPS):
    return create_multidim(name, epsilon=eps, domain_sizes=ks, **options)


def data(n, ks=KS, seed=0):
    return np.random.default_rng(seed).integers(0, ks, size=(n, len(ks)))


# --- wire form ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "options"), PROTOCOLS, ids=IDS)
def test_encode_decode_roundtrip(name, options):
    m = make(name, options)
    batch = m.perturb_batch(data(300), np.random.default_rng(1))
    payloads = json.loads(json.dumps(m.encode(batch)))  # JSON-safe
    assert all(p["v"] == 1 and p["m"] == name for p in payloads)
    assert m.aggregate(payloads) == m.aggregate(batch)
    assert m.encode(m.decode(payloads)) == payloads
    one = json.loads(json.dumps(m.perturb((2, 11, 1))))
    m.validate_payload(one)
    assert m.aggregate([one]).n == 1


def test_wire_shapes():
    grr = create_multidim("rsfd-grr", epsilon=EPS, domain_sizes=[3, 12, 2]).perturb((2, 11, 1))
    assert set(grr) == {"v", "m", "y"} and all(isinstance(y, int) for y in grr["y"])
    oue = create_multidim("rsfd-oue-z", epsilon=EPS, domain_sizes=[3, 12, 2]).perturb((2, 11, 1))
    assert [len(base64.b64decode(y)) for y in oue["y"]] == [1, 2, 1]
    adp = create_multidim("rsfd-adp", epsilon=EPS, domain_sizes=[3, 12, 2]).perturb((2, 11, 1))
    assert [type(y) for y in adp["y"]] == [int, str, int]
    spl = create_multidim("spl", epsilon=EPS, domain_sizes=[3, 12, 2], oracle="auto").perturb((2, 11, 1))
    assert [y["m"] for y in spl["y"]] == ["grr", "oue", "grr"] and all("v" not in y for y in spl["y"])
    smp = create_multidim("smp", epsilon=EPS, domain_sizes=[3, 12, 2]).perturb((2, 11, 1))
    assert set(smp) == {"v", "m", "j", "y"} and smp["y"]["m"] == "grr"


def _bad_cases():
    ok_grr = {"v": 1, "m": "rsfd-grr", "y": [0, 5, 1]}
    ok_oue = {"v": 1, "m": "rsfd-oue-z", "y": ["AQ==", "AQA=", "AQ=="]}
    ok_adp = {"v": 1, "m": "rsfd-adp", "y": [0, "AQA=", 1]}
    ok_spl = {"v": 1, "m": "spl", "y": [{"m": "grr", "y": 0}, {"m": "grr", "y": 5}, {"m": "grr", "y": 1}]}
    ok_smp = {"v": 1, "m": "smp", "j": 1, "y": {"m": "grr", "y": 5}}
    cases = [
        ("rsfd-grr", "not a dict", "not_an_object"),
        ("rsfd-grr", ok_grr | {"v": 2}, "bad_version"),
        ("rsfd-grr", ok_grr | {"m": "rsfd-oue-z"}, "wrong_mechanism"),
        ("rsfd-grr", ok_grr | {"m": "grr"}, "wrong_mechanism"),
        ("rsfd-grr", ok_grr | {"y": 3}, "bad_type"),
        ("rsfd-grr", ok_grr | {"y": [0, 5]}, "bad_length"),
        ("rsfd-grr", ok_grr | {"y": [0, 5, 1, 0]}, "bad_length"),
        ("rsfd-grr", ok_grr | {"y": [3, 5, 1]}, "out_of_range"),
        ("rsfd-grr", ok_grr | {"y": [0, -1, 1]}, "out_of_range"),
        ("rsfd-grr", ok_grr | {"y": [0, 5, 2]}, "out_of_range"),
        ("rsfd-grr", ok_grr | {"y": [0, 5.0, 1]}, "bad_type"),
        ("rsfd-grr", ok_grr | {"y": [0, True, 1]}, "bad_type"),
        ("rsfd-grr", ok_grr | {"y": [0, "5", 1]}, "bad_type"),
        ("rsfd-oue-z", ok_oue | {"y": ["AQ==", "!!!", "AQ=="]}, "bad_encoding"),
        ("rsfd-oue-z", ok_oue | {"y": ["AQ==", "AQ==", "AQ=="]}, "bad_length"),
        ("rsfd-oue-z", ok_oue | {"y": ["AQ==", "AQAA", "AQ=="]}, "bad_length"),
        ("rsfd-oue-z", ok_oue | {"y": ["CA==", "AQA=", "AQ=="]}, "out_of_range"),  # bit 3 of k=3
        ("rsfd-oue-z", ok_oue | {"y": ["AQ==", "ABA=", "AQ=="]}, "out_of_range"),  # bit 12 of k=12
        ("rsfd-oue-z", ok_oue | {"y": ["AQ==", 5, "AQ=="]}, "bad_type"),
        ("rsfd-oue-r", ok_oue | {"m": "rsfd-oue-r", "y": ["AQ==", "AQA="]}, "bad_length"),
        ("rsfd-adp", ok_adp | {"y": ["AQ==", "AQA=", 1]}, "bad_type"),
        ("rsfd-adp", ok_adp | {"y": [0, 3, 1]}, "bad_type"),
        ("spl", ok_spl | {"y": [0, 5, 1]}, "bad_type"),
        ("spl", ok_spl | {"y": ok_spl["y"][:2]}, "bad_length"),
        ("spl", ok_spl | {"y": [{"m": "oue", "bits": "AQ=="}, *ok_spl["y"][1:]]}, "wrong_mechanism"),
        ("spl", ok_spl | {"y": [{"m": "grr", "y": 3}, *ok_spl["y"][1:]]}, "out_of_range"),
        ("spl", ok_spl | {"y": [{"v": 1, "m": "grr", "y": 0}, *ok_spl["y"][1:]]}, "bad_type"),
        ("smp", ok_smp | {"j": 3}, "out_of_range"),
        ("smp", ok_smp | {"j": -1}, "out_of_range"),
        ("smp", ok_smp | {"j": "1"}, "bad_type"),
        ("smp", {k: v for k, v in ok_smp.items() if k != "j"}, "bad_type"),
        ("smp", ok_smp | {"y": {"m": "grr", "y": 12}}, "out_of_range"),
        ("smp", ok_smp | {"y": 5}, "bad_type"),
        ("smp", ok_smp | {"j": 0, "y": {"m": "grr", "y": 5}}, "out_of_range"),
    ]
    oks = [("rsfd-grr", ok_grr), ("rsfd-oue-z", ok_oue), ("rsfd-adp", ok_adp), ("spl", ok_spl), ("smp", ok_smp)]
    return cases, oks


CASES, OKS = _bad_cases()


@pytest.mark.parametrize(("name", "ok"), OKS)
def test_well_formed_payloads_are_accepted(name, ok):
    create_multidim(name, epsilon=EPS, domain_sizes=KS).validate_payload(ok)


@pytest.mark.parametrize(("name", "payload", "reason"), CASES)
def test_malformed_payloads_are_refused(name, payload, reason):
    m = create_multidim(name, epsilon=EPS, domain_sizes=KS)
    ok = dict(OKS)[name] if name in dict(OKS) else None
    reports = [ok, payload] if ok else [payload]
    with pytest.raises(ReportDecodeError) as info:
        m.decode(reports)
    assert info.value.reason == reason
    assert info.value.index == len(reports) - 1  # the bad report is named


def test_decode_error_names_the_attribute():
    m = create_multidim("rsfd-grr", epsilon=EPS, domain_sizes=KS)
    with pytest.raises(ReportDecodeError, match=r"y\[1\]"):
        m.decode([{"v": 1, "m": "rsfd-grr", "y": [0, 12, 1]}])
    m = create_multidim("spl", epsilon=EPS, domain_sizes=KS)
    with pytest.raises(ReportDecodeError, match="attribute 2"):
        m.decode([{"v": 1, "m": "spl", "y": [{"m": "grr", "y": 0}, {"m": "grr", "y": 0}, {"m": "grr", "y": 2}]}])


# --- input tuples -----------------------------------------------------------------------------

BAD_TUPLES = [
    ((1, 2), "3 values"),
    ((1, 2, 0, 0), "3 values"),
    ((3, 2, 0), "attribute 0"),
    ((0, 12, 0), "attribute 1"),
    ((0, 1, -1), "attribute 2"),
    ((0, 1.0, 0), "integer"),
    ((0, "1", 0), "integer"),
    ((0, None, 0), "integer"),
    ((0, True, 0), "integer"),
    ("012", "tuple"),
    (5, "tuple"),
    (np.zeros((1, 3), dtype=int), "one-dimensional"),
]


@pytest.mark.parametrize(("name", "options"), PROTOCOLS, ids=IDS)
def test_malformed_tuples_are_refused(name, options):
    m = make(name, options)
    for value, message in BAD_TUPLES:
        with pytest.raises(ValueError, match=message):
            m.perturb(value)
    assert m.perturb(np.array([2, 11, 1]))["m"] == name  # numpy tuples are fine
    rng = np.random.default_rng(0)
    for values, message in [
        (np.zeros((5, 2), dtype=int), "shape"),
        (np.zeros(5, dtype=int), "shape"),
        (np.zeros((5, 3)), "integers"),
        (np.array([[0, 0, 0], [0, 12, 0]]), "attribute 1"),
        (np.array([[0, 0, -1]]), "attribute 2"),
        ([["a", "b", "c"]], "integers"),
    ]:
        with pytest.raises(ValueError, match=message):
            m.perturb_batch(values, rng)
    assert len(m.perturb_batch(np.zeros((0, 3), dtype=int), rng)) == 0


# --- aggregates --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "options"), PROTOCOLS, ids=IDS)
def test_aggregates_merge_by_addition(name, options):
    m = make(name, options)
    rng = np.random.default_rng(3)
    x = data(500)
    batch = m.encode(m.perturb_batch(x, rng))
    whole = m.aggregate(batch)
    parts = m.aggregate(batch[:123]) + m.aggregate(batch[123:400]) + m.aggregate(batch[400:])
    assert parts == whole and whole.n == 500
    assert m.empty_aggregate() + whole == whole
    if name == "smp":
        assert sum(whole.attribute_n) == 500
    else:
        assert whole.attribute_n == (500, 500, 500)
    restored = MultidimAggregate.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert restored == whole
    a, b = m.estimate(whole), m.estimate(restored)
    assert all(np.array_equal(ea.frequencies, eb.frequencies) for ea, eb in zip(a, b, strict=True))
    other = make(name, options, eps=2.0)
    with pytest.raises(AggregateMismatchError):
        _ = whole + other.aggregate(other.perturb_batch(x, rng))
    with pytest.raises(AggregateMismatchError):
        other.estimate(whole)
    with pytest.raises(ValueError, match="empty"):
        m.estimate(m.empty_aggregate())
    assert whole != restored + m.aggregate(batch[:1])


def test_estimate_object():
    m = create_multidim("rsfd-oue-z", epsilon=2.0, domain_sizes=KS)
    est = m.estimate(m.aggregate(m.perturb_batch(data(4000), np.random.default_rng(5))))
    assert len(est) == 3 and est.n == 4000 and est.missing == []
    lo, hi = est[1].confidence_interval(0.95)
    assert np.all(lo < est[1].frequencies) and np.all(est[1].frequencies < hi)
    post = est.postprocessed("norm-sub")
    assert all(np.all(e.frequencies >= 0) and e.frequencies.sum() == pytest.approx(1.0) for e in post)
    assert json.dumps(est.to_dict())
    assert [f.shape for f in est.frequencies] == [(3,), (12,), (2,)]


def test_smp_attribute_without_reports():
    m = create_multidim("smp", epsilon=EPS, domain_sizes=KS)
    payload = {"v": 1, "m": "smp", "j": 1, "y": {"m": "grr", "y": 5}}
    est = m.estimate(m.aggregate([payload, payload]))
    assert est.missing == [0, 2] and est[0] is None and est[1].n == 2
    assert est.postprocessed().missing == [0, 2]
    assert json.dumps(est.to_dict())


# --- perturb (CSPRNG) and perturb_batch have one output distribution ---------------------------


def _keys_from_payloads(m, payloads):
    batch = m.decode(payloads)
    return _keys_from_batch(m, batch)


def _keys_from_batch(m, batch):
    """Hashable output per report, in the form of ``m.output_distribution``."""

    def column_keys(col):
        if hasattr(col, "packed"):
            packed = col.packed.astype(np.int64)
            return sum(packed[:, b] << (8 * b) for b in range(packed.shape[1]))
        return col.values

    cols = [column_keys(c) for c in batch.columns]
    if batch.attribute is None:
        return [tuple(int(c[i]) for c in cols) for i in range(len(batch))]
    pos = [0] * m.d
    out = []
    for j in batch.attribute:
        out.append((int(j), int(cols[j][pos[j]])))
        pos[j] += 1
    return out


def _chi_square_p(keys, distribution):
    support = list(distribution)
    index = {k: i for i, k in enumerate(support)}
    observed = np.bincount([index[k] for k in keys], minlength=len(support)).astype(float)
    expected = np.array([distribution[k] for k in support]) * len(keys)
    # pool the rare outputs so every expected count is at least 5
    rare = expected < 5
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    return stats.chisquare(observed, expected).pvalue


DIST_PROTOCOLS = [*PROTOCOLS[:4], ("spl", {}), ("spl", {"oracle": "oue"}), ("smp", {}), ("smp", {"oracle": "oue"})]


@pytest.mark.parametrize(("name", "options"), DIST_PROTOCOLS, ids=IDS)
def test_perturb_and_perturb_batch_share_one_distribution(name, options):
    ks = [2, 3]
    m = create_multidim(name, epsilon=1.0, domain_sizes=ks, **options)
    x = (1, 2)
    distribution = m.output_distribution(x)
    assert sum(distribution.values()) == pytest.approx(1.0)
    csprng = _keys_from_payloads(m, [m.perturb(x) for _ in range(3000)])
    batch = _keys_from_batch(m, m.perturb_batch(np.tile(x, (30_000, 1)), np.random.default_rng(2024)))
    # both samplers fit the exact distribution ...
    assert _chi_square_p(csprng, distribution) > 1e-6
    assert _chi_square_p(batch, distribution) > 1e-6
    # ... and each other (two-sample test on the outputs both produced often enough)
    support = [k for k in distribution if distribution[k] * 3000 >= 5]
    table = np.array([[keys.count(k) for k in support] for keys in (csprng, batch)])
    assert stats.chi2_contingency(table).pvalue > 1e-6
