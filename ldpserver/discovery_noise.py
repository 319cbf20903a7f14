"""Central noise on a heavy-hitter discovery's statistics (the counts and support queries the
SDK's discovery reads), so a release's heavy hitters rest on noisy statistics only.

Its privacy accounting (ρ per device-epoch, split over the queries a report enters) is part
of the release budget in :mod:`ldpserver.release_noise`; docs/releases.md and
docs/privacy.md state the guarantee.
"""

from __future__ import annotations

import itertools
import math
import weakref
from typing import Any

import numpy as np

from ldpserver.release_noise import VectorNoise

# --- heavy hitters: noise on the statistics discovery reads --------------------------------------


def discovery_queries(sdk: Any) -> tuple[int, int | None]:
    """(Q, per-estimator limit): the most noised statistics one report enters in one
    heavy-hitter discovery, and — where the protocol's estimators partition the reports —
    the most draws any one estimator may make (enforced by :class:`DiscoveryNoise`).

    PEM: each report is in exactly one level group (``split_by`` on its level), whose
    estimator draws its count and one support query: Q = 2. TAP/TAPS: each report is in one
    (party, level group) estimator: its count, the one query at its level, and one
    re-estimation query (mode R): Q = 3. TreeHist: estimators overlap (a pooled one over all
    reports, the level groups, the item estimator), so every draw of the discovery is
    counted against every report: Q = 2G + 3 (pooled count, G counts and G queries or G
    pooled queries, the item estimator's count and query), enforced as a total. Known
    candidates: each report is in one group, the screen (one draw: its noisy top-m) or the
    test (its count and one support query): Q = 2."""
    groups = int(sdk.groups)
    protocol = sdk.config.get("protocol")
    if protocol == "treehist":
        return 2 * groups + 3, None
    if protocol in ("tap", "taps"):
        return 3, 3
    return 2, 2


class DiscoveryNoise:
    """Discrete Gaussian noise on a heavy-hitter discovery's statistics, installed as
    ``client_sdk.heavy_hitters._common.CENTRAL_NOISE`` for the duration of one scope's
    discovery. Each draw that a report enters costs ``rho / queries``: a count moves by at
    most ``u`` (reports per device-epoch), a support query over K keys by at most ``u·sqrt(B)``
    in L2 (each report supports each key 0 or 1 times, and reports supporting more than B
    keys are dropped from the query: :meth:`support_bound`), so σ is scaled to B and every
    draw costs the same ρ whatever K is (adaptively chosen candidate sets compose at a
    fixed cost). A report enters at most ``queries`` draws (:func:`discovery_queries`); more draws
    than budgeted raise (the scope is then not released)."""

    def __init__(
        self,
        rho: float,
        queries: tuple[int, int | None],
        reports_per_device: int,
        noise: VectorNoise,
    ) -> None:
        self.queries, self.per_estimator = queries
        self.rho_per_query = rho / self.queries
        self.u = reports_per_device
        self.noise = noise
        self.drawn = 0
        self.by_estimator: dict[int, int] = {}  # draws per estimator (its serial number)
        # a serial number per estimator, never reused (an id() may be, once its owner is
        # gone), without keeping the estimators — and their level's reports — alive
        self._serials: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._next_serial = itertools.count()

    def serial(self, owner: object) -> int:
        """The estimator's serial number (its key in ``by_estimator``)."""
        key = self._serials.get(owner)
        if key is None:
            key = self._serials[owner] = next(self._next_serial)
        return key

    def _draw(self, owner: object) -> None:
        """Count one noisy statistic against the budget (raises past it)."""
        self.drawn += 1
        key = self.serial(owner)
        self.by_estimator[key] = self.by_estimator.get(key, 0) + 1
        if self.per_estimator is None and self.drawn > self.queries:
            raise RuntimeError(f"discovery drew more than its {self.queries} budgeted noisy statistics")
        if self.per_estimator is not None and self.by_estimator[key] > self.per_estimator:
            raise RuntimeError(f"a level group's estimator drew more than its {self.per_estimator} budgeted statistics")

    def _sigma(self, size: int, owner: object) -> float:
        self._draw(owner)
        return self.u * math.sqrt(max(1, size)) / math.sqrt(2.0 * self.rho_per_query)

    def top_scale(self, m: int) -> float:
        """The Gumbel scale of a noisy top-m whose cost is one draw's ρ: one-shot top-m with
        Gumbel noise of scale β is m·(u/β)²/8-zCDP for monotone counts that one device moves by
        at most u each (OpenDP ``make_noisy_top_k``; tested against its privacy map)."""
        return self.u * math.sqrt(max(1, m) / (8.0 * self.rho_per_query))

    def select_top(self, counts: np.ndarray, m: int, owner: object) -> np.ndarray:
        """Indices of m of ``counts`` by report-noisy-max (Gumbel; one draw of the budget):
        a known-candidate screen's choice of buckets, whatever their number."""
        self._draw(owner)
        return self.noise.top_k(np.asarray(counts, dtype=np.int64), m, self.top_scale(m))

    def count(self, n: int, owner: object) -> int:
        return int(self.noise.add(np.asarray([n], dtype=np.int64), self._sigma(1, owner))[0])

    @staticmethod
    def support_bound(keys: int, g: int) -> int:
        """B: the most keys one report may support in a query (reports supporting more are
        dropped from it, so a report moves the counts by at most sqrt(B) in L2). An honest
        report supports its own key with probability p and each other key with probability
        about 1/g: B = 1 + ⌈K/g + 8·sqrt(K/g + 1)⌉ is exceeded by an honest report with
        probability below 1e-6 (tested), so clipping costs no accuracy in practice."""
        mean = keys / g
        return int(min(keys, 1 + math.ceil(mean + 8.0 * math.sqrt(mean + 1.0))))

    def support(self, counts: np.ndarray, owner: object, bound: int) -> tuple[np.ndarray, float]:
        counts = np.asarray(counts, dtype=np.int64)
        sigma = self._sigma(bound, owner)
        return self.noise.add(counts, sigma), sigma**2
