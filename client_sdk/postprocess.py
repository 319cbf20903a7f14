"""Post-processing of unbiased frequency estimates (free of privacy cost; docs/algorithms.md).

Every method takes the raw unbiased vector and returns a new one; none changes the input.
Methods trade unbiasedness for lower error, so the product always keeps the raw vector
next to the post-processed one.

>>> import numpy as np
>>> raw = np.array([0.6, 0.3, 0.25, -0.05])
>>> np.round(norm_sub(raw), 6).tolist()
[0.55, 0.25, 0.2, 0.0]
>>> np.round(norm_mul(raw), 6).tolist()
[0.521739, 0.26087, 0.217391, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np


def base_pos(f: np.ndarray) -> np.ndarray:
    """Set negative entries to 0 (the sum may exceed 1)."""
    return np.maximum(np.asarray(f, dtype=np.float64), 0.0)


def norm(f: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Add one constant to every entry so the sum is ``total`` (negatives stay)."""
    f = np.asarray(f, dtype=np.float64)
    return f + (total - f.sum()) / f.size


def norm_mul(f: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Zero the negatives, then scale the rest to sum to ``total``."""
    positive = base_pos(f)
    s = positive.sum()
    return positive * (total / s) if s > 0 else np.full(positive.size, total / positive.size)


def project_simplex(f: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Euclidean projection onto {x >= 0, sum x = total}, exact, O(k log k)."""
    f = np.asarray(f, dtype=np.float64)
    u = np.sort(f)[::-1]
    cs = np.cumsum(u) - total
    ranks = np.arange(1, f.size + 1)
    rho = np.nonzero(u - cs / ranks > 0)[0][-1] + 1
    theta = cs[rho - 1] / rho
    return np.maximum(f - theta, 0.0)


def norm_sub(f: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Norm-Sub: zero negatives and shift positives by a common constant until none is
    negative. It coincides with the simplex projection, which computes it exactly."""
    return project_simplex(f, total)


def norm_cut(f: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Keep the largest entries until their running total first exceeds ``total``, zero the
    rest, then scale by ``total / kept_sum`` (the rule of Wang et al., NDSS 2020)."""
    f = np.asarray(f, dtype=np.float64)
    order = np.argsort(-f, kind="stable")
    running = np.cumsum(f[order])
    over = np.nonzero(running > total)[0]
    keep = order[: over[0] + 1] if over.size else order[f[order] > 0]
    out = np.zeros_like(f)
    out[keep] = np.maximum(f[keep], 0.0)
    s = out.sum()
    return out * (total / s) if s > 0 else out


def base_cut(f: np.ndarray, variance_approx: float, alpha: float = 0.05) -> np.ndarray:
    """Zero every entry below the Bonferroni threshold Φ⁻¹(1 − α/k)·sqrt(Var*)."""
    f = np.asarray(f, dtype=np.float64)
    threshold = base_cut_threshold(f.size, variance_approx, alpha)
    return np.where(f >= threshold, f, 0.0)


def base_cut_threshold(k: int, variance_approx: float, alpha: float = 0.05) -> float:
    return NormalDist().inv_cdf(1 - alpha / k) * float(np.sqrt(variance_approx))


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "base-pos": base_pos,
    "norm": norm,
    "norm-mul": norm_mul,
    "norm-sub": norm_sub,
    "norm-cut": norm_cut,
    "simplex": project_simplex,
}


def apply(method: str, f: np.ndarray, *, variance_approx: float | None = None, **options: Any) -> np.ndarray:
    """Apply a method by name: base-pos, norm, norm-mul, norm-sub, norm-cut, simplex, base-cut."""
    if method == "base-cut":
        if variance_approx is None:
            raise ValueError("base-cut needs the estimate's variance_approx")
        return base_cut(f, variance_approx, **options)
    if method not in METHODS:
        raise ValueError(f"unknown post-processing method {method!r}; available: {', '.join([*METHODS, 'base-cut'])}")
    return METHODS[method](f, **options)


# --- maximum likelihood by expectation-maximisation (iterative Bayesian update; docs/algorithms.md) -----


def mle_from_support(support_counts: np.ndarray, n: int, p_star: float, q_star: float) -> np.ndarray:
    """Constrained maximum-likelihood distribution from support counts, computed exactly.

    Unary encoding and local hashing keep only support counts C(y), each a sum of
    Bernoulli(π_y) indicators with ``π_y = q* + (p* − q*)·θ_y``. Maximising the composite
    log-likelihood ``Σ_y C_y log π_y + (n − C_y) log(1 − π_y)`` over the simplex gives, by
    the KKT conditions, ``(C_y − nπ_y)/(π_y(1 − π_y)) = μ`` for every y with θ_y > 0: a
    quadratic in π_y for each multiplier μ. Bisection on μ until Σθ = 1 solves it to
    machine precision in O(k) per step (no slow EM iterations). At μ = 0 it is the unbiased
    estimator; the result is a variance-aware simplex projection (close to Norm-Sub).
    """
    counts = np.asarray(support_counts, dtype=np.float64)
    gap = p_star - q_star

    def theta(mu: float) -> np.ndarray:
        if mu == 0:
            pi = counts / n
        else:
            b = mu + n
            pi = 2 * counts / (b + np.sqrt(np.maximum(b * b - 4 * mu * counts, 0.0)))
        return np.maximum((pi - q_star) / gap, 0.0)

    low, high = -1.0, 1.0
    while theta(low).sum() < 1 and low > -1e300:
        low *= 2
    while theta(high).sum() > 1 and high < 1e300:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if theta(mid).sum() > 1:
            low = mid
        else:
            high = mid
    result = theta((low + high) / 2)
    total = result.sum()
    return result / total if total > 0 else np.full(counts.size, 1.0 / counts.size)


def ibu_from_histogram(
    histogram: np.ndarray, channel: np.ndarray, *, max_iterations: int = 10_000, tolerance: float = 1e-12
) -> np.ndarray:
    """Exact EM over an output histogram: ``channel[y, x] = P[output y | value x]``.

    ``θ ← θ ⊙ (Aᵀ (h/n ⊘ Aθ))``, O(|outputs|·k) per iteration.
    """
    observed = np.asarray(histogram, dtype=np.float64)
    observed = observed / max(observed.sum(), 1.0)
    k = channel.shape[1]
    theta = np.full(k, 1.0 / k)
    for _ in range(max_iterations):
        predicted = channel @ theta
        updated = theta * (channel.T @ np.divide(observed, predicted, out=np.zeros_like(observed), where=predicted > 0))
        updated /= updated.sum()
        if np.abs(updated - theta).sum() < tolerance:
            return updated
        theta = updated
    return theta


# --- hierarchical consistency for prefix trees (Hay et al., VLDB 2010) -------------------------


def tree_consistency(
    values: Sequence[float], variances: Sequence[float], children: Sequence[Sequence[int]], root: int = 0
) -> np.ndarray:
    """Weighted least-squares consistent node values: every parent equals the sum of its
    children and the result is the minimum-variance unbiased linear combination.

    ``children[v]`` lists v's children (empty for a leaf); nodes are indexed 0..N-1.

    >>> kids = [[1, 2], [3, 4], [5, 6], [], [], [], []]
    >>> np.round(tree_consistency([10, 4, 2, 3, 0, 1, 2], [1.0] * 7, kids), 6).tolist()
    [8.285714, 4.809524, 3.47619, 3.904762, 0.904762, 1.238095, 2.238095]
    """
    h = np.asarray(values, dtype=np.float64)
    sigma2 = np.asarray(variances, dtype=np.float64)
    z = h.copy()
    v = sigma2.copy()
    s = np.zeros_like(h)
    w = np.zeros_like(h)
    order = _postorder(children, root)
    for node in order:
        kids = children[node]
        if not kids:
            continue
        s[node] = sum(z[c] for c in kids)
        w[node] = sum(v[c] for c in kids)
        z[node] = (w[node] * h[node] + sigma2[node] * s[node]) / (sigma2[node] + w[node])
        v[node] = sigma2[node] * w[node] / (sigma2[node] + w[node])
    out = np.zeros_like(h)
    out[root] = z[root]
    for node in reversed(order):
        for c in children[node]:
            out[c] = z[c] + (v[c] / w[node]) * (out[node] - s[node])
    return out


def _postorder(children: Sequence[Sequence[int]], root: int) -> list[int]:
    order: list[int] = []
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children[node])
    return order
