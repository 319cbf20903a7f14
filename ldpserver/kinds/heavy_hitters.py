"""Heavy hitters (PEM, TreeHist, TAP/TAPS): releases discover items from the scope's stored
raw reports on centrally noised statistics; the aggregate only counts reports per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from client_sdk.public_config import PublicConfig
from ldpserver.discovery_noise import DiscoveryNoise, discovery_queries
from ldpserver.kinds.base import KindAdapter, SeriesQuery, SeriesQueryError
from ldpserver.release_stats import CI_LEVEL, ScopeInputs, Withheld

CONSISTENCY = "hierarchical-consistency"
#: reports per step of the support counting in a release: the buffer is |candidates| ×
#: chunk × 8 bytes (≈ 14 MB at 1,700 candidates), part of the peak RSS
DISCOVERY_CHUNK = 1024


def _hitter(h: Any, rank: int, scale: int | None, local: bool = False) -> dict[str, Any]:
    out = {
        "rank": rank,
        "item": h.item,
        "code": str(h.code),
        "frequency": float(h.frequency),
        "variance": float(h.variance),
        "ci_lower": float(h.ci_lower),
        "ci_upper": float(h.ci_upper),
        "consistent_frequency": None if h.consistent_frequency is None else float(h.consistent_frequency),
        "p_value": None if getattr(h, "p_value", None) is None else float(h.p_value),
    }
    if not local:
        out["count"] = None if scale is None else float(h.frequency) * scale + 0.0
    return out


class HeavyHittersAdapter(KindAdapter):
    kind = "heavy_hitters"
    module_name = "client_sdk.heavy_hitters"
    takes_parties = True
    postprocessing = CONSISTENCY
    needs_raw_reports = True
    withheld_scopes = {
        "cumulative": "heavy hitters are released per epoch and per window only: cumulative discovery would need "
        "every raw report since the start"
    }
    has_heavy_hitters = True
    absent_item = ("not_in_top", "the item is not among this release's published (significant) top items")

    def derived_n(self, sdk: Any) -> bool:
        return True  # every report adds one count to its (party, level group) cell

    def tree_share(self) -> float:
        # half of ρ for the tree (sizes, min_reports), half for the discoveries
        return 0.5

    def discovery_scopes(self, release: Mapping[str, Any]) -> int:
        # the epoch scope and every window w: a device-epoch enters w window releases
        return 1 + sum(int(w) for w in release.get("windows", [1]) if int(w) > 1)

    def estimate_scope(self, sdk: Any, inputs: ScopeInputs) -> dict[str, Any]:
        """Discovery over the scope's stored raw reports (client_sdk.heavy_hitters) on centrally
        noised statistics (every level group's count and support-count query: ``DiscoveryNoise``),
        so items, scores, intervals, p-values and per-party figures (party sizes included) reveal
        only noisy statistics: global top items with counts from the noisy total; per-party top
        items (federated) as frequencies within the party. The SDK's significance test and
        intervals include the central noise (docs/heavy_hitters.md, "Publishing")."""
        from client_sdk.heavy_hitters import InsufficientReportsError
        from client_sdk.heavy_hitters import _common as hh_common

        if inputs.raw is None:  # no report at all although the noisy count passed min_reports
            raise Withheld("insufficient reports for discovery")
        budget = inputs.budget
        noise = DiscoveryNoise(
            budget.discovery_rho, discovery_queries(sdk), budget.reports_per_device_epoch, inputs.noise
        )
        options: dict[str, Any] = {"ci_level": CI_LEVEL, "chunk": DISCOVERY_CHUNK}
        if self.takes_dictionary(sdk):  # known-candidate mode: the analyst's uploaded dictionary
            if inputs.dictionary is None:
                raise Withheld("no dictionary uploaded yet: PUT /v1/collections/{id}/dictionary")
            options["dictionary"] = inputs.dictionary
        token = hh_common.CENTRAL_NOISE.set(noise)
        try:
            result = sdk.discover(inputs.raw, **options)
        except InsufficientReportsError:  # only for a scope without any report (noise off: see docs)
            raise Withheld("insufficient reports for discovery") from None
        finally:
            hh_common.CENTRAL_NOISE.reset(token)
        scale = max(0, inputs.noisy.n)
        out: dict[str, Any] = {
            "type": "heavy_hitters",
            "protocol": result.protocol,
            "k": int(result.k),
            "heavy_hitters": [_hitter(h, i + 1, scale) for i, h in enumerate(result.heavy_hitters)],
            # how many candidates were tested and withheld, the level and the correction (all
            # post-processing of the LDP reports; no exact count of users)
            "significance": result.significance,
        }
        if getattr(sdk, "federated", False):
            out["parties"] = {
                party: [_hitter(h, i + 1, None, local=True) for i, h in enumerate(hitters)]
                for party, hitters in sorted(result.local.items())
            }
        return out

    def postprocessing_note(self) -> dict[str, Any]:
        return {
            "method": CONSISTENCY,
            "field": "consistent_frequency",
            "description": "weighted least-squares consistency over the estimated prefix tree "
            "(Hay et al., VLDB 2010): every expanded prefix equals the sum of its children; intervals are "
            "those of the unbiased estimate; null when the frequency comes from the final estimation "
            "round (docs/heavy_hitters.md), which is not a tree node",
        }

    def estimator_note(self) -> str:
        return "the SDK's unbiased estimator (client_sdk.heavy_hitters discovery over the scope's stored raw reports)"

    def check_series_query(self, public: PublicConfig, sdk: Any, query: SeriesQuery) -> None:
        if query.scope == "cumulative":
            raise SeriesQueryError("/scope", "heavy hitters are released per epoch and per window only")
        parties = public.parties or []
        if query.party is not None and query.party not in parties:
            raise SeriesQueryError("/party", f"not a party of this collection ({parties})")
