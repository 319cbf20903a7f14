"""Kinds whose releases are histograms: frequency oracles, longitudinal (memoized) protocols
and multidimensional collections (one histogram per attribute)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from client_sdk.public_config import PublicConfig
from ldpserver import release_noise
from ldpserver.kinds.base import KindAdapter, SeriesQuery, SeriesQueryError
from ldpserver.release_stats import ScopeInputs, Z
from ldpserver.services.privacy import PrivacyAssessment, assess_frequency_oracle

NORM_SUB = "norm-sub"


def histogram(est: Any, added: np.ndarray, scale: int) -> dict[str, Any]:
    """One unbiased Estimate from noisy statistics: raw, variance = LDP plug-in + central
    noise, interval, Norm-Sub, counts scaled by the noisy count."""
    post = est.postprocessed(NORM_SUB).frequencies
    freqs = np.asarray(est.frequencies, dtype=np.float64)
    variance = np.asarray(est.variance, dtype=np.float64) + added
    half = Z * np.sqrt(variance)
    return {
        "domain_size": int(freqs.size),
        "frequencies": freqs.tolist(),
        "variance": variance.tolist(),
        "ci_lower": (freqs - half).tolist(),
        "ci_upper": (freqs + half).tolist(),
        "postprocessed": np.asarray(post, dtype=np.float64).tolist(),
        "counts": (freqs * scale + 0.0).tolist(),  # + 0.0: no negative zeros
    }


def _index_item(item: str, k: int | None) -> None:
    if not (item.isascii() and item.isdigit()) or (k is not None and int(item) >= k):
        bound = f"[0, {k})" if k is not None else "the domain"
        raise SeriesQueryError("/item", f"must be a value index in {bound}")


class HistogramAdapter(KindAdapter):
    """One histogram over ``[0, domain_size)`` per release scope."""

    postprocessing = NORM_SUB

    def estimable(self, data: Mapping[str, Any]) -> Any:
        """The SDK aggregate of a scope's noisy statistics, ready for ``sdk.estimate``."""
        return self.aggregate_from_dict(data)

    def flat_frequencies(self, sdk: Any, data: dict[str, Any]) -> np.ndarray:
        """Every estimated value of an aggregate (JSON form) as one vector."""
        return np.asarray(sdk.estimate(self.estimable(data)).frequencies, dtype=np.float64)

    def expected_noise(self, sdk: Any, budget: Any, n: int) -> dict[str, Any] | None:
        template = sdk.empty_aggregate().to_dict()
        if budget.derived_n:
            k = len(template["counts"])
            template["counts"] = [n // k + (1 if v < n % k else 0) for v in range(k)]
        template["n"] = n
        if template.get("attribute_n") is not None:
            template["attribute_n"] = [n] * len(template["attribute_n"])
        added = release_noise.added_variance(
            lambda d: self.flat_frequencies(sdk, d), template, budget.derived_n, budget.sigmas[0] ** 2
        )
        per_user = sdk.variance_approx_per_user
        ldp = float(min(per_user) if isinstance(per_user, list | tuple) else per_user) / n
        return {
            "reports": n,
            "added_variance": float(np.max(added)),
            "ldp_variance": ldp,
            "ratio": float(np.max(added)) / ldp,
        }

    def _added_variance(self, sdk: Any, inputs: ScopeInputs) -> np.ndarray:
        noisy = inputs.noisy
        return release_noise.added_variance(
            lambda d: self.flat_frequencies(sdk, d), noisy.data, noisy.derived_n, noisy.noise_variance
        )

    def estimate_scope(self, sdk: Any, inputs: ScopeInputs) -> dict[str, Any]:
        estimate = sdk.estimate(self.estimable(inputs.noisy.data))
        added = self._added_variance(sdk, inputs)
        body = histogram(estimate, added, max(0, inputs.noisy.n))
        return {"type": "histogram", "mechanism": sdk.config.get("mechanism"), **body}

    def postprocessing_note(self) -> dict[str, Any]:
        return {
            "method": NORM_SUB,
            "field": "postprocessed",
            "description": "Norm-Sub = Euclidean projection of the raw frequencies onto the probability "
            "simplex (non-negative, sum 1; Wang et al., NDSS 2020), per histogram; intervals are those of "
            "the unbiased estimate",
        }

    def domain_size(self, sdk: Any) -> int | None:
        value = getattr(sdk, "domain_size", None)
        return value if isinstance(value, int) else None

    def check_series_query(self, public: PublicConfig, sdk: Any, query: SeriesQuery) -> None:
        if query.party is not None:
            raise SeriesQueryError("/party", "only heavy-hitter collections have parties")
        if query.scope == "cumulative" and not public.release.get("cumulative", True):
            raise SeriesQueryError("/scope", "this collection does not release cumulative estimates")
        if query.attribute is not None:
            raise SeriesQueryError("/attribute", "only multidim collections have attributes")
        _index_item(query.item, self.domain_size(sdk))


class FrequencyAdapter(HistogramAdapter):
    kind = "frequency"
    module_name = "client_sdk.mechanisms"

    def assess(self, protocol: Any) -> PrivacyAssessment:
        return assess_frequency_oracle(protocol)

    def memo_limit(self, protocol: Any) -> int | None:
        return int(protocol.domain_size)

    def derived_n(self, sdk: Any) -> bool:
        # one-hot oracles (GRR, HR): every report adds exactly one count
        return sdk.config.get("mechanism") in release_noise.ONE_HOT


class LongitudinalAdapter(HistogramAdapter):
    """Memoized protocols (L-GRR, L-UE, LOLOHA, ...): the ledger charges ε∞ per new memo."""

    kind = "longitudinal"
    module_name = "client_sdk.longitudinal"
    requires_memoized = True

    def domain_size(self, sdk: Any) -> int | None:
        # dBitFlipPM estimates buckets, not values
        for name in ("buckets", "domain_size"):
            value = getattr(sdk, name, None)
            if isinstance(value, int):
                return value
        return None


class MultidimAdapter(HistogramAdapter):
    """One histogram per attribute. RS+FD costs ε' per tuple and ε per attribute
    (docs/multidim.md): the mechanism config's ``neighbouring`` ("tuple" by default, or
    "attribute") decides what ``privacy.epsilon`` charges."""

    kind = "multidim"
    module_name = "client_sdk.multidim"

    def neighbouring_hint(self) -> str:
        return " (set it with the mechanism config's 'neighbouring')"

    def aggregate_from_dict(self, data: Mapping[str, Any]) -> Any:
        from client_sdk.multidim import MultidimAggregate

        return MultidimAggregate.from_dict(data)

    def estimable(self, data: Mapping[str, Any]) -> Any:
        return self.aggregate_from_dict(_clip_attribute_n(data))

    def flat_frequencies(self, sdk: Any, data: dict[str, Any]) -> np.ndarray:
        """Every estimated value (attribute-major); attributes no report informed: zeros."""
        estimate = sdk.estimate(self.estimable(data))
        sizes = [len(v) for v in data["counts"]]
        return np.concatenate(
            [
                np.zeros(k) if e is None else np.asarray(e.frequencies, dtype=np.float64)
                for k, e in zip(sizes, estimate, strict=True)
            ]
        )

    def estimate_scope(self, sdk: Any, inputs: ScopeInputs) -> dict[str, Any]:
        data = _clip_attribute_n(inputs.noisy.data)
        estimate = sdk.estimate(self.estimable(data))
        added = self._added_variance(sdk, inputs)
        scale = max(0, inputs.noisy.n)
        attributes = []
        pos = 0
        for j, est in enumerate(estimate):
            k = len(data["counts"][j])
            if est is None:
                attributes.append({"attribute": j, "status": "missing", "reason": "no report informed it"})
            else:
                attributes.append(
                    {"attribute": j, "status": "estimated", **histogram(est, added[pos : pos + k], scale)}
                )
            pos += k
        return {"type": "marginals", "mechanism": sdk.config.get("mechanism"), "attributes": attributes}

    def check_series_query(self, public: PublicConfig, sdk: Any, query: SeriesQuery) -> None:
        if query.party is not None:
            raise SeriesQueryError("/party", "only heavy-hitter collections have parties")
        if query.scope == "cumulative" and not public.release.get("cumulative", True):
            raise SeriesQueryError("/scope", "this collection does not release cumulative estimates")
        sizes = list(public.mechanism.get("domain_sizes", []))
        if query.attribute is None or not 0 <= query.attribute < len(sizes):
            raise SeriesQueryError("/attribute", f"multidim collections need attribute in [0, {len(sizes)})")
        _index_item(query.item, sizes[query.attribute])


def _clip_attribute_n(data: Mapping[str, Any]) -> dict[str, Any]:
    """Noisy per-attribute counts below 1 mean "no report informed it" (post-processing)."""
    if data.get("attribute_n") is None:
        return dict(data)
    return {**data, "attribute_n": [max(0, int(m)) for m in data["attribute_n"]]}
