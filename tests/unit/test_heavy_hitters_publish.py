"""Issue 19: what a heavy-hitter release may publish — valid items only, significance with
Holm's correction, unbiased final-round estimates with honest intervals, alphabet domains,
hopeless configurations refused, known-candidate mode, unknown config keys refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import heavy_hitters
from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import AlphabetDomain, EncodedItems, ItemEncodingError, StringDomain

PARTIES = ["a", "b"]


def _create(protocol: str, epsilon: float, domain: dict, k: int = 4, **extra):
    if protocol in ("tap", "taps"):
        extra["parties"] = PARTIES
    return heavy_hitters.create(protocol, epsilon=epsilon, k=k, domain=domain, **extra)


def _reports(hh, vocab: list[str], weights: np.ndarray, n: int, rng: np.random.Generator):
    idx = rng.choice(len(vocab), size=n, p=weights)
    enc = EncodedItems.from_vocabulary(hh.domain, vocab, idx)
    parties = rng.integers(0, len(PARTIES), n) if getattr(hh, "federated", False) else None
    return hh.perturb_batch(enc, rng, parties=parties), idx


# --- alphabet domains ----------------------------------------------------------------------


def test_alphabet_domain_encodes_whole_symbols_and_only_valid_codes_decode():
    d = AlphabetDomain("lower", 4)
    assert d.symbol_bits == 5 and d.bits == 20 and d.level_step == 5
    for word in ("", "a", "zz", "abcd"):
        assert d.decode(d.encode(word)) == word
    assert d.canonical("abcdef") == "abcd"  # overflow: truncate
    with pytest.raises(ItemEncodingError):
        d.encode("aB")  # outside: reject
    assert AlphabetDomain("lower", 4, outside="drop").canonical("a-B c") == "ac"
    with pytest.raises(ItemEncodingError):
        AlphabetDomain("lower", 2, overflow="reject").encode("abc")
    # symbol 27..31 do not exist; a non-pad symbol after a pad is not an item
    assert not d.is_valid_code(27 << 15)
    assert not d.is_valid_code((1 << 15) | (0 << 10) | (2 << 5))
    with pytest.raises(ItemEncodingError):
        d.decode(27 << 15)


def test_unicode_alphabet_excludes_controls_and_surrogates():
    d = AlphabetDomain("unicode", 2)
    assert d.symbol_bits == 21 and d.level_step == 7
    assert d.decode(d.encode("日\U0001f600")) == "日\U0001f600"
    with pytest.raises(ItemEncodingError):
        d.encode("a\x07")
    assert AlphabetDomain("unicode", 2, outside="drop").canonical("\x07a\x85b") == "ab"
    assert not d.is_valid_code(0xD800 << 21)
    assert d.is_feasible_prefix(0, 7) is not False  # the pad is a feasible first symbol (the empty item)
    # a 7-bit prefix whose 21-bit symbols all lie in [0x1, 0x3FFF] contains valid code points
    assert d.is_feasible_prefix(0, 7)


def test_pem_on_an_alphabet_extends_by_whole_characters():
    pem = heavy_hitters.create("pem", epsilon=4.0, k=4, domain={"type": "string", "alphabet": "lower", "max_chars": 4})
    assert pem.prefix_lengths == (5, 10, 15, 20) and pem.lengths == (5, 10, 15, 20, 20)
    rebuilt = heavy_hitters.from_config(pem.config)
    assert rebuilt.config == pem.config


def test_byte_domains_stay_and_never_offer_control_characters():
    d = StringDomain(4)
    assert d.encode("a\x07") > 0  # the device may still report such an item
    assert not d.is_valid_code(d.encode("a\x07"))
    assert not d.is_valid_code(d.encode("a\x85"))
    assert d.is_valid_code(d.encode("hé"))


@pytest.mark.parametrize(
    "domain",
    [
        {"type": "string", "max_bytes": 4, "alphabet_x": 1},
        {"type": "string", "alphabet": "lower", "max_chars": 3, "max_bytes": 3},
        {"type": "string", "alphabet": "lower", "max_chars": 3, "bogus": True},
        {"type": "integer", "bits": 8, "overflow": "truncate"},
    ],
)
@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap", "taps"])
def test_unknown_keys_in_any_heavy_hitter_config_are_refused(protocol, domain):
    with pytest.raises(ConfigError, match="unknown domain field"):
        _create(protocol, 2.0, domain)
    good = _create(protocol, 2.0, {"type": "integer", "bits": 8}).config
    with pytest.raises(ConfigError):
        heavy_hitters.from_config({**good, "surprise": 1})
    with pytest.raises(ConfigError):
        heavy_hitters.from_config({**good, "domain": domain})


# --- nothing invalid, significance -----------------------------------------------------------

VOCAB = ["the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for"] + [
    f"w{j:03d}" for j in range(200)
]


def _weights() -> np.ndarray:
    w = np.concatenate([np.array([60, 40, 30, 25, 20, 15, 12, 10, 8, 7, 6, 5], float), np.full(200, 0.3)])
    return w / w.sum()


@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap", "taps"])
@pytest.mark.parametrize("epsilon", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("n", [2_000, 100_000])
def test_no_invalid_item_is_ever_published(protocol, epsilon, n):
    rng = np.random.default_rng(int(epsilon * 10) + n)
    for domain in ({"type": "string", "max_bytes": 4}, {"type": "string", "alphabet": "lower-digits", "max_chars": 4}):
        hh = _create(protocol, epsilon, domain)
        reports, _ = _reports(hh, VOCAB, _weights(), n, rng)
        result = hh.discover(reports)
        for h in result.heavy_hitters + [h for hs in result.local.values() for h in hs]:
            assert hh.domain.is_valid_code(h.code), h
            assert isinstance(h.item, str) and h.item.isprintable() and "\\x" not in h.item
            assert hh.domain.canonical(h.item) == h.item
        s = result.significance
        assert s["correction"] == "holm" and s["published"] == len(result.heavy_hitters)
        assert s["tested"] == s["published"] + s["withheld"]


@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap", "taps"])
def test_at_small_n_only_true_heavy_hitters_or_nothing(protocol):
    rng = np.random.default_rng(11)
    true_top = set(VOCAB[:4])
    published = 0
    for rep in range(5):
        hh = _create(protocol, 1.0, {"type": "string", "max_bytes": 4})
        reports, _ = _reports(hh, VOCAB, _weights(), 2_000, rng)
        result = hh.discover(reports)
        assert set(result.items) <= true_top, (rep, result.items)
        published += len(result.items)
    assert published <= 5 * 4


def test_pure_noise_publishes_nothing_at_the_family_wise_rate():
    """200 distinct items, each 0.5 %: no item is far enough above zero at n = 20,000, ε = 2;
    Holm keeps the family-wise error of publishing a zero-frequency candidate ≤ α."""
    rng = np.random.default_rng(5)
    vocab = [f"x{j:03d}" for j in range(200)]
    false_items = 0
    for _ in range(20):
        pem = heavy_hitters.create("pem", epsilon=2.0, k=8, domain={"type": "string", "max_bytes": 4})
        reports, _ = _reports(pem, vocab, np.full(200, 1 / 200), 20_000, rng)
        result = pem.discover(reports)
        false_items += sum(1 for item in result.items if item not in vocab)
    assert false_items <= 2


def test_holm_adjustment():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert C.holm_adjusted(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


# --- final estimation round: unbiased, honest intervals ---------------------------------------


def test_published_intervals_cover_at_the_nominal_rate():
    """Selection (levels 1..G) and testing (level G) never see the final group, so the final
    estimates of published items are unbiased and their 95 % intervals cover the truth 95 %
    of the time (± 3 %), including items near the significance threshold."""
    rng = np.random.default_rng(2024)
    vocab = [chr(97 + j) + chr(97 + i) for j in range(6) for i in range(4)]  # 24 items
    w = np.array([0.2, 0.12, 0.08, 0.06, 0.05, 0.04, 0.035, 0.03] + [0.0225] * 16)
    w /= w.sum()
    pem = heavy_hitters.create("pem", epsilon=2.0, k=8, domain={"type": "string", "alphabet": "lower", "max_chars": 2})
    truth = dict(zip(vocab, w, strict=True))
    covered = total = 0
    errors = []
    for _ in range(150):
        reports, _ = _reports(pem, vocab, w, 20_000, rng)
        for h in pem.discover(reports).heavy_hitters:
            f = truth.get(h.item, 0.0)  # a false discovery (FWER ≤ α per run) counts too
            total += 1
            covered += h.ci_lower <= f <= h.ci_upper
            errors.append(h.frequency - f)
    assert total > 600
    assert abs(covered / total - 0.95) <= 0.03, covered / total
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(len(errors)) + 1e-4  # unbiased


# --- hopeless configurations -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap", "taps"])
def test_hopeless_configuration_is_refused_with_the_n_and_epsilon_that_would_work(protocol):
    domain = {"type": "string", "max_bytes": 12}
    with pytest.raises(ConfigError, match=r"hopeless .* needs n ≥ \d+ at this ε, or ε ≥ [\d.]+ for n = (2000|1000)"):
        _create(protocol, 1.0, domain, k=16, expected_reports=2_000)
    ok = _create(protocol, 4.0, {"type": "string", "alphabet": "lower", "max_chars": 4}, k=4, expected_reports=10**7)
    assert ok.config["expected_reports"] == 10**7


# --- known-candidate mode -----------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["pem", "treehist"])
def test_known_candidate_mode_estimates_every_dictionary_entry(protocol):
    rng = np.random.default_rng(3)
    hh = _create(protocol, 4.0, {"type": "string", "alphabet": "lower-digits", "max_chars": 4})
    reports, idx = _reports(hh, VOCAB, _weights(), 100_000, rng)
    dictionary = VOCAB[:12] + [f"zz{j:02d}" for j in range(50)]
    result = hh.estimate_candidates(reports, dictionary)
    assert set(result.items) <= set(VOCAB[:12]) and {"the", "of", "and"} <= set(result.items)
    truth = np.bincount(idx, minlength=len(VOCAB)) / len(idx)
    for h in result.heavy_hitters:
        assert abs(h.frequency - truth[VOCAB.index(h.item)]) < 5 * np.sqrt(h.variance)
    assert result.significance["tested"] == len(dictionary)
    with pytest.raises(ItemEncodingError):
        hh.estimate_candidates(reports, ["UPPER"])


def test_exact_binomial_p_values():
    """The p-values are the exact binomial tail (scipy as the reference), where the normal
    approximation understates the tail at small N."""
    from scipy.stats import binom

    counts = np.array([0, 1, 50, 60, 70, 300, 251_500])
    trials = np.array([180, 180, 180, 180, 180, 1000, 1_000_000])
    got = C.binomial_upper_tail(counts, trials, 0.25)
    assert got == pytest.approx(binom.sf(counts - 1, trials, 0.25), rel=1e-9)
    z = (70 - 45) / np.sqrt(180 * 0.25 * 0.75)
    assert got[4] > 0.5 * math.erfc(z / math.sqrt(2))  # the skewed tail is heavier than the normal one


# --- the release's fast decoder of stored payloads -------------------------------------------


@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap"])
def test_stored_form_decoders_equal_the_strict_decoder(protocol):
    import json

    stored = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode  # what ingestion writes
    hh = _create(protocol, 2.0, {"type": "string", "alphabet": "lower-digits", "max_chars": 4})
    rng = np.random.default_rng(9)
    reports, _ = _reports(hh, VOCAB, _weights(), 3_000, rng)
    texts = [stored(p) for p in hh.encode(reports)]
    strict = hh.decode([json.loads(t) for t in texts])
    fast = hh.decode_stored(texts)
    epochs, rows = hh.decode_stored_rows("".join(f"{j % 3}\t{t}\n" for j, t in enumerate(texts)))
    for got in (fast, rows):
        for name in ("levels", "seeds", "ys", "parties", "item_seeds", "item_ys"):
            a, b = getattr(got, name), getattr(strict, name)
            assert (a is None and b is None) or np.array_equal(a, b), name
    assert epochs.tolist() == [j % 3 for j in range(len(texts))]
    # anything else: the strict decoder's verdict, or None for the row form
    odd = texts[:3] + [texts[3].replace('"v":1', '"v":2')]
    with pytest.raises(Exception, match="version|bad"):
        hh.decode_stored(odd)
    assert hh.decode_stored_rows("0\t" + texts[0].replace('{"l":', '{"l":0') + "\n") is None
    assert hh.decode_stored_rows("0\t" + texts[0] + " \n") is None


_REF_INT = r"(0|[1-9][0-9]{0,17})"


def _reference_rows(block: bytes, hh):
    """The stored-row decoder's contract as one regular expression per line (the
    implementation before the vectorised one): (epochs, columns) or None."""
    import re

    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = {"l": f'"l":{_REF_INT}', "m": f'"m":"{hh.mechanism}"', "s": r'"s":"([0-9a-f]{16})"', "v": '"v":1',
              "y": f'"y":{_REF_INT}'}  # fmt: skip
    parties = len(PARTIES) if getattr(hh, "federated", False) else None
    item_g = hh.g if hh.name == "treehist" else None
    if parties is not None:
        fields["p"] = f'"p":{_REF_INT}'
    if hh.name == "treehist":
        fields |= {"s2": r'"s2":"([0-9a-f]{16})"', "y2": f'"y2":{_REF_INT}'}
    names = ["epoch"] + [f for f in sorted(fields) if f not in ("m", "v")]
    pattern = re.compile("^" + _REF_INT + "\t{" + ",".join(fields[f] for f in sorted(fields)) + "}$", re.M)
    lines = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
    found = pattern.findall(text)
    if len(found) != lines:
        return None
    cols = {name: [v for v in col] for name, col in zip(names, zip(*found, strict=True), strict=True)}
    out = {k: np.array([int(v, 16) if k in ("s", "s2") else int(v) for v in vs], dtype=object)
           for k, vs in cols.items()}  # fmt: skip
    ok = all(1 <= v <= hh.groups for v in out["l"]) and all(v < hh.g for v in out["y"])
    ok = ok and (parties is None or all(v < parties for v in out["p"]))
    if hh.name == "treehist":
        ok = ok and all(v < item_g for v in out["y2"])
    return out if ok else None


_MUTATION_BYTES = b'0159af"{},:\t \\xgAF-+.\n\xc3'


@pytest.mark.parametrize("protocol", ["pem", "treehist", "tap"])
def test_stored_row_decoder_accepts_exactly_the_stored_form(protocol):
    """The vectorised decoder against the one-regex-per-line contract, on valid lines and
    on random single-byte mutations (replace, delete, insert) of one line in a block: the
    same columns or the same refusal (None), never a mis-parse."""
    import json

    stored = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode
    hh = _create(protocol, 2.0, {"type": "string", "alphabet": "lower-digits", "max_chars": 4})
    rng = np.random.default_rng(3)
    reports, _ = _reports(hh, VOCAB, _weights(), 400, rng)
    texts = [stored(p) for p in hh.encode(reports)]
    epochs = [0, 7, 10, 99, 12345, 10**17 + 3] + [int(e) for e in rng.integers(0, 40, len(texts) - 6)]
    lines = [f"{e}\t{t}\n".encode() for e, t in zip(epochs, texts, strict=True)]
    names = {"levels": "l", "seeds": "s", "ys": "y", "parties": "p", "item_seeds": "s2", "item_ys": "y2"}

    def check(block: bytes) -> str:
        want, got = _reference_rows(block, hh), hh.decode_stored_rows(block)
        if want is None:
            assert got is None, block
            return "refused"
        assert got is not None, block
        assert [int(v) for v in got[0]] == list(want["epoch"])
        for attr, key in names.items():
            column = getattr(got[1], attr)
            assert (column is None) == (key not in want), attr
            if column is not None:
                assert [int(v) for v in column] == list(want[key]), attr
        return "accepted"

    assert check(b"".join(lines)) == "accepted"
    assert check(b"".join(lines)[:-1]) == "accepted"  # no final newline
    line = lines[6].decode()
    seed = line.split('"s":"')[1][:16]
    for old, new in [("\t", "\t\t"), ('{"l":', '{"l":0'), ('"y":', '"y":0'), ('"y":', '"y":-'), ("\t", " \t"),
                     ('"v":1', '"v":2'), ('"v":1', '"v":01'), (seed, seed.upper()), (seed, seed[:15]),
                     (seed, seed + "0"), (seed, seed[:15] + "g"), (f'"m":"{hh.mechanism}"', '"m":"xyz"'),
                     ("}", "} "), ("}", ',"z":1}'), ("{", "{ ")]:  # fmt: skip
        bad = line.replace(old, new, 1).encode()
        assert check(lines[0] + bad + lines[1]) == "refused", (old, new)
    assert check(b"0" + lines[6]) == "refused"  # an epoch with a leading zero
    seen = set()
    for _ in range(1500):
        i = int(rng.integers(len(lines)))
        line = bytearray(lines[i])
        at = int(rng.integers(len(line) - 1))
        byte = _MUTATION_BYTES[int(rng.integers(len(_MUTATION_BYTES)))]
        kind = int(rng.integers(3))
        if kind == 0:
            line[at] = byte
        elif kind == 1:
            del line[at]
        else:
            line.insert(at, byte)
        block = b"".join(lines[max(0, i - 2) : i]) + bytes(line) + b"".join(lines[i + 1 : i + 3])
        seen.add(check(block))
    assert seen == {"accepted", "refused"}  # both verdicts occur (e.g. a digit replaced by a digit)
    # the text form: the vectorised path or the strict decoder, never a difference
    for _ in range(300):
        j = int(rng.integers(len(texts)))
        t = list(texts[j])
        t[int(rng.integers(len(t)))] = chr(_MUTATION_BYTES[int(rng.integers(len(_MUTATION_BYTES) - 1))])
        odd = texts[:j] + ["".join(t)] + texts[j + 1 : j + 3]
        try:
            strict = hh.decode([json.loads(x) for x in odd])
        except Exception as exc:
            with pytest.raises(type(exc)):
                hh.decode_stored(odd)
            continue
        fast = hh.decode_stored(odd)
        for attr in names:
            a, b = getattr(fast, attr), getattr(strict, attr)
            assert (a is None and b is None) or np.array_equal(a, b), attr


def test_compact_stored_columns_aggregate_like_the_strict_decoder():
    """The stored-form decoder's compact (8-bit) columns feed the same per-(party, level)
    counts as the strict decoder's int64 ones, also with 60 parties × 5 groups = 300
    cells, where 8-bit party × groups arithmetic would wrap."""
    import json

    parties = [f"p{i}" for i in range(60)]
    hh = heavy_hitters.create(
        "tap", epsilon=2.0, k=4, domain={"type": "string", "alphabet": "lower-digits", "max_chars": 4}, parties=parties
    )
    rng = np.random.default_rng(1)
    reports = hh.perturb_batch(["ab", "cd"] * 600, rng, parties=[parties[i % 60] for i in range(1200)])
    texts = [json.dumps(p, separators=(",", ":"), sort_keys=True) for p in hh.encode(reports)]
    fast = hh.decode_stored(texts)
    assert fast.levels.dtype == np.uint8 and fast.ys.dtype.itemsize <= 2
    assert hh.groups * len(parties) > 255
    assert hh.aggregate(fast) == hh.aggregate(hh.decode([json.loads(t) for t in texts]))


def test_binomial_tail_of_counts_beyond_the_trials():
    """A centrally noised count may exceed its (noisy) number of reports: p = 0, never a crash
    (it raised a math domain error, a 500 in a release)."""
    got = C.binomial_upper_tail(np.array([12.0, 11.0, -3.0]), np.array([10.0, 10.0, 10.0]), 0.25)
    assert got.tolist() == [0.0, 0.0, 1.0]
