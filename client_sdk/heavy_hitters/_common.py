"""Shared machinery of the prefix-tree protocols: layouts, reports and their wire form,
per-level OLH estimation, results and hierarchical consistency.

Privacy: every user sends exactly one report (two ε/2 OLH reports for TreeHist); the
level group is drawn uniformly at random from the OS CSPRNG, independently of the item;
everything the server computes here is post-processing (ALGORITHMS §1.1, §9, §11.3).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError, LDPError, ReportDecodeError
from client_sdk.heavy_hitters.encoding import (
    Domain,
    EncodedItems,
    children,
    key_collisions,
    prefix_key,
    prefix_keys,
)
from client_sdk.mechanisms._base import pure_variance, validate_epsilon
from client_sdk.mechanisms.olh import HASH_FAMILY, MAX_KEY, OLH, optimal_g, support_counts
from client_sdk.wire_checks import is_version

WIRE_VERSION = 1
#: largest OLH hash range used by the heavy-hitter protocols (reached above ε ≈ 11.1);
#: bigger ranges only shave q* = 1/g further while costing server memory per level
G_MAX = 1 << 16
#: largest number of first-level candidates (2^ℓ_1)
MAX_FIRST_LEVEL_BITS = 16
_HEX16 = re.compile(r"[0-9a-f]{16}")


class InsufficientReportsError(LDPError, ValueError):
    """Too few reports to run discovery (e.g. a level group without any report)."""


class KeyCollisionWarning(UserWarning):
    """Two candidates of one level share a 32-bit OLH key (probability ~2^-32 per pair)."""


# --- parameters ----------------------------------------------------------------------------


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        raise ConfigError(f"{name} must lie in [{low}, {high if high is not None else 'inf'}], got {v}")
    return v


def check_float(value: Any, name: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def make_olh(epsilon: float, g: int | None) -> OLH:
    """OLH over 32-bit keys with ``g = min(round(e^ε) + 1, 2^16)`` unless ``g`` is given."""
    eps = validate_epsilon(epsilon)
    if g is None:
        g = min(optimal_g(eps), G_MAX)
    return OLH(eps, MAX_KEY, g=check_int(g, "g", 2, G_MAX))


def gamma_of(k: int) -> int:
    """γ = ⌈log2 k⌉ (0 for k = 1)."""
    return (k - 1).bit_length()


def pem_lengths(bits: int, k: int, eta: int) -> tuple[int, ...]:
    """PEM/TAP prefix lengths ``ℓ_i = min(γ + iη, m)``, ``i = 1..G``, ``G = ⌈(m − γ)/η⌉``.

    >>> pem_lengths(8, 4, 2)          # T23
    (4, 6, 8)
    >>> pem_lengths(32, 16, 4)        # T31
    (8, 12, 16, 20, 24, 28, 32)
    """
    gamma = gamma_of(k)
    if gamma + eta >= bits:
        return (bits,)
    levels = -(-(bits - gamma) // eta)
    return tuple(min(gamma + i * eta, bits) for i in range(1, levels + 1))


def check_first_level(lengths: Sequence[int]) -> None:
    if lengths[0] > MAX_FIRST_LEVEL_BITS:
        raise ConfigError(
            f"the first level would enumerate 2^{lengths[0]} prefixes; at most 2^{MAX_FIRST_LEVEL_BITS} "
            "(lower k or eta, or use a shorter item encoding)"
        )


def steps_of(lengths: Sequence[int]) -> list[int]:
    """η_i = ℓ_i − ℓ_{i−1} (η_1 = ℓ_1)."""
    return [lengths[0], *(b - a for a, b in zip(lengths, lengths[1:], strict=False))]


# --- user split (a [PD] rule behind its own interface, ALGORITHMS §9.4.5) -----------------


class UniformSplit:
    """Each user joins level group ``i`` uniformly at random in ``1..G``, independently of
    the item (the group index is public). The client draws it from the OS CSPRNG."""

    name = "uniform"

    def draw(self, groups: int) -> int:
        return 1 + _random.uniform_int(groups)

    def draw_batch(self, n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(1, groups + 1, size=n, dtype=np.int64)


SPLITS = {UniformSplit.name: UniformSplit()}


def check_prune_and_split(prune_infeasible: Any, split: Any) -> tuple[bool, UniformSplit]:
    """Validate the two options every prefix-tree protocol takes."""
    if not isinstance(prune_infeasible, bool):
        raise ConfigError("prune_infeasible must be true or false")
    if split not in SPLITS:
        raise ConfigError(f"unknown user split {split!r}; available: {sorted(SPLITS)}")
    return prune_infeasible, SPLITS[split]


def prefix_config(protocol: Any) -> dict[str, Any]:
    """The canonical config fields every prefix-tree protocol (PEM, TAP, TreeHist) shares."""
    from client_sdk.heavy_hitters.encoding import KEY_FAMILY

    return {
        "protocol": protocol.name,
        "version": WIRE_VERSION,
        "epsilon": protocol.epsilon,
        "k": protocol.k,
        "eta": protocol.eta,
        "domain": protocol.domain.config,
        "fo": olh_config(protocol.olh),
        "key": KEY_FAMILY,
        "split": protocol.split.name,
        "levels": list(protocol.lengths),
        "prune_infeasible": protocol.prune_infeasible,
    }


# --- reports -------------------------------------------------------------------------------


@dataclass
class PrefixReports:
    """Decoded reports as packed arrays (what the server stores and loads per window).

    ``levels`` are 1-based level-group indices, ``seeds`` the OLH hash seeds (uint64),
    ``ys`` the reported hash values; ``parties`` (TAP/TAPS) the public party index of each
    user; ``item_seeds``/``item_ys`` TreeHist's second (full-item) report.
    """

    levels: np.ndarray
    seeds: np.ndarray
    ys: np.ndarray
    parties: np.ndarray | None = None
    item_seeds: np.ndarray | None = None
    item_ys: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.levels = np.asarray(self.levels, dtype=np.int64)
        self.seeds = _as_u64(self.seeds)
        self.ys = np.asarray(self.ys, dtype=np.int64)
        if self.parties is not None:
            self.parties = np.asarray(self.parties, dtype=np.int64)
        if self.item_seeds is not None:
            self.item_seeds = _as_u64(self.item_seeds)
            self.item_ys = np.asarray(self.item_ys, dtype=np.int64)
        n = self.levels.shape[0]
        for name in ("seeds", "ys", "parties", "item_seeds", "item_ys"):
            arr = getattr(self, name)
            if arr is not None and (arr.ndim != 1 or arr.shape[0] != n):
                raise ValueError(f"reports field {name!r} must be a 1-d array of length {n}")

    def __len__(self) -> int:
        return int(self.levels.shape[0])

    @classmethod
    def from_columns(cls, **columns: Any) -> PrefixReports:
        """Build from stored columns (seeds may be stored as signed int64: bits are kept)."""
        return cls(**columns)

    def subset(self, mask: np.ndarray) -> PrefixReports:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        return PrefixReports(
            self.levels[mask], self.seeds[mask], self.ys[mask], pick(self.parties), pick(self.item_seeds),
            pick(self.item_ys),
        )  # fmt: skip

    @staticmethod
    def concat(batches: Sequence[PrefixReports]) -> PrefixReports:
        """Reports of several batches (e.g. the epochs of a window)."""
        if not batches:
            raise ValueError("nothing to concatenate")

        def cat(name: str) -> np.ndarray | None:
            parts = [getattr(b, name) for b in batches]
            if all(p is None for p in parts):
                return None
            if any(p is None for p in parts):
                raise ValueError(f"field {name!r} is present in some batches only")
            return np.concatenate(parts)

        return PrefixReports(cat("levels"), cat("seeds"), cat("ys"), cat("parties"), cat("item_seeds"), cat("item_ys"))  # type: ignore[arg-type]


def _as_u64(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == np.int64:
        return arr.view(np.uint64)
    return arr.astype(np.uint64, copy=False)


def _check_int_field(payload: Mapping[str, Any], key: str, low: int, high: int, index: int) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportDecodeError("bad_type", f"field {key!r} must be an integer", index)
    if not low <= value < high:
        raise ReportDecodeError("out_of_range", f"field {key!r} must lie in [{low}, {high}), got {value}", index)
    return value


def _check_seed(payload: Mapping[str, Any], key: str, index: int) -> int:
    raw = payload.get(key)
    if not isinstance(raw, str):
        raise ReportDecodeError("bad_type", f"field {key!r} must be a 16-digit lowercase hexadecimal string", index)
    if not _HEX16.fullmatch(raw):
        raise ReportDecodeError("bad_encoding", f"field {key!r} must be 16 lowercase hexadecimal digits", index)
    return int(raw, 16)


def decode_payloads(
    payloads: Sequence[Mapping[str, Any]],
    mechanism: str,
    groups: int,
    g: int,
    parties: int | None = None,
    item_g: int | None = None,
) -> PrefixReports:
    """Parse wire payloads strictly; raise ReportDecodeError (with the index) on the first bad one.

    Expected fields: ``v`` (1), ``m`` (mechanism), ``l`` (level group, 1..G), ``s`` (seed,
    16 lowercase hex digits), ``y`` (0..g−1); ``p`` (party index) when ``parties`` is set;
    ``s2``/``y2`` (TreeHist's full-item report) when ``item_g`` is set. Unknown or missing
    fields are rejected.
    """
    if isinstance(payloads, Mapping | str | bytes):
        raise ReportDecodeError("not_a_list", "payloads must be a list of report objects", None)
    expected = {"v", "m", "l", "s", "y"}
    if parties is not None:
        expected.add("p")
    if item_g is not None:
        expected |= {"s2", "y2"}
    n = len(payloads)
    levels = np.empty(n, dtype=np.int64)
    seeds = np.empty(n, dtype=np.uint64)
    ys = np.empty(n, dtype=np.int64)
    party_arr = np.empty(n, dtype=np.int64) if parties is not None else None
    seeds2 = np.empty(n, dtype=np.uint64) if item_g is not None else None
    ys2 = np.empty(n, dtype=np.int64) if item_g is not None else None
    for i, payload in enumerate(payloads):
        if not isinstance(payload, Mapping):
            raise ReportDecodeError("not_an_object", "payload must be a JSON object", i)
        keys = set(payload)
        if keys != expected:
            missing, extra = sorted(expected - keys), sorted(str(k) for k in keys - expected)
            reason = "missing_field" if missing else "unknown_field"
            raise ReportDecodeError(reason, f"fields missing {missing}, unexpected {extra}", i)
        v = payload["v"]
        if not is_version(v, WIRE_VERSION):
            raise ReportDecodeError("bad_version", f"wire version must be the integer {WIRE_VERSION}, got {v!r}", i)
        if payload["m"] != mechanism:
            raise ReportDecodeError("wrong_mechanism", f"payload is for {payload['m']!r}, expected {mechanism!r}", i)
        levels[i] = _check_int_field(payload, "l", 1, groups + 1, i)
        seeds[i] = _check_seed(payload, "s", i)
        ys[i] = _check_int_field(payload, "y", 0, g, i)
        if party_arr is not None:
            party_arr[i] = _check_int_field(payload, "p", 0, parties, i)  # type: ignore[arg-type]
        if seeds2 is not None:
            seeds2[i] = _check_seed(payload, "s2", i)
            ys2[i] = _check_int_field(payload, "y2", 0, item_g, i)  # type: ignore[index,arg-type]
    return PrefixReports(levels, seeds, ys, party_arr, seeds2, ys2)


def encode_payloads(reports: PrefixReports, mechanism: str) -> list[dict[str, Any]]:
    """JSON-safe wire payloads of a batch."""
    out = []
    for i in range(len(reports)):
        payload: dict[str, Any] = {
            "v": WIRE_VERSION,
            "m": mechanism,
            "l": int(reports.levels[i]),
            "s": f"{int(reports.seeds[i]):016x}",
            "y": int(reports.ys[i]),
        }
        if reports.parties is not None:
            payload["p"] = int(reports.parties[i])
        if reports.item_seeds is not None:
            payload["s2"] = f"{int(reports.item_seeds[i]):016x}"
            payload["y2"] = int(reports.item_ys[i])  # type: ignore[index]
        out.append(payload)
    return out


def check_reports(
    reports: Any, groups: int, g: int, parties: int | None = None, item_g: int | None = None
) -> PrefixReports:
    """Validate decoded arrays (e.g. loaded from a database) before discovery."""
    if not isinstance(reports, PrefixReports):
        raise TypeError("reports must be PrefixReports (decode wire payloads with protocol.decode first)")
    if len(reports) == 0:
        raise InsufficientReportsError("no reports")
    if reports.levels.min() < 1 or reports.levels.max() > groups:
        raise ValueError(f"report levels must lie in [1, {groups}]")
    if reports.ys.min() < 0 or reports.ys.max() >= g:
        raise ValueError(f"report values y must lie in [0, {g})")
    if parties is not None:
        if reports.parties is None:
            raise ValueError("reports carry no party index but the protocol is federated")
        if reports.parties.min() < 0 or reports.parties.max() >= parties:
            raise ValueError(f"party indices must lie in [0, {parties})")
    if item_g is not None:
        if reports.item_seeds is None:
            raise ValueError("TreeHist reports need the full-item report (item_seeds, item_ys)")
        if reports.item_ys.min() < 0 or reports.item_ys.max() >= item_g:  # type: ignore[union-attr]
            raise ValueError(f"full-item values must lie in [0, {item_g})")
    return reports


# --- client side ---------------------------------------------------------------------------


def level_keys(items: Any, domain: Domain, levels: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """Per user: the OLH key of the prefix its level group reports (vectorised)."""
    enc = items if isinstance(items, EncodedItems) else domain.encode_many(items)
    if enc.bits != domain.bits:
        raise ValueError(f"items were encoded with {enc.bits} bits, the domain has {domain.bits}")
    if len(enc) != levels.shape[0]:
        raise ValueError("one level per user is needed")
    keys = np.empty(len(enc), dtype=np.uint64)
    for i, length in enumerate(lengths, start=1):
        mask = levels == i
        if mask.any():
            keys[mask] = enc.keys(length)[enc.inverse[mask]]
    return keys


def item_prefix_key(domain: Domain, item: Any, length: int) -> int:
    code = domain.encode(item)
    return prefix_key(code >> (domain.bits - length), length)


# --- server side ---------------------------------------------------------------------------

#: Central noise on the statistics discovery reads (a group's report count and every
#: support-count query), set by a server around a release's discovery so that its readers
#: get central DP on top of LDP (ldpserver/release_noise.py ``DiscoveryNoise``); ``None``
#: (exact statistics) everywhere else. The one place heavy-hitter statistics are noised.
CENTRAL_NOISE: ContextVar[Any] = ContextVar("heavy_hitters_central_noise", default=None)


def noisy_statistics() -> bool:
    """Whether discovery runs on centrally noised statistics (exact group emptiness is then
    not checked: it would be a decision on exact counts)."""
    return CENTRAL_NOISE.get() is not None


def party_size(estimators: Sequence[LevelEstimator], exact: int) -> int:
    """A party's size: exact, or the sum of its level groups' noisy counts under central noise."""
    return max(1, sum(e.n for e in estimators)) if noisy_statistics() else exact


class LevelEstimator:
    """OLH estimates of candidate prefixes from one group of reports (seeds, ys)."""

    def __init__(self, olh: OLH, seeds: np.ndarray, ys: np.ndarray, n_total: int, chunk: int = 4096) -> None:
        self.olh = olh
        self.seeds = seeds
        self.ys = ys
        self.noise = CENTRAL_NOISE.get()
        self.n = int(seeds.shape[0]) if self.noise is None else max(1, self.noise.count(int(seeds.shape[0]), self))
        self.n_total = n_total
        self.chunk = chunk
        self.hash_evaluations = 0
        self.support_noise_variance = 0.0  # per-count variance of the central noise of the last query

    @property
    def var_star(self) -> float:
        """Var* of one prefix frequency from this group (f = 0)."""
        return self.olh.variance_approx_per_user / self.n

    @property
    def sigma(self) -> float:
        return math.sqrt(self.var_star)

    def support(self, keys: np.ndarray) -> np.ndarray:
        self.hash_evaluations += int(self.seeds.shape[0]) * int(keys.size)
        if self.noise is None:
            return support_counts(self.seeds, self.ys, self.olh.g, keys, chunk=self.chunk)
        bound = self.noise.support_bound(int(keys.size), self.olh.g)  # keys one report may count for
        counts = support_counts(self.seeds, self.ys, self.olh.g, keys, chunk=self.chunk, max_per_report=bound)
        counts, self.support_noise_variance = self.noise.support(counts, self, bound)
        return counts

    def estimate(self, keys: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Unbiased f̂ = (C/N − q*)/(p* − q*) (times ``scale``)."""
        p, q = self.olh.p_star, self.olh.q_star
        return scale * (self.support(keys) / self.n - q) / (p - q)

    def variance(self, f_hat: np.ndarray) -> np.ndarray:
        """Variance of f̂ as an estimate of the *population* frequency: the exact OLH variance
        given the group (ALGORITHMS §1.2) plus the sampling variance of a uniformly random
        group of N out of n users, both at the clipped estimate."""
        f = np.clip(np.asarray(f_hat, dtype=np.float64), 0.0, 1.0)
        ldp = pure_variance(self.olh.p_star, self.olh.q_star, self.n, f)
        if self.noise is not None:  # no exact n_total: the conservative finite-population factor 1
            central = self.support_noise_variance / (self.n * (self.olh.p_star - self.olh.q_star)) ** 2
            return ldp + f * (1 - f) / self.n + central
        finite = max(0.0, 1.0 - self.n / self.n_total) if self.n_total > 1 else 0.0
        return ldp + f * (1 - f) * finite / self.n


class CandidateKeys:
    """Keys of a level's candidates, with the fingerprint-collision check of encoding.py."""

    def __init__(self) -> None:
        self.collisions: list[dict[str, Any]] = []

    def __call__(self, prefixes: Sequence[int], length: int) -> np.ndarray:
        keys = prefix_keys(prefixes, length)
        if length > 32:
            found = key_collisions(prefixes, keys)
            if found:
                self.collisions.append({"length": length, "prefixes": [list(map(int, g)) for g in found]})
                warnings.warn(
                    f"{len(found)} group(s) of level-{length} candidates share a 32-bit key; their "
                    "estimates are merged (biased upward)",
                    KeyCollisionWarning,
                    stacklevel=3,
                )
        return keys


def feasible(domain: Domain, prefixes: Iterable[int], length: int, enabled: bool) -> list[int]:
    """Drop prefixes no item can have (public knowledge of the encoding; free)."""
    if not enabled:
        return list(prefixes)
    return [p for p in prefixes if domain.is_feasible_prefix(p, length)]


def first_level(domain: Domain, length: int, prune: bool) -> list[int]:
    return feasible(domain, range(1 << length), length, prune)


def extend(domain: Domain, kept: Sequence[int], step: int, length: int, prune: bool) -> list[int]:
    return feasible(domain, children(kept, step), length, prune)


def top_indices(values: np.ndarray, count: int, drop_negative: bool = False) -> np.ndarray:
    """Indices of the ``count`` largest values (ties by position), largest first."""
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
    if drop_negative:
        order = order[np.asarray(values)[order] >= 0]
    return order[:count]


def split_by(labels: np.ndarray, count: int, offset: int = 0) -> list[np.ndarray]:
    """Index arrays of each label value offset..offset+count−1 (one stable sort)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(offset, offset + count + 1))
    return [order[bounds[j] : bounds[j + 1]] for j in range(count)]


# --- hierarchical consistency (ALGORITHMS §12.1) -------------------------------------------


@dataclass
class LevelNodes:
    """One level of an estimated prefix tree: candidates, raw estimates, variances, and the
    candidates that were expanded (all their feasible children are in the next level)."""

    length: int
    prefixes: list[int]
    estimates: np.ndarray
    variances: np.ndarray
    expanded: set[int] = field(default_factory=set)


def consistent_tree(
    levels: Sequence[LevelNodes], root_complete: bool = True, root_value: float = 1.0, root_variance: float = 0.0
) -> list[np.ndarray]:
    """Weighted least-squares consistency (§12.1, unequal variances) wherever a node's
    children are complete: the root (frequency 1, variance 0) and every expanded prefix
    become the sum of their children. Nodes whose parent was not expanded (e.g. TAPS's
    injected prefixes) start their own subtree. Returns consistent values per level.

    The root is the empty prefix: frequency ``root_value`` (1, known exactly) unless given.

    >>> lv = [LevelNodes(1, [0, 1], np.array([4.0, 2.0]), np.ones(2), {0, 1}),
    ...       LevelNodes(2, [0, 1, 2, 3], np.array([3.0, 0.0, 1.0, 2.0]), np.ones(4))]
    >>> [np.round(v, 6).tolist() for v in consistent_tree(lv, root_value=10.0, root_variance=1.0)]   # §12.1
    [[4.809524, 3.47619], [3.904762, 0.904762, 1.238095, 2.238095]]
    """
    from client_sdk.postprocess import tree_consistency

    values = [float(root_value)]
    variances = [float(root_variance)]
    kids: list[list[int]] = [[]]
    parent: list[int | None] = [None]
    base = []
    prev_index: dict[int, int] = {}
    prev_expanded: set[int] = set()
    for depth, lvl in enumerate(levels):
        base.append(len(values))
        step = lvl.length - (levels[depth - 1].length if depth else 0)
        index = {}
        for j, pfx in enumerate(lvl.prefixes):
            node = len(values)
            index[pfx] = node
            values.append(float(lvl.estimates[j]))
            variances.append(float(lvl.variances[j]))
            kids.append([])
            if depth == 0:
                par = 0 if root_complete else None
            else:
                up = pfx >> step
                par = prev_index[up] if up in prev_expanded and up in prev_index else None
            parent.append(par)
            if par is not None:
                kids[par].append(node)
        prev_index, prev_expanded = index, lvl.expanded
    out = np.asarray(values, dtype=np.float64).copy()
    roots = [v for v in range(len(values)) if parent[v] is None and kids[v]]
    for r in roots:
        solved = tree_consistency(values, variances, kids, root=r)
        stack = [r]
        while stack:
            v = stack.pop()
            out[v] = solved[v]
            stack.extend(kids[v])
    return [out[base[d] : base[d] + len(lvl.prefixes)] for d, lvl in enumerate(levels)]


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeavyHitter:
    """One discovered item: raw unbiased frequency (fraction of all users), its variance and
    normal-approximation interval, and the value after hierarchical consistency."""

    item: Any
    code: int
    frequency: float
    variance: float
    ci_lower: float
    ci_upper: float
    count: float
    consistent_frequency: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "code": str(self.code),
            "frequency": self.frequency,
            "count": self.count,
            "variance": self.variance,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "consistent_frequency": self.consistent_frequency,
        }


def make_hitters(
    domain: Domain,
    codes: Sequence[int],
    freqs: np.ndarray,
    variances: np.ndarray,
    n: int,
    ci_level: float,
    consistent: np.ndarray | None = None,
) -> list[HeavyHitter]:
    z = NormalDist().inv_cdf(0.5 + ci_level / 2)
    out = []
    for j, code in enumerate(codes):
        f, v = float(freqs[j]), float(variances[j])
        half = z * math.sqrt(max(v, 0.0))
        out.append(
            HeavyHitter(
                domain.decode(code),
                int(code),
                f,
                v,
                f - half,
                f + half,
                f * n,
                None if consistent is None else float(consistent[j]),
            )  # fmt: skip
        )
    return out


@dataclass
class LevelTrace:
    level: int
    length: int
    reports: int
    candidates: int
    kept: int
    sigma: float
    party: int | None = None
    phase: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DiscoveryResult:
    """What discovery returns: the top items (best first) and how they were found."""

    protocol: str
    epsilon: float
    k: int
    n: int
    heavy_hitters: list[HeavyHitter]
    levels: list[LevelTrace]
    ci_level: float = 0.95
    local: dict[str, list[HeavyHitter]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[Any]:
        return [h.item for h in self.heavy_hitters]

    @property
    def codes(self) -> list[int]:
        return [h.code for h in self.heavy_hitters]

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "epsilon": self.epsilon,
            "k": self.k,
            "n": self.n,
            "ci_level": self.ci_level,
            "heavy_hitters": [h.to_dict() for h in self.heavy_hitters],
            "local": {p: [h.to_dict() for h in hs] for p, hs in self.local.items()},
            "levels": [t.to_dict() for t in self.levels],
            "diagnostics": self.diagnostics,
        }


def olh_config(olh: OLH) -> dict[str, Any]:
    return {"mechanism": "olh", "g": olh.g, "hash": HASH_FAMILY}
