"""The release tree (ldpserver/release_noise.py): dyadic covers, exact sums without noise,
closed-form variances with noise, OpenDP's sampler and accounting, and the per-report bound
behind the sensitivity (every entry of one report's aggregate is 0 or 1, for every kind)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import heavy_hitters, longitudinal, mechanisms, multidim
from ldpserver import release_noise as rn
from ldpserver.discovery_noise import DiscoveryNoise, discovery_queries


def test_covers_partition_the_span_with_at_most_two_nodes_per_level():
    for through in range(1, 70):
        prefix = rn.cover(0, through, 8)
        assert len(prefix) == bin(through).count("1")  # the binary-tree counter's decomposition
        for after in range(through):
            spans = sorted((ix << lv, (ix + 1) << lv) for lv, ix in rn.cover(after, through, 8))
            assert spans[0][0] == after and spans[-1][1] == through
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
            assert len(spans) <= 2 * math.ceil(math.log2(through - after + 1)) + 1


def test_without_noise_every_scope_is_the_exact_sum_and_old_nodes_are_dropped():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 100, (100, 3))
    tree = rn.VectorTree(sigmas=rn.level_sigmas(0.1, 1.0, 8), dimension=3, keep=5, noise=rn.ZeroNoise())
    for t, v in enumerate(values, start=1):
        tree.append(v)
        assert np.array_equal(tree.span(0, t)[0], values[:t].sum(axis=0))
        for w in range(1, 6):
            after = max(0, t - w)
            assert np.array_equal(tree.span(after, t)[0], values[after:t].sum(axis=0))
        assert len(tree.nodes) <= 8 + 2 * 5 + 2  # prefix nodes + the last windows' nodes
    again = rn.VectorTree.from_state(tree.state(), noise=rn.ZeroNoise())
    again.append(values[0])
    tree.append(values[0])
    assert again.state() == tree.state()


def test_noisy_scopes_have_the_stated_variance_and_polylog_growth():
    rng = np.random.default_rng(2026)
    sigmas = rn.level_sigmas(0.05, 1.0, 7)
    runs, horizon = 300, 64
    errors = np.empty((runs, horizon))
    for r in range(runs):
        tree = rn.VectorTree(sigmas=sigmas, dimension=1, keep=1, noise=rn.SeededGaussian(rng))
        for t in range(1, horizon + 1):
            tree.append(np.array([5]))
            errors[r, t - 1] = tree.span(0, t)[0][0] - 5 * t
    stated = np.array([sum(sigmas[lv] ** 2 for lv, _ in rn.cover(0, t, 7)) for t in range(1, horizon + 1)])
    ratio = errors.var(axis=0, ddof=1) / (
        stated + np.array([len(rn.cover(0, t, 7)) for t in range(1, horizon + 1)]) / 12
    )
    assert 0.7 <= ratio.min() and ratio.max() <= 1.35, ratio
    # cumulative variance is O(log³ T): at most σ₀²·Σ_{l ≤ log2 t} (l + 1)² at every step t
    for t in range(1, horizon + 1):
        assert stated[t - 1] <= sigmas[0] ** 2 * sum((lv + 1) ** 2 for lv in range(int(math.log2(t)) + 1)) * 1.000001


def test_opendp_discrete_gaussian_has_variance_sigma_squared():
    noise = rn.OpenDPDiscreteGaussian()
    draws = noise.add(np.zeros(20_000, dtype=np.int64), 3.0)
    assert abs(draws.mean()) < 5 * 3.0 / math.sqrt(draws.size)
    assert 0.93 <= draws.var() / 9.0 <= 1.07


@pytest.mark.parametrize(("epsilon", "delta"), [(1.5, 1e-7), (0.5, 1e-6), (4.0, 1e-9)])
def test_accounting_meets_the_declared_epsilon_by_opendps_own_maps(epsilon, delta):
    rho = rn.rho_for(epsilon, delta)
    assert rn.epsilon_of(rho, delta) <= epsilon < rn.epsilon_of(rho * 1.001, delta)
    for sensitivity in (1.0, math.sqrt(129), 3.0):
        sigmas = rn.level_sigmas(rho, sensitivity, 17)
        assert rn.opendp_rho(sigmas, sensitivity) == pytest.approx(rho, rel=1e-9)
        assert sigmas == sorted(sigmas)  # leaves get the largest share
    budget = rn.ReleaseBudget(epsilon, delta, 1 << 16, 1, 1.0, 16, True)
    assert budget.epsilon_for_epochs(1) <= epsilon < budget.epsilon_for_epochs(4)


SDKS = {
    "grr": lambda: mechanisms.create("grr", epsilon=1.0, domain_size=6),
    "hr": lambda: mechanisms.create("hr", epsilon=1.0, domain_size=6),
    "oue": lambda: mechanisms.create("oue", epsilon=1.0, domain_size=6),
    "sue": lambda: mechanisms.create("sue", epsilon=1.0, domain_size=6),
    "olh": lambda: mechanisms.create("olh", epsilon=1.0, domain_size=6),
    "blh": lambda: mechanisms.create("blh", epsilon=1.0, domain_size=6),
    "rsfd-grr": lambda: multidim.create_multidim("rsfd-grr", epsilon=1.0, domain_sizes=[3, 5]),
    "rsfd-adp": lambda: multidim.create_multidim("rsfd-adp", epsilon=1.0, domain_sizes=[3, 40]),
    "spl": lambda: multidim.create_multidim("spl", epsilon=1.0, domain_sizes=[3, 5]),
    "smp": lambda: multidim.create_multidim("smp", epsilon=1.0, domain_sizes=[3, 5]),
    "l-grr": lambda: longitudinal.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "l-osue": lambda: longitudinal.create_longitudinal("l-osue", epsilon_perm=2.0, epsilon_first=1.0, domain_size=12),
    "loloha": lambda: longitudinal.create_longitudinal("loloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=50),
    "dbitflip": lambda: longitudinal.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=12, buckets=6, d=2),
    "pem": lambda: heavy_hitters.create("pem", epsilon=2.0, k=4, domain={"type": "string", "max_bytes": 3}),
    "treehist": lambda: heavy_hitters.create("treehist", epsilon=2.0, k=4, domain={"type": "integer", "bits": 16}),
    "tap": lambda: heavy_hitters.create(
        "tap", epsilon=3.0, k=4, domain={"type": "string", "max_bytes": 4}, parties=["a", "b"]
    ),
}


def _payload(name: str, protocol, value: int):
    if name.startswith(("rsfd", "spl", "smp")):
        return protocol.perturb((value % 3, value % 5))
    if name in ("pem", "tap"):
        return protocol.perturb("ab"[value % 2] * 2, **({"party": "ab"[value % 2]} if name == "tap" else {}))
    if name == "treehist":
        return protocol.perturb(value)
    if name in mechanisms.REGISTRY:
        return protocol.perturb(value % 6)
    state = protocol.new_device_state()
    memo = protocol.new_memo(value % 6, state)
    return protocol.perturb_with_memo(memo, state)


@pytest.mark.parametrize("name", sorted(SDKS))
def test_one_report_moves_every_statistic_by_zero_or_one(name):
    """The sensitivity's per-report bound r: entries in {0, 1} give ||contribution||₂ ≤ sqrt(D);
    one-hot kinds (GRR, HR, heavy-hitter group counts) add exactly one count, n = Σ counts."""
    protocol = SDKS[name]()
    derived = name in rn.ONE_HOT or name in ("pem", "treehist", "tap")
    for value in range(40):
        data = protocol.aggregate([_payload(name, protocol, value)]).to_dict()
        vector = rn.flatten(data, derived)
        assert set(np.unique(vector).tolist()) <= {0, 1}, (name, vector)
        if derived:
            assert vector.sum() == 1 and data["n"] == 1
            assert rn.unflatten(data, vector, True)["n"] == 1
        back = rn.unflatten(data, vector, derived)
        assert back["n"] == data["n"] and np.array_equal(rn.flatten(back, derived), vector)


class _Recording(DiscoveryNoise):
    """DiscoveryNoise without noise that remembers each estimator's reports and draws."""

    def __init__(self, queries):
        super().__init__(1.0, queries, 1, rn.ZeroNoise())
        self.sizes: dict[int, int] = {}

    def count(self, n, owner):
        self.sizes[self.serial(owner)] = n  # not id(owner): estimators are not kept alive
        return super().count(n, owner)


@pytest.mark.parametrize("name", ["pem", "tap", "treehist"])
def test_discovery_draws_stay_within_the_per_report_budget(name):
    """The claims behind Q: PEM and TAP estimators partition the reports (their sizes sum
    to n) and each draws at most its limit; TreeHist stays within its total."""
    from client_sdk.heavy_hitters import _common as C

    protocol = SDKS[name]()
    rng = np.random.default_rng(3)
    items = rng.integers(0, 4, 3000)
    if name == "tap":
        reports = protocol.perturb_batch(np.array([str(i) * 2 for i in items]), rng, parties=["a", "b"] * 1500)
    elif name == "pem":
        reports = protocol.perturb_batch(np.array([str(i) * 2 for i in items]), rng)
    else:
        reports = protocol.perturb_batch(items, rng)
    queries = discovery_queries(protocol)
    recording = _Recording(queries)
    token = C.CENTRAL_NOISE.set(recording)
    try:
        protocol.discover(reports)
    finally:
        C.CENTRAL_NOISE.reset(token)
    if queries[1] is None:
        assert recording.drawn <= queries[0]
    else:
        assert sum(recording.sizes.values()) == len(reports)  # a partition: each report in one estimator
        assert max(recording.by_estimator.values()) <= queries[1] == queries[0]


def test_support_clipping_bounds_each_report_and_almost_never_touches_an_honest_one():
    from scipy.stats import binom

    from client_sdk.mechanisms.olh import support_counts

    for keys, g in [(4, 2), (16, 5), (512, 149), (4096, 3), (100, 55)]:
        bound = DiscoveryNoise.support_bound(keys, g)
        assert bound <= keys
        if bound < keys:  # besides its own key, an honest report supports each key w.p. ≈ 1/g
            assert binom.sf(bound - 2, keys, 1 / g) < 1e-6
    olh = mechanisms.create("olh", epsilon=1.0, domain_size=64)
    reports = olh.perturb_batch(np.arange(2000) % 64, rng=np.random.default_rng(9))
    # heavy-hitter keys are mixed 32-bit values (hh-key-v1); consecutive integers are not
    # (a multiply-shift hash with a small multiplier maps them all to one bin)
    keys = np.random.default_rng(10).integers(0, 1 << 32, 64).astype(np.uint64)
    exact = support_counts(reports.seeds, reports.ys, olh.g, keys)
    assert np.array_equal(support_counts(reports.seeds, reports.ys, olh.g, keys, max_per_report=64), exact)
    bound = DiscoveryNoise.support_bound(64, olh.g)
    clipped = support_counts(reports.seeds, reports.ys, olh.g, keys, max_per_report=bound)
    assert np.array_equal(clipped, exact)  # no honest report exceeds the bound here
    tight = support_counts(reports.seeds, reports.ys, olh.g, keys, max_per_report=14)
    singles = [support_counts(reports.seeds[i : i + 1], reports.ys[i : i + 1], olh.g, keys) for i in range(2000)]
    kept = [x for x in singles if x.sum() <= 14]
    assert 0 < len(kept) < len(singles)
    assert np.array_equal(tight, np.sum(kept, axis=0))  # reports over the bound are dropped, the rest counted


@pytest.mark.parametrize("name", ["oue", "hr", "grr", "olh"])
def test_added_variance_of_long_vectors_matches_the_exact_loop(name, monkeypatch):
    m = mechanisms.create(name, epsilon=1.0, domain_size=300)
    data = m.aggregate(m.perturb_batch(np.arange(5000) % 300, rng=np.random.default_rng(1))).to_dict()
    derived = name in rn.ONE_HOT

    def flat(d):
        from client_sdk.mechanisms import Aggregate

        return np.asarray(m.estimate(Aggregate.from_dict(d)).frequencies)

    exact = rn.added_variance(flat, data, derived, 7.0)
    monkeypatch.setattr(rn, "EXACT_JACOBIAN_LIMIT", 10)
    fast = rn.added_variance(flat, data, derived, 7.0)
    if name == "hr":  # not separable: a conservative estimate
        assert np.all(fast >= 0.95 * exact) and np.mean(fast) <= 1.5 * np.mean(exact)
    else:  # separable: the same numbers (up to second-order terms in 1/n)
        np.testing.assert_allclose(fast, exact, rtol=1e-3)


@pytest.mark.parametrize("name", ["rsfd-grr", "smp", "spl"])
def test_added_variance_of_long_multidim_vectors_matches_the_exact_loop(name, monkeypatch):
    from client_sdk.multidim import MultidimAggregate

    m = multidim.create_multidim(name, epsilon=2.0, domain_sizes=[120, 90])
    values = np.stack([np.arange(4000) % 120, np.arange(4000) % 90], axis=1)
    data = m.aggregate(m.perturb_batch(values, rng=np.random.default_rng(2))).to_dict()

    def flat(d):
        return np.concatenate([e.frequencies for e in m.estimate(MultidimAggregate.from_dict(d))])

    exact = rn.added_variance(flat, data, False, 3.0)
    monkeypatch.setattr(rn, "EXACT_JACOBIAN_LIMIT", 10)
    np.testing.assert_allclose(rn.added_variance(flat, data, False, 3.0), exact, rtol=1e-3)


def test_discovery_noise_does_not_keep_estimators_alive():
    """A level group's estimator (and its copy of the level's reports: ~10 MB at 10^7
    reports) is freed once discovery moves on; draws are still counted per estimator,
    under serial numbers that are never reused."""
    import gc
    import weakref

    class Owner:
        pass

    noise = DiscoveryNoise(1.0, (4, 2), 1, rn.ZeroNoise())
    first = Owner()
    noise.count(10, first)
    noise.count(10, first)
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None
    second = Owner()
    noise.count(10, second)
    assert sorted(noise.by_estimator.values()) == [1, 2]  # a fresh serial, not the dead one's
    with pytest.raises(RuntimeError, match="budgeted"):
        noise.count(10, second)
        noise.count(10, second)
