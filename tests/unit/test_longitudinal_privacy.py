"""Privacy of the memoized protocols on small domains (docs/algorithms.md, docs/privacy.md, docs/longitudinal.md).

* exact output laws: round 1 ratio ≤ e^{ε∞}; one report ≤ e^{ε1}; t reports ≤ e^{ε∞};
* L-GRR (k > 2): the true one-report leakage is below ε1 (T15);
* the RAPPOR-style client clears true bits with the right probability;
* both samplers (CSPRNG per device, numpy batch) follow the declared laws (chi-square).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from client_sdk import longitudinal as L

SMALL = {
    "l-grr": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=4),
    "l-grr-tight": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=4, tight=True),
    "l-osue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=3),
    "l-sue": dict(epsilon_perm=1.5, epsilon_first=0.5, domain_size=3),
    "l-oue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=3),
    "rappor": dict(domain_size=3, f=0.5, p=0.5, q=0.75),
    "loloha": dict(epsilon_perm=3.0, epsilon_first=1.5, domain_size=6),
    "biloloha": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "dbitflip": dict(epsilon_perm=2.0, domain_size=8, buckets=4, d=3),
}


def make(label: str) -> L.LongitudinalMechanism:
    name = label.removesuffix("-tight")
    return L.create_longitudinal(name, **SMALL[label])


def states_for(m: L.LongitudinalMechanism, count: int = 4) -> list:
    return [m.new_device_state() for _ in range(count)] if m.needs_state else [None]


@pytest.mark.parametrize("label", list(SMALL))
def test_exact_ratios_round1_one_report_and_many_reports(label: str) -> None:
    m = make(label)
    priv = m.privacy
    for state in states_for(m):
        for v in range(m.domain_size):
            assert sum(m.memo_distribution(m.memo_key(v, state)).values()) == pytest.approx(1.0)
            assert sum(m.output_distribution(v, state).values()) == pytest.approx(1.0)
        round1 = m.exact_leakage(round1=True, state=state)
        one = m.exact_leakage(reports=1, state=state)
        assert round1 <= priv.epsilon_perm + 1e-9
        assert one <= priv.epsilon_first + 1e-9
        assert one <= priv.epsilon_first_actual + 1e-9
        previous = one
        for t in (2, 3):
            many = m.exact_leakage(reports=t, state=state)
            assert previous - 1e-12 <= many <= priv.epsilon_perm + 1e-9  # grows, but never past ε∞
            previous = many
    # the bounds are attained: no budget is wasted (given a state where two values use different memos)
    state = next(s for s in states_for(m, 20) if len({m.memo_key(v, s) for v in range(m.domain_size)}) > 1)
    assert m.exact_leakage(round1=True, state=state) == pytest.approx(priv.epsilon_perm, rel=1e-9)
    assert m.exact_leakage(reports=1, state=state) == pytest.approx(priv.epsilon_first_actual, rel=1e-9)


def test_lgrr_true_one_report_leakage_is_below_epsilon_first() -> None:
    for k, e_inf, e_1, expected in [(4, 2.0, 1.0, 0.901483), (10, 4.0, 1.0, 0.919574)]:
        m = L.create_longitudinal("l-grr", epsilon_perm=e_inf, epsilon_first=e_1, domain_size=k)
        enumerated = m.exact_leakage(reports=1)
        assert enumerated == pytest.approx(expected, rel=1e-6)
        assert enumerated < e_1
        assert enumerated == pytest.approx(m.privacy.epsilon_first_actual, rel=1e-12)
    # k = 2: the ratio of Arcolezi et al. 2022 is exact, the leakage equals ε1
    m2 = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=2)
    assert m2.exact_leakage(reports=1) == pytest.approx(1.0, rel=1e-9)


def test_dbitflip_leakage_depends_on_d() -> None:
    one_bit = L.create_longitudinal("dbitflip", epsilon_perm=2.0, domain_size=4, buckets=4, d=1)
    state = one_bit.new_device_state()
    assert one_bit.exact_leakage(reports=1, state=state) == pytest.approx(1.0)  # ε/2 for d = 1
    assert one_bit.privacy.epsilon_first_actual == pytest.approx(1.0)
    m = L.create_longitudinal("dbitflip", epsilon_perm=2.0, domain_size=4, buckets=4, d=2)
    assert m.exact_leakage(reports=4, state=m.new_device_state()) == pytest.approx(2.0)  # resent: no growth


@pytest.mark.parametrize("label", ["l-sue", "rappor", "l-osue"])
def test_rappor_style_client_clears_true_bits(label: str) -> None:
    """The pitfall of docs/longitudinal.md: a client that never clears a true bit has no privacy at all."""
    m = make(label)
    draws = 6000
    v = 1
    # CSPRNG path: memo bit v is cleared w.p. 1 − p1; reported bit v is 1 w.p. p* < 1
    memo_bits = np.array(
        [(m.payload_outcome({"bits": m.new_memo(v)["prr"]}) >> v) & 1 for _ in range(draws)], dtype=float
    )
    report_bits = np.array(
        [(m.payload_outcome(m.perturb_with_memo(m.new_memo(v))) >> v) & 1 for _ in range(draws)], dtype=float
    )
    assert m.p1 < 1 and m.p_star < 1
    for observed, p in ((memo_bits.mean(), m.p1), (report_bits.mean(), m.p_star)):
        assert abs(observed - p) < 5 * math.sqrt(p * (1 - p) / draws), (observed, p)
    # batch path, and a memo holding 1 is re-reported as 0 w.p. 1 − p2
    rng = np.random.default_rng(9)
    table = m.new_memo_table(50_000)
    first = m.perturb_batch(np.full(50_000, v), rng, memos=table).unpacked()[:, v]
    memo_v = np.unpackbits(table.memos, axis=1, count=m.domain_size, bitorder="little")[:, v]
    assert abs(memo_v.mean() - m.p1) < 5 * math.sqrt(m.p1 * (1 - m.p1) / 50_000)
    assert abs(first.mean() - m.p_star) < 5 * math.sqrt(m.p_star * (1 - m.p_star) / 50_000)
    second = m.perturb_batch(np.full(50_000, v), rng, memos=table).unpacked()[:, v]
    kept = second[memo_v == 1].mean()
    assert abs(kept - m.p2) < 5 * math.sqrt(m.p2 * (1 - m.p2) / (memo_v == 1).sum())
    # estimates of a one-value population sum to about 1 (not ~3 as in the broken client)
    est = m.estimate(m.aggregate(m.perturb_batch(np.full(20_000, v), rng)))
    assert abs(est.frequencies.sum() - 1.0) < 6 * math.sqrt(est.variance.sum())


def _chisquare(declared: dict, outcomes: list) -> float:
    values, counts = np.unique(np.asarray(outcomes), return_counts=True)
    observed = dict(zip(values.tolist(), counts.tolist(), strict=True))
    assert set(observed) <= set(declared), set(observed) - set(declared)
    keys = sorted(declared)
    f_obs = np.array([observed.get(k, 0) for k in keys])
    f_exp = np.array([declared[k] for k in keys]) * len(outcomes)
    return stats.chisquare(f_obs, f_exp).pvalue


@pytest.mark.parametrize("label", list(SMALL))
def test_csprng_and_batch_paths_follow_the_declared_chain_law(label: str) -> None:
    """One report from a fresh memo (the chain), both samplers, chi-square against the
    exact law given the device state."""
    m = make(label)
    state = m.new_device_state() if m.needs_state else None
    draws = 4000
    value = 1
    declared = m.output_distribution(value, state)
    csprng = [m.payload_outcome(m.perturb_with_memo(m.new_memo(value, state), state)) for _ in range(draws)]
    assert _chisquare(declared, csprng) > 1e-6
    table = m.new_memo_table(draws * 5, device_states=[state] * (draws * 5)) if state else None
    batch = m.perturb_batch(np.full(draws * 5, value), np.random.default_rng(11), memos=table)
    outcomes = [m.payload_outcome(p) for p in m.encode(batch)]
    assert _chisquare(declared, outcomes) > 1e-6


@pytest.mark.parametrize("label", ["l-grr", "l-osue", "rappor", "loloha"])
def test_round2_from_a_fixed_memo_matches_both_paths(label: str) -> None:
    """Repeated reports from one stored memo follow the round-2 law, on both paths."""
    m = make(label)
    state = m.new_device_state() if m.needs_state else None
    memo = m.new_memo(2, state)
    internal = m.payload_outcome({"bits": memo["prr"]}) if isinstance(memo["prr"], str) else memo["prr"]
    declared = m.report_distribution(internal)
    csprng = [m.payload_outcome(m.perturb_with_memo(memo, state)) for _ in range(3000)]
    assert _chisquare(declared, csprng) > 1e-6
    # batch: many devices, second epoch, grouped by each device's memo
    n = 30_000
    rng = np.random.default_rng(5)
    table = m.new_memo_table(n, rng) if m.needs_state else m.new_memo_table(n)
    m.perturb_batch(np.full(n, 2), rng, memos=table)
    outcomes = np.array([m.payload_outcome(p) for p in m.encode(m.perturb_batch(np.full(n, 2), rng, memos=table))])
    memo_rows = table.lookup(np.arange(n), table.memo_key)
    assert np.all(memo_rows == np.arange(n))
    if table.memos.dtype == np.uint8:
        bits = np.unpackbits(table.memos, axis=1, count=m.domain_size, bitorder="little")
        memo_ids = bits @ (1 << np.arange(m.domain_size))
    else:
        memo_ids = table.memos[:, 0]
    for memo_id in np.unique(memo_ids)[:4]:
        group = outcomes[memo_ids == memo_id].tolist()
        if len(group) >= 500:
            assert _chisquare(m.report_distribution(int(memo_id)), group) > 1e-6


def test_loloha_reports_are_consistent_with_the_device_hash() -> None:
    """Marginal over random hash keys: y equals H_key(v) w.p. p*, otherwise uniform."""
    m = make("loloha")
    draws = 3000
    v = 4
    for batch in (False, True):
        if batch:
            payloads = m.encode(m.perturb_batch(np.full(draws * 5, v), np.random.default_rng(2)))
        else:
            payloads = []
            for _ in range(draws):
                state = m.new_device_state()
                payloads.append(m.perturb_with_memo(m.new_memo(v, state), state))
        shift = [
            (p["y"] - m.memo_key(v, {"v": 1, "m": m.name, "h": m.config_hash, "s": p["s"]})) % m.g for p in payloads
        ]
        declared = {0: m.p_star} | {s: (1 - m.p_star) / (m.g - 1) for s in range(1, m.g)}
        assert _chisquare(declared, shift) > 1e-6
