"""Known-candidate mode (client_sdk.heavy_hitters.known): the linear-hash screen is exact,
unbiased and ε-LDP; decoding is strict; discovery publishes only dictionary items that are
significant, with honest intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import heavy_hitters
from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.heavy_hitters import known as K
from client_sdk.heavy_hitters._common import CENTRAL_NOISE

DOMAIN = {"type": "string", "alphabet": "letters", "max_chars": 6, "outside": "drop"}


def make(epsilon: float = 2.0, **options: object) -> K.KnownCandidates:
    return heavy_hitters.create("known", epsilon=epsilon, k=8, domain=DOMAIN, **options)


def test_default_screen_follows_epsilon() -> None:
    assert K.default_screen(0.5) == (2, 21)
    assert K.default_screen(1.0) == (3, 13)
    assert K.default_screen(2.0) == (7, 7)
    assert K.default_screen(4.0) == (11, 6)
    for eps in (0.5, 1, 2, 3, 4, 8):
        p, d = K.default_screen(eps)
        assert p**d <= K.DEFAULT_BUCKETS < p ** (d + 1)


def test_config_round_trip_and_strict_fields() -> None:
    known = make(screen={"p": 5, "d": 8})
    rebuilt = heavy_hitters.from_config(known.config)
    assert rebuilt.config == known.config and (rebuilt.p, rebuilt.d) == (5, 8)
    for bad, message in [
        ({"p": 4}, "screen.p must be one of"),
        ({"p": 11, "d": 9}, "screen.d"),
        ({"hash": "other"}, "screen.hash"),
        ({"p": 5, "extra": 1}, "unknown screen fields"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make(screen=bad)
    with pytest.raises(ConfigError, match="bad options"):
        heavy_hitters.create("known", epsilon=2.0, k=8, domain=DOMAIN, eta=4)


def test_linear_hash_scalar_matches_vectorised() -> None:
    rng = np.random.default_rng(0)
    for p, d in [(2, 21), (3, 13), (7, 7), (11, 6)]:
        seeds = rng.integers(0, p**d, 300).astype(np.uint64)
        keys = rng.integers(0, 2**32, 300, dtype=np.uint64)
        vec = K.linear_hashes(seeds, keys, p, d)
        assert [K.linear_hash(int(s), int(k), p, d) for s, k in zip(seeds, keys, strict=True)] == vec.tolist()
        assert np.all(K.buckets_of(keys, p, d) >= 1) and np.all(K.buckets_of(keys, p, d) < p**d)


@pytest.mark.parametrize(("p", "d"), [(2, 7), (3, 5), (5, 3), (7, 3)])
def test_fft_supports_equal_the_direct_count(p: int, d: int) -> None:
    """C(b) = #{i : ⟨s_i, b⟩ = y_i} for every target bucket."""
    rng = np.random.default_rng(p * 10 + d)
    known = make(screen={"p": p, "d": d})
    s = rng.integers(0, p**d, 500)
    ys = rng.integers(0, p, 500)
    targets = np.unique(rng.integers(1, p**d, 40))
    est = K.ScreenEstimator(known, s.astype(np.uint64), ys)
    sd = K.digits_of(s, p, d)
    td = K.digits_of(targets, p, d)
    hits = (sd @ td.T) % p == ys[:, None]
    assert np.array_equal(est.support(targets), hits.sum(axis=0))


def test_screen_report_law_is_exactly_epsilon_ldp() -> None:
    """Given s, y = GRR_p(⟨s, b⟩): the likelihood ratio of any output between two items is at
    most e^ε, reached exactly."""
    for eps in (0.5, 1.0, 2.0, 4.0):
        known = make(eps)
        p_keep, q_other = known.screen_p_star, known.screen_q
        assert math.isclose(p_keep + (known.p - 1) * q_other, 1.0)
        assert math.isclose(p_keep / q_other, math.exp(eps))


def test_support_probability_is_one_over_p_for_other_buckets() -> None:
    """A report from bucket w supports b ≠ w with probability 1/p — also when w = c·b."""
    p, d = 5, 3
    known = make(screen={"p": p, "d": d})
    b = np.array([1, 2, 3])
    weights = p ** np.arange(d - 1, -1, -1)
    for w in (b, (2 * b) % p, np.array([0, 1, 4])):
        total = 0.0
        for s_flat in range(p**d):
            s = K.digits_of(np.array([s_flat]), p, d)[0]
            x = int(s @ w % p)
            target = int(s @ b % p)
            total += known.screen_p_star if x == target else known.screen_q
        expected = known.screen_p_star if int(w @ weights) == int(b @ weights) else 1 / p
        assert math.isclose(total / p**d, expected, rel_tol=1e-12)


def test_decoder_is_strict_per_group() -> None:
    known = make(screen={"p": 7, "d": 7})
    good = {"v": 1, "m": "known", "l": 1, "s": f"{7**7 - 1:016x}", "y": 6}
    assert len(known.decode([good])) == 1
    for bad in [
        {**good, "s": f"{7**7:016x}"},
        {**good, "y": 7},
        {**good, "l": 2, "y": known.g},
        {**good, "l": 3},
    ]:
        with pytest.raises(ReportDecodeError):
            known.decode([bad])
    with pytest.raises(ReportDecodeError, match="missing"):
        known.decode([{k: v for k, v in good.items() if k != "y"}])
    with pytest.raises(ReportDecodeError, match="unexpected"):
        known.decode([{**good, "x": 1}])
    stored = known.decode_stored(['{"l":1,"m":"known","s":"0000000000000005","v":1,"y":3}'])
    assert stored.seeds.tolist() == [5] and stored.ys.tolist() == [3]


def test_device_reports_follow_the_batch_law() -> None:
    """perturb (OS CSPRNG, the device path) and perturb_batch draw the same law: the group
    split and, per group, the support rate of the true item."""
    known = make(2.0, screen={"p": 7, "d": 4})
    payloads = [known.perturb("abc") for _ in range(4000)]
    reports = known.decode(payloads)
    key = np.array([known._key("abc")], dtype=np.uint64)
    scr = reports.levels == 1
    x = K.linear_hashes(reports.seeds[scr], np.repeat(key, scr.sum()), 7, 4)
    rate = np.mean(x == reports.ys[scr])
    sd = math.sqrt(known.screen_p_star * (1 - known.screen_p_star) / scr.sum())
    assert abs(rate - known.screen_p_star) < 5 * sd
    assert abs(scr.mean() - 0.5) < 5 * math.sqrt(0.25 / scr.size)


def test_screen_estimates_are_unbiased_with_their_variance() -> None:
    """z-scores of the screen's bucket-mass estimates over repetitions: mean 0, sd 1."""
    known = make(2.0, screen={"p": 7, "d": 5})
    rng = np.random.default_rng(5)
    items = ["alpha", "beta", "gamma", "delta"]
    true = np.array([0.2, 0.1, 0.05, 0.0])
    n = 20000
    counts = (true[:3] * n).astype(int)
    users = [w for w, c in zip(items, counts, strict=False) for _ in range(c)] + ["zeta"] * (n - counts.sum())
    buckets = K.buckets_of(known.dictionary(items).keys, known.p, known.d)
    z = []
    for _ in range(40):
        reports = known.perturb_batch(users, rng)
        scr = reports.levels == 1
        est = K.ScreenEstimator(known, reports.seeds[scr], reports.ys[scr])
        f = est.estimate(est.support(buckets))
        share = np.array([np.mean(np.array(users)[scr] == w) for w in items])
        z.append((f - share) / np.sqrt(est.variance(share)))
    z = np.array(z)
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2


def test_discovery_publishes_significant_dictionary_items_only() -> None:
    known = make(2.0)
    rng = np.random.default_rng(11)
    users = ["apple"] * 30000 + ["pear"] * 15000 + ["kiwi"] * 200 + ["other"] * 54800
    dictionary = [
        "apple",
        "pear",
        "kiwi",
        "plum",
        *(f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(500)),
    ]
    dictionary = list(dict.fromkeys(dictionary))
    result = known.discover(known.perturb_batch(users, rng), dictionary)
    assert result.items[:2] == ["apple", "pear"]
    assert set(result.items) <= {"apple", "pear", "kiwi"}
    top = result.heavy_hitters[0]
    assert top.ci_lower <= 0.3 <= top.ci_upper
    sig = result.significance
    assert sig["dictionary"] == len(dictionary) and sig["correction"] == "holm"
    assert sig["screen"]["rule"] == "holm" and sig["screen"]["chosen_buckets"] >= 2
    with pytest.raises(ConfigError, match="distinct"):
        known.discover(known.perturb_batch(users[:100], rng), ["apple", "apple"])
    with pytest.raises(ConfigError, match="needs the dictionary"):
        known.discover(known.perturb_batch(users[:100], rng))


def test_central_noise_chooses_buckets_by_noisy_top_m_at_one_draw() -> None:
    from ldpserver.discovery_noise import DiscoveryNoise, discovery_queries
    from ldpserver.release_noise import SeededGaussian

    known = make(2.0, screen={"p": 5, "d": 6})
    rng = np.random.default_rng(3)
    users = ["apple"] * 20000 + ["pear"] * 10000 + ["other"] * 20000
    reports = known.perturb_batch(users, rng)
    noise = DiscoveryNoise(10.0, discovery_queries(known), 1, SeededGaussian(np.random.default_rng(1)))
    filler = ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, 5)) for _ in range(3000)]
    token = CENTRAL_NOISE.set(noise)
    try:
        result = known.discover(reports, list(dict.fromkeys(["apple", "pear", "plum", *filler])))
    finally:
        CENTRAL_NOISE.reset(token)
    assert result.items == ["apple", "pear"]
    screen = result.significance["screen"]
    assert screen["rule"] == "noisy-top-m" and screen["chosen_buckets"] == K.SCREEN_TOP * known.k
    assert noise.drawn == 5  # the screen's selection; each test half's count and support query


def test_noisy_top_m_scale_costs_one_draw_by_opendp_map() -> None:
    """top_scale(m) makes OpenDP's noisy top-m cost exactly ρ/Q for a device moving counts by u."""
    import opendp.prelude as dp

    from ldpserver.discovery_noise import DiscoveryNoise
    from ldpserver.release_noise import ZeroNoise

    dp.enable_features("contrib")
    for rho, u, m in [(0.5, 1, 64), (0.02, 2, 16), (3.0, 1, 1)]:
        noise = DiscoveryNoise(rho, (2, 2), u, ZeroNoise())
        measurement = dp.m.make_noisy_top_k(
            dp.vector_domain(dp.atom_domain(T=int)), dp.linf_distance(T=int, monotonic=True),
            dp.zero_concentrated_divergence(), k=m, scale=noise.top_scale(m),
        )  # fmt: skip
        assert measurement.map(u) == pytest.approx(rho / 2, rel=1e-9)


def test_gumbel_top_k_draws_the_plackett_luce_law() -> None:
    """Noisy top-k with Gumbel(β) noise picks index i first with probability softmax(c/β)_i and,
    given i, the next one with the softmax of the rest (Plackett–Luce): the law of OpenDP's
    make_noisy_top_k, checked by frequencies over 40,000 draws (5 standard deviations)."""
    from ldpserver.release_noise import gumbel_top_k

    values = np.array([0, 2, 3, 3, 5])
    scale = 1.5
    rng = np.random.default_rng(12)
    draws = 40_000
    pairs: dict[tuple[int, int], int] = {}
    for _ in range(draws):
        first, second = gumbel_top_k(values, 2, scale, rng)
        pairs[(int(first), int(second))] = pairs.get((int(first), int(second)), 0) + 1
    w = np.exp(values / scale)
    for (i, j), count in pairs.items():
        p = w[i] / w.sum() * w[j] / (w.sum() - w[i])
        assert abs(count / draws - p) < 5 * math.sqrt(p * (1 - p) / draws) + 1e-4, (i, j)
    assert len(gumbel_top_k(values, 10, scale, rng)) == 5 and len(gumbel_top_k(values, 0, scale, rng)) == 0
