"""Collection kinds on the server: one adapter each (see :mod:`ldpserver.kinds.base`)."""

from __future__ import annotations

from ldpserver.kinds.base import (
    BoundProtocol,
    KindAdapter,
    KindUnavailable,
    ProtocolConfigError,
    SeriesQuery,
    SeriesQueryError,
)
from ldpserver.kinds.heavy_hitters import HeavyHittersAdapter
from ldpserver.kinds.histograms import FrequencyAdapter, LongitudinalAdapter, MultidimAdapter

#: every kind the server knows, by name (adding a kind: its adapter here)
ADAPTERS: dict[str, KindAdapter] = {
    a.kind: a for a in (FrequencyAdapter(), MultidimAdapter(), HeavyHittersAdapter(), LongitudinalAdapter())
}

__all__ = [
    "ADAPTERS",
    "BoundProtocol",
    "FrequencyAdapter",
    "HeavyHittersAdapter",
    "KindAdapter",
    "KindUnavailable",
    "LongitudinalAdapter",
    "MultidimAdapter",
    "ProtocolConfigError",
    "SeriesQuery",
    "SeriesQueryError",
]
