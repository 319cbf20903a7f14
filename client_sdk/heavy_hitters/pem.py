"""PEM — the Prefix Extending Method (Wang, Li, Jha, arXiv:1708.06674; ALGORITHMS §9.1).

Privacy: epsilon-LDP per user. Each user is assigned, uniformly at random and independently
of its item, to one level group ``i`` (public) and sends exactly one OLH report (full ε) of
the length-ℓ_i prefix of its encoded item; groups are disjoint (parallel composition), and
everything the server does afterwards — choosing candidates, estimates, consistency,
top-k — is post-processing. Ledger charge: ε per user (§11.3).

Layout (S5 ``pem/pem.py``, first author's code): ``γ = ⌈log2 k⌉``, ``G = ⌈(m − γ)/η⌉``
groups, prefix lengths ``ℓ_i = min(γ + iη, m)``. The server enumerates all ``2^ℓ_1``
first-level prefixes (not S5's ``0..k−1``, see the pitfall in §9.1), estimates every
candidate of level ``i`` from group ``i`` only, keeps the top ``2k`` non-negative ones (or
those above a Bonferroni significance threshold, ``keep="threshold"``) at intermediate
levels, extends them by every η-bit suffix, and returns the top-k non-negative items of
the last level. The client needs no candidate list: all groups report in one round, and
the server can evaluate the stored reports of any epoch or window at any time.

Estimates are fractions of *all* users (group i is a uniform 1/G sample); their variance
is OLH's exact variance given the group plus the sampling variance of the group. The
result also carries the values after hierarchical consistency (§12.1) over the estimated
tree: the root (frequency 1) and every expanded prefix, whose feasible children were all
estimated, equal the sum of their children.

>>> import numpy as np
>>> from client_sdk import heavy_hitters
>>> pem = heavy_hitters.create("pem", epsilon=4.0, k=2, domain={"type": "string", "max_bytes": 2})
>>> pem.lengths
(5, 9, 13, 16)
>>> words = ["hi"] * 6000 + ["ok"] * 3000 + ["no"] * 1000
>>> reports = pem.perturb_batch(words, rng=np.random.default_rng(1))
>>> pem.discover(reports).items
['hi', 'ok']
>>> sorted(pem.perturb("hi"))
['l', 'm', 's', 'v', 'y']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from client_sdk.canonical import config_hash
from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import Domain, as_domain
from client_sdk.mechanisms._base import Aggregate, PrivacyStatement


class PrefixClient:
    """Client side shared by PEM and TAP/TAPS: one OLH report of one level's prefix."""

    name = "prefix"
    mechanism = "prefix"  # the wire ``m``
    federated = False

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        eta: int = 4,
        g: int | None = None,
        prune_infeasible: bool = True,
        split: str = "uniform",
    ) -> None:
        self.olh = C.make_olh(epsilon, g)
        self.epsilon = self.olh.epsilon
        self.k = C.check_int(k, "k", 1, 4096)
        self.domain = as_domain(domain)
        self.eta = C.check_int(eta, "eta", 1, 10)
        self.prune_infeasible, self.split = C.check_prune_and_split(prune_infeasible, split)
        self.lengths = C.pem_lengths(self.domain.bits, self.k, self.eta)
        C.check_first_level(self.lengths)

    # --- configuration ------------------------------------------------------------------
    @property
    def groups(self) -> int:
        return len(self.lengths)

    @property
    def g(self) -> int:
        return self.olh.g

    def _client_config(self) -> dict[str, Any]:
        return C.prefix_config(self)

    @property
    def config(self) -> dict[str, Any]:
        return self._client_config()

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def privacy(self) -> PrivacyStatement:
        return PrivacyStatement(
            self.epsilon, "record", self.name, {"g": self.g, "p": self.olh.p_star, "q_star": self.olh.q_star}
        )

    # --- client ---------------------------------------------------------------------------
    def _party_index(self, party: Any) -> int | None:
        if party is not None:
            raise ValueError(f"{self.name} is not federated; do not pass a party")
        return None

    def perturb(self, item: Any, party: Any = None) -> dict[str, Any]:
        """One report of ``item`` (OS CSPRNG; the level group is drawn uniformly at random)."""
        p = self._party_index(party)
        level = self.split.draw(self.groups)
        key = C.item_prefix_key(self.domain, item, self.lengths[level - 1])
        inner = self.olh.perturb_key(key)
        payload: dict[str, Any] = {"v": C.WIRE_VERSION, "m": self.mechanism, "l": level, "s": inner["s"]}
        payload["y"] = inner["y"]
        if p is not None:
            payload["p"] = p
        return payload

    def perturb_batch(self, items: Any, rng: np.random.Generator, parties: Any = None) -> C.PrefixReports:
        """Vectorised reports (simulation): same distribution as :meth:`perturb`.

        ``items`` is a sequence of items or an :class:`~client_sdk.heavy_hitters.encoding.EncodedItems`.
        """
        enc = items if isinstance(items, C.EncodedItems) else self.domain.encode_many(items)
        party_arr = self._party_array(parties, len(enc))
        levels = self.split.draw_batch(len(enc), self.groups, rng)
        keys = C.level_keys(enc, self.domain, levels, self.lengths)
        batch = self.olh.perturb_keys(keys, rng)
        return C.PrefixReports(levels, batch.seeds, batch.ys, party_arr)

    def _party_array(self, parties: Any, n: int) -> np.ndarray | None:
        if parties is not None:
            raise ValueError(f"{self.name} is not federated; do not pass parties")
        return None

    # --- wire form ------------------------------------------------------------------------
    def encode(self, reports: C.PrefixReports) -> list[dict[str, Any]]:
        return C.encode_payloads(reports, self.mechanism)

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> C.PrefixReports:
        return C.decode_payloads(payloads, self.mechanism, self.groups, self.g, self._n_parties())

    def validate_payload(self, payload: Any) -> None:
        self.decode([payload])

    def _n_parties(self) -> int | None:
        return None

    # --- additive statistics (what ingestion stores per epoch; discovery needs raw reports) ---
    def aggregate(self, reports: C.PrefixReports | Sequence[Mapping[str, Any]]) -> Aggregate:
        """Report counts per (party, level group), party-major (one party if not federated):
        additive, so ingestion can keep them per epoch (party sizes, level balance, the
        minimum-reports rule). Heavy hitters themselves come from :meth:`discover` over the
        stored raw reports, since candidates are only known at evaluation time."""
        if not isinstance(reports, C.PrefixReports):
            reports = self.decode(reports)
        groups = self.groups
        party = reports.parties if reports.parties is not None else np.zeros(len(reports), dtype=np.int64)
        cells = party * groups + (reports.levels - 1)
        counts = np.bincount(cells, minlength=(self._n_parties() or 1) * groups).astype(np.int64)
        return Aggregate(self.config, len(reports), counts)

    def empty_aggregate(self) -> Aggregate:
        return Aggregate(self.config, 0, np.zeros((self._n_parties() or 1) * self.groups, dtype=np.int64))

    def check_reports(self, reports: Any) -> C.PrefixReports:
        if isinstance(reports, Sequence) and not isinstance(reports, C.PrefixReports):
            reports = self.decode(reports)
        return C.check_reports(reports, self.groups, self.g, self._n_parties())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epsilon={self.epsilon}, k={self.k}, domain={self.domain.config})"


# --- intermediate-level keep rules ---------------------------------------------------------


def keep_top(f_hat: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` largest non-negative estimates (S5; 2k as the safety margin of §9.1)."""
    return C.top_indices(f_hat, width, drop_negative=True)


def keep_threshold(f_hat: np.ndarray, sigma: float, alpha: float, k: int, max_width: int) -> np.ndarray:
    """Threshold variant [UM]: every candidate with ``f̂ ≥ z_{1−α/|C|}·σ`` (Bonferroni),
    at most ``max_width``; if fewer than ``k`` pass, the top-k non-negative ones."""
    z = NormalDist().inv_cdf(1 - alpha / max(1, f_hat.size))
    passing = np.nonzero(f_hat >= z * sigma)[0]
    if passing.size < k:
        return keep_top(f_hat, k)
    order = passing[np.argsort(-f_hat[passing], kind="stable")]
    return order[:max_width]


class PEM(PrefixClient):
    """PEM: client and server of one heavy-hitter collection (see the module docstring)."""

    name = "pem"
    mechanism = "pem"

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        eta: int = 4,
        g: int | None = None,
        keep: str = "top",
        width: int | None = None,
        alpha: float = 0.05,
        max_width: int | None = None,
        prune_infeasible: bool = True,
        split: str = "uniform",
    ) -> None:
        super().__init__(epsilon, k, domain, eta, g, prune_infeasible, split)
        if keep not in ("top", "threshold"):
            raise ConfigError(f"keep must be 'top' or 'threshold', got {keep!r}")
        self.keep = keep
        self.width = C.check_int(2 * self.k if width is None else width, "width", self.k, 1 << 14)
        self.alpha = C.check_float(alpha, "alpha")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must lie in (0, 1), got {alpha}")
        self.max_width = C.check_int(4 * self.k if max_width is None else max_width, "max_width", self.k, 1 << 14)

    @property
    def config(self) -> dict[str, Any]:
        return {
            **self._client_config(),
            "keep": self.keep,
            "width": self.width,
            "alpha": self.alpha,
            "max_width": self.max_width,
        }

    # --- server ---------------------------------------------------------------------------
    def discover(
        self,
        reports: C.PrefixReports | Sequence[Mapping[str, Any]],
        *,
        ci_level: float = 0.95,
        n_total: int | None = None,
        chunk: int = 4096,
    ) -> C.DiscoveryResult:
        """Top-k items from stored reports (pure post-processing).

        ``n_total`` is the population the estimates refer to (default: the number of
        reports); a party's PEM run inside a federation passes its own size.
        """
        reports = self.check_reports(reports)
        n = len(reports)
        n_total = n if n_total is None else n_total
        by_level = C.split_by(reports.levels, self.groups, offset=1)
        sizes = [idx.size for idx in by_level]
        if min(sizes) == 0 and not C.noisy_statistics():
            raise C.InsufficientReportsError(f"every level group needs reports; group sizes are {sizes}")
        keyer = C.CandidateKeys()
        steps = C.steps_of(self.lengths)
        traces: list[C.LevelTrace] = []
        nodes: list[C.LevelNodes] = []
        hash_evals = 0
        cands = C.first_level(self.domain, self.lengths[0], self.prune_infeasible)
        kept_idx = np.zeros(0, dtype=np.int64)
        f_hat = np.zeros(0)
        est: C.LevelEstimator | None = None
        for i, length in enumerate(self.lengths, start=1):
            idx = by_level[i - 1]
            est = C.LevelEstimator(self.olh, reports.seeds[idx], reports.ys[idx], n_total, chunk)
            f_hat = est.estimate(keyer(cands, length)) if cands else np.zeros(0)
            hash_evals += est.hash_evaluations
            last = i == self.groups
            if last:
                kept_idx = keep_top(f_hat, self.k)
            elif self.keep == "top":
                kept_idx = keep_top(f_hat, self.width)
            else:
                kept_idx = keep_threshold(f_hat, est.sigma, self.alpha, self.k, self.max_width)
            kept = [cands[j] for j in kept_idx]
            nodes.append(C.LevelNodes(length, cands, f_hat, est.variance(f_hat), set() if last else set(kept)))
            traces.append(C.LevelTrace(i, length, int(idx.size), len(cands), len(kept), est.sigma))
            if not last:
                cands = C.extend(self.domain, kept, steps[i], self.lengths[i], self.prune_infeasible)
        consistent = C.consistent_tree(nodes)[-1]
        assert est is not None
        codes = [cands[j] for j in kept_idx]
        hitters = C.make_hitters(
            self.domain, codes, f_hat[kept_idx], est.variance(f_hat[kept_idx]), n_total, ci_level,
            consistent[kept_idx],
        )  # fmt: skip
        return C.DiscoveryResult(
            self.name, self.epsilon, self.k, n_total, hitters, traces, ci_level,
            diagnostics={"hash_evaluations": hash_evals, "key_collisions": keyer.collisions, "rounds": self.groups},
        )  # fmt: skip

    def final_level_estimator(self, reports: C.PrefixReports, n_total: int | None = None) -> C.LevelEstimator:
        """The last group's estimator (used to re-estimate items, e.g. IndPEM-R)."""
        idx = reports.levels == self.groups
        return C.LevelEstimator(
            self.olh, reports.seeds[idx], reports.ys[idx], len(reports) if n_total is None else n_total
        )


def threshold_of(sigma: float, candidates: int, alpha: float = 0.05) -> float:
    """Bonferroni threshold ``z_{1−α/|C|}·σ`` of the threshold variant (§9.1 example)."""
    return NormalDist().inv_cdf(1 - alpha / candidates) * sigma


def group_sigma(epsilon: float, group_size: int, g: int | None = None) -> float:
    """Standard deviation of one prefix frequency estimated from a group (Var* at f = 0)."""
    olh = C.make_olh(epsilon, g)
    return math.sqrt(olh.variance_approx_per_user / group_size)
