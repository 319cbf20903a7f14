"""TAP and TAPS — federated heavy hitters across parties (docs/heavy_hitters.md).

Modelled on Zhang, Ye, Hu, "Federated Heavy Hitter Analytics with Local Differential
Privacy", SIGMOD 2025, arXiv:2412.14832. Only the setting, the component names and
the two-phase structure are confirmed from the paper's abstract and public summaries;
every operational rule here is this product's own design (docs/heavy_hitters.md) and
sits behind its own small interface so alternatives can be swapped in and compared:

* user split: :class:`~client_sdk.heavy_hitters._common.UniformSplit`;
* width rule: :class:`AdaptiveWidth` (AW) or :class:`FixedWidth` (TAP-fixedK);
* pruning rule: :class:`NoPruning` (TAP) or :class:`ConsensusPruning` (TAPS);
* party order: :func:`order_by_size`;
* global aggregation: :func:`aggregate_zero_fill` (mode Z) or
  :func:`aggregate_reestimate` (mode R).

Privacy: epsilon-LDP per user. Each user belongs to exactly one level group of
its party (drawn uniformly at random from the OS CSPRNG, independently of the item; the
party is public metadata given by the caller) and sends one OLH report (full ε) of its
level's prefix. Candidate sets, widths, priors, the party order and all estimates are
functions of *other* users' reports and public parameters, and sharing estimates between
parties and the server is post-processing, so TAP and TAPS in both aggregation modes are
ε-LDP by parallel composition over disjoint groups. Ledger charge: ε per user (docs/privacy.md).

Layout as PEM: ``ℓ_i = min(γ + iη, m)``, ``G = ⌈(m − γ)/η⌉``; groups ``1..g_I``
form Phase I (shared shallow trie, aggregated across parties with ``w_p = n_p/n``),
groups ``g_I+1..G`` Phase II (each party alone; in TAPS one after another in the public
order π, with the consensus prior of the parties before it). Party sizes ``n_p`` are the
numbers of reports per party (public metadata). A TAP report is the same as a PEM report
plus the party index, so the reports of one collection can be evaluated by TAP, TAPS,
pooled PEM or per-party PEM alike (used by the evaluation).

>>> adaptive_width([0.30, 0.20, 0.12, 0.10, 0.09, 0.04, 0.01, -0.02], [0.30, 0.20, 0.12, 0.10, 0.09, 0.04, 0.01, -0.02],
...                sigma=0.01, k=3, K=5)          # T29
WidthChoice(kept=[0.3, 0.2, 0.12, 0.1], tau=0.091716)
>>> cost_bounds(k=16, m=32, eta=4, shared_levels=2, k_max=64, k_global=32, parties=10)["rounds"]   # T31
{'TAP-Z': 3, 'TAP-R': 4, 'TAPS-Z': 13, 'TAPS-R': 14, 'PEM-pooled': 7}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import Domain
from client_sdk.heavy_hitters.pem import PrefixClient

# --- width rules ------------------------------------------------------------------


@dataclass(frozen=True)
class WidthChoice:
    """Kept candidates (largest estimate first) and the threshold τ (None if not used)."""

    kept: list[Any]
    tau: float | None

    def __repr__(self) -> str:
        tau = None if self.tau is None else round(self.tau, 6)
        return f"WidthChoice(kept={self.kept}, tau={tau})"


def aw_indices(f_hat: np.ndarray, sigma: float, k: int, K: int, z: float = 2.0, z0: float = 1.0):
    """AW on an estimate vector: (indices kept, largest first; τ)."""
    f = np.asarray(f_hat, dtype=np.float64)
    order = np.argsort(-f, kind="stable")
    if f.size <= k:
        return order, None
    f_k = f[order[k - 1]]
    tau = max(f_k - z * math.sqrt(2.0) * sigma, z0 * sigma)
    kept = order[f[order] >= tau]
    if kept.size < k:
        kept = order[:k]
    if kept.size > K:
        kept = kept[:K]
    return kept, tau


def adaptive_width(
    candidates: Sequence[Any], f_hat: Sequence[float], sigma: float, k: int, K: int, z: float = 2.0, z0: float = 1.0
) -> WidthChoice:
    """AW(C, f̂, σ; k, K): keep every candidate statistically tied with the k-th
    best (``f̂ ≥ f_k − z·√2·σ``) and above the noise floor ``z0·σ``; never fewer than k
    (then the top-k) nor more than K (then the top-K)."""
    idx, tau = aw_indices(np.asarray(f_hat, dtype=np.float64), sigma, k, K, z, z0)
    return WidthChoice([candidates[i] for i in idx], tau)


class WidthRule(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, f_hat: np.ndarray, sigma: float, k: int, K: int) -> np.ndarray: ...


@dataclass(frozen=True)
class AdaptiveWidth:
    """The AW rule as a swappable width rule (default ``z = 2``, ``z0 = 1``)."""

    z: float = 2.0
    z0: float = 1.0
    name: str = "aw"

    def __call__(self, f_hat: np.ndarray, sigma: float, k: int, K: int) -> np.ndarray:
        return aw_indices(f_hat, sigma, k, K, self.z, self.z0)[0]


@dataclass(frozen=True)
class FixedWidth:
    """Top-k per level regardless of noise (the TAP-fixedK ablation)."""

    name: str = "fixed"

    def __call__(self, f_hat: np.ndarray, sigma: float, k: int, K: int) -> np.ndarray:
        return C.top_indices(f_hat, k)


# --- party order ------------------------------------------------------------------


def order_by_size(sizes: Mapping[int, int]) -> list[int]:
    """π: decreasing ``n_p``, ties by party index."""
    return sorted(sizes, key=lambda p: (-sizes[p], p))


ORDERS: dict[str, Callable[[Mapping[int, int]], list[int]]] = {"size-desc": order_by_size}


# --- pruning rules ---------------------------------------------------------------


class PruningRule(Protocol):
    """How a party chooses its Phase II candidates and what it keeps; what it publishes."""

    name: str

    def candidates(self, level: int, kids: list[int]) -> list[int]: ...

    def select(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> list[int]: ...

    def publish(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> None: ...

    def end_party(self, n_p: int) -> None: ...


class NoPruning:
    """TAP Phase II: ``S = AW(children(S), f̂_p, σ_p; k, K_max)`` with no cross-party input."""

    name = "none"

    def __init__(
        self, width: WidthRule, k: int, k_max: int, k_local: int, k_global: int, floor: int | None = None, last: int = 0
    ) -> None:
        self.width, self.k, self.k_max = width, k, k_max
        self.floor = k if floor is None else floor  # AW's floor below the last level
        self.last = last

    def k_at(self, level: int) -> int:
        """AW's floor at a level: ``k`` at the last level, ``floor`` (default k) before it."""
        return self.k if level >= self.last else self.floor

    def candidates(self, level: int, kids: list[int]) -> list[int]:
        return kids

    def select(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> list[int]:
        return [cands[j] for j in self.width(f_hat, math.sqrt(var_star), self.k_at(level), self.k_max)]

    def publish(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> None:
        pass

    def end_party(self, n_p: int) -> None:
        pass


class ConsensusPruning(NoPruning):
    """TAPS: the first party runs plain TAP; every later party adds the prefixes
    the earlier parties agree are globally promising (``AW(D_i, pr_i, σ_pr; k, K_g)``) to
    its candidates and keeps ``AW(f̂_p, σ_p; k, K_l) ∪ AW(ĝ, σ_g; k, K_g)``, where ``ĝ`` is
    the size-weighted consensus of its own and the published estimates (zero-filled where
    a party did not evaluate a prefix); all else is pruned."""

    name = "consensus"

    def __init__(
        self, width: WidthRule, k: int, k_max: int, k_local: int, k_global: int, floor: int | None = None, last: int = 0
    ) -> None:
        super().__init__(width, k, k_max, k_local, k_global, floor, last)
        self.k_local, self.k_global = k_local, k_global
        self.sums: dict[int, dict[int, float]] = {}  # level -> prefix -> Σ_q n_q f̂_{q,i}
        self.var_sums: dict[int, float] = {}  # level -> Σ_q n_q² Var*_{q,i}
        self.n_q = 0
        self.handoff_pairs: list[int] = []
        self._pairs = 0

    def candidates(self, level: int, kids: list[int]) -> list[int]:
        if self.n_q == 0:
            return kids
        published = self.sums.get(level, {})
        if not published:
            return kids
        domain = list(published)
        prior = np.fromiter(published.values(), dtype=np.float64, count=len(domain)) / self.n_q
        sigma_pr = math.sqrt(self.var_sums[level]) / self.n_q
        injected = [domain[j] for j in self.width(prior, sigma_pr, self.k_at(level), self.k_global)]
        present = set(kids)
        return kids + [c for c in injected if c not in present]

    def select(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> list[int]:
        if self.n_q == 0:
            return super().select(level, cands, f_hat, n_p, var_star)
        published = self.sums.get(level, {})
        total = n_p + self.n_q
        prior_sum = np.array([published.get(c, 0.0) for c in cands], dtype=np.float64)
        consensus = (n_p * f_hat + prior_sum) / total
        sigma_g = math.sqrt(n_p**2 * var_star + self.var_sums.get(level, 0.0)) / total
        kk = self.k_at(level)
        own = [cands[j] for j in self.width(f_hat, math.sqrt(var_star), kk, self.k_local)]
        agreed = [cands[j] for j in self.width(consensus, sigma_g, kk, self.k_global)]
        seen = set(own)
        return own + [c for c in agreed if c not in seen]

    def publish(self, level: int, cands: list[int], f_hat: np.ndarray, n_p: int, var_star: float) -> None:
        sums = self.sums.setdefault(level, {})
        for c, v in zip(cands, f_hat.tolist(), strict=True):
            sums[c] = sums.get(c, 0.0) + n_p * v
        self.var_sums[level] = self.var_sums.get(level, 0.0) + n_p**2 * var_star
        self._pairs += len(cands)

    def end_party(self, n_p: int) -> None:
        self.n_q += n_p
        self.handoff_pairs.append(self._pairs)
        self._pairs = 0


PRUNING: dict[str, type[NoPruning]] = {"none": NoPruning, "consensus": ConsensusPruning}


# --- global aggregation -----------------------------------------------------------


@dataclass
class PartyOutcome:
    """What one party found: its final-level estimates (code -> (f̂, variance, consistent
    f̂)), its found set ``T_p`` and an estimator of its last group (for mode R)."""

    party: int
    n: int
    final: dict[int, tuple[float, float, float]]
    found: list[int]
    estimator: C.LevelEstimator | None = None
    local: list[C.HeavyHitter] = field(default_factory=list)


def aggregate_zero_fill(outcomes: Sequence[PartyOutcome], weights: Mapping[int, float], keyer: Any, bits: int):
    """Mode Z: ``f̂(x) = Σ_p w_p f̂_{p,G}(x)·1[x ∈ T_p]`` over ``U = ∪ T_p`` (no extra round)."""
    union = _union(o.found for o in outcomes)
    f = np.zeros(len(union))
    var = np.zeros(len(union))
    cons = np.zeros(len(union))
    pos = {c: j for j, c in enumerate(union)}
    for o in outcomes:
        w = weights[o.party]
        for c in o.found:
            fv, vv, cv = o.final[c]
            f[pos[c]] += w * fv
            var[pos[c]] += w * w * vv
            cons[pos[c]] += w * cv
    return union, f, var, cons, 0


def aggregate_reestimate(outcomes: Sequence[PartyOutcome], weights: Mapping[int, float], keyer: Any, bits: int):
    """Mode R: the server broadcasts ``U``; every party estimates every ``x ∈ U`` from its
    last group; ``f̂(x) = Σ_p w_p f̂_{p,G}(x)`` (one extra round; its selection effect is not modelled)."""
    union = _union(o.found for o in outcomes)
    f = np.zeros(len(union))
    var = np.zeros(len(union))
    cons = np.zeros(len(union))
    evals = 0
    keys = keyer(union, bits) if union else np.zeros(0, dtype=np.uint64)
    for o in outcomes:
        w = weights[o.party]
        missing = [j for j, c in enumerate(union) if c not in o.final]
        fresh = np.zeros(len(union))
        if missing and o.estimator is not None:
            before = o.estimator.hash_evaluations
            fresh[missing] = o.estimator.estimate(keys[missing])
            evals += o.estimator.hash_evaluations - before
        fresh_var = o.estimator.variance(fresh) if o.estimator is not None else np.zeros(len(union))
        for j, c in enumerate(union):
            if c in o.final:
                fv, vv, cv = o.final[c]
            else:
                fv, vv = float(fresh[j]), float(fresh_var[j])
                cv = fv
            f[j] += w * fv
            var[j] += w * w * vv
            cons[j] += w * cv
    return union, f, var, cons, evals


AGGREGATIONS = {"Z": aggregate_zero_fill, "R": aggregate_reestimate}


def _union(groups: Any) -> list[int]:
    seen: dict[int, None] = {}
    for g in groups:
        for c in g:
            seen.setdefault(c, None)
    return list(seen)


def merge_parties(
    outcomes: Sequence[PartyOutcome],
    mode: str,
    k: int,
    domain: Domain,
    ci_level: float = 0.95,
    keyer: Any = None,
) -> tuple[list[C.HeavyHitter], int]:
    """Global top-k from per-party outcomes with aggregation mode ``Z`` or ``R``."""
    if mode not in AGGREGATIONS:
        raise ConfigError(f"mode must be 'Z' or 'R', got {mode!r}")
    n = sum(o.n for o in outcomes)
    weights = {o.party: o.n / n for o in outcomes}
    keyer = keyer or C.CandidateKeys()
    union, f, var, cons, evals = AGGREGATIONS[mode](outcomes, weights, keyer, domain.bits)
    top = C.top_indices(f, k)
    hitters = C.make_hitters(domain, [union[j] for j in top], f[top], var[top], n, ci_level, cons[top])
    return hitters, evals


def run_independent(
    base: Any,
    reports: C.PrefixReports,
    party_names: Sequence[str],
    mode: str = "Z",
    ci_level: float = 0.95,
) -> C.DiscoveryResult:
    """Evaluation baseline: every party runs ``base`` (PEM → IndPEM, TreeHist) alone on its
    own users; results merged with mode Z or R."""
    if reports.parties is None:
        raise ValueError("reports carry no party index")
    outcomes = []
    traces: list[C.LevelTrace] = []
    evals = 0
    for p, idx in enumerate(C.split_by(reports.parties, len(party_names))):
        if idx.size == 0:
            continue
        sub = reports.subset(idx)
        res = base.discover(sub, ci_level=ci_level)
        evals += res.diagnostics["hash_evaluations"]
        for t in res.levels:
            t.party = p
        traces += res.levels
        final = {
            h.code: (h.frequency, h.variance, h.frequency if h.consistent_frequency is None else h.consistent_frequency)
            for h in res.heavy_hitters
        }
        outcomes.append(PartyOutcome(p, len(sub), final, res.codes, base.final_level_estimator(sub), res.heavy_hitters))
    hitters, extra = merge_parties(outcomes, mode, base.k, base.domain, ci_level)
    return C.DiscoveryResult(
        f"ind-{base.name}-{mode}", base.epsilon, base.k, sum(o.n for o in outcomes), hitters, traces, ci_level,
        local={party_names[o.party]: o.local for o in outcomes},
        diagnostics={"hash_evaluations": evals + extra},
    )  # fmt: skip


# --- the protocol --------------------------------------------------------------------------


class TAP(PrefixClient):
    """TAP: client (one OLH report of a level's prefix, with the public party index) and
    server (Phase I shared trie, Phase II per party, global aggregation)."""

    name = "tap"
    mechanism = "tap"
    federated = True
    default_pruning = "none"

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        parties: Sequence[str],
        eta: int | None = None,
        g: int | None = None,
        shared_levels: int = 2,
        k_max: int | None = None,
        k_local: int | None = None,
        k_global: int | None = None,
        z: float = 2.0,
        z0: float = 1.0,
        width_rule: str = "aw",
        floor: int | None = None,
        pruning: str | None = None,
        mode: str = "Z",
        order: str = "size-desc",
        prune_infeasible: bool = True,
        split: str | None = None,
        alpha: float = 0.05,
        final_round: bool = True,
        expected_reports: int | None = None,
    ) -> None:
        super().__init__(epsilon, k, domain, eta, g, prune_infeasible, split, final_round, alpha)
        if isinstance(parties, str) or not isinstance(parties, Sequence) or not parties:
            raise ConfigError("parties must be a non-empty list of party names")
        names = [str(p) for p in parties]
        if len(set(names)) != len(names):
            raise ConfigError("party names must be distinct")
        self.parties = names
        self.shared_levels = C.check_int(shared_levels, "shared_levels", 1, len(self.prefix_lengths))
        self.k_max = C.check_int(4 * self.k if k_max is None else k_max, "k_max", self.k, 1 << 14)
        self.k_local = C.check_int(2 * self.k if k_local is None else k_local, "k_local", self.k, 1 << 14)
        self.k_global = C.check_int(2 * self.k if k_global is None else k_global, "k_global", self.k, 1 << 14)
        self.z = C.check_float(z, "z")
        self.z0 = C.check_float(z0, "z0")
        if width_rule not in ("aw", "fixed"):
            raise ConfigError(f"width_rule must be 'aw' or 'fixed', got {width_rule!r}")
        self.width_rule = width_rule
        self.floor = C.check_int(
            self.k if floor is None else floor, "floor", self.k, min(self.k_max, self.k_local, self.k_global)
        )
        pruning = self.default_pruning if pruning is None else pruning
        if pruning not in PRUNING:
            raise ConfigError(f"pruning must be one of {sorted(PRUNING)}, got {pruning!r}")
        self.pruning = pruning
        if mode not in AGGREGATIONS:
            raise ConfigError(f"mode must be 'Z' or 'R', got {mode!r}")
        self.mode = mode
        if order not in ORDERS:
            raise ConfigError(f"order must be one of {sorted(ORDERS)}, got {order!r}")
        self.order = order
        # Phase II runs per party: the check uses a party of average size (n / parties)
        self.expected_reports = self._check_hopeless(
            None if expected_reports is None else C.check_int(expected_reports, "expected_reports", 1) // len(names),
            self.k_max,
        )
        if self.expected_reports is not None:
            self.expected_reports = int(expected_reports)  # type: ignore[arg-type]

    @property
    def config(self) -> dict[str, Any]:
        return {
            **self._client_config(),
            "parties": list(self.parties),
            "shared_levels": self.shared_levels,
            "k_max": self.k_max,
            "k_local": self.k_local,
            "k_global": self.k_global,
            "z": self.z,
            "z0": self.z0,
            "width_rule": self.width_rule,
            "floor": self.floor,
            "pruning": self.pruning,
            "mode": self.mode,
            "order": self.order,
            "alpha": self.alpha,
            "final_round": self.final_round,
            "expected_reports": self.expected_reports,
        }

    # --- client: the party is public metadata ---------------------------------------------
    def _party_index(self, party: Any) -> int:
        if isinstance(party, str) and party in self.parties:
            return self.parties.index(party)
        if isinstance(party, int | np.integer) and not isinstance(party, bool) and 0 <= party < len(self.parties):
            return int(party)
        raise ValueError(f"party must be one of {self.parties} (or its index), got {party!r}")

    def _party_array(self, parties: Any, n: int) -> np.ndarray:
        if parties is None:
            raise ValueError("a federated protocol needs the party of every user")
        arr = np.asarray(parties)
        if arr.dtype.kind in "US" or arr.dtype == object:
            lookup = {name: i for i, name in enumerate(self.parties)}
            try:
                arr = np.array([lookup[str(p)] for p in arr.tolist()], dtype=np.int64)
            except KeyError as exc:
                raise ValueError(f"unknown party {exc.args[0]!r}") from None
        arr = arr.astype(np.int64)
        if arr.shape != (n,) or (n and (arr.min() < 0 or arr.max() >= len(self.parties))):
            raise ValueError(f"parties must be {n} indices in [0, {len(self.parties)})")
        return arr

    def _n_parties(self) -> int:
        return len(self.parties)

    # --- server -----------------------------------------------------------------------------
    def discover(
        self,
        reports: C.PrefixReports | Sequence[Mapping[str, Any]],
        *,
        mode: str | None = None,
        pruning: str | None = None,
        width_rule: str | None = None,
        floor: int | None = None,
        ci_level: float = 0.95,
        chunk: int = 4096,
    ) -> C.DiscoveryResult:
        """Global and local top-k from stored reports (post-processing). ``mode``,
        ``pruning``, ``width_rule`` and ``floor`` override the configured server-side rules."""
        if floor is None:
            floor = self.floor
        floor = C.check_int(floor, "floor", self.k, min(self.k_max, self.k_local, self.k_global))
        mode = self.mode if mode is None else mode
        pruning = self.pruning if pruning is None else pruning
        width_name = self.width_rule if width_rule is None else width_rule
        if mode not in AGGREGATIONS or pruning not in PRUNING or width_name not in ("aw", "fixed"):
            raise ConfigError(f"bad server options mode={mode!r} pruning={pruning!r} width_rule={width_name!r}")
        width: WidthRule = AdaptiveWidth(self.z, self.z0) if width_name == "aw" else FixedWidth()
        reports = self.check_reports(reports)
        M, G, g_I = len(self.parties), len(self.prefix_lengths), self.shared_levels
        steps = C.steps_of(self.prefix_lengths)
        by_party = C.split_by(reports.parties, M)  # type: ignore[arg-type]
        sizes: dict[int, int] = {}
        excluded: list[str] = []
        est: dict[int, list[C.LevelEstimator]] = {}
        for p, idx in enumerate(by_party):
            if idx.size == 0 and not C.noisy_statistics():
                continue
            levels = C.split_by(reports.levels[idx], self.groups, offset=1)
            if min(g.size for g in levels) == 0 and not C.noisy_statistics():
                excluded.append(self.parties[p])
                continue
            est[p] = [
                C.LevelEstimator(self.olh, reports.seeds[idx[g]], reports.ys[idx[g]], int(idx.size), chunk)
                for g in levels
            ]
            sizes[p] = C.party_size(est[p], int(idx.size))
        if not sizes:
            raise C.InsufficientReportsError("no party has reports in every level group")
        n = sum(sizes.values())
        w = {p: sizes[p] / n for p in sizes}
        keyer = C.CandidateKeys()
        traces: list[C.LevelTrace] = []
        nodes: dict[int, list[C.LevelNodes]] = {p: [] for p in sizes}
        party_f: dict[int, np.ndarray] = {}

        # Phase I: shared shallow trie over all parties
        kept: list[int] = []
        cands: list[int] = []
        phase1_upload = 0
        for i in range(1, g_I + 1):
            length = self.prefix_lengths[i - 1]
            cands = (
                C.first_level(self.domain, length, self.prune_infeasible)
                if i == 1
                else C.extend(self.domain, kept, steps[i - 1], length, self.prune_infeasible)
            )
            phase1_upload += len(cands)
            keys = keyer(cands, length)
            f_i = np.zeros(len(cands))
            var_i = 0.0
            for p in sizes:
                party_f[p] = est[p][i - 1].estimate(keys)
                f_i += w[p] * party_f[p]
                var_i += w[p] ** 2 * est[p][i - 1].var_star
            sigma_i = math.sqrt(var_i)
            kept = [cands[j] for j in width(f_i, sigma_i, self.k if i == G else floor, self.k_max)]
            for p in sizes:
                nodes[p].append(
                    C.LevelNodes(length, cands, party_f[p], est[p][i - 1].variance(party_f[p]),
                                 set(kept) if i < G else set())
                )  # fmt: skip
            traces.append(C.LevelTrace(i, length, sum(e[i - 1].n for e in est.values()), len(cands), len(kept),
                                       sigma_i, None, "I"))  # fmt: skip
        frontier = kept

        # Phase II: each party alone (TAPS: in the order π, with the published prior)
        rule: PruningRule = PRUNING[pruning](width, self.k, self.k_max, self.k_local, self.k_global, floor, G)
        outcomes: list[PartyOutcome] = []
        tested: dict[int, tuple[list[int], np.ndarray]] = {}
        local_stats: dict[str, dict[str, Any]] = {}
        pending: dict[int, tuple[C.Selection, list[int], np.ndarray, dict[int, tuple[float, float, float]]]] = {}
        for p in ORDERS[self.order](sizes):
            S = frontier
            final_cands, final_f = cands, party_f[p]
            for i in range(g_I + 1, G + 1):
                length = self.prefix_lengths[i - 1]
                kids = C.extend(self.domain, S, steps[i - 1], length, self.prune_infeasible)
                level_cands = rule.candidates(i, kids)
                f_p = est[p][i - 1].estimate(keyer(level_cands, length)) if level_cands else np.zeros(0)
                var_star = est[p][i - 1].var_star
                S = rule.select(i, level_cands, f_p, sizes[p], var_star)
                rule.publish(i, level_cands, f_p, sizes[p], var_star)
                nodes[p].append(
                    C.LevelNodes(length, level_cands, f_p, est[p][i - 1].variance(f_p), set(S) if i < G else set())
                )
                traces.append(C.LevelTrace(i, length, est[p][i - 1].n, len(level_cands), len(S),
                                           est[p][i - 1].sigma, p, "II"))  # fmt: skip
                final_cands, final_f = level_cands, f_p
            rule.end_party(sizes[p])
            cons = C.consistent_tree(nodes[p])[-1]
            variances = est[p][G - 1].variance(final_f)
            final = {c: (float(final_f[j]), float(variances[j]), float(cons[j])) for j, c in enumerate(final_cands)}
            found = S
            tested[p] = (list(final_cands), np.asarray(final_f, dtype=np.float64))
            n_last = est[p][G - 1].n
            local_sel = C.select_significant(
                self.domain, final_cands, final_f, self.k, self.alpha,
                counts=C.support_of(final_f, self.olh, n_last), trials=n_last, q=self.olh.q_star,
                noise_var=est[p][G - 1].support_noise_variance,
            )  # fmt: skip
            local_stats[self.parties[p]] = local_sel.stats
            pending[p] = (local_sel, list(final_cands), np.asarray(final_f, dtype=np.float64), final)
            local: list[C.HeavyHitter] = []  # filled below, after the global test
            outcomes.append(PartyOutcome(p, sizes[p], final, list(found), est[p][G - 1], local))

        outcomes.sort(key=lambda o: o.party)
        # global: every candidate any party evaluated at its last level is tested with its
        # support count summed over the parties that evaluated it (Binomial(Σ N_p, q*)
        # under H0), Holm over all of them, and ranked by the size-weighted sum of the
        # parties' estimates (zero where a party did not evaluate it); the published items
        # are estimated from every party's final group (Σ_p w_p f̂_{p,final})
        union = _union(t[0] for t in tested.values())
        pos = {c: j for j, c in enumerate(union)}
        f_test = np.zeros(len(union))
        support = np.zeros(len(union))
        trials = np.zeros(len(union))
        noise = np.zeros(len(union))
        for p, (codes_p, f_p) in tested.items():
            at = np.fromiter((pos[c] for c in codes_p), dtype=np.int64, count=len(codes_p))
            f_test[at] += w[p] * f_p
            support[at] += C.support_of(f_p, self.olh, est[p][G - 1].n)
            trials[at] += est[p][G - 1].n
            noise[at] += est[p][G - 1].support_noise_variance
        sel = C.select_significant(
            self.domain, union, f_test, self.k, self.alpha, counts=support, trials=trials, q=self.olh.q_star,
            noise_var=noise,
        )  # fmt: skip
        pub = [union[j] for j in sel.published]
        f_pub = np.zeros(len(pub))
        var_pub = np.zeros(len(pub))
        cons_pub = np.zeros(len(pub))
        for o in outcomes:
            # one query per party's final group for its local list and the global list
            local_sel, cands_p, f_p, final = pending[o.party]
            local_codes = [cands_p[j] for j in local_sel.published]
            both = list(dict.fromkeys(local_codes + pub))
            fb, vb = self._final_estimates(est[o.party], both, keyer)
            position = {c: j for j, c in enumerate(both)}
            if self.final_round:
                local_f = np.array([fb[position[c]] for c in local_codes])
                local_var = np.array([vb[position[c]] for c in local_codes])
            else:  # the last prefix level's estimates (selection-biased, as before the final round)
                local_f = f_p[local_sel.published]
                local_var = est[o.party][G - 1].variance(local_f)
            order_l = np.argsort(-local_f, kind="stable")
            o.local = C.make_hitters(
                self.domain, [local_codes[j] for j in order_l], local_f[order_l], local_var[order_l], o.n,
                ci_level, np.array([final[c][2] for c in local_codes])[order_l],
                local_sel.p_adjusted[local_sel.published][order_l],
            )  # fmt: skip
            fp = np.array([fb[position[c]] for c in pub])
            vp = np.array([vb[position[c]] for c in pub])
            f_pub += w[o.party] * fp
            var_pub += w[o.party] ** 2 * vp
            cons_pub += w[o.party] * np.array([o.final[c][2] if c in o.final else 0.0 for c in pub])
        order_g = np.argsort(-f_pub, kind="stable")
        hitters = C.make_hitters(
            self.domain, [pub[j] for j in order_g], f_pub[order_g], var_pub[order_g], n, ci_level,
            None if self.final_round else cons_pub[order_g], sel.p_adjusted[sel.published][order_g],
        )  # fmt: skip
        active = len(sizes)
        pruned = pruning == "consensus"
        rounds = g_I + (active if pruned else 0) + (1 if mode == "Z" else 2)
        evals = sum(e.hash_evaluations for es in est.values() for e in es)
        diagnostics: dict[str, Any] = {
            "mode": mode,
            "pruning": pruning,
            "width_rule": width_name,
            "floor": floor,
            "party_sizes": {self.parties[p]: s for p, s in sizes.items()},
            "excluded_parties": excluded,
            "order": [self.parties[p] for p in ORDERS[self.order](sizes)],
            "frontier_size": len(frontier),
            "cross_party_rounds": rounds,
            "phase1_upload_per_party": phase1_upload,
            "found_per_party": {self.parties[o.party]: len(o.found) for o in outcomes},
            "union_size": len(_union(o.found for o in outcomes)),
            "hash_evaluations": evals,
            "key_collisions": keyer.collisions,
        }
        if isinstance(rule, ConsensusPruning):
            diagnostics["handoff_pairs"] = rule.handoff_pairs
        return C.DiscoveryResult(
            "taps" if pruned else "tap", self.epsilon, self.k, n, hitters, traces, ci_level,
            local={self.parties[o.party]: o.local for o in outcomes}, diagnostics=diagnostics,
            significance={**sel.stats, "parties": local_stats},
        )  # fmt: skip

    def _final_estimates(
        self, estimators: list[C.LevelEstimator], codes: list[int], keyer: Any, _unused: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A party's estimates (and variances) of full items from its last group (the final
        group; without a final round, the last prefix group): one support query."""
        est = estimators[-1]
        if not codes:
            return np.zeros(0), np.zeros(0)
        f = est.estimate(keyer(codes, self.domain.bits))
        return f, est.variance(f)


class TAPS(TAP):
    """TAPS = TAP with consensus-based pruning; reports are TAP reports."""

    name = "taps"
    default_pruning = "consensus"


def cost_bounds(
    k: int, m: int, eta: int, shared_levels: int, k_max: int, k_global: int, parties: int
) -> dict[str, Any]:
    """Layout and communication bounds (docs/heavy_hitters.md; T31 at the defaults)."""
    lengths = C.pem_lengths(m, k, eta)
    return {
        "l1": lengths[0],
        "G": len(lengths),
        "levels": list(lengths),
        "shallow_depth": lengths[shared_levels - 1],
        "first_level_candidates": 1 << lengths[0],
        "max_level_candidates": k_max << eta,
        "phase1_upload_per_party": (1 << lengths[0]) + (shared_levels - 1) * (k_max << eta),
        "taps_handoff_max_pairs": (len(lengths) - shared_levels) * ((k_max << eta) + k_global),
        "rounds": {
            "TAP-Z": shared_levels + 1,
            "TAP-R": shared_levels + 2,
            "TAPS-Z": shared_levels + parties + 1,
            "TAPS-R": shared_levels + parties + 2,
            "PEM-pooled": len(lengths),
        },
    }
