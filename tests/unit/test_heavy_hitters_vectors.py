"""Test vectors of the heavy-hitter protocols (T23, T29–T32; docs/heavy_hitters.md, docs/algorithms.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sdk import heavy_hitters
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters import tap
from client_sdk.heavy_hitters.pem import group_sigma, threshold_of
from ldpserver.evaluation import heavy_hitter_metrics as metrics

approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-6)  # noqa: E731

T29 = [0.30, 0.20, 0.12, 0.10, 0.09, 0.04, 0.01, -0.02]
T30 = [0.30, 0.20, 0.12, 0.115, 0.11, 0.105, 0.10, -0.02]


def test_t23_pem_layout():
    assert C.gamma_of(4) == 2
    assert C.pem_lengths(8, 4, 2) == (4, 6, 8)
    pem = heavy_hitters.create(
        "pem", epsilon=2.0, k=4, domain={"type": "integer", "bits": 8}, eta=2, width=4, max_width=4
    )  # a fixed width k (max_width = width: no crowded-level extension)
    assert pem.groups == 4 and pem.lengths == (4, 6, 8, 8)  # + the final-estimation group
    assert pem.prefix_lengths == (4, 6, 8)
    values = np.repeat(np.arange(0, 256, 7), 40)
    result = pem.discover(pem.perturb_batch(values, np.random.default_rng(0)))
    # 16 candidates per level: all 2^4 first-level prefixes, then k·2^η = 4·4 (width = k)
    assert [t.candidates for t in result.levels[:3]] == [16, 16, 16]


def test_pem_worked_example_of_section_9_1():
    pem = heavy_hitters.create("pem", epsilon=2.0, k=4, domain={"type": "integer", "bits": 8}, eta=2)
    assert pem.g == 8
    assert pem.olh.p_star == approx(0.513519)
    assert pem.olh.variance_approx_per_user == approx(0.724591)
    sigma = group_sigma(2.0, 10_000)
    assert sigma == approx(0.008512)
    assert threshold_of(sigma, 16) == pytest.approx(0.023276, abs=2e-6)
    assert threshold_of(1.0, 16) == approx(2.734369)


@pytest.mark.parametrize(
    ("sigma", "tau", "kept"),
    [
        (0.01, 0.091716, [0.30, 0.20, 0.12, 0.10]),
        (0.05, 0.05, [0.30, 0.20, 0.12, 0.10, 0.09]),
        (0.2, 0.2, [0.30, 0.20, 0.12]),
    ],
)
def test_t29_adaptive_width(sigma, tau, kept):
    choice = tap.adaptive_width(T29, T29, sigma, k=3, K=5, z=2, z0=1)
    assert choice.tau == approx(tau)
    assert choice.kept == kept


def test_t30_adaptive_width_cap():
    choice = tap.adaptive_width(list("abcdefgh"), T30, 0.01, k=3, K=5)
    assert choice.tau == approx(0.091716)
    assert (np.asarray(T30) >= choice.tau).sum() == 7
    assert choice.kept == list("abcde")


def test_adaptive_width_small_candidate_sets_and_rules():
    assert tap.adaptive_width(["x", "y"], [0.1, 0.5], 0.01, k=3, K=5).kept == ["y", "x"]
    f = np.array(T29)
    assert tap.AdaptiveWidth()(f, 0.01, 3, 5).tolist() == [0, 1, 2, 3]
    assert tap.FixedWidth()(f, 0.01, 3, 5).tolist() == [0, 1, 2]


def test_t31_tap_layout_and_cost_at_defaults():
    cost = tap.cost_bounds(k=16, m=32, eta=4, shared_levels=2, k_max=64, k_global=32, parties=10)
    assert cost["l1"] == 8 and cost["G"] == 7
    assert cost["levels"] == [8, 12, 16, 20, 24, 28, 32]
    assert cost["shallow_depth"] == 12
    assert cost["first_level_candidates"] == 256
    assert cost["max_level_candidates"] == 1024
    assert cost["phase1_upload_per_party"] == 1280
    assert cost["taps_handoff_max_pairs"] == 5280
    assert cost["rounds"] == {"TAP-Z": 3, "TAP-R": 4, "TAPS-Z": 13, "TAPS-R": 14, "PEM-pooled": 7}
    # the protocol object uses the same defaults
    t = heavy_hitters.create("taps", epsilon=1.0, k=16, domain={"type": "integer", "bits": 32}, parties=["a", "b"])
    assert (t.k_max, t.k_local, t.k_global, t.shared_levels, t.z, t.z0) == (64, 32, 32, 2, 2.0, 1.0)
    assert t.prefix_lengths == (8, 12, 16, 20, 24, 28, 32) and t.lengths[-1] == 32
    assert t.config["mode"] == "Z" and t.config["pruning"] == "consensus" and t.config["order"] == "size-desc"


def test_t32_ncr_and_f1():
    counts = {"r1": 100, "r2": 80, "r3": 60, "r4": 40, "x": 10, "y": 9, "z": 1}
    gt = metrics.GroundTruth.from_counts(counts, k=4)
    out = ["r1", "r3", "x", "y"]
    assert metrics.ncr(out, gt) == approx(0.6)
    assert metrics.f1(out, gt) == approx(0.5)
    assert metrics.precision(out, gt) == approx(0.5) and metrics.recall(out, gt) == approx(0.5)
    assert metrics.evaluate(["r1", "r2", "r3", "r4"], gt) == {"precision": 1, "recall": 1, "f1": 1, "ncr": 1}


def test_tie_aware_ground_truth():
    counts = {"a": 50, "b": 30, "c": 30, "d": 30, "e": 5}
    gt = metrics.GroundTruth.from_counts(counts, k=2)
    assert gt.acceptable == {"a", "b", "c", "d"}
    assert metrics.f1(["a", "d"], gt) == 1.0 and metrics.ncr(["a", "d"], gt) == 1.0
    assert metrics.f1(["a", "e"], gt) == 0.5
    # competition ranking: b, c, d share rank 2 and score k − 2 + 1 = 1
    assert gt.scores == {"a": 2, "b": 1, "c": 1, "d": 1}
    assert metrics.ncr(["c", "e"], gt) == pytest.approx(1 / 3)
    # fewer outputs than k: precision over the output, recall over k
    assert metrics.precision(["a"], gt) == 1.0 and metrics.recall(["a"], gt) == 0.5


def test_section_12_1_consistency_examples():
    lv = [
        C.LevelNodes(1, [0, 1], np.array([4.0, 2.0]), np.ones(2), {0, 1}),
        C.LevelNodes(2, [0, 1, 2, 3], np.array([3.0, 0.0, 1.0, 2.0]), np.ones(4)),
    ]
    mid, leaves = C.consistent_tree(lv, root_value=10.0, root_variance=1.0)
    assert mid.tolist() == approx([4.809524, 3.476190])
    assert leaves.tolist() == approx([3.904762, 0.904762, 1.238095, 2.238095])
    two = [C.LevelNodes(1, [0, 1], np.array([3.0, 5.0]), np.ones(2))]
    assert C.consistent_tree(two, root_value=10.0, root_variance=4.0)[0].tolist() == approx([3.333333, 5.333333])
    assert C.consistent_tree(two, root_value=10.0, root_variance=1.0)[0].tolist() == approx([3.666667, 5.666667])


def test_consistency_on_a_pruned_prefix_tree():
    rng = np.random.default_rng(4)
    # level 1: all four 2-bit prefixes (complete children of the root); prefixes 1 and 3 are
    # expanded (all 2-bit extensions estimated); prefix 0b1111 injected without its siblings
    l1 = C.LevelNodes(2, [0, 1, 2, 3], rng.normal(0.25, 0.05, 4), np.full(4, 0.01), {1, 3})
    kids = [4, 5, 6, 7, 12, 13, 14, 15]
    l2 = C.LevelNodes(4, kids, rng.normal(0.06, 0.02, 8), np.full(8, 0.02), {5})
    l3 = C.LevelNodes(6, [20, 21, 22, 23, 63], rng.normal(0.015, 0.01, 5), np.full(5, 0.04))
    a, b, c = C.consistent_tree([l1, l2, l3])
    assert a.sum() == pytest.approx(1.0)  # the root (frequency 1, exact) equals the sum of its children
    assert a[1] == pytest.approx(b[:4].sum()) and a[3] == pytest.approx(b[4:].sum())
    assert b[1] == pytest.approx(c[:4].sum())  # prefix 5 = 0b0101 expanded into 20..23
    assert c[4] == l3.estimates[4]  # 63's parent (15) was not expanded: no constraint, unchanged
    assert a[0] != l1.estimates[0] and b[0] != l2.estimates[0]  # values moved toward consistency


def test_olh_group_variance_matches_section_9_4_6():
    # Var* = 4e^ε/(N(e^ε−1)^2) at g = e^ε + 1; a low-signal example
    sigma = group_sigma(1.0, 14_286)
    assert sigma == pytest.approx(0.0161, abs=1e-4)
    e = math.exp(1.0)
    assert sigma**2 * 14_286 == pytest.approx(4 * e / (e - 1) ** 2, rel=0.01)
