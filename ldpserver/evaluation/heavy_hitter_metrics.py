"""Utility metrics of a heavy-hitter output against the true top-k: precision, recall, F1
and NCR (the definitions of the PEM line of work: Wang et al., IEEE TDSC 2019), tie-aware.

Privacy: evaluation only — these functions read the *true* data and must never run on
production data outside an evaluation harness; they are not part of any protocol.

**Tie-aware ground truth.** Real frequency lists are binned (wordfreq rounds
frequencies), so several items can share the k-th largest count ``c_k``. The *acceptable*
set is ``T = {x : c(x) ≥ c_k}`` (at least k items). An output item is correct iff it is in
T, so precision = ``|O ∩ T| / |O|``, recall = ``min(|O ∩ T|, k) / k`` and F1 their harmonic
mean; with ``|O| = k`` and no ties F1 = precision = recall.

**NCR.** The true item of rank ``r`` (1 = most frequent) scores ``k − r + 1`` and every
other item 0; with ties, items share the best rank of their group (competition ranking,
"1224"). ``NCR = Σ scores of the output / the largest total any k items can score``; without
ties the denominator is ``k(k+1)/2`` (Wang et al., IEEE TDSC 2019).

>>> counts = {"a": 50, "b": 40, "c": 30, "d": 20, "x": 5, "y": 4}
>>> gt = GroundTruth.from_counts(counts, k=4)
>>> output = ["a", "c", "x", "y"]                     # true ranks 1 and 3 plus 2 non-top (T32)
>>> round(ncr(output, gt), 6), round(f1(output, gt), 6)
(0.6, 0.5)
>>> GroundTruth.from_counts({"a": 3, "b": 2, "c": 2, "d": 1}, k=2).acceptable == {"a", "b", "c"}
True
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GroundTruth:
    """True counts, k, the k-th largest count and the tie-aware acceptable set."""

    counts: Mapping[Hashable, float]
    k: int
    kth_count: float
    acceptable: frozenset
    scores: Mapping[Hashable, int]
    best_total: int

    @classmethod
    def from_counts(cls, counts: Mapping[Hashable, float], k: int) -> GroundTruth:
        if k < 1:
            raise ValueError("k must be >= 1")
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        positive = [(x, c) for x, c in ranked if c > 0]
        if not positive:
            raise ValueError("ground truth needs at least one item with a positive count")
        kth = positive[min(k, len(positive)) - 1][1]
        acceptable = frozenset(x for x, c in positive if c >= kth)
        scores: dict[Hashable, int] = {}
        rank, previous = 0, None
        for position, (x, c) in enumerate(positive, start=1):
            if c != previous:
                rank, previous = position, c  # competition rank: 1 + #items with a larger count
            if rank > k:
                break
            scores[x] = k - rank + 1
        best = sum(sorted(scores.values(), reverse=True)[:k])
        return cls(dict(counts), k, kth, acceptable, scores, best)

    def top(self) -> list[Hashable]:
        """One true top-k list (ties broken by the order of ``counts``)."""
        return sorted(self.counts, key=lambda x: -self.counts[x])[: self.k]


def _hits(output: Iterable[Any], truth: GroundTruth) -> tuple[int, int]:
    out = list(dict.fromkeys(output))  # duplicates count once
    return sum(1 for x in out if x in truth.acceptable), len(out)


def precision(output: Iterable[Any], truth: GroundTruth) -> float:
    hits, size = _hits(output, truth)
    return hits / size if size else 0.0


def recall(output: Iterable[Any], truth: GroundTruth) -> float:
    hits, _ = _hits(output, truth)
    return min(hits, truth.k) / truth.k


def f1(output: Iterable[Any], truth: GroundTruth) -> float:
    output = list(output)
    p, r = precision(output, truth), recall(output, truth)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def ncr(output: Iterable[Any], truth: GroundTruth) -> float:
    out = list(dict.fromkeys(output))[: truth.k]
    return sum(truth.scores.get(x, 0) for x in out) / truth.best_total


def evaluate(output: Iterable[Any], truth: GroundTruth) -> dict[str, float]:
    output = list(output)
    return {
        "precision": precision(output, truth),
        "recall": recall(output, truth),
        "f1": f1(output, truth),
        "ncr": ncr(output, truth),
    }
