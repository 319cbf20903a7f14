"""How a collection turns a value into a wire payload on the device.

Two strategies, chosen from the collection's kind and budget policy:

* :class:`DirectPerturber` — a fresh report every call (frequency oracles, multidim,
  heavy hitters): ``protocol.perturb(value)``; one charge unit per report.
* :class:`LongitudinalPerturber` — the two-round memoized protocols of
  :mod:`client_sdk.longitudinal` (L-GRR, L-UE, RAPPOR, LOLOHA, dBitFlipPM): the
  permanent response (round 1) is drawn once per memo key and stored, every report
  re-randomizes it (round 2); one charge unit (ε∞) per new memo.

``budget.memoized`` on any other kind is refused (the server refuses to create such a
collection): memoizing a one-round mechanism would re-send its first payload verbatim,
so equal reports would reveal equal values.

Memo records are stored without the memo key (for L-GRR/L-UE the key *is* the true value):
the runtime keys them by an HMAC of the key under a device secret and puts the key back in
memory when it re-randomizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MEMO_API = ("new_memo", "perturb_with_memo", "memo_key", "new_device_state")


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class DirectPerturber:
    memoized = False
    needs_state = False

    def __init__(self, kind: str, protocol: Any) -> None:
        self.kind = kind
        self.protocol = protocol

    def charge_floor(self) -> float:
        return float(self.protocol.privacy.epsilon)

    def perturb(self, value: Any, party: Any = None) -> dict[str, Any]:
        shape = getattr(self.protocol, "value_shape", None)
        if party is not None:
            if shape != "item":
                raise TypeError(f"party applies to heavy_hitters collections only, not {self.kind!r}")
            return self.protocol.perturb(value, party=party)
        if shape == "tuple" and isinstance(value, list | np.ndarray):
            value = tuple(_plain(value))
        return self.protocol.perturb(value)


class LongitudinalPerturber:
    memoized = True

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.needs_state = bool(getattr(protocol, "needs_state", False))

    def charge_floor(self) -> float:
        privacy = self.protocol.privacy
        return float(getattr(privacy, "charge_per_new_memo", privacy.epsilon))

    def new_state(self) -> dict[str, Any]:
        return self.protocol.new_device_state()

    def lookup_key(self, value: Any, state: Any, party: Any = None) -> tuple[str, Any]:
        if party is not None:
            raise TypeError("party applies to heavy_hitters collections only")
        key = self.protocol.memo_key(value, state)
        return str(int(key)), int(key)

    def new_memo(self, value: Any, state: Any, key: Any, party: Any = None) -> dict[str, Any]:
        record = dict(self.protocol.new_memo(value, state))
        if record.pop("key", key) != key:  # pragma: no cover - the protocol's own contract
            raise RuntimeError("memo key mismatch")
        return record  # stored without the (value-derived) key

    def from_memo(self, stored: dict[str, Any], key: Any, state: Any) -> dict[str, Any]:
        return self.protocol.perturb_with_memo({**stored, "key": key}, state)


def perturber_for(kind: str, protocol: Any, memoized: bool, fail: Callable[[str], Exception]) -> Any:
    # longitudinal protocols are exactly those with the memo API (client_sdk.longitudinal)
    if all(callable(getattr(protocol, name, None)) for name in MEMO_API):
        if not memoized:
            raise fail("a longitudinal protocol needs budget.memoized = true (its memos must be kept and charged)")
        return LongitudinalPerturber(protocol)
    if memoized:
        raise fail(
            f"budget.memoized applies to longitudinal collections only (a second randomisation round); "
            f"a memoized {kind!r} collection would re-send its first report verbatim"
        )
    if not callable(getattr(protocol, "perturb", None)):
        raise fail(f"protocol {type(protocol).__name__} has no perturb()")
    return DirectPerturber(kind, protocol)
