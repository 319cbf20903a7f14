"""The server side of a collection kind: one adapter per kind, one contract for all.

A collection's *kind* names the SDK package that holds its protocol math. Every kind's
SDK object follows the same contract: ``config`` (canonical), ``decode`` (raises
``ReportDecodeError`` with a stable ``reason``), ``aggregate`` / ``empty_aggregate``
(additive, ``to_dict()``), ``estimate`` and ``privacy``. A :class:`KindAdapter` adds
everything the server does differently per kind — and nothing outside ``ldpserver/kinds``
branches on a kind (``tests/unit/test_kind_branching.py`` enforces it):

* creation: how to import and build the SDK object, which neighbouring notions it can
  promise, its privacy loss (OpenDP for frequency oracles where possible), the memo bound,
  parties, what the central noise adds at ``min_reports``;
* releases: the aggregate's SDK class, the release statistics' shape (derived ``n``, the
  share of ρ for discovery), the estimates of one scope from its noisy statistics and the
  post-processing it states;
* API views: which queries of ``/timeseries`` and ``/heavy-hitters`` make sense.

Adding a kind is one SDK package and one adapter module registered in
``ldpserver/kinds/__init__.py`` (docs/architecture.md, "Adding a kind").
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from client_sdk.errors import ConfigError, ReportDecodeError
from client_sdk.public_config import PublicConfig
from ldpserver.release_stats import ScopeInputs
from ldpserver.services.privacy import PrivacyAssessment, assess_closed_form


class SeriesQueryError(ValueError):
    """A ``/timeseries`` query the collection cannot answer: (JSON pointer, message)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class SeriesQuery(Protocol):
    """What a ``/timeseries`` query asks (read-only)."""

    @property
    def item(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def window(self) -> int | None: ...
    @property
    def attribute(self) -> int | None: ...
    @property
    def party(self) -> str | None: ...


class KindUnavailable(Exception):
    """The SDK package for this collection kind cannot be imported (yet)."""


class ProtocolConfigError(ValueError):
    """The protocol configuration is refused by the SDK; the message says why."""


class KindAdapter:
    kind: ClassVar[str]
    module_name: ClassVar[str]
    #: whether collections of this kind take a list of parties
    takes_parties: ClassVar[bool] = False
    #: whether collections of this kind must be memoized (budget.memoized = true)
    requires_memoized: ClassVar[bool] = False

    def module(self) -> Any:
        try:
            return importlib.import_module(self.module_name)
        except ImportError as exc:
            raise KindUnavailable(
                f"collection kind {self.kind!r} is not available on this server: "
                f"its SDK package {self.module_name!r} cannot be imported ({exc})"
            ) from None

    def available(self) -> bool:
        try:
            self.module()
        except KindUnavailable:
            return False
        return True

    def _factory(self) -> Any:
        module = self.module()
        factory = getattr(module, "from_config", None)
        if not callable(factory):
            raise KindUnavailable(f"collection kind {self.kind!r}: {self.module_name}.from_config is missing")
        return factory

    def build(self, config: Mapping[str, Any]) -> Any:
        """The SDK protocol object for a mechanism config (raises ProtocolConfigError)."""
        factory = self._factory()
        try:
            return factory(dict(config))
        except (ConfigError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
            # ArithmeticError: e.g. an integer beyond the float range reaching math.isfinite
            raise ProtocolConfigError(str(exc) or type(exc).__name__) from None

    def assess(self, protocol: Any) -> PrivacyAssessment:
        return assess_closed_form(protocol)

    def memo_limit(self, protocol: Any) -> int | None:
        """Most memos one device can hold (None: unknown, no check)."""
        limit = getattr(protocol.privacy, "max_memos", None)
        return int(limit) if limit is not None else None

    def takes_dictionary(self, protocol: Any) -> bool:
        """Whether releases estimate an analyst-uploaded dictionary (known-candidate mode)."""
        return bool(getattr(protocol, "takes_dictionary", False))

    def neighbouring_hint(self) -> str:
        """Appended to the error when a request's ``neighbouring`` differs from the promise."""
        return ""

    # --- releases ---------------------------------------------------------------------------
    #: the post-processing every release of this kind applies (its name in the release row)
    postprocessing: ClassVar[str]
    #: whether releases read the scope's stored raw reports (discovery) besides its aggregates
    needs_raw_reports: ClassVar[bool] = False
    #: scopes this kind never estimates, with the public reason
    withheld_scopes: ClassVar[Mapping[str, str]] = {}

    def aggregate_from_dict(self, data: Mapping[str, Any]) -> Any:
        """The SDK aggregate of a stored JSON form (additive: ``+`` and ``-``)."""
        from client_sdk.mechanisms import Aggregate

        return Aggregate.from_dict(data)

    def derived_n(self, sdk: Any) -> bool:
        """Whether the noisy ``n`` of a release is the sum of the noisy counts (each report
        adds exactly one count) rather than a coordinate of its own."""
        return False

    def report_l2(self, sdk: Any, dimension: int) -> float:
        """The most one report moves the statistics vector (L2): one count when ``n`` is
        derived, else every coordinate by one."""
        return 1.0 if self.derived_n(sdk) else math.sqrt(dimension)

    def tree_share(self) -> float:
        """The share of the release's ρ that the tree of statistics gets (the rest: discovery)."""
        return 1.0

    def discovery_scopes(self, release: Mapping[str, Any]) -> int:
        """How many discoveries one device-epoch enters (0: no discovery)."""
        return 0

    def expected_noise(self, sdk: Any, budget: Any, n: int) -> dict[str, Any] | None:
        """What the central noise adds to one epoch's estimates at ``n`` reports (shown to the
        admin at creation), or None when it is not a per-value variance."""
        return None

    def estimate_scope(self, sdk: Any, inputs: ScopeInputs) -> dict[str, Any]:
        """The ``estimates`` of one released scope from its noisy statistics (raise
        ``Withheld`` to publish the scope without estimates)."""
        raise NotImplementedError

    def postprocessing_note(self) -> dict[str, Any]:
        raise NotImplementedError

    def estimator_note(self) -> str:
        """How the estimates are computed, for the release document."""
        return f"the SDK's unbiased estimator ({self.module_name})"

    # --- API views --------------------------------------------------------------------------
    #: whether ``/heavy-hitters`` serves this kind
    has_heavy_hitters: ClassVar[bool] = False
    #: the status and reason of a time-series point whose item a released scope does not list
    absent_item: ClassVar[tuple[str, str]] = ("not_found", "no estimate for this item")

    def check_series_query(self, public: PublicConfig, sdk: Any, query: SeriesQuery) -> None:
        """Refuse (``SeriesQueryError``) a ``/timeseries`` query this kind cannot answer."""
        raise NotImplementedError


@dataclass
class BoundProtocol:
    """An SDK protocol object with the batch operations ingestion needs."""

    adapter: KindAdapter
    protocol: Any

    def decode(self, payloads: Sequence[Any]) -> Any:
        return self.protocol.decode(payloads)

    def check_payload(self, payload: Any) -> None:
        """Raise ReportDecodeError for a malformed payload (any other SDK error counts too)."""
        try:
            self.protocol.decode([payload])
        except ReportDecodeError:
            raise
        except Exception as exc:  # an SDK decoder must never turn bad input into a 500
            raise ReportDecodeError(
                "invalid_payload", f"payload rejected by the decoder: {type(exc).__name__}"
            ) from None

    def aggregate_json(self, batch: Any) -> tuple[int, str]:
        """(n, JSON of the additive aggregate) of a decoded batch or a list of payloads."""
        aggregate = self.protocol.aggregate(batch)
        data = aggregate.to_dict()
        return int(data.get("n", len(batch))), json.dumps(data, separators=(",", ":"), sort_keys=True)
