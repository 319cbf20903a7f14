"""TreeHist (Bassily, Nissim, Stemmer, Thakurta, NeurIPS 2017) as implemented in the
third-party pure-LDP library (pure-ldp's ``heavy_hitters/treehistogram``).

Privacy: epsilon-LDP per user by sequential composition: every user sends two OLH reports
with ε/2 each — one of a uniformly random level's prefix (the level is drawn from the OS
CSPRNG independently of the item, and is public) and one of the full item. The server side
is post-processing. Ledger charge: ε per user (docs/privacy.md).

As in pure-ldp: ``L = ⌈m/η⌉`` fragments, prefix lengths ``ℓ_j = min(jη, m)``; the server
starts from all ``2^η`` one-fragment prefixes and, level by level, keeps the ``k`` largest
prefix estimates (top-k mode) or every prefix whose estimate reaches an explicit
*frequency* ``threshold`` (threshold mode; pure-ldp's default ``n/100`` mixes units, so there is
no default), and extends the kept prefixes by every η-bit fragment. pure-ldp estimates a level's
prefixes from *all* users' prefix reports and multiplies by ``L``
(``fragment_estimator="pooled"``, the default here, faithful to pure-ldp); the alternative
``"level"`` uses only that level's group (variance lower by a factor of about L). The
surviving full-length strings are the candidates; their frequencies come from the
full-item reports of all users (independent of the selection, so unbiased for the
reported items), and the output is the top-k of them by that estimate (all of them when
``width = k``, as in pure-ldp; a larger ``width`` is a safety margin as in PEM). No
hierarchical consistency is applied to these (they are not prefix-tree estimates).

Differences from pure-ldp, all documented: keys include the prefix length instead of padding
with a reserved character (same effect: prefixes of different lengths never collide);
``L = ⌈m/η⌉`` with a shorter last step instead of ``int(m/η)``, which silently dropped
the tail; prefixes no item can have are pruned (``prune_infeasible``).

>>> import numpy as np
>>> th = TreeHist(epsilon=6.0, k=2, domain={"type": "integer", "bits": 8}, eta=4)
>>> th.lengths, th.olh.epsilon
((4, 8), 3.0)
>>> values = np.repeat([7, 200, 31], [6000, 3000, 1000])
>>> th.discover(th.perturb_batch(values, np.random.default_rng(5))).items
[7, 200]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk.errors import ConfigError
from client_sdk.heavy_hitters import _common as C
from client_sdk.heavy_hitters.encoding import Domain, EncodedItems, as_domain, parse_item, prefix_key
from client_sdk.mechanisms._base import PrivacyStatement, validate_epsilon


class TreeHist(C.GroupCounts):
    #: what a device's true value is: an item of the domain (a string or an integer)
    value_shape = "item"
    name = "treehist"
    mechanism = "treehist"

    def parse_value(self, text: str) -> Any:
        """A true item typed as text (a command line)."""
        return parse_item(self.domain, text)

    def __init__(
        self,
        epsilon: float,
        k: int,
        domain: Domain | Mapping[str, Any],
        eta: int | None = None,
        g: int | None = None,
        width: int | None = None,
        threshold: float | None = None,
        fragment_estimator: str = "pooled",
        prune_infeasible: bool = True,
        split: str = "uniform",
        alpha: float = 0.05,
        expected_reports: int | None = None,
    ) -> None:
        self.epsilon = validate_epsilon(epsilon)
        self.olh = C.make_olh(self.epsilon / 2, g)  # both reports: OLH with ε/2 and the same g
        self.k = C.check_int(k, "k", 1, 4096)
        self.domain = as_domain(domain)
        self.eta = C.check_eta(eta, self.domain, C.MAX_FIRST_LEVEL_BITS)
        self.alpha = C.check_alpha(alpha)
        self.width = C.check_int(self.k if width is None else width, "width", 1, 1 << 14)
        self.threshold = None if threshold is None else C.check_float(threshold, "threshold")
        if fragment_estimator not in ("pooled", "level"):
            raise ConfigError(f"fragment_estimator must be 'pooled' or 'level', got {fragment_estimator!r}")
        self.fragment_estimator = fragment_estimator
        self.prune_infeasible, self.split = C.check_prune_and_split(prune_infeasible, split, (C.UniformSplit.name,))
        m = self.domain.bits
        self.lengths = tuple(min(j * self.eta, m) for j in range(1, -(-m // self.eta) + 1))
        # the last level's candidates are tested with the level's prefix estimate: pooled
        # over all users (× L, so L² times the per-user variance) or one group of n/L
        groups = len(self.lengths) ** 2 if fragment_estimator == "pooled" else len(self.lengths)
        last = C.steps_of(self.lengths)[-1] if len(self.lengths) > 1 else self.lengths[0]
        self.expected_reports = C.check_hopeless(
            self.name, self.epsilon, expected_reports, groups, self.k, min(self.width << last, 1 << min(m, 62)),
            self.alpha, per_report_epsilon=0.5, g=g,
        )  # fmt: skip

    @property
    def groups(self) -> int:
        return len(self.lengths)

    @property
    def g(self) -> int:
        return self.olh.g

    @property
    def config(self) -> dict[str, Any]:
        return {
            **C.prefix_config(self),
            "width": self.width,
            "threshold": self.threshold,
            "fragment_estimator": self.fragment_estimator,
            "alpha": self.alpha,
            "expected_reports": self.expected_reports,
        }

    @property
    def privacy(self) -> PrivacyStatement:
        return PrivacyStatement(
            self.epsilon, "record", self.name, {"epsilon_per_report": self.olh.epsilon, "reports": 2, "g": self.g}
        )

    # --- client ---------------------------------------------------------------------------
    def perturb(self, item: Any, party: Any = None) -> dict[str, Any]:
        """Two ε/2 OLH reports in one payload: a random level's prefix and the full item."""
        if party is not None:
            raise ValueError("treehist is not federated; do not pass a party")
        code = self.domain.encode(item)
        level = self.split.draw(self.groups)
        length = self.lengths[level - 1]
        m = self.domain.bits
        first = self.olh.perturb_key(prefix_key(code >> (m - length), length))
        second = self.olh.perturb_key(prefix_key(code, m))
        return {
            "v": C.WIRE_VERSION, "m": self.mechanism, "l": level, "s": first["s"], "y": first["y"],
            "s2": second["s"], "y2": second["y"],
        }  # fmt: skip

    def perturb_batch(self, items: Any, rng: np.random.Generator, parties: Any = None) -> C.PrefixReports:
        """Vectorised reports; ``parties`` (optional) is only carried along, for per-party runs."""
        enc = items if isinstance(items, EncodedItems) else self.domain.encode_many(items)
        n = len(enc)
        levels = self.split.draw_batch(n, self.groups, rng)
        keys = C.level_keys(enc, self.domain, levels, self.lengths)
        prefix = self.olh.perturb_keys(keys, rng)
        full = self.olh.perturb_keys(enc.keys(self.domain.bits)[enc.inverse], rng)
        party_arr = None if parties is None else np.asarray(parties, dtype=np.int64)
        return C.PrefixReports(levels, prefix.seeds, prefix.ys, party_arr, full.seeds, full.ys)

    def encode(self, reports: C.PrefixReports) -> list[dict[str, Any]]:
        plain = C.PrefixReports(reports.levels, reports.seeds, reports.ys, None, reports.item_seeds, reports.item_ys)
        return C.encode_payloads(plain, self.mechanism)

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> C.PrefixReports:
        return C.decode_payloads(payloads, self.mechanism, self.groups, self.g, None, item_g=self.g)

    def decode_stored(self, texts: Sequence[str]) -> C.PrefixReports:
        """Decode payloads as the server stores them (compact sorted-key JSON), fast."""
        return C.decode_stored(texts, self.mechanism, self.groups, self.g, None, item_g=self.g)

    def decode_stored_rows(self, block: str | bytes) -> tuple[np.ndarray, C.PrefixReports] | None:
        """(epochs, reports) of ``<epoch>\\t<payload>`` lines (text or UTF-8 bytes), or None (see _common)."""
        return C.decode_stored_rows(block, self.mechanism, self.groups, self.g, None, item_g=self.g)

    # --- server ---------------------------------------------------------------------------
    def discover(
        self,
        reports: C.PrefixReports | Sequence[Mapping[str, Any]],
        *,
        ci_level: float = 0.95,
        n_total: int | None = None,
        chunk: int = 4096,
    ) -> C.DiscoveryResult:
        if isinstance(reports, Sequence):
            reports = self.decode(reports)
        reports = C.check_reports(reports, self.groups, self.g, None, item_g=self.g)
        n = len(reports)
        n_total = n if n_total is None else n_total
        by_level = C.split_by(reports.levels, self.groups, offset=1)
        sizes = [idx.size for idx in by_level]
        if self.fragment_estimator == "level" and min(sizes) == 0 and not C.noisy_statistics():
            raise C.InsufficientReportsError(f"every level group needs reports; group sizes are {sizes}")
        keyer = C.CandidateKeys()
        steps = C.steps_of(self.lengths)
        pooled = C.LevelEstimator(self.olh, reports.seeds, reports.ys, n_total, chunk)
        traces: list[C.LevelTrace] = []
        hash_evals = 0
        cands = C.first_level(self.domain, self.lengths[0], self.prune_infeasible)
        kept: list[int] = []
        for j, length in enumerate(self.lengths, start=1):
            if self.fragment_estimator == "pooled":
                est, scale = pooled, float(self.groups)
            else:
                idx = by_level[j - 1]
                est, scale = C.LevelEstimator(self.olh, reports.seeds[idx], reports.ys[idx], n_total, chunk), 1.0
            before = est.hash_evaluations
            f_hat = est.estimate(keyer(cands, length), scale=scale) if cands else np.zeros(0)
            hash_evals += est.hash_evaluations - before
            if self.threshold is None:
                kept_idx = C.top_indices(f_hat, self.width)
            else:
                passing = np.nonzero(f_hat >= self.threshold)[0]
                kept_idx = passing[np.argsort(-f_hat[passing], kind="stable")][: 1 << 14]
            kept = [cands[i] for i in kept_idx]
            traces.append(C.LevelTrace(j, length, int(sizes[j - 1]), len(cands), len(kept), scale * est.sigma))
            if j < self.groups:
                cands = C.extend(self.domain, kept, steps[j], self.lengths[j], self.prune_infeasible)
        # every candidate of the last level is tested with its prefix estimate (Holm); the
        # published ones are estimated from the full-item reports, which took no part in
        # choosing or testing them (unbiased; honest intervals). The top-k (all, in
        # threshold mode) of the significant ones by the test estimate are published.
        limit = self.k if self.threshold is None else len(cands)
        chosen = C.select_significant(
            self.domain, cands, f_hat, limit, self.alpha,
            counts=C.support_of(f_hat, self.olh, est.n, scale), trials=est.n, q=self.olh.q_star,
            noise_var=est.support_noise_variance,
        )  # fmt: skip
        codes = [cands[i] for i in chosen.published]
        word = C.LevelEstimator(self.olh, reports.item_seeds, reports.item_ys, n_total, chunk)  # type: ignore[arg-type]
        f_word = word.estimate(keyer(codes, self.domain.bits)) if codes else np.zeros(0)
        hash_evals += word.hash_evaluations
        order = np.argsort(-f_word, kind="stable")
        hitters = C.make_hitters(
            self.domain, [codes[i] for i in order], f_word[order], word.variance(f_word[order]), n_total, ci_level,
            None, chosen.p_adjusted[chosen.published][order],
        )  # fmt: skip
        return C.DiscoveryResult(
            self.name, self.epsilon, self.k, n_total, hitters, traces, ci_level,
            diagnostics={"hash_evaluations": hash_evals, "key_collisions": keyer.collisions, "rounds": self.groups},
            significance=chosen.stats,
        )  # fmt: skip

    def estimate_candidates(
        self, reports: C.PrefixReports | Sequence[Mapping[str, Any]], candidates: Sequence[Any], *,
        ci_level: float = 0.95, chunk: int = 4096,
    ) -> C.DiscoveryResult:  # fmt: skip
        """Known-candidate mode from the full-item reports (see PEM.estimate_candidates)."""
        from client_sdk.heavy_hitters.pem import known_candidates

        if isinstance(reports, Sequence):
            reports = self.decode(reports)
        reports = C.check_reports(reports, self.groups, self.g, None, item_g=self.g)
        word = C.LevelEstimator(self.olh, reports.item_seeds, reports.item_ys, len(reports), chunk)  # type: ignore[arg-type]
        return known_candidates(self, word, candidates, ci_level)

    def final_level_estimator(self, reports: C.PrefixReports, n_total: int | None = None) -> C.LevelEstimator:
        """Estimator of full items from the full-item reports (for mode-R merging)."""
        assert reports.item_seeds is not None and reports.item_ys is not None  # TreeHist reports carry the item
        return C.LevelEstimator(
            self.olh, reports.item_seeds, reports.item_ys, len(reports) if n_total is None else n_total
        )

    def __repr__(self) -> str:
        return f"TreeHist(epsilon={self.epsilon}, k={self.k}, domain={self.domain.config})"
