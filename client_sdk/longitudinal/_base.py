"""The contract of every longitudinal (memoized) protocol (docs/longitudinal.md, docs/algorithms.md).

The same devices report every epoch. A fresh ε-LDP report each epoch lets the server
average a device's reports ("averaging attack") and the loss grows as t·ε. Memoization
bounds it [Arcolezi et al. 2022, Sec. 4.1; RAPPOR, Erlingsson et al. CCS 2014]:

* **round 1** (permanent randomized response, "PRR"): the device randomizes the memo key
  of its value once, at budget ε∞, and **stores** the result (the *memo*);
* **round 2** (instantaneous randomized response, "IRR"): every epoch it randomizes the
  stored memo again with fresh randomness and sends that.

Any number of reports derived from one memo leak at most ε∞ (post-processing of the
memo); one report alone leaks at most ε1 < ε∞. A new memo (the value changed to one
without a memo) costs another ε∞: the ledger charge is ``ε∞ × (number of memos)``
(docs/privacy.md), at most ``privacy.lifetime_bound``.

Device-side API (every protocol; the runtime persists the two JSON-safe records)::

    state = m.new_device_state()        # once per (device, collection); persist it
    key = m.memo_key(value, state)      # which memo this value uses
    memo = store.get(collection, key)   # None -> a new memo and a ledger charge:
    memo = m.new_memo(value, state)     #   m.privacy.charge_per_new_memo; persist BEFORE sending
    payload = m.perturb_with_memo(memo, state)   # round 2, fresh CSPRNG draw every call

``m.report(value, store, collection)`` does all of that against a :class:`MemoStore`.
Simulation: ``m.perturb_batch(values, rng, memos=table)`` and ``m.simulate_epochs(...)``
keep memos for many devices in a :class:`MemoTable`, vectorised per epoch.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

from client_sdk.canonical import config_hash
from client_sdk.errors import (
    AggregateMismatchError,
    BudgetExceededError,
    ConfigError,
    LDPError,
    ReportDecodeError,
)
from client_sdk.mechanisms._base import WIRE_VERSION, Aggregate, Estimate, ReportBatch, pure_variance
from client_sdk.wire_checks import is_version

KIND = "longitudinal"
MEMO_VERSION = 1


class MemoError(LDPError, ValueError):
    """A memo record or device state that is malformed or belongs to another configuration."""


# --- shared math ------------------------------------------------------------------------


def irr_epsilon(epsilon_perm: float, epsilon_first: float) -> float:
    """ε_IRR = ln[(e^{ε∞+ε1} − 1)/(e^{ε∞} − e^{ε1})]: round 2's own parameter (docs/longitudinal.md).

    Computed as ``log(expm1(ε∞+ε1)) − ε1 − log(expm1(ε∞−ε1))`` (no cancellation).

    >>> round(irr_epsilon(2.0, 1.0), 6)
    1.407606
    """
    if not 0 < epsilon_first < epsilon_perm:
        raise ConfigError(f"need 0 < epsilon_first < epsilon_perm, got {epsilon_first} and {epsilon_perm}")
    return (
        math.log(math.expm1(epsilon_perm + epsilon_first))
        - epsilon_first
        - math.log(math.expm1(epsilon_perm - epsilon_first))
    )


def binary_leakage(epsilon_perm: float, epsilon_irr: float, reports: int) -> float:
    """Exact leakage of ``reports`` reports of one binary value (docs/algorithms.md, T18).

    ``ln[(e^{ε∞ + t·ε_IRR} + 1)/(e^{ε∞} + e^{t·ε_IRR})] ≤ min(ε∞, t·ε_IRR)``.

    >>> [round(binary_leakage(2.0, 1.407606, t), 6) for t in (1, 2, 3, 5, 10)]
    [1.0, 1.641664, 1.899151, 1.993653, 1.999994]
    """
    t_irr = reports * epsilon_irr
    return float(np.logaddexp(epsilon_perm + t_irr, 0.0) - np.logaddexp(epsilon_perm, t_irr))


def chain_probabilities(p1: float, q1: float, p2: float, q2: float) -> tuple[float, float]:
    """(p*, q*) of the two-round chain: ``p1·p2 + (1−p1)·q2`` and ``q1·p2 + (1−q1)·q2``."""
    return p1 * p2 + (1 - p1) * q2, q1 * p2 + (1 - q1) * q2


def bisect_increasing(fn: Callable[[float], float], target: float, low: float, high: float) -> float:
    """The x in [low, high] with fn(x) = target, for fn increasing (bisection to float precision)."""
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if fn(mid) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def check_probabilities(mechanism: str, **probabilities: float) -> None:
    """Refuse derived probabilities outside (0, 1) (docs/algorithms.md)."""
    for name, p in probabilities.items():
        if not (math.isfinite(p) and 0.0 < p < 1.0):
            raise ConfigError(f"{mechanism}: derived probability {name} = {p!r} is outside (0, 1)")


def check_order(mechanism: str, p1: float, q1: float, p2: float, q2: float) -> None:
    """Refuse parameter sets with p1 <= q1 or p2 <= q2 (the estimator would divide by <= 0)."""
    if not p1 > q1:
        raise ConfigError(f"{mechanism}: round 1 needs p1 > q1, got p1={p1} q1={q1}")
    if not p2 > q2:
        raise ConfigError(f"{mechanism}: round 2 needs p2 > q2, got p2={p2} q2={q2}")


def pack_bits(bits: np.ndarray) -> str:
    """Base64 of bits packed little-endian within each byte (the unary wire form)."""
    return base64.b64encode(np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()).decode("ascii")


def packed_from_base64(raw: Any, nbits: int, field_name: str, index: int | None, memo: bool = False) -> np.ndarray:
    """Inverse of :func:`pack_bits` without unpacking: the ``ceil(nbits/8)`` packed bytes.

    Raises ReportDecodeError (or MemoError with ``memo=True``) naming the field.
    """

    def fail(reason: str, detail: str) -> Exception:
        return MemoError(f"memo {detail} ({reason})") if memo else ReportDecodeError(reason, detail, index)

    if not isinstance(raw, str):
        raise fail("bad_type", f"field {field_name!r} must be a base64 string")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise fail("bad_encoding", f"field {field_name!r} is not valid base64") from None
    width = (nbits + 7) // 8
    if len(data) != width:
        raise fail("bad_length", f"field {field_name!r} holds {len(data)} bytes, expected {width} for {nbits} bits")
    spare = width * 8 - nbits
    if spare and data[-1] >> (8 - spare):
        raise fail("out_of_range", f"padding bits of field {field_name!r} must be zero")
    return np.frombuffer(data, dtype=np.uint8)


def unpack_bits(raw: Any, nbits: int, field_name: str, index: int | None, memo: bool = False) -> np.ndarray:
    """The ``nbits`` bits (uint8 0/1) of a :func:`pack_bits` string, validated."""
    packed = packed_from_base64(raw, nbits, field_name, index, memo)
    return np.unpackbits(packed, count=nbits, bitorder="little")


def decode_int(raw: Any, upper: int, field_name: str, index: int | None) -> int:
    """An integer field in [0, upper), or a ReportDecodeError naming the field."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ReportDecodeError("bad_type", f"field {field_name!r} must be an integer, got {raw!r}", index)
    if not 0 <= raw < upper:
        raise ReportDecodeError("out_of_range", f"field {field_name!r} = {raw} is outside [0, {upper})", index)
    return raw


def _worst_log_ratio(dists: Sequence[Mapping[Any, float]]) -> float:
    worst = 0.0
    for a, b in itertools.permutations(dists, 2):
        for y, pa in a.items():
            pb = b.get(y, 0.0)
            if pa > 0 and pb <= 0:
                return math.inf
            if pa > 0:
                worst = max(worst, math.log(pa / pb))
    return worst


# --- privacy and the ledger ---------------------------------------------------------------


@dataclass(frozen=True)
class LongitudinalPrivacy:
    """What a memoized protocol guarantees, and what the budget ledger charges.

    * ``epsilon_first``: the configured one-report level ε1;
    * ``epsilon_first_actual``: the exact worst-case leakage of one report (≤ ε1; below
      it for L-GRR with k > 2 unless ``tight=True``, docs/algorithms.md);
    * ``epsilon_perm``: ε∞, the leakage of any number of reports of one memo;
    * ``charge_per_new_memo``: what the ledger charges each time a device creates a memo
      (ε∞; dBitFlipPM: ε per distinct response); reports from an existing memo cost 0;
    * ``max_memos``: most memos one device can create (k, min(g, k), min(d+1, b));
    * ``lifetime_bound``: ``max_memos × charge_per_new_memo``.

    ``epsilon`` is ``charge_per_new_memo``, so code that knows nothing of memoization and
    charges ``privacy.epsilon`` per report over-charges (safe), never under-charges.
    """

    mechanism: str
    epsilon_first: float
    epsilon_first_actual: float
    epsilon_perm: float
    charge_per_new_memo: float
    max_memos: int
    neighbouring: str = "record"
    charge_rule: str = "per_new_memo"
    parameters: Mapping[str, float | int] = field(default_factory=dict)

    @property
    def epsilon(self) -> float:
        return self.charge_per_new_memo

    @property
    def lifetime_bound(self) -> float:
        return self.max_memos * self.charge_per_new_memo

    def ledger_charge(self, memo_count: int) -> float:
        """Total charge of a device that has created ``memo_count`` memos (docs/privacy.md)."""
        if isinstance(memo_count, bool) or not isinstance(memo_count, int | np.integer):
            raise ValueError(f"memo_count must be an integer, got {memo_count!r}")
        if not 0 <= memo_count <= self.max_memos:
            raise ValueError(f"memo_count must lie in [0, {self.max_memos}] for {self.mechanism}, got {memo_count}")
        return int(memo_count) * self.charge_per_new_memo

    def to_dict(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "neighbouring": self.neighbouring,
            "charge_rule": self.charge_rule,
            "epsilon": self.epsilon,
            "epsilon_first": self.epsilon_first,
            "epsilon_first_actual": self.epsilon_first_actual,
            "epsilon_perm": self.epsilon_perm,
            "charge_per_new_memo": self.charge_per_new_memo,
            "max_memos": self.max_memos,
            "lifetime_bound": self.lifetime_bound,
            "parameters": {k: (float(v) if isinstance(v, float) else int(v)) for k, v in self.parameters.items()},
        }


# --- persistence of memos on the device ---------------------------------------------------


@runtime_checkable
class MemoStore(Protocol):
    """Where a device keeps its memos and its per-collection device state.

    Implementations must be durable when ``put``/``put_state`` return (the client runtime
    backs this with SQLite) and must never overwrite an existing memo: redrawing a
    permanent response destroys the long-term guarantee (docs/longitudinal.md).
    """

    def get(self, collection: str, memo_key: int) -> dict[str, Any] | None: ...

    def put(self, collection: str, memo_key: int, memo: dict[str, Any]) -> None: ...

    def count(self, collection: str) -> int: ...

    def get_state(self, collection: str) -> dict[str, Any] | None: ...

    def put_state(self, collection: str, state: dict[str, Any]) -> None: ...


class InMemoryMemoStore:
    """A :class:`MemoStore` in a dict, with a JSON round trip (tests, simulations, demos).

    >>> s = InMemoryMemoStore()
    >>> s.put("c1", 3, {"prr": 1})
    >>> s.get("c1", 3), s.get("c1", 4), s.count("c1")
    ({'prr': 1}, None, 1)
    >>> InMemoryMemoStore.from_json(s.to_json()).get("c1", 3)
    {'prr': 1}
    """

    def __init__(self) -> None:
        self._memos: dict[str, dict[int, dict[str, Any]]] = {}
        self._states: dict[str, dict[str, Any]] = {}

    def get(self, collection: str, memo_key: int) -> dict[str, Any] | None:
        memo = self._memos.get(collection, {}).get(int(memo_key))
        return None if memo is None else dict(memo)

    def put(self, collection: str, memo_key: int, memo: dict[str, Any]) -> None:
        memos = self._memos.setdefault(collection, {})
        key = int(memo_key)
        if key in memos and memos[key] != memo:
            raise MemoError(f"memo {key} of collection {collection!r} exists; a permanent response is never redrawn")
        memos[key] = json.loads(json.dumps(memo))  # a JSON-safe copy, as a database would keep

    def count(self, collection: str) -> int:
        return len(self._memos.get(collection, {}))

    def keys(self, collection: str) -> list[int]:
        return sorted(self._memos.get(collection, {}))

    def get_state(self, collection: str) -> dict[str, Any] | None:
        state = self._states.get(collection)
        return None if state is None else dict(state)

    def put_state(self, collection: str, state: dict[str, Any]) -> None:
        if collection in self._states and self._states[collection] != state:
            raise MemoError(f"device state of collection {collection!r} exists and is fixed for the horizon")
        self._states[collection] = json.loads(json.dumps(state))

    def to_json(self) -> str:
        return json.dumps(
            {
                "memos": {c: {str(k): m for k, m in ms.items()} for c, ms in self._memos.items()},
                "states": self._states,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> InMemoryMemoStore:
        data = json.loads(text)
        store = cls()
        store._memos = {c: {int(k): m for k, m in ms.items()} for c, ms in data["memos"].items()}
        store._states = dict(data["states"])
        return store


@dataclass(frozen=True)
class ReportOutcome:
    """One device report: the wire ``payload``, the ``memo_key`` it used, whether that memo
    was created by this call, and the ledger ``charge`` it incurred (0.0 when reused)."""

    payload: dict[str, Any]
    memo_key: int
    new_memo: bool
    charge: float


# --- vectorised simulation over many devices ---------------------------------------------


class MemoTable:
    """Memos of many simulated devices, looked up and created vectorised per epoch.

    ``state`` holds per-device arrays (first axis = device): LOLOHA's hash seeds, dBitFlipPM's
    sampled buckets. Memos are rows of ``memos``; ``memo_device[i]`` and ``memo_key[i]`` say
    whose and for which key row i is. ``new_per_epoch`` logs how many memos each call made.
    """

    def __init__(
        self,
        config_hash_: str,
        n_devices: int,
        key_space: int,
        width: int,
        dtype: Any,
        state: Mapping[str, np.ndarray],
    ) -> None:
        self.config_hash = config_hash_
        self.n_devices = int(n_devices)
        self.key_space = int(key_space)
        self.state = dict(state)
        self.memos = np.empty((0, width), dtype=dtype)
        self.memo_device = np.empty(0, dtype=np.int64)
        self.memo_key = np.empty(0, dtype=np.int64)
        self._sorted_keys = np.empty(0, dtype=np.int64)
        self._sorted_rows = np.empty(0, dtype=np.int64)
        self.new_per_epoch: list[int] = []

    def __len__(self) -> int:
        return int(self.memos.shape[0])

    def lookup(self, devices: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Row of each (device, key) memo, or −1 where the device has none for that key."""
        combined = np.asarray(devices, dtype=np.int64) * self.key_space + np.asarray(keys, dtype=np.int64)
        rows = np.full(combined.size, -1, dtype=np.int64)
        if self._sorted_keys.size == 0:
            return rows
        pos = np.minimum(np.searchsorted(self._sorted_keys, combined), self._sorted_keys.size - 1)
        found = self._sorted_keys[pos] == combined
        rows[found] = self._sorted_rows[pos[found]]
        return rows

    def insert(self, devices: np.ndarray, keys: np.ndarray, memos: np.ndarray) -> np.ndarray:
        """Add memos (distinct, new (device, key) pairs); returns their rows."""
        devices = np.asarray(devices, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.int64)
        start = len(self)
        rows = np.arange(start, start + devices.size, dtype=np.int64)
        self.memos = np.concatenate([self.memos, memos.reshape(devices.size, -1).astype(self.memos.dtype)])
        self.memo_device = np.concatenate([self.memo_device, devices])
        self.memo_key = np.concatenate([self.memo_key, keys])
        combined = np.concatenate([self._sorted_keys, devices * self.key_space + keys])
        all_rows = np.concatenate([self._sorted_rows, rows])
        order = np.argsort(combined, kind="stable")
        self._sorted_keys, self._sorted_rows = combined[order], all_rows[order]
        return rows

    def memo_counts(self) -> np.ndarray:
        """Number of memos per device (what the ledger multiplies by the charge)."""
        return np.bincount(self.memo_device, minlength=self.n_devices)


@dataclass
class EpochSimulation:
    """Result of :meth:`LongitudinalMechanism.simulate_epochs`: one report batch (or
    aggregate) per epoch, and the memo table after the last epoch."""

    reports: list[Any]
    memos: MemoTable

    def __iter__(self) -> Iterator[Any]:
        return iter(self.reports)


# --- the protocol base class ---------------------------------------------------------------


#: a protocol's own report batch type
B = TypeVar("B", bound=ReportBatch)


class LongitudinalMechanism(ABC, Generic[B]):
    """Base of every memoized protocol: parameters, memo handling, wire form, estimator
    (``B``: its report batch type)."""

    name: ClassVar[str]
    #: what a device's true value is: a value index in [0, domain_size)
    value_shape: ClassVar[str] = "index"

    @staticmethod
    def parse_value(text: str) -> int:
        """A true value typed as text (a command line): the value index."""
        return int(text)

    max_domain_size: ClassVar[int]
    #: True where the device state carries data (a hash key, sampled buckets)
    needs_state: ClassVar[bool] = False

    domain_size: int

    # --- configuration ----------------------------------------------------------------
    @property
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The canonical configuration (JSON-safe): everything both sides need."""

    @property
    def config_hash(self) -> str:
        cached = self.__dict__.get("_config_hash")
        if cached is None:
            cached = self.__dict__["_config_hash"] = config_hash(self.config)
        return cached

    @property
    @abstractmethod
    def privacy(self) -> LongitudinalPrivacy:
        """ε1, ε∞, the ledger charge rule and the lifetime bound."""

    def ledger_charge(self, memo_count: int) -> float:
        """``charge_per_new_memo × memo_count`` (validated against ``max_memos``)."""
        return self.privacy.ledger_charge(memo_count)

    #: number of distinct memo keys per device (keys lie in [0, key_space))
    @property
    @abstractmethod
    def key_space(self) -> int: ...

    # --- values -----------------------------------------------------------------------
    def _check_value(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"value must be an integer in [0, {self.domain_size}), got {value!r}")
        v = int(value)
        if not 0 <= v < self.domain_size:
            raise ValueError(f"value {v} is outside the domain [0, {self.domain_size})")
        return v

    def _check_values(self, values: Any, ndim: int = 1) -> np.ndarray:
        arr = np.asarray(values)
        if arr.ndim != ndim or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"values must be a {ndim}-dimensional array of integers")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.domain_size):
            raise ValueError(f"values must lie in [0, {self.domain_size})")
        return arr

    # --- device state and memo records (JSON-safe, for the runtime to persist) ---------
    def _record_header(self) -> dict[str, Any]:
        return {"v": MEMO_VERSION, "m": self.name, "h": self.config_hash}

    def _check_record(self, record: Any, what: str) -> Mapping[str, Any]:
        if not isinstance(record, Mapping):
            raise MemoError(f"{what} must be a JSON object, got {type(record).__name__}")
        if record.get("v") != MEMO_VERSION:
            raise MemoError(f"{what} version must be {MEMO_VERSION}, got {record.get('v')!r}")
        if record.get("m") != self.name:
            raise MemoError(f"{what} is for mechanism {record.get('m')!r}, expected {self.name!r}")
        if record.get("h") != self.config_hash:
            raise MemoError(
                f"{what} belongs to another configuration ({record.get('h')!r}, expected {self.config_hash})"
            )
        return record

    def new_device_state(self) -> dict[str, Any]:
        """The device's state for this collection, drawn once with the CSPRNG and kept for
        the whole horizon (LOLOHA: the hash key; dBitFlipPM: the sampled buckets)."""
        return {**self._record_header(), **self._draw_state_fields()}

    def _draw_state_fields(self) -> dict[str, Any]:
        return {}

    def _parse_state(self, state: Any) -> Any:
        """Validated device state in internal form (None for stateless protocols)."""
        if state is None:
            if self.needs_state:
                raise MemoError(f"{self.name} needs the device state (m.new_device_state(), kept for the horizon)")
            return None
        record = self._check_record(state, "device state")
        return self._parse_state_fields(record)

    def _parse_state_fields(self, record: Mapping[str, Any]) -> Any:
        return None

    def memo_key(self, value: int, state: Mapping[str, Any] | None = None) -> int:
        """The key of the memo ``value`` uses: a new key means a new memo and a new charge."""
        return self._memo_key_one(self._check_value(value), self._parse_state(state))

    def new_memo(self, value: int, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Round 1 (permanent response) for ``value``, drawn with the CSPRNG, as a JSON-safe
        record. Persist it and reuse it for every later report of the same memo key."""
        key = self.memo_key(value, state)
        return {**self._record_header(), "key": key, "prr": self._draw_memo_one(key)}

    def perturb_with_memo(self, memo: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Round 2: one wire payload from a stored memo, fresh CSPRNG randomness every call."""
        parsed_state = self._parse_state(state)
        record = self._check_record(memo, "memo")
        key = record.get("key")
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < self.key_space:
            raise MemoError(f"memo key must be an integer in [0, {self.key_space}), got {key!r}")
        return self._round2_one(self._parse_prr(record.get("prr")), parsed_state)

    def charge_for(self, value: int, store: MemoStore, collection: str) -> float:
        """What reporting ``value`` now would charge (0.0 if its memo exists), drawing nothing."""
        state = store.get_state(collection)
        if state is None and self.needs_state:
            return self.privacy.charge_per_new_memo
        key = self.memo_key(value, state)
        return 0.0 if store.get(collection, key) is not None else self.privacy.charge_per_new_memo

    def report(
        self,
        value: int,
        store: MemoStore,
        collection: str,
        *,
        can_spend: Callable[[float], bool] | None = None,
    ) -> ReportOutcome:
        """One memoized report against a :class:`MemoStore`.

        Creates (and persists) the device state and the memo when missing; a new memo is
        charged ``privacy.charge_per_new_memo`` and, if ``can_spend(charge)`` is false,
        refused with BudgetExceededError before anything is drawn.
        """
        self._check_value(value)
        state = store.get_state(collection)
        if state is None:
            state = self.new_device_state()
            store.put_state(collection, state)
        key = self.memo_key(value, state)
        memo = store.get(collection, key)
        charge = 0.0
        created = memo is None
        if memo is None:
            charge = self.privacy.charge_per_new_memo
            if can_spend is not None and not can_spend(charge):
                raise BudgetExceededError(
                    f"a new memo for collection {collection!r} costs {charge}; the device budget refuses it"
                )
            memo = self.new_memo(value, state)
            store.put(collection, key, memo)
        return ReportOutcome(self.perturb_with_memo(memo, state), key, created, charge)

    def perturb(self, value: int, *, store: MemoStore, collection: str) -> dict[str, Any]:
        """The payload of :meth:`report` (a store is required: memos must persist)."""
        return self.report(value, store, collection).payload

    # protocol hooks: one device (CSPRNG) ...
    @abstractmethod
    def _memo_key_one(self, value: int, state: Any) -> int: ...

    @abstractmethod
    def _draw_memo_one(self, key: int) -> Any:
        """Round 1 for a memo key, CSPRNG, JSON-safe."""

    @abstractmethod
    def _parse_prr(self, prr: Any) -> Any:
        """Validate a stored permanent response (raise MemoError)."""

    @abstractmethod
    def _round2_one(self, prr: Any, state: Any) -> dict[str, Any]: ...

    # ... and many devices (explicit numpy Generator)
    _memo_width: ClassVar[int] = 1
    _memo_dtype: ClassVar[Any] = np.int64

    @property
    def memo_width(self) -> int:
        return self._memo_width

    def _state_batch(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {}

    def _state_arrays(self, parsed_states: Sequence[Any]) -> dict[str, np.ndarray]:
        return {}

    @abstractmethod
    def _memo_keys_batch(
        self, values: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray
    ) -> np.ndarray: ...

    @abstractmethod
    def _draw_memos_batch(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def _round2_batch(
        self, memos: np.ndarray, state: Mapping[str, np.ndarray], devices: np.ndarray, rng: np.random.Generator
    ) -> B: ...

    def new_memo_table(
        self,
        n_devices: int,
        rng: np.random.Generator | None = None,
        device_states: Sequence[Mapping[str, Any]] | None = None,
    ) -> MemoTable:
        """An empty memo table for ``n_devices`` simulated devices; their device states are
        drawn from ``rng`` or taken from ``device_states`` (records of new_device_state)."""
        if device_states is not None:
            if len(device_states) != n_devices:
                raise ValueError(f"{len(device_states)} device states for {n_devices} devices")
            state = self._state_arrays([self._parse_state(s) for s in device_states]) if self.needs_state else {}
        elif not self.needs_state:
            state = {}
        elif rng is None:
            raise ValueError("give rng or device_states to draw the device states")
        else:
            state = self._state_batch(n_devices, rng)
        return MemoTable(self.config_hash, n_devices, self.key_space, self.memo_width, self._memo_dtype, state)

    def perturb_batch(self, values: Any, rng: np.random.Generator, memos: MemoTable | None = None) -> B:
        """One epoch for many devices (``values[i]`` is device i's value), vectorised.

        With ``memos`` (a :class:`MemoTable`), existing memos are reused and missing ones
        created in place; without, every device is new (fresh states and memos).
        """
        v = self._check_values(values)
        table = self.new_memo_table(v.size, rng) if memos is None else memos
        if table.config_hash != self.config_hash:
            raise ValueError("memo table belongs to another configuration")
        if table.n_devices != v.size:
            raise ValueError(f"{v.size} values for a memo table of {table.n_devices} devices")
        devices = np.arange(v.size, dtype=np.int64)
        keys = self._memo_keys_batch(v, table.state, devices)
        rows = table.lookup(devices, keys)
        missing = rows < 0
        if missing.any():
            rows[missing] = table.insert(devices[missing], keys[missing], self._draw_memos_batch(keys[missing], rng))
        table.new_per_epoch.append(int(missing.sum()))
        return self._round2_batch(table.memos[rows], table.state, devices, rng)

    def simulate_epochs(
        self, values: Any, rng: np.random.Generator, memos: MemoTable | None = None, aggregate: bool = False
    ) -> EpochSimulation:
        """T epochs for n devices: ``values`` is n × T (column t = epoch t), memos persist.

        Returns the per-epoch report batches (or aggregates with ``aggregate=True``) and the
        memo table, whose ``memo_counts()`` times the charge is each device's ledger total.
        """
        matrix = self._check_values(values, ndim=2)
        table = self.new_memo_table(matrix.shape[0], rng) if memos is None else memos
        out = []
        for t in range(matrix.shape[1]):
            batch = self.perturb_batch(matrix[:, t], rng, memos=table)
            out.append(self.aggregate(batch) if aggregate else batch)
        return EpochSimulation(out, table)

    # --- wire form --------------------------------------------------------------------
    @abstractmethod
    def encode(self, batch: B) -> list[dict[str, Any]]:
        """Wire payloads of a batch (JSON-safe)."""

    @abstractmethod
    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> B:
        """Parse wire payloads; raise ReportDecodeError (with the index) on the first bad one."""

    def _check_header(self, payload: Any, index: int | None) -> None:
        if not isinstance(payload, Mapping):
            raise ReportDecodeError("not_an_object", "payload must be a JSON object", index)
        if not is_version(payload.get("v"), WIRE_VERSION):
            raise ReportDecodeError(
                "bad_version", f"wire version must be the integer {WIRE_VERSION}, got {payload.get('v')!r}", index
            )
        if payload.get("m") != self.name:
            raise ReportDecodeError(
                "wrong_mechanism", f"payload is for mechanism {payload.get('m')!r}, expected {self.name!r}", index
            )

    def _check_fields(self, payload: Mapping[str, Any], allowed: set[str], index: int | None) -> None:
        extra = set(payload) - allowed - {"v", "m"}
        if extra:
            raise ReportDecodeError("unknown_field", f"unexpected fields {sorted(extra)}", index)

    def validate_payload(self, payload: Any) -> None:
        """Raise ReportDecodeError if one payload is malformed."""
        self.decode([payload])

    @abstractmethod
    def payload_outcome(self, payload: Mapping[str, Any]) -> Any:
        """The hashable outcome of a payload, as keyed in :meth:`output_distribution`."""

    # --- aggregation and estimation ---------------------------------------------------
    @abstractmethod
    def _statistics(self, batch: B) -> np.ndarray: ...

    @property
    def statistics_size(self) -> int:
        return self.domain_size

    def aggregate(self, reports: B | Sequence[Mapping[str, Any]]) -> Aggregate:
        """Additive statistics of a batch (a ReportBatch or a list of wire payloads)."""
        batch = cast(B, reports) if isinstance(reports, ReportBatch) else self.decode(reports)
        return Aggregate(self.config, len(batch), self._statistics(batch).astype(np.int64, copy=False))

    def empty_aggregate(self) -> Aggregate:
        return Aggregate(self.config, 0, np.zeros(self.statistics_size, dtype=np.int64))

    def _check_aggregate(self, aggregate: Aggregate) -> int:
        if dict(aggregate.config) != self.config:
            raise AggregateMismatchError(f"aggregate of {dict(aggregate.config)} given to {self.config}")
        if aggregate.n <= 0:
            raise ValueError("cannot estimate from an empty aggregate (n = 0)")
        return aggregate.n

    @abstractmethod
    def estimate(self, aggregate: Aggregate) -> Estimate: ...

    @abstractmethod
    def exact_variance(self, n: int, frequencies: Any) -> np.ndarray:
        """Closed-form variance of one epoch's estimate for fixed true frequencies."""

    @property
    @abstractmethod
    def variance_approx_per_user(self) -> float:
        """n·Var*."""

    # --- exact output laws (small domains), for privacy checks --------------------------
    @abstractmethod
    def memo_distribution(self, key: int) -> dict[Any, float]:
        """Exact law of the permanent response for a memo key."""

    @abstractmethod
    def report_distribution(self, memo: Any) -> dict[Any, float]:
        """Exact law of one round-2 output given a permanent response."""

    def output_distribution(self, value: int, state: Mapping[str, Any] | None = None, reports: int = 1) -> dict:
        """Exact law of ``reports`` reports of ``value`` from one memo (tuples if reports > 1)."""
        key = self.memo_key(value, state)
        out: dict[Any, float] = {}
        for memo, pm in self.memo_distribution(key).items():
            rd = list(self.report_distribution(memo).items())
            for combo in itertools.product(rd, repeat=reports):
                y = combo[0][0] if reports == 1 else tuple(c[0] for c in combo)
                out[y] = out.get(y, 0.0) + pm * math.prod(c[1] for c in combo)
        return out

    def exact_leakage(self, reports: int = 1, state: Mapping[str, Any] | None = None, round1: bool = False) -> float:
        """Worst log-ratio over all value pairs, by enumeration (small domains only).

        ``round1=True`` checks the permanent response alone (must be ≤ ε∞); otherwise the
        law of ``reports`` reports from one memo (≤ ε1 for one report, ≤ ε∞ for any number).
        """
        values = range(self.domain_size)
        if round1:
            dists = [self.memo_distribution(self.memo_key(v, state)) for v in values]
        else:
            dists = [self.output_distribution(v, state, reports) for v in values]
        return _worst_log_ratio(dists)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items() if k != 'kind')})"


class PureLongitudinal(LongitudinalMechanism[B]):
    """Two-round chain read as a "pure" oracle (docs/algorithms.md).

    Subclasses set ``p1, q1, p2, q2`` and ``q1_server`` (q1, or 1/g for LOLOHA). Server::

        f̂(v) = (N(v) − n·q1·(p2 − q2) − n·q2) / (n·(p1 − q1)·(p2 − q2))
        Var[f̂(v)] = q*(1−q*)/(n (p*−q*)²) + f(v)(1 − p* − q*)/(n (p*−q*))   (exact, fixed data)
        Var* = γ0(1−γ0)/(n (p1−q1)²(p2−q2)²),  γ0 = p2·q1 + q2·(1 − q1)

    (the f-dependent term is the corrected one, not Eq. 10 of Arcolezi et al. 2022).
    """

    p1: float
    q1: float
    p2: float
    q2: float

    @property
    def q1_server(self) -> float:
        return self.q1

    @property
    def p_star(self) -> float:
        return self.p1 * self.p2 + (1 - self.p1) * self.q2

    @property
    def q_star(self) -> float:
        return self.q1_server * self.p2 + (1 - self.q1_server) * self.q2

    @property
    def variance_approx_per_user(self) -> float:
        gamma0 = self.p2 * self.q1_server + self.q2 * (1 - self.q1_server)
        return gamma0 * (1 - gamma0) / ((self.p1 - self.q1_server) ** 2 * (self.p2 - self.q2) ** 2)

    def exact_variance(self, n: int, frequencies: Any) -> np.ndarray:
        return pure_variance(self.p_star, self.q_star, n, np.asarray(frequencies, dtype=np.float64))

    def estimate(self, aggregate: Aggregate) -> Estimate:
        """Unbiased frequencies with plug-in exact variance (docs/algorithms.md)."""
        n = self._check_aggregate(aggregate)
        p1, q1, p2, q2 = self.p1, self.q1_server, self.p2, self.q2
        counts = np.asarray(aggregate.counts, dtype=np.float64)
        freqs = (counts - n * q1 * (p2 - q2) - n * q2) / (n * (p1 - q1) * (p2 - q2))
        variance = pure_variance(self.p_star, self.q_star, n, np.clip(freqs, 0.0, 1.0))
        return Estimate(freqs, variance, self.variance_approx_per_user / n, n)

    def _base_parameters(self) -> dict[str, float | int]:
        return {
            "p1": self.p1,
            "q1": self.q1,
            "p2": self.p2,
            "q2": self.q2,
            "p_star": self.p_star,
            "q_star": self.q_star,
        }


MAX_ENUMERATED_BITS = 12


def bit_pattern_distribution(probabilities: Sequence[float] | np.ndarray) -> dict[int, float]:
    """Exact law of independent bits (bit j is 1 w.p. probabilities[j]) over the integer
    patterns ``Σ bit_j·2^j``; at most 12 bits (4096 patterns)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.size > MAX_ENUMERATED_BITS:
        raise NotImplementedError(f"exact output laws are enumerated for at most {MAX_ENUMERATED_BITS} bits")
    patterns = np.arange(1 << probs.size)
    bits = (patterns[:, None] >> np.arange(probs.size)[None, :]) & 1
    law = np.prod(np.where(bits == 1, probs[None, :], 1 - probs[None, :]), axis=1)
    return {int(p): float(w) for p, w in zip(patterns, law, strict=True)}


def bits_to_pattern(bits: np.ndarray) -> int:
    """The integer ``Σ bit_j·2^j`` of a bit vector."""
    return int(np.dot(np.asarray(bits, dtype=np.int64), 1 << np.arange(len(bits), dtype=np.int64)))
