"""Memoization: the permanent response persists, is reused, and drives the ledger charge.

A longitudinal client that redraws the permanent response on every call gives no long-term
protection: the memo must be stored and reused (docs/longitudinal.md, docs/algorithms.md, docs/privacy.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from client_sdk import longitudinal as L
from client_sdk.errors import BudgetExceededError

PROTOCOLS = {
    "l-grr": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "l-osue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "l-sue": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "rappor": dict(domain_size=6, f=0.5, p=0.5, q=0.75),
    "loloha": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "biloloha": dict(epsilon_perm=2.0, epsilon_first=1.0, domain_size=6),
    "dbitflip": dict(epsilon_perm=2.0, domain_size=6, buckets=6, d=2),
}


def make(name: str) -> L.LongitudinalMechanism:
    return L.create_longitudinal(name, **PROTOCOLS[name])


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_same_value_for_100_epochs_makes_one_memo_and_one_charge(name: str) -> None:
    m = make(name)
    store = L.InMemoryMemoStore()
    outcomes = [m.report(3, store, "c") for _ in range(100)]
    assert store.count("c") == 1
    assert [o.new_memo for o in outcomes] == [True] + [False] * 99
    charges = [o.charge for o in outcomes]
    assert charges[0] == m.privacy.charge_per_new_memo == m.privacy.epsilon_perm
    assert sum(charges) == m.privacy.charge_per_new_memo
    assert m.ledger_charge(store.count("c")) == m.privacy.epsilon_perm
    assert len({o.memo_key for o in outcomes}) == 1
    # the stored memo is the one every report was derived from, never redrawn
    memo = store.get("c", outcomes[0].memo_key)
    assert memo == json.loads(json.dumps(memo))  # JSON-safe
    for _ in range(5):
        assert m.charge_for(3, store, "c") == 0.0
    assert store.get("c", outcomes[0].memo_key) == memo


@pytest.mark.parametrize("name", ["l-grr", "l-osue", "l-sue", "rappor"])
def test_changed_value_creates_a_new_memo_and_charge(name: str) -> None:
    m = make(name)
    store = L.InMemoryMemoStore()
    seq = [0, 0, 1, 1, 0, 2, 1, 0]
    charges = [m.report(v, store, "c").charge for v in seq]
    eps = m.privacy.charge_per_new_memo
    assert charges == [eps, 0, eps, 0, 0, eps, 0, 0]
    assert store.count("c") == 3 and store.keys("c") == [0, 1, 2]
    assert m.ledger_charge(3) == pytest.approx(3 * eps)
    assert m.privacy.lifetime_bound == pytest.approx(6 * eps)
    # collections are independent
    assert m.report(0, store, "other").new_memo
    with pytest.raises(ValueError):
        m.ledger_charge(7)  # more memos than values: impossible


def test_loloha_memo_is_keyed_by_hash_value() -> None:
    m = L.create_longitudinal("loloha", epsilon_perm=2.0, epsilon_first=1.0, domain_size=40)
    store = L.InMemoryMemoStore()
    for v in range(40):  # cycle through every raw value
        m.report(v, store, "c")
    state = store.get_state("c")
    hashes = {m.memo_key(v, state) for v in range(40)}
    assert store.count("c") == len(hashes) <= m.g
    assert m.ledger_charge(store.count("c")) <= m.privacy.lifetime_bound == 3 * 2.0
    # every report carries the device's fixed hash key
    assert {m.report(v, store, "c").payload["s"] for v in range(5)} == {state["s"]}
    # two values with the same hash share the memo: no new charge
    v0 = 0
    same = next(v for v in range(1, 40) if m.memo_key(v, state) == m.memo_key(v0, state))
    assert m.report(same, store, "c").charge == 0.0


def test_dbitflip_memo_is_keyed_by_response_pattern() -> None:
    m = L.create_longitudinal("dbitflip", epsilon_perm=1.0, domain_size=12, buckets=6, d=2)
    store = L.InMemoryMemoStore()
    for v in range(12):
        m.report(v, store, "c")
    state = store.get_state("c")
    assert len(state["j"]) == 2 and state["j"] == sorted(state["j"])
    assert store.count("c") == 3 == m.privacy.max_memos  # two sampled buckets + "neither"
    # the response for a pattern is resent unchanged (no second round)
    for v in range(12):
        payloads = {json.dumps(m.report(v, store, "c").payload, sort_keys=True) for _ in range(5)}
        assert len(payloads) == 1
    assert m.ledger_charge(3) == m.privacy.lifetime_bound == 3.0


def test_memo_survives_a_restart_through_json() -> None:
    m = make("l-osue")
    store = L.InMemoryMemoStore()
    first = m.report(4, store, "c")
    memo = store.get("c", first.memo_key)
    restored = L.InMemoryMemoStore.from_json(store.to_json())
    again = m.report(4, restored, "c")
    assert not again.new_memo and again.charge == 0.0
    assert restored.get("c", first.memo_key) == memo
    # a rebuilt mechanism (same config, e.g. fetched again from the server) accepts the memo
    m2 = L.from_config(json.loads(json.dumps(m.config)))
    m2.perturb_with_memo(memo)


def test_store_refuses_to_overwrite_a_memo_or_state() -> None:
    m = make("l-grr")
    store = L.InMemoryMemoStore()
    m.report(1, store, "c")
    with pytest.raises(L.MemoError):
        store.put("c", 1, m.new_memo(1) | {"prr": (store.get("c", 1)["prr"] + 1) % 6})
    lo = make("loloha")
    lo.report(1, store, "d")
    with pytest.raises(L.MemoError):
        store.put_state("d", lo.new_device_state())
    assert isinstance(store, L.MemoStore)


def test_budget_refusal_happens_before_any_draw() -> None:
    m = make("l-grr")
    store = L.InMemoryMemoStore()
    spent = []

    def can_spend(charge: float) -> bool:
        if sum(spent) + charge > 4.0:
            return False
        spent.append(charge)
        return True

    m.report(0, store, "c", can_spend=can_spend)
    m.report(1, store, "c", can_spend=can_spend)
    with pytest.raises(BudgetExceededError):
        m.report(2, store, "c", can_spend=can_spend)
    assert store.count("c") == 2 and store.get("c", 2) is None
    m.report(0, store, "c", can_spend=can_spend)  # existing memo: free, allowed
    assert m.charge_for(2, store, "c") == 2.0 and m.charge_for(1, store, "c") == 0.0


def test_perturb_requires_a_store() -> None:
    m = make("l-grr")
    with pytest.raises(TypeError):
        m.perturb(1)  # type: ignore[call-arg]
    store = L.InMemoryMemoStore()
    assert m.perturb(1, store=store, collection="c")["m"] == "l-grr"
    assert store.count("c") == 1


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_memo_records_of_other_configs_and_malformed_records_are_refused(name: str) -> None:
    m = make(name)
    state = m.new_device_state()
    memo = m.new_memo(2, state)
    m.perturb_with_memo(memo, state)
    bad_memos = [
        None,
        [],
        memo | {"v": 2},
        memo | {"m": "grr"},
        memo | {"h": "sha256:00"},
        memo | {"key": -1},
        memo | {"key": True},
        memo | {"prr": "%%%"},
        memo | {"prr": 10**6},
        {k: v for k, v in memo.items() if k != "prr"},
    ]
    for bad in bad_memos:
        with pytest.raises(L.MemoError):
            m.perturb_with_memo(bad, state)
    if m.needs_state:
        with pytest.raises(L.MemoError):
            m.perturb_with_memo(memo, None)
        with pytest.raises(L.MemoError):
            m.memo_key(1, state | {"h": "sha256:00"})
        field = "s" if name in ("loloha", "biloloha") else "j"
        for junk in ("zz", 5, [1, 1], [9, 10], "0123456789abcdeg", None):
            with pytest.raises(L.MemoError):
                m.memo_key(1, state | {field: junk})
    # a different epsilon is a different configuration: its memos are not accepted
    if name != "rappor" and name != "dbitflip":
        other = L.create_longitudinal(name, **(PROTOCOLS[name] | {"epsilon_perm": 3.0}))
        with pytest.raises(L.MemoError):
            other.perturb_with_memo(memo, state if not other.needs_state else other.new_device_state())


def test_averaging_attack_converges_to_the_memo_not_the_value() -> None:
    """100 epochs of the same value: each device's most frequent report is its memo, which
    equals the true value only w.p. p1 — averaging cannot beat the permanent response."""
    m = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    n, T = 3000, 100
    sim = m.simulate_epochs(np.zeros((n, T), dtype=np.int64), np.random.default_rng(42))
    table = sim.memos
    assert len(table) == n and np.all(table.memo_counts() == 1)
    assert table.new_per_epoch == [n] + [0] * (T - 1)
    ledger = table.memo_counts() * m.privacy.charge_per_new_memo
    assert np.all(ledger == 2.0)
    reports = np.stack([b.values for b in sim.reports], axis=1)  # n × T
    histogram = np.stack([(reports == y).sum(axis=1) for y in range(4)], axis=1)
    mode = histogram.argmax(axis=1)
    memo = table.memos[table.lookup(np.arange(n), np.zeros(n, dtype=np.int64)), 0]
    assert np.mean(mode == memo) > 0.999
    hit = np.mean(mode == 0)  # the attacker's guess of the true value
    se = np.sqrt(m.p1 * (1 - m.p1) / n)
    assert abs(hit - m.p1) < 5 * se, (hit, m.p1)


def test_single_device_averaging_attack_with_the_csprng_path() -> None:
    m = L.create_longitudinal("l-osue", epsilon_perm=1.0, epsilon_first=0.5, domain_size=5)
    store = L.InMemoryMemoStore()
    reports = [m.report(2, store, "c").payload for _ in range(300)]
    assert store.count("c") == 1
    memo_bits = np.array([(m.payload_outcome({"bits": store.get("c", 2)["prr"]}) >> j) & 1 for j in range(5)])
    mean = np.mean([[(m.payload_outcome(r) >> j) & 1 for j in range(5)] for r in reports], axis=0)
    # per bit, the long-run mean is p2 where the memo bit is 1 and q2 where it is 0
    expected = np.where(memo_bits == 1, m.p2, m.q2)
    assert np.all(np.abs(mean - expected) < 5 * np.sqrt(expected * (1 - expected) / 300))


def test_fresh_draws_without_memo_would_leak_the_value() -> None:
    """Control for the test above: with a new memo every epoch the mode reveals the value."""
    m = L.create_longitudinal("l-grr", epsilon_perm=2.0, epsilon_first=1.0, domain_size=4)
    n, T = 1000, 100
    rng = np.random.default_rng(1)
    reports = np.stack([m.perturb_batch(np.zeros(n, dtype=np.int64), rng).values for _ in range(T)], axis=1)
    mode = np.stack([(reports == y).sum(axis=1) for y in range(4)], axis=1).argmax(axis=1)
    assert np.mean(mode == 0) > 0.99


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_simulation_memo_counts_match_distinct_keys(name: str) -> None:
    m = make(name)
    rng = np.random.default_rng(3)
    n, T = 500, 12
    values = rng.integers(0, 3, size=(n, T))  # each device cycles through values 0..2
    sim = m.simulate_epochs(values, rng)
    table = sim.memos
    keys = np.stack([m._memo_keys_batch(values[:, t], table.state, np.arange(n)) for t in range(T)], axis=1)
    distinct = np.array([len(set(row)) for row in keys.tolist()])
    assert np.array_equal(table.memo_counts(), distinct)
    assert sum(table.new_per_epoch) == len(table) == distinct.sum()
    assert np.all(table.memo_counts() <= m.privacy.max_memos)
    # the same memo is reused whenever a key recurs: reports from a memo follow round 2 only
    assert len(sim.reports) == T and all(len(b) == n for b in sim.reports)


def test_simulation_reuses_memos_given_device_states() -> None:
    m = make("loloha")
    states = [m.new_device_state() for _ in range(3)]
    table = m.new_memo_table(3, device_states=states)
    batch = m.perturb_batch(np.array([0, 1, 2]), np.random.default_rng(0), memos=table)
    assert [f"{int(s):016x}" for s in batch.seeds] == [s["s"] for s in states]
    assert table.memo_key.tolist() == [m.memo_key(v, s) for v, s in zip([0, 1, 2], states, strict=True)]
    with pytest.raises(ValueError):
        m.perturb_batch(np.array([0, 1]), np.random.default_rng(0), memos=table)
    with pytest.raises(ValueError):
        make("l-grr").perturb_batch(np.array([0, 1, 2]), np.random.default_rng(0), memos=table)
