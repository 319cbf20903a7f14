"""PEM — the Prefix Extending Method (Wang, Li, Jha, arXiv:1708.06674; IEEE TDSC 2019).

Privacy: epsilon-LDP per user. Each user is assigned, uniformly at random and independently
of its item, to one level group ``i`` (public) and sends exactly one OLH report (full ε) of
the length-ℓ_i prefix of its encoded item; groups are disjoint (parallel composition), and
everything the server does afterwards — choosing candidates, estimates, consistency,
top-k — is post-processing. Ledger charge: ε per user (docs/privacy.md).

Layout (as in the first author's published code, ``pem/pem.py``): ``γ = ⌈log2 k⌉``, ``G =
⌈(m − γ)/η⌉`` groups, prefix lengths ``ℓ_i = min(γ + iη, m)``. The server enumerates all
``2^ℓ_1`` first-level prefixes (not the published code's ``0..k−1``, which misses items
whose first prefix is not among the k smallest), estimates every candidate of level ``i``
from group ``i`` only, keeps the top ``2k`` non-negative ones (or those above a Bonferroni
significance threshold, ``keep="threshold"``) at intermediate levels and extends them by
every η-bit suffix (alphabet domains: every symbol). With the final round, a level crowded
by real prefixes keeps every one standing out of the noise (up to ``max_width``), candidates
that already end their item skip the width contest and go to the test with every group from
theirs on, and the items of just-missed prefixes are tested too (docs/heavy_hitters.md,
"Ended items" and "Near misses"). At the last level it publishes only valid items
significantly above zero (exact binomial p-values, Holm's correction over every candidate
tested), at most k; with the final estimation round (default) their frequencies and
intervals come from one more group that reports the full item and took no part in choosing
them (docs/heavy_hitters.md). The client needs no candidate list: all groups report in one
round, and the server can evaluate the stored reports of any epoch or window at any time.

Estimates are fractions of *all* users (group i is a uniform 1/G sample); their variance
is OLH's exact variance given the group plus the sampling variance of the group. The
result also carries the values after hierarchical consistency (Hay et al., VLDB 2010) over the estimated
tree: the root (frequency 1) and every expanded prefix, whose feasible children were all
estimated, equal the sum of their children.

>>> import numpy as np
>>> from client_sdk import heavy_hitters
>>> pem = heavy_hitters.create("pem", epsilon=4.0, k=2, domain={"type": "string", "max_bytes": 2})
>>> pem.lengths          # four prefix levels, then the final-estimation group (the full item)
(5, 9, 13, 16, 16)
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
from client_sdk.heavy_hitters.encoding import Domain, as_domain, parse_item
from client_sdk.mechanisms._base import Aggregate, PrivacyStatement


class PrefixClient:
    """Client side shared by PEM and TAP/TAPS: one OLH report of one level's prefix."""

    #: what a device's true value is: an item of the domain (a string or an integer)
    value_shape = "item"
    name = "prefix"
    mechanism = "prefix"  # the wire ``m``
    federated = False

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        eta: int | None = 4,
        g: int | None = None,
        prune_infeasible: bool = True,
        split: str | None = None,
        final_round: bool = True,
        alpha: float = 0.05,
    ) -> None:
        self.olh = C.make_olh(epsilon, g)
        self.epsilon = self.olh.epsilon
        self.k = C.check_int(k, "k", 1, 4096)
        self.domain = as_domain(domain)
        self.eta = C.check_eta(eta, self.domain)
        self.final_round = C.check_final_round(final_round)
        if split is None:
            split = C.FinalHeavySplit.name if self.final_round else C.UniformSplit.name
        allowed = tuple(C.SPLITS) if self.final_round else (C.UniformSplit.name,)
        self.prune_infeasible, self.split = C.check_prune_and_split(prune_infeasible, split, allowed)
        self.alpha = C.check_alpha(alpha)
        self.lengths = C.layout_lengths(self.domain, self.k, self.eta, self.final_round)
        C.check_first_level(self.lengths)

    def parse_value(self, text: str) -> Any:
        """A true item typed as text (a command line)."""
        return parse_item(self.domain, text)

    @property
    def prefix_lengths(self) -> tuple[int, ...]:
        """The lengths of the prefix-tree levels (without the final-estimation group)."""
        return self.lengths[:-1] if self.final_round else self.lengths

    def _check_hopeless(self, expected_reports: Any, width: int) -> int | None:
        """Creation-time refusal of configurations that cannot find anything (see
        :func:`~client_sdk.heavy_hitters._common.check_hopeless`)."""
        steps = C.steps_of(self.prefix_lengths)
        last = steps[-1] if len(steps) > 1 else self.prefix_lengths[0]
        candidates = min(width << last, 1 << min(self.domain.bits, 62))
        groups: float = self.groups
        if self.split.name == C.FinalHeavySplit.name:
            groups = 1 / C.FinalHeavySplit.share(self.groups)  # the test group's share of the users
        return C.check_hopeless(
            self.name if not self.federated else f"{self.name} (per party of average size)",
            self.epsilon,
            expected_reports,
            groups,
            self.k,
            candidates,
            self.alpha,
            g=self.g,
        )

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

    def decode_stored(self, texts: Sequence[str]) -> C.PrefixReports:
        """Decode payloads as the server stores them (compact sorted-key JSON), fast."""
        return C.decode_stored(texts, self.mechanism, self.groups, self.g, self._n_parties())

    def decode_stored_rows(self, block: str | bytes) -> tuple[np.ndarray, C.PrefixReports] | None:
        """(epochs, reports) of ``<epoch>\\t<payload>`` lines (text or UTF-8 bytes), or None (see _common)."""
        return C.decode_stored_rows(block, self.mechanism, self.groups, self.g, self._n_parties())

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
    """The ``width`` largest non-negative estimates (as the published code; 2k as a safety margin)."""
    return C.top_indices(f_hat, width, drop_negative=True)


def keep_top_crowded(f_hat: np.ndarray, sigma: float, width: int, max_width: int) -> np.ndarray:
    """``keep="top"`` with the final round: the ``width`` largest non-negative estimates and,
    where more candidates than that stand out — every estimate at or above
    ``z_{1−1/|C|}·σ``, the level that pure noise reaches once in expectation among |C|
    null candidates — all of those, at most ``max(width, max_width)``. A shallow level whose
    real prefixes each aggregate many items ("th", "Ma", …) is crowded by more than
    ``width`` of them; keeping only ``width`` there drops real prefixes that lie far above
    the noise."""
    order = C.top_indices(f_hat, max(width, max_width), drop_negative=True)
    z = NormalDist().inv_cdf(1 - 1 / max(2, f_hat.size))
    standing_out = int(np.count_nonzero(f_hat[order] >= z * sigma))
    return order[: max(width, standing_out)]


def keep_threshold(f_hat: np.ndarray, sigma: float, alpha: float, k: int, max_width: int) -> np.ndarray:
    """Threshold variant (this product's addition): every candidate with ``f̂ ≥ z_{1−α/|C|}·σ`` (Bonferroni),
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
        eta: int | None = None,
        g: int | None = None,
        keep: str = "top",
        width: int | None = None,
        alpha: float = 0.05,
        max_width: int | None = None,
        prune_infeasible: bool = True,
        split: str | None = None,
        final_round: bool = True,
        expected_reports: int | None = None,
    ) -> None:
        super().__init__(epsilon, k, domain, eta, g, prune_infeasible, split, final_round, alpha)
        if keep not in ("top", "threshold"):
            raise ConfigError(f"keep must be 'top' or 'threshold', got {keep!r}")
        self.keep = keep
        self.width = C.check_int(2 * self.k if width is None else width, "width", self.k, 1 << 14)
        self.max_width = C.check_int(4 * self.k if max_width is None else max_width, "max_width", self.k, 1 << 14)
        # the widest a level can keep: top-2k, up to max_width on crowded levels (final round), or the threshold cap
        widest = self.width if keep == "top" and not self.final_round else max(self.width, self.max_width)
        self.expected_reports = self._check_hopeless(expected_reports, widest)

    @property
    def config(self) -> dict[str, Any]:
        return {
            **self._client_config(),
            "keep": self.keep,
            "width": self.width,
            "alpha": self.alpha,
            "max_width": self.max_width,
            "final_round": self.final_round,
            "expected_reports": self.expected_reports,
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
        """Significant heavy hitters from stored reports (pure post-processing).

        Levels 1..G grow the prefix tree; every valid full-length candidate of level G is
        tested (H0: f = 0, one-sided, Holm over all of them) with group G's estimate; at
        most k significant ones are published. With ``final_round`` their frequencies and
        intervals come from the final group alone, which took no part in choosing or
        testing them: unbiased, and the interval's coverage holds for published items.
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
        prefix_lengths = self.prefix_lengths
        steps = C.steps_of(prefix_lengths)
        traces: list[C.LevelTrace] = []
        nodes: list[C.LevelNodes] = []
        hash_evals = 0
        cands = C.first_level(self.domain, prefix_lengths[0], self.prune_infeasible)
        f_hat = np.zeros(0)
        est: C.LevelEstimator | None = None
        done: list[tuple[int, int]] = []  # (code, level) of items whose prefix ended (held a pad) when kept
        last_level = len(prefix_lengths)
        pooled = {"sum": np.zeros(0), "users": np.zeros(0), "noise": np.zeros(0)}
        for i, length in enumerate(prefix_lengths, start=1):
            idx = by_level[i - 1]
            est = C.LevelEstimator(self.olh, reports.seeds[idx], reports.ys[idx], n_total, chunk)
            # one support query per group (central noise budgets one): the level's candidates
            # and the length-ℓ_i prefixes of the items that ended at an earlier level
            ended = [c >> (self.domain.bits - length) for c, _ in done]
            queried = cands + ended
            f_all = est.estimate(keyer(queried, length)) if queried else np.zeros(0)
            f_hat = f_all[: len(cands)]
            if ended:
                self._pool(pooled, 0, f_all[len(cands) :], est)
            hash_evals += est.hash_evaluations
            last = i == last_level
            open_idx = np.arange(len(cands))
            if self.final_round and not last:
                # a candidate that already ends its item (it holds a pad: the pad child of a
                # prefix kept at level i−1) has one feasible extension, all pads. It does not
                # compete for the width: it goes straight to the test, whatever its estimate,
                # so this group (which took no part in choosing it) joins its pooled test,
                # as does every later prefix group
                complete = np.fromiter(
                    (self.domain.is_complete_prefix(c, length) for c in cands), dtype=bool, count=len(cands)
                )
                if complete.any():
                    shift = self.domain.bits - length
                    start = len(done)
                    done.extend((cands[j] << shift, i) for j in np.nonzero(complete)[0])
                    self._pool(pooled, start, f_hat[complete], est)
                    open_idx = np.nonzero(~complete)[0]
            if last:
                kept_idx = open_idx
            elif self.keep == "top" and self.final_round:
                kept_idx = open_idx[keep_top_crowded(f_hat[open_idx], est.sigma, self.width, self.max_width)]
            elif self.keep == "top":
                kept_idx = keep_top(f_hat, self.width)
            else:
                kept_idx = open_idx[keep_threshold(f_hat[open_idx], est.sigma, self.alpha, self.k, self.max_width)]
            kept = [cands[j] for j in kept_idx]
            if self.final_round and not last:
                self._rescue(done, cands, f_hat, open_idx, kept_idx, i, prefix_lengths)
            nodes.append(C.LevelNodes(length, cands, f_hat, est.variance(f_hat), set() if last else set(kept)))
            traces.append(C.LevelTrace(i, length, int(idx.size), len(cands), len(kept), est.sigma))
            if not last:
                cands = C.extend(self.domain, kept, steps[i], prefix_lengths[i], self.prune_infeasible)
        assert est is not None
        if self.final_round:
            # test: every candidate of the last level plus every ended item, with group G's
            # estimate of the full code (independent of how they were chosen); publish:
            # frequencies and intervals from the final group alone, which took no part in
            # choosing or testing them (unbiased; the intervals cover at their level)
            self._pool(pooled, len(done), np.zeros(0), None)
            users = np.maximum(pooled["users"], 1.0)
            tested = cands + [c for c, _ in done]
            f_test = np.concatenate([f_hat, pooled["sum"] / users])
            trials = np.concatenate([np.full(len(cands), float(est.n)), users])
            noise = np.concatenate([np.full(len(cands), est.support_noise_variance), pooled["noise"]])
            chosen = C.select_significant(
                self.domain, tested, f_test, self.k, self.alpha,
                counts=C.support_of(f_test, self.olh, trials), trials=trials, q=self.olh.q_star, noise_var=noise,
            )  # fmt: skip
            pick = chosen.published
            codes = [tested[j] for j in pick]
            idx = by_level[-1]
            final = C.LevelEstimator(self.olh, reports.seeds[idx], reports.ys[idx], n_total, chunk)
            f_pub = final.estimate(keyer(codes, self.domain.bits)) if codes else np.zeros(0)
            var_pub = final.variance(f_pub)
            hash_evals += final.hash_evaluations
            traces.append(C.LevelTrace(self.groups, self.domain.bits, int(idx.size), len(codes), len(codes),
                                       final.sigma, None, "final"))  # fmt: skip
            cons_pub = None
        else:
            consistent = C.consistent_tree(nodes)[-1]
            chosen = C.select_significant(
                self.domain, cands, f_hat, self.k, self.alpha,
                counts=C.support_of(f_hat, self.olh, est.n), trials=est.n, q=self.olh.q_star,
                noise_var=est.support_noise_variance,
            )  # fmt: skip
            pick = chosen.published
            codes = [cands[j] for j in pick]
            f_pub, var_pub = f_hat[pick], est.variance(f_hat[pick])
            cons_pub = consistent[pick]
        order = np.argsort(-f_pub, kind="stable")
        hitters = C.make_hitters(
            self.domain, [codes[j] for j in order], f_pub[order], var_pub[order], n_total, ci_level,
            None if cons_pub is None else cons_pub[order], chosen.p_adjusted[pick][order],
        )  # fmt: skip
        return C.DiscoveryResult(
            self.name, self.epsilon, self.k, n_total, hitters, traces, ci_level,
            diagnostics={"hash_evaluations": hash_evals, "key_collisions": keyer.collisions, "rounds": self.groups},
            significance=chosen.stats,
        )  # fmt: skip

    def _rescue(
        self,
        done: list[tuple[int, int]],
        cands: list[int],
        f_hat: np.ndarray,
        open_idx: np.ndarray,
        kept_idx: np.ndarray,
        i: int,
        prefix_lengths: Sequence[int],
    ) -> None:
        """Near misses: the ``width`` best open prefixes of level i that were not kept (with a
        non-negative estimate) are not extended, but the item each one would be on its own
        (the prefix followed by pads: "was" for the prefix "was") goes to the test, as an
        ended item from level i+1 on — provided its length-ℓ_{i+1} prefix already holds a
        pad, so that every group from i+1 on estimates exactly that item. Group i chose it;
        groups i+1..G, which test it, did not. A short item that misses the width contest by
        noise is still found; the test family grows by at most ``width`` per level."""
        following = prefix_lengths[i]  # ℓ_{i+1}
        length = prefix_lengths[i - 1]
        rest = np.setdiff1d(open_idx, kept_idx, assume_unique=True)
        rest = rest[f_hat[rest] >= 0]
        rest = rest[np.argsort(-f_hat[rest], kind="stable")][: self.width]
        bits = self.domain.bits
        for j in rest:
            code = cands[j] << (bits - length)
            if self.domain.is_complete_prefix(code >> (bits - following), following) and self.domain.is_valid_code(
                code
            ):
                done.append((code, i + 1))

    @staticmethod
    def _pool(pooled: dict[str, np.ndarray], start: int, f: np.ndarray, est: C.LevelEstimator | None) -> None:
        """Test statistics of ended items (``done``, in order): an item that ended at level j
        (its length-ℓ_j prefix holds a pad) is estimated by every prefix group i ≥ j (its
        length-ℓ_i prefix is the item plus pads) and none of them took part in choosing it
        (only its parent's survival at level j−1 did), so the support counts add up — a
        Binomial(Σ N_i, q*) under H0 — and the size-weighted mean of the estimates is
        unbiased and independent of the selection. ``pooled`` holds, per ended item, Σ N_i·f̂_i,
        Σ N_i and the summed central-noise variance per count; ``f`` are one group's estimates
        of the items ``start .. start + len(f) − 1`` (with ``est`` None: only grow to ``start``)."""
        grow = start + f.size - pooled["sum"].size
        if grow > 0:
            for key in pooled:
                pooled[key] = np.concatenate([pooled[key], np.zeros(grow)])
        if est is not None and f.size:
            sl = slice(start, start + f.size)
            pooled["sum"][sl] += est.n * f
            pooled["users"][sl] += est.n
            pooled["noise"][sl] += est.support_noise_variance

    def estimate_candidates(
        self,
        reports: C.PrefixReports | Sequence[Mapping[str, Any]],
        candidates: Sequence[Any],
        *,
        ci_level: float = 0.95,
        chunk: int = 4096,
    ) -> C.DiscoveryResult:
        """Known-candidate mode: estimate every item of an analyst-supplied dictionary from
        the full-item reports (the final group; a large-domain oracle: OLH over the items'
        32-bit keys), test each (Holm over the dictionary) and publish the significant
        ones, all of them ranked (not only k). Pure post-processing: no privacy cost."""
        if not self.final_round:
            raise ConfigError("known-candidate mode needs the final estimation round (final_round=true)")
        reports = self.check_reports(reports)
        idx = reports.levels == self.groups
        if not idx.any():
            raise C.InsufficientReportsError("the final group has no report")
        return known_candidates(
            self, C.LevelEstimator(self.olh, reports.seeds[idx], reports.ys[idx], len(reports), chunk),
            candidates, ci_level,
        )  # fmt: skip

    def final_level_estimator(self, reports: C.PrefixReports, n_total: int | None = None) -> C.LevelEstimator:
        """The last group's estimator (used to re-estimate items, e.g. IndPEM-R)."""
        idx = reports.levels == self.groups
        return C.LevelEstimator(
            self.olh, reports.seeds[idx], reports.ys[idx], len(reports) if n_total is None else n_total
        )


def known_candidates(
    protocol: Any, est: C.LevelEstimator, candidates: Sequence[Any], ci_level: float
) -> C.DiscoveryResult:
    """Estimate, test (Holm) and publish a dictionary of candidate items from one group of
    full-item reports (PEM's final group, TreeHist's full-item reports). Duplicates and
    items the domain cannot encode are refused (ItemEncodingError / ValueError)."""
    domain = protocol.domain
    if len(candidates) > MAX_CANDIDATES:
        raise ConfigError(f"at most {MAX_CANDIDATES} candidates, got {len(candidates)}")
    enc = domain.encode_many(candidates)
    if len(enc.words) != len(candidates):
        raise ValueError("candidates must be distinct items")
    from client_sdk.heavy_hitters.encoding import _keys_from_words

    keys = _keys_from_words(enc.words, domain.bits)[enc.inverse]
    block = max(1, (1 << 22) // max(1, min(est.chunk, est.n)))  # ≤ 32 MB of hash buffer per block
    f = np.concatenate([est.estimate(keys[j : j + block]) for j in range(0, keys.size, block)]) if keys.size else keys
    f = np.asarray(f, dtype=np.float64)
    codes = [domain.encode(c) for c in candidates]
    chosen = C.select_significant(
        domain, codes, f, len(codes), protocol.alpha,
        counts=C.support_of(f, est.olh, est.n), trials=est.n, q=est.olh.q_star, noise_var=est.support_noise_variance,
    )  # fmt: skip
    pick = chosen.published
    order = pick[np.argsort(-f[pick], kind="stable")]
    hitters = C.make_hitters(
        domain, [codes[j] for j in order], f[order], est.variance(f[order]), est.n_total, ci_level,
        None, chosen.p_adjusted[order],
    )  # fmt: skip
    return C.DiscoveryResult(
        f"{protocol.name}-known", protocol.epsilon, len(codes), est.n_total, hitters, [], ci_level,
        diagnostics={"hash_evaluations": est.hash_evaluations}, significance=chosen.stats,
    )  # fmt: skip


#: the largest analyst-supplied dictionary of known-candidate mode
MAX_CANDIDATES = 1_000_000


def threshold_of(sigma: float, candidates: int, alpha: float = 0.05) -> float:
    """Bonferroni threshold ``z_{1−α/|C|}·σ`` of the threshold variant."""
    return NormalDist().inv_cdf(1 - alpha / candidates) * sigma


def group_sigma(epsilon: float, group_size: int, g: int | None = None) -> float:
    """Standard deviation of one prefix frequency estimated from a group (Var* at f = 0)."""
    olh = C.make_olh(epsilon, g)
    return math.sqrt(olh.variance_approx_per_user / group_size)
