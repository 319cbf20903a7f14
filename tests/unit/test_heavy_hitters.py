"""Heavy-hitter protocols: discovery, unbiasedness, wire form, client distribution, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from client_sdk import heavy_hitters
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.heavy_hitters import PrefixReports, tap
from client_sdk.heavy_hitters.encoding import EncodedItems, ItemEncodingError, StringDomain, prefix_key
from client_sdk.mechanisms.olh import hash_values
from ldpserver.evaluation import heavy_hitter_metrics as metrics

STR3 = {"type": "string", "max_bytes": 3}
PARTIES = ["north", "south", "east"]


def skewed_words(seed: int = 0, n_tail: int = 300) -> tuple[list[str], np.ndarray, list[str]]:
    """Eight well-separated heavy strings (incl. multi-byte and empty) over a random tail."""
    rng = np.random.default_rng(seed)
    heavy = ["the", "é", "日", "", "ab", "zz", "k", "qé"]
    letters = list("abcdefghijklmnopqrstuvwxyzéü")
    tail = sorted({"".join(rng.choice(letters, rng.integers(1, 3))) for _ in range(3 * n_tail)} - set(heavy))[:n_tail]
    # a light tail (1..9 users per item) so that no prefix of tail items outweighs a heavy
    # item's prefix; test_narrow_widths_can_lose_a_heavy_item covers the opposite case
    counts = np.concatenate([np.round(2400 * 0.8 ** np.arange(8)), rng.integers(1, 10, len(tail))]).astype(int)
    return heavy + tail, counts, heavy


def users(vocab: list[str], counts: np.ndarray, seed: int) -> np.ndarray:
    idx = np.repeat(np.arange(len(vocab)), counts)
    np.random.default_rng(seed).shuffle(idx)
    return idx


# --- exact discovery at very large epsilon --------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "options"),
    [
        ("pem", {}),
        ("pem", {"keep": "threshold"}),
        ("treehist", {"width": 16}),
        ("treehist", {"width": 16, "fragment_estimator": "level"}),
    ],
)
def test_large_epsilon_finds_the_exact_top_k(protocol, options):
    vocab, counts, heavy = skewed_words()
    enc = EncodedItems.from_vocabulary(StringDomain(3), vocab, users(vocab, counts, 1))
    hh = heavy_hitters.create(protocol, epsilon=18.0, k=8, domain=STR3, **options)
    result = hh.discover(hh.perturb_batch(enc, np.random.default_rng(2)))
    assert set(result.items) == set(heavy)
    for h in result.heavy_hitters:  # estimates of found items are close to the truth
        truth = counts[vocab.index(h.item)] / counts.sum()
        assert abs(h.frequency - truth) < 5 * np.sqrt(h.variance) + 1e-9


@pytest.mark.parametrize("pruning", ["none", "consensus"])
@pytest.mark.parametrize("mode", ["Z", "R"])
def test_large_epsilon_federated_finds_global_and_local_top_k(pruning, mode):
    vocab, counts, heavy = skewed_words()
    idx = users(vocab, counts, 1)
    parties = np.arange(idx.size) % 3
    enc = EncodedItems.from_vocabulary(StringDomain(3), vocab, idx)
    hh = heavy_hitters.create("tap", epsilon=18.0, k=8, domain=STR3, parties=PARTIES)
    result = hh.discover(hh.perturb_batch(enc, np.random.default_rng(2), parties), mode=mode, pruning=pruning)
    assert set(result.items) == set(heavy)
    assert set(result.local) == set(PARTIES)
    for name in PARTIES:  # parties are IID here, so each one's local top-k is the same set
        assert set(h.item for h in result.local[name]) == set(heavy)
    assert result.protocol == ("taps" if pruning == "consensus" else "tap")
    assert result.diagnostics["cross_party_rounds"] == 2 + (3 if pruning == "consensus" else 0) + (mode == "R") + 1


def test_narrow_widths_can_lose_a_heavy_item():
    """Prefix-tree methods keep prefixes, not items: at level 2 (10 bits) the word "a" is
    alone in its prefix, while the b-, c-, d- and f-words share theirs and each group
    outweighs "a". Keeping k prefixes (PEM width k capped at max_width k, AW's floor k even
    at ε = 18) loses "a"; keeping 2k finds it. This is the coverage limit of a fixed width
    and of AW (which guarantees no coverage); the width (PEM) and the floor (TAP/TAPS) are
    configurable. PEM's default rule (final round, keep "top") also keeps every prefix that
    stands out of the noise beyond the width, up to max_width: with width k it finds "a"."""
    heavy = {"the": 3000, "in": 2000, "of": 2500, "a": 1000}
    tail = {f"{c}{d}": 150 for c in "bcdf" for d in "aeiouyhlnr"}
    vocab = list(heavy) + list(tail)
    counts = np.array(list(heavy.values()) + list(tail.values()))
    idx = users(vocab, counts, 1)
    enc = EncodedItems.from_vocabulary(StringDomain(2), vocab, idx)
    domain = {"type": "string", "max_bytes": 2}
    parties = idx % 2
    for width, found in ((4, False), (8, True)):
        pem = heavy_hitters.create("pem", epsilon=18.0, k=4, domain=domain, width=width, max_width=width)
        assert ("a" in pem.discover(pem.perturb_batch(enc, np.random.default_rng(2))).items) is found
        tp = heavy_hitters.create("tap", epsilon=18.0, k=4, domain=domain, parties=["x", "y"], floor=width)
        assert ("a" in tp.discover(tp.perturb_batch(enc, np.random.default_rng(3), parties)).items) is found
    crowded = heavy_hitters.create("pem", epsilon=18.0, k=4, domain=domain, width=4)  # max_width 4k = 16
    result = crowded.discover(crowded.perturb_batch(enc, np.random.default_rng(2)))
    assert "a" in result.items
    assert max(t.kept for t in result.levels[:-2]) > 4  # the crowded level kept more than the width


def test_federated_non_iid_local_and_global():
    # each party has its own heavy items; globally the biggest ones of every party win
    domain = {"type": "integer", "bits": 16}
    rng = np.random.default_rng(5)
    local_heavy = {0: [11, 12, 13], 1: [21, 22, 23], 2: [31, 32, 33]}
    values, parties = [], []
    for p, items in local_heavy.items():
        v = np.concatenate([np.repeat(items, [3000, 2000, 1500]), rng.integers(100, 65536, 4000)])
        values.append(v)
        parties.append(np.full(v.size, p))
    values, parties = np.concatenate(values), np.concatenate(parties)
    taps = heavy_hitters.create("taps", epsilon=16.0, k=3, domain=domain, parties=PARTIES)
    result = taps.discover(taps.perturb_batch(values, np.random.default_rng(6), parties))
    assert set(result.items) == {11, 21, 31}
    for p, name in enumerate(PARTIES):
        assert [h.item for h in result.local[name]] == local_heavy[p]
    assert len(result.diagnostics["handoff_pairs"]) == 3
    ind = tap.run_independent(heavy_hitters.create("pem", epsilon=16.0, k=3, domain=domain), taps.perturb_batch(
        values, np.random.default_rng(7), parties), PARTIES, "Z")  # fmt: skip
    assert set(ind.items) == {11, 21, 31}


# --- unbiasedness (fixed seed, repetitions; docs/algorithms.md acceptance rule) ------------------


def _check_unbiased(estimates, variances, truth):
    estimates, variances = np.asarray(estimates), np.asarray(variances)
    reps = estimates.shape[0]
    var = variances.mean(axis=0)
    assert np.all(np.abs(estimates.mean(axis=0) - truth) <= 4 * np.sqrt(var / reps)), (estimates.mean(0), truth)
    ratio = estimates.var(axis=0, ddof=1) / var
    assert np.all((ratio >= 0.6) & (ratio <= 1.5)), ratio


def test_pem_estimates_are_unbiased_with_the_stated_variance():
    # the T23 layout (m = 8, k = 4, η = 2) at ε = 2; four heavy values over 100 light ones
    heavy = np.array([7, 200, 31, 96])
    values = np.concatenate([np.repeat(heavy, [9000, 6000, 4500, 3000]), np.repeat(np.arange(100, 200), 75)])
    truth = np.array([9000, 6000, 4500, 3000]) / values.size
    pem = heavy_hitters.create("pem", epsilon=2.0, k=4, domain={"type": "integer", "bits": 8}, eta=2, final_round=False)
    rng = np.random.default_rng(11)
    est, var, cons = [], [], []
    for _ in range(100):
        result = pem.discover(pem.perturb_batch(values, rng))
        found = {h.item: h for h in result.heavy_hitters}
        assert set(found) == set(heavy.tolist())
        est.append([found[v].frequency for v in heavy])
        var.append([found[v].variance for v in heavy])
        cons.append([found[v].consistent_frequency for v in heavy])
    _check_unbiased(est, var, truth)
    # consistency lowers the error (it pools the ancestors' independent estimates)
    assert np.mean((np.asarray(cons) - truth) ** 2) < np.mean((np.asarray(est) - truth) ** 2)


def test_treehist_and_tap_r_estimates_are_unbiased():
    heavy = np.array([7, 200, 31])
    values = np.concatenate([np.repeat(heavy, [8000, 6000, 4000]), np.repeat(np.arange(100, 200), 60)])
    truth = np.array([8000, 6000, 4000]) / values.size
    parties = np.arange(values.size) % 2
    th = heavy_hitters.create("treehist", epsilon=4.0, k=3, domain={"type": "integer", "bits": 8})
    tp = heavy_hitters.create("tap", epsilon=4.0, k=3, domain={"type": "integer", "bits": 8}, parties=["a", "b"])
    rng = np.random.default_rng(12)
    rows = {"th": ([], []), "tap": ([], [])}
    for _ in range(100):
        for name, proto, kwargs in (("th", th, {}), ("tap", tp, {"parties": parties})):
            result = proto.discover(
                proto.perturb_batch(values, rng, **kwargs), **({"mode": "R"} if name == "tap" else {})
            )
            found = {h.item: h for h in result.heavy_hitters}
            rows[name][0].append([found[v].frequency for v in heavy])
            rows[name][1].append([found[v].variance for v in heavy])
    for est, var in rows.values():
        _check_unbiased(est, var, truth)


# --- client: perturb and perturb_batch have the same distribution ----------------------------


def _features(hh, payloads_or_batch, item_code):
    """Per report: (level, y == H_s(own key), y == H_s(probe key)) as a category index."""
    batch = hh.decode(payloads_or_batch) if isinstance(payloads_or_batch, list) else payloads_or_batch
    m = hh.domain.bits
    lengths = np.asarray(hh.lengths)[batch.levels - 1]
    own = np.array([prefix_key(item_code >> (m - n), n) for n in lengths], dtype=np.uint64)
    probe = np.array([prefix_key(9 >> (m - n), n) for n in lengths], dtype=np.uint64)
    match_own = hash_values(batch.seeds, own, hh.g) == batch.ys
    match_probe = hash_values(batch.seeds, probe, hh.g) == batch.ys
    return (batch.levels - 1) * 4 + match_own * 2 + match_probe


@pytest.mark.parametrize("protocol", ["pem", "taps"])
def test_perturb_and_perturb_batch_have_the_same_distribution(protocol):
    extra = {"parties": ["a", "b"]} if protocol == "taps" else {}
    hh = heavy_hitters.create(
        protocol, epsilon=1.0, k=2, domain={"type": "integer", "bits": 4}, eta=2, g=3, final_round=False, **extra
    )
    assert hh.lengths == (3, 4)
    n = 3000
    party = {"party": "b"} if extra else {}
    single = [hh.perturb(5, **party) for _ in range(n)]
    batch = hh.perturb_batch(np.full(n, 5), np.random.default_rng(8), parties=np.ones(n, int) if extra else None)
    if extra:
        assert {p["p"] for p in single} == {1} and set(batch.parties.tolist()) == {1}
    a = np.bincount(_features(hh, single, 5), minlength=8)
    b = np.bincount(_features(hh, batch, 5), minlength=8)
    p, g = hh.olh.p_star, hh.g
    expected = np.tile([(1 - p) * (1 - 1 / g), (1 - p) / g, p * (1 - 1 / g), p / g], 2) / 2
    assert stats.chisquare(a, expected * n).pvalue > 1e-6
    assert stats.chisquare(b, expected * n).pvalue > 1e-6
    assert stats.chi2_contingency(np.vstack([a, b])).pvalue > 1e-6


def test_treehist_client_distribution():
    hh = heavy_hitters.create("treehist", epsilon=2.0, k=2, domain={"type": "integer", "bits": 4}, eta=2, g=3)
    n = 2000
    single = hh.decode([hh.perturb(5) for _ in range(n)])
    batch = hh.perturb_batch(np.full(n, 5), np.random.default_rng(9))
    for reports in (single, batch):
        full = hash_values(reports.item_seeds, np.full(n, prefix_key(5, 4), dtype=np.uint64), hh.g) == reports.item_ys
        levels = np.bincount(reports.levels, minlength=3)[1:]
        assert stats.binomtest(int(full.sum()), n, hh.olh.p_star).pvalue > 1e-6
        assert stats.chisquare(levels).pvalue > 1e-6


# --- wire form and decoders -------------------------------------------------------------------


def test_wire_roundtrip_and_discovery_from_payloads():
    vocab, counts, heavy = skewed_words(n_tail=50)
    items = [vocab[i] for i in users(vocab, counts, 3)]
    hh = heavy_hitters.create("pem", epsilon=8.0, k=4, domain=STR3)
    batch = hh.perturb_batch(items, np.random.default_rng(4))
    payloads = json.loads(json.dumps(hh.encode(batch)))
    decoded = hh.decode(payloads)
    assert np.array_equal(decoded.seeds, batch.seeds) and np.array_equal(decoded.ys, batch.ys)
    assert np.array_equal(decoded.levels, batch.levels)
    from_arrays = hh.discover(batch)
    assert heavy_hitters.discover(hh.config, payloads).items == from_arrays.items
    # a database may store seeds as signed 64-bit integers
    stored = PrefixReports.from_columns(levels=batch.levels, seeds=batch.seeds.view(np.int64), ys=batch.ys)
    assert hh.discover(stored).items == from_arrays.items
    # a window is the concatenation of its epochs
    half = len(batch) // 2
    window = PrefixReports.concat([batch.subset(slice(0, half)), batch.subset(slice(half, None))])
    assert hh.discover(window).items == from_arrays.items
    json.dumps(from_arrays.to_dict())  # JSON-safe result


def test_single_reports_are_json_safe_and_decodable():
    for name, extra in (("pem", {}), ("tap", {"parties": PARTIES}), ("treehist", {})):
        hh = heavy_hitters.create(name, epsilon=2.0, k=4, domain=STR3, **extra)
        payload = hh.perturb("héé", **({"party": "east"} if extra else {}))
        assert json.loads(json.dumps(payload)) == payload
        assert payload["v"] == 1 and payload["m"] == ("tap" if name == "tap" else name)
        hh.validate_payload(payload)
        if extra:
            assert payload["p"] == 2


GOOD = {"v": 1, "m": "tap", "l": 1, "s": "00000000000000ff", "y": 0, "p": 0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "bad_version"),
        ({"v": True}, "bad_version"),
        ({"m": "pem"}, "wrong_mechanism"),
        ({"l": 0}, "out_of_range"),
        ({"l": 99}, "out_of_range"),
        ({"l": True}, "bad_type"),
        ({"l": "1"}, "bad_type"),
        ({"l": 1.0}, "bad_type"),
        ({"s": "ff"}, "bad_encoding"),
        ({"s": "00000000000000FF"}, "bad_encoding"),
        ({"s": "0000000_0000000f"}, "bad_encoding"),
        ({"s": " 000000000000000"}, "bad_encoding"),
        ({"s": 255}, "bad_type"),
        ({"y": -1}, "out_of_range"),
        ({"y": 10**6}, "out_of_range"),
        ({"y": None}, "bad_type"),
        ({"p": 3}, "out_of_range"),
        ({"p": "north"}, "bad_type"),
        ({"extra": 1}, "unknown_field"),
    ],
)
def test_decoder_rejects_malformed_payloads(change, reason):
    hh = heavy_hitters.create("tap", epsilon=2.0, k=4, domain=STR3, parties=PARTIES)
    hh.decode([GOOD])
    bad = {**GOOD, **change}
    with pytest.raises(ReportDecodeError) as err:
        hh.decode([GOOD, bad])
    assert err.value.reason == reason and err.value.index == 1


def test_decoder_rejects_missing_fields_and_non_objects():
    hh = heavy_hitters.create("tap", epsilon=2.0, k=4, domain=STR3, parties=PARTIES)
    for bad in ({k: v for k, v in GOOD.items() if k != "p"}, {k: v for k, v in GOOD.items() if k != "y"}):
        with pytest.raises(ReportDecodeError) as err:
            hh.decode([bad])
        assert err.value.reason == "missing_field"
    for bad in ([1, 2], "report", None):
        with pytest.raises(ReportDecodeError):
            hh.decode([bad])
    with pytest.raises(ReportDecodeError):
        hh.decode(GOOD)  # a single object instead of a list
    th = heavy_hitters.create("treehist", epsilon=2.0, k=4, domain=STR3)
    with pytest.raises(ReportDecodeError, match="missing"):
        th.decode([{"v": 1, "m": "treehist", "l": 1, "s": "00000000000000ff", "y": 0}])


# --- items: multi-byte, empty and over-long strings ---------------------------------------------


def test_string_items_at_the_protocol_level():
    hh = heavy_hitters.create("pem", epsilon=18.0, k=3, domain={"type": "string", "max_bytes": 4})
    items = ["ééé"] * 3000 + [""] * 2000 + ["日本"] * 1500 + ["abcdefgh"] * 500 + ["x"] * 100
    result = hh.discover(hh.perturb_batch(items, np.random.default_rng(1)))
    # "ééé" (6 bytes) is truncated at a character boundary to "éé"; "日本" is 6 bytes -> "日"
    assert result.items == ["éé", "", "日"]
    hh.perturb("")
    with pytest.raises(ItemEncodingError):
        hh.perturb("a\x00b")
    with pytest.raises(ItemEncodingError):
        hh.perturb(42)
    strict = heavy_hitters.create(
        "pem", epsilon=1.0, k=3, domain={"type": "string", "max_bytes": 4, "overflow": "reject"}
    )
    with pytest.raises(ItemEncodingError, match="at most 4"):
        strict.perturb("ééé")
    with pytest.raises(ItemEncodingError):
        strict.perturb_batch(["ok", "ééé"], np.random.default_rng(0))


# --- configuration and errors ------------------------------------------------------------------


def test_config_roundtrip_for_every_protocol():
    for name in heavy_hitters.available():
        extra = {"parties": PARTIES} if name in ("tap", "taps") else {}
        hh = heavy_hitters.create(name, epsilon=3.0, k=8, domain=STR3, **extra)
        again = heavy_hitters.from_config(json.loads(json.dumps(hh.config)))
        assert type(again) is type(hh) and again.config == hh.config
        assert hh.privacy.epsilon == 3.0


@pytest.mark.parametrize(
    "options",
    [
        {"epsilon": 0.0},
        {"epsilon": 25.0},
        {"k": 0},
        {"eta": 0},
        {"domain": {"type": "float"}},
        {"domain": {"type": "integer", "bits": 64}, "k": 4096, "eta": 10},
        {"g": 1},
        {"keep": "all"},
        {"width": 2},
    ],
)
def test_bad_pem_configs_are_refused(options):
    base = {"epsilon": 1.0, "k": 8, "domain": STR3}
    with pytest.raises(ConfigError):
        heavy_hitters.create("pem", **{**base, **options})


def test_bad_configs_and_reports_are_refused():
    with pytest.raises(ConfigError):
        heavy_hitters.create("sfp", epsilon=1.0, k=8, domain=STR3)
    with pytest.raises(ConfigError):
        heavy_hitters.create("tap", epsilon=1.0, k=8, domain=STR3, parties=["a", "a"])
    with pytest.raises(ConfigError):
        heavy_hitters.create("tap", epsilon=1.0, k=8, domain=STR3, parties=["a"], mode="X")
    with pytest.raises(ConfigError):
        heavy_hitters.create("tap", epsilon=1.0, k=8, domain=STR3, parties=["a"], floor=100)
    with pytest.raises(ConfigError):
        heavy_hitters.create("pem", epsilon=1.0, k=8, domain=STR3, bogus=1)
    pem = heavy_hitters.create("pem", epsilon=1.0, k=8, domain=STR3)
    config = pem.config
    with pytest.raises(ConfigError, match="levels"):
        heavy_hitters.from_config({**config, "levels": [8, 16, 24]})
    only_level_one = PrefixReports(np.ones(10, int), np.arange(10), np.zeros(10, int))
    with pytest.raises(heavy_hitters.InsufficientReportsError):
        pem.discover(only_level_one)
    with pytest.raises(ValueError, match="party"):
        heavy_hitters.create("tap", epsilon=1.0, k=8, domain=STR3, parties=PARTIES).perturb("a")
    with pytest.raises(ValueError, match="not federated"):
        pem.perturb("a", party="north")


def test_party_without_reports_in_every_group_is_excluded():
    tp = heavy_hitters.create("tap", epsilon=8.0, k=2, domain={"type": "integer", "bits": 8}, parties=PARTIES)
    values = np.repeat([5, 9, 77], [3000, 2000, 500])
    parties = np.zeros(values.size, int)
    parties[:1] = 2  # "east" has one user: one of its two level groups is empty
    result = tp.discover(tp.perturb_batch(values, np.random.default_rng(3), parties))
    assert result.diagnostics["excluded_parties"] == ["east"]
    assert result.items == [5, 9]


def test_metrics_on_a_discovery_result():
    vocab, counts, heavy = skewed_words(n_tail=50)
    gt = metrics.GroundTruth.from_counts(dict(zip(vocab, counts.tolist(), strict=True)), k=8)
    assert metrics.evaluate(heavy, gt)["f1"] == 1.0


def test_additive_report_counts_for_ingestion():
    tp = heavy_hitters.create("tap", epsilon=2.0, k=4, domain=STR3, parties=PARTIES)
    payloads = [tp.perturb("ab", party=p) for p in ["north", "east", "east"]]
    agg = tp.aggregate(payloads[:1]) + tp.aggregate(payloads[1:]) + tp.empty_aggregate()
    assert agg == tp.aggregate(payloads) and agg.n == 3
    counts = agg.counts.reshape(len(PARTIES), tp.groups)
    assert counts.sum(axis=1).tolist() == [1, 0, 2]
    json.dumps(agg.to_dict())
    th = heavy_hitters.create("treehist", epsilon=2.0, k=4, domain=STR3)
    assert th.aggregate([th.perturb("ab")]).counts.sum() == 1
    pem = heavy_hitters.create("pem", epsilon=2.0, k=4, domain=STR3)
    assert pem.aggregate(pem.perturb_batch(["a"] * 50, np.random.default_rng(0))).counts.sum() == 50


def test_decoder_fuzz_only_raises_report_decode_errors():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    hh = heavy_hitters.create("tap", epsilon=2.0, k=4, domain=STR3, parties=PARTIES)
    values = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20),
        st.lists(st.integers(), max_size=3), st.sampled_from(["tap", "00000000000000ff", 1, 0]),
    )  # fmt: skip
    payloads = st.one_of(
        st.dictionaries(st.sampled_from(["v", "m", "l", "s", "y", "p", "x"]), values, max_size=7),
        st.fixed_dictionaries({k: st.one_of(st.just(v), values) for k, v in GOOD.items()}),
        values,
    )

    @settings(max_examples=300, deadline=None)
    @given(payloads)
    def check(payload):
        try:
            hh.decode([payload])
        except ReportDecodeError:
            pass

    check()


def test_a_short_item_whose_prefix_misses_the_width_is_still_tested():
    """Near misses: at level 1 the prefixes "b" and "c" (three names each) outweigh "a", so
    width 2 keeps only them; "a" is an item on its own (the pad follows), so it joins the
    test from level 2 on and is published — it outweighs every "b…" and "c…" item."""
    vocab = ["a", "ba", "bb", "bc", "ca", "cb", "cc"]
    counts = np.array([2000] + [1000] * 6)
    idx = users(vocab, counts, 4)
    domain = {"type": "string", "alphabet": "lower", "max_chars": 3}
    pem = heavy_hitters.create("pem", epsilon=18.0, k=2, domain=domain, width=2, max_width=2)
    enc = EncodedItems.from_vocabulary(pem.domain, vocab, idx)
    result = pem.discover(pem.perturb_batch(enc, np.random.default_rng(5)))
    assert result.levels[0].kept == 2  # "a" lost the width contest at level 1
    assert result.items[0] == "a"


def test_a_complete_item_does_not_compete_for_the_width():
    """Ended items: at level 2, "a" + pad (1,500 users) is lighter than the prefixes "ba" to
    "bd" (1,800 each), so a width-2 contest would drop it, and the two near misses ("bc",
    "bd") would take the rescue; as a complete candidate it skips the contest and is tested
    with its own group and the later ones: it is the top item."""
    vocab = ["a", "ab", "ac"] + [f"b{x}{y}" for x in "abcd" for y in "abc"]
    counts = np.array([1500, 1000, 1000] + [600] * 12)
    idx = users(vocab, counts, 6)
    domain = {"type": "string", "alphabet": "lower", "max_chars": 3}
    pem = heavy_hitters.create("pem", epsilon=18.0, k=2, domain=domain, width=2, max_width=2)
    enc = EncodedItems.from_vocabulary(pem.domain, vocab, idx)
    result = pem.discover(pem.perturb_batch(enc, np.random.default_rng(7)))
    assert result.levels[1].kept == 2  # two of the open prefixes "ba" … "bd"
    assert result.items[0] == "a"
