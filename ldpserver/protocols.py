"""Protocol adapters: what the server needs from each collection kind, in one place.

A collection's *kind* names the SDK package that holds its protocol math. Every kind's
SDK object follows the same contract (docs/architecture.md): ``config`` (canonical), ``decode``
(raises ``ReportDecodeError`` with a stable ``reason``), ``aggregate`` / ``empty_aggregate``
(additive, ``to_dict()``), ``estimate`` and ``privacy``. An adapter adds what differs per
kind: how to import and build it, which neighbouring notions it can promise, how its
privacy loss is computed (OpenDP for frequency oracles where possible) and the memo
bound. Adding a kind is a subclass and one line in ``ADAPTERS``.

Kinds whose SDK package is not importable yet (multidim, heavy hitters are being
written) answer ``KindUnavailable``, which the API turns into a 422 "kind not available".
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from client_sdk.errors import ConfigError, ReportDecodeError
from ldpserver.services.privacy import PrivacyAssessment, assess_closed_form, assess_frequency_oracle


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


class FrequencyAdapter(KindAdapter):
    kind = "frequency"
    module_name = "client_sdk.mechanisms"

    def assess(self, protocol: Any) -> PrivacyAssessment:
        return assess_frequency_oracle(protocol)

    def memo_limit(self, protocol: Any) -> int | None:
        return int(protocol.domain_size)


class MultidimAdapter(KindAdapter):
    # RS+FD costs ε' per tuple and ε per attribute (docs/multidim.md): the mechanism config's
    # "neighbouring" ("tuple" by default, or "attribute") decides what privacy.epsilon charges
    kind = "multidim"
    module_name = "client_sdk.multidim"


class HeavyHittersAdapter(KindAdapter):
    kind = "heavy_hitters"
    module_name = "client_sdk.heavy_hitters"
    takes_parties = True


class LongitudinalAdapter(KindAdapter):
    """Memoized protocols (L-GRR, L-UE, LOLOHA, ...): the ledger charges ε∞ per new memo."""

    kind = "longitudinal"
    module_name = "client_sdk.longitudinal"
    requires_memoized = True


ADAPTERS: dict[str, KindAdapter] = {
    a.kind: a for a in (FrequencyAdapter(), MultidimAdapter(), HeavyHittersAdapter(), LongitudinalAdapter())
}


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
