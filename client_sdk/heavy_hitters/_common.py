"""Shared machinery of the prefix-tree protocols: layouts, reports and their wire form,
per-level OLH estimation, results and hierarchical consistency.

Privacy: every user sends exactly one report (two ε/2 OLH reports for TreeHist); the
level group is drawn uniformly at random from the OS CSPRNG, independently of the item;
everything the server computes here is post-processing (docs/algorithms.md, docs/heavy_hitters.md).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ConfigError, LDPError, ReportDecodeError
from client_sdk.heavy_hitters.encoding import (
    Domain,
    EncodedItems,
    children,
    key_collisions,
    prefix_key,
    prefix_keys,
)
from client_sdk.mechanisms._base import Aggregate, pure_variance, validate_epsilon
from client_sdk.mechanisms.olh import HASH_FAMILY, MAX_KEY, OLH, optimal_g, support_counts
from client_sdk.wire_checks import is_version

WIRE_VERSION = 1
#: largest OLH hash range used by the heavy-hitter protocols (reached above ε ≈ 11.1);
#: bigger ranges only shave q* = 1/g further while costing server memory per level
G_MAX = 1 << 16
#: largest number of first-level candidates (2^ℓ_1)
MAX_FIRST_LEVEL_BITS = 16
_HEX16 = re.compile(r"[0-9a-f]{16}")


class InsufficientReportsError(LDPError, ValueError):
    """Too few reports to run discovery (e.g. a level group without any report)."""


class KeyCollisionWarning(UserWarning):
    """Two candidates of one level share a 32-bit OLH key (probability ~2^-32 per pair)."""


# --- parameters ----------------------------------------------------------------------------


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        raise ConfigError(f"{name} must lie in [{low}, {high if high is not None else 'inf'}], got {v}")
    return v


def check_float(value: Any, name: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def make_olh(epsilon: float, g: int | None) -> OLH:
    """OLH over 32-bit keys with ``g = min(round(e^ε) + 1, 2^16)`` unless ``g`` is given."""
    eps = validate_epsilon(epsilon)
    if g is None:
        g = min(optimal_g(eps), G_MAX)
    return OLH(eps, MAX_KEY, g=check_int(g, "g", 2, G_MAX))


def gamma_of(k: int) -> int:
    """γ = ⌈log2 k⌉ (0 for k = 1)."""
    return (k - 1).bit_length()


def pem_lengths(bits: int, k: int, eta: int) -> tuple[int, ...]:
    """PEM/TAP prefix lengths ``ℓ_i = min(γ + iη, m)``, ``i = 1..G``, ``G = ⌈(m − γ)/η⌉``.

    >>> pem_lengths(8, 4, 2)          # T23
    (4, 6, 8)
    >>> pem_lengths(32, 16, 4)        # T31
    (8, 12, 16, 20, 24, 28, 32)
    """
    gamma = gamma_of(k)
    if gamma + eta >= bits:
        return (bits,)
    levels = -(-(bits - gamma) // eta)
    return tuple(min(gamma + i * eta, bits) for i in range(1, levels + 1))


def check_eta(eta: Any, domain: Domain, high: int = 10) -> int:
    """``eta`` (bits per level): the domain's default (one whole symbol for an alphabet
    domain, 4 otherwise) unless given; for an alphabet with whole-symbol levels it must be
    a multiple of the symbol width."""
    from client_sdk.heavy_hitters.encoding import AlphabetDomain

    if eta is None:
        return domain.level_step
    if isinstance(domain, AlphabetDomain):
        eta = check_int(eta, "eta", 1, MAX_FIRST_LEVEL_BITS)
        if domain.chars is not None and eta % domain.symbol_bits:
            bits = domain.symbol_bits
            raise ConfigError(
                f"eta must be a multiple of the alphabet's {bits}-bit symbols (whole characters), got {eta}"
            )
        return eta
    return check_int(eta, "eta", 1, high)


def layout_lengths(domain: Domain, k: int, eta: int, final_round: bool) -> tuple[int, ...]:
    """Prefix lengths of PEM/TAP's level groups, plus the final-estimation group (length m).

    Byte and integer domains: PEM's ``ℓ_i = min(γ + iη, m)``; alphabet domains: whole
    symbols, ``ℓ_i = min(iη, m)``. With ``final_round`` one more group reports the full
    item: the server estimates the published candidates from it alone (unbiased, with
    honest intervals, because those users took no part in choosing the candidates).
    """
    from client_sdk.heavy_hitters.encoding import AlphabetDomain

    m = domain.bits
    if isinstance(domain, AlphabetDomain):
        lengths = tuple(min(i * eta, m) for i in range(1, -(-m // eta) + 1))
    else:
        lengths = pem_lengths(m, k, eta)
    return (*lengths, m) if final_round else lengths


def check_first_level(lengths: Sequence[int]) -> None:
    if lengths[0] > MAX_FIRST_LEVEL_BITS:
        raise ConfigError(
            f"the first level would enumerate 2^{lengths[0]} prefixes; at most 2^{MAX_FIRST_LEVEL_BITS} "
            "(lower k or eta, or use a shorter item encoding)"
        )


def steps_of(lengths: Sequence[int]) -> list[int]:
    """η_i = ℓ_i − ℓ_{i−1} (η_1 = ℓ_1)."""
    return [lengths[0], *(b - a for a, b in zip(lengths, lengths[1:], strict=False))]


# --- user split (this product's rule, behind its own interface) -----------------


class UniformSplit:
    """Each user joins level group ``i`` uniformly at random in ``1..G``, independently of
    the item (the group index is public). The client draws it from the OS CSPRNG."""

    name = "uniform"

    def draw(self, groups: int) -> int:
        return 1 + _random.uniform_int(groups)

    def draw_batch(self, n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(1, groups + 1, size=n, dtype=np.int64)


class FinalHeavySplit(UniformSplit):
    """PEM/TAP with a final estimation round: the last prefix level (whose estimates test
    every candidate) and the final group (which estimates the published items) each get
    twice the users of any other level group, since the test's power and the published
    intervals' width depend on them alone. The user draws ``u`` uniformly in
    ``0..G+1`` (G groups): ``u < G−2`` joins group ``u+1``, otherwise group
    ``G−1 + (u − (G−2)) // 2``. Still independent of the item; the group is public."""

    name = "final-2x"

    @staticmethod
    def units(groups: int) -> int:
        return groups + 2

    @staticmethod
    def _group_of(u: Any, groups: int) -> Any:
        return np.where(u < groups - 2, u + 1, groups - 1 + (u - (groups - 2)) // 2)

    def draw(self, groups: int) -> int:
        if groups < 2:
            return 1
        return int(self._group_of(_random.uniform_int(self.units(groups)), groups))

    def draw_batch(self, n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
        if groups < 2:
            return np.ones(n, dtype=np.int64)
        return self._group_of(rng.integers(0, self.units(groups), size=n, dtype=np.int64), groups).astype(np.int64)

    @staticmethod
    def share(groups: int) -> float:
        """The last two groups' share of the users each."""
        return 2 / (groups + 2) if groups >= 2 else 1.0


SPLITS = {UniformSplit.name: UniformSplit(), FinalHeavySplit.name: FinalHeavySplit()}


def check_prune_and_split(
    prune_infeasible: Any, split: Any, allowed: Sequence[str] = tuple(SPLITS)
) -> tuple[bool, UniformSplit]:
    """Validate the two options every prefix-tree protocol takes."""
    if not isinstance(prune_infeasible, bool):
        raise ConfigError("prune_infeasible must be true or false")
    if split not in allowed:
        raise ConfigError(f"unknown user split {split!r}; available: {sorted(allowed)}")
    return prune_infeasible, SPLITS[split]


def check_alpha(alpha: Any) -> float:
    a = check_float(alpha, "alpha")
    if not 0 < a < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha}")
    return a


def check_final_round(final_round: Any) -> bool:
    if not isinstance(final_round, bool):
        raise ConfigError("final_round must be true or false")
    return final_round


def prefix_config(protocol: Any) -> dict[str, Any]:
    """The canonical config fields every prefix-tree protocol (PEM, TAP, TreeHist) shares."""
    from client_sdk.heavy_hitters.encoding import KEY_FAMILY

    return {
        "protocol": protocol.name,
        "version": WIRE_VERSION,
        "epsilon": protocol.epsilon,
        "k": protocol.k,
        "eta": protocol.eta,
        "domain": protocol.domain.config,
        "fo": olh_config(protocol.olh),
        "key": KEY_FAMILY,
        "split": protocol.split.name,
        "levels": list(protocol.lengths),
        "prune_infeasible": protocol.prune_infeasible,
    }


# --- reports -------------------------------------------------------------------------------


@dataclass
class PrefixReports:
    """Decoded reports as packed arrays (what the server stores and loads per window).

    ``levels`` are 1-based level-group indices, ``seeds`` the OLH hash seeds (uint64),
    ``ys`` the reported hash values (levels and values keep a compact dtype such as uint8
    or uint16 when given one, else int64); ``parties`` (TAP/TAPS) the public party index of each
    user; ``item_seeds``/``item_ys`` TreeHist's second (full-item) report.
    """

    levels: np.ndarray
    seeds: np.ndarray
    ys: np.ndarray
    parties: np.ndarray | None = None
    item_seeds: np.ndarray | None = None
    item_ys: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.levels = _as_index(self.levels)
        self.seeds = _as_u64(self.seeds)
        self.ys = _as_index(self.ys)
        if self.parties is not None:  # int64 always: party × groups cells are computed from it
            self.parties = np.asarray(self.parties, dtype=np.int64)
        if self.item_seeds is not None:
            self.item_seeds = _as_u64(self.item_seeds)
            self.item_ys = _as_index(self.item_ys)
        n = self.levels.shape[0]
        for name in ("seeds", "ys", "parties", "item_seeds", "item_ys"):
            arr = getattr(self, name)
            if arr is not None and (arr.ndim != 1 or arr.shape[0] != n):
                raise ValueError(f"reports field {name!r} must be a 1-d array of length {n}")

    def __len__(self) -> int:
        return int(self.levels.shape[0])

    @classmethod
    def from_columns(cls, **columns: Any) -> PrefixReports:
        """Build from stored columns (seeds may be stored as signed int64: bits are kept)."""
        return cls(**columns)

    def subset(self, mask: np.ndarray) -> PrefixReports:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        return PrefixReports(
            self.levels[mask], self.seeds[mask], self.ys[mask], pick(self.parties), pick(self.item_seeds),
            pick(self.item_ys),
        )  # fmt: skip

    @staticmethod
    def concat(batches: Sequence[PrefixReports]) -> PrefixReports:
        """Reports of several batches (e.g. the epochs of a window)."""
        if not batches:
            raise ValueError("nothing to concatenate")

        def cat(name: str) -> np.ndarray | None:
            parts = [getattr(b, name) for b in batches]
            if all(p is None for p in parts):
                return None
            if any(p is None for p in parts):
                raise ValueError(f"field {name!r} is present in some batches only")
            return np.concatenate(parts)

        return PrefixReports(cat("levels"), cat("seeds"), cat("ys"), cat("parties"), cat("item_seeds"), cat("item_ys"))  # type: ignore[arg-type]


#: compact integer columns are kept as they are (a release holds 10^7 reports); anything
#: else becomes int64
_COMPACT = (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64)


def _as_index(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    return arr if arr.dtype.type in _COMPACT else arr.astype(np.int64)


def _as_u64(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == np.int64:
        return arr.view(np.uint64)
    return arr.astype(np.uint64, copy=False)


def _check_int_field(payload: Mapping[str, Any], key: str, low: int, high: int, index: int) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportDecodeError("bad_type", f"field {key!r} must be an integer", index)
    if not low <= value < high:
        raise ReportDecodeError("out_of_range", f"field {key!r} must lie in [{low}, {high}), got {value}", index)
    return value


def _check_seed(payload: Mapping[str, Any], key: str, index: int) -> int:
    raw = payload.get(key)
    if not isinstance(raw, str):
        raise ReportDecodeError("bad_type", f"field {key!r} must be a 16-digit lowercase hexadecimal string", index)
    if not _HEX16.fullmatch(raw):
        raise ReportDecodeError("bad_encoding", f"field {key!r} must be 16 lowercase hexadecimal digits", index)
    return int(raw, 16)


def decode_payloads(
    payloads: Sequence[Mapping[str, Any]],
    mechanism: str,
    groups: int,
    g: int,
    parties: int | None = None,
    item_g: int | None = None,
) -> PrefixReports:
    """Parse wire payloads strictly; raise ReportDecodeError (with the index) on the first bad one.

    Expected fields: ``v`` (1), ``m`` (mechanism), ``l`` (level group, 1..G), ``s`` (seed,
    16 lowercase hex digits), ``y`` (0..g−1); ``p`` (party index) when ``parties`` is set;
    ``s2``/``y2`` (TreeHist's full-item report) when ``item_g`` is set. Unknown or missing
    fields are rejected.
    """
    if isinstance(payloads, Mapping | str | bytes):
        raise ReportDecodeError("not_a_list", "payloads must be a list of report objects", None)
    expected = {"v", "m", "l", "s", "y"}
    if parties is not None:
        expected.add("p")
    if item_g is not None:
        expected |= {"s2", "y2"}
    n = len(payloads)
    levels = np.empty(n, dtype=np.int64)
    seeds = np.empty(n, dtype=np.uint64)
    ys = np.empty(n, dtype=np.int64)
    party_arr = np.empty(n, dtype=np.int64) if parties is not None else None
    seeds2 = np.empty(n, dtype=np.uint64) if item_g is not None else None
    ys2 = np.empty(n, dtype=np.int64) if item_g is not None else None
    for i, payload in enumerate(payloads):
        if not isinstance(payload, Mapping):
            raise ReportDecodeError("not_an_object", "payload must be a JSON object", i)
        keys = set(payload)
        if keys != expected:
            missing, extra = sorted(expected - keys), sorted(str(k) for k in keys - expected)
            reason = "missing_field" if missing else "unknown_field"
            raise ReportDecodeError(reason, f"fields missing {missing}, unexpected {extra}", i)
        v = payload["v"]
        if not is_version(v, WIRE_VERSION):
            raise ReportDecodeError("bad_version", f"wire version must be the integer {WIRE_VERSION}, got {v!r}", i)
        if payload["m"] != mechanism:
            raise ReportDecodeError("wrong_mechanism", f"payload is for {payload['m']!r}, expected {mechanism!r}", i)
        levels[i] = _check_int_field(payload, "l", 1, groups + 1, i)
        seeds[i] = _check_seed(payload, "s", i)
        ys[i] = _check_int_field(payload, "y", 0, g, i)
        if party_arr is not None:
            party_arr[i] = _check_int_field(payload, "p", 0, parties, i)  # type: ignore[arg-type]
        if seeds2 is not None:
            seeds2[i] = _check_seed(payload, "s2", i)
            ys2[i] = _check_int_field(payload, "y2", 0, item_g, i)  # type: ignore[index,arg-type]
    return PrefixReports(levels, seeds, ys, party_arr, seeds2, ys2)


def _stored_fields(parties: int | None, item_g: int | None) -> list[str]:
    """The payload's keys in the stored (sorted) order."""
    extra = (["p"] if parties is not None else []) + (["s2", "y2"] if item_g is not None else [])
    return sorted(["l", "m", "s", "v", "y", *extra])


#: digits of a stored integer (the epoch column; a field's own bound is usually smaller)
_MAX_DIGITS = 18
#: digits around a block's lines (no delimiter): every fixed-width read near its ends stays
#: in the buffer
_MARGIN = b"0" * 24


def _compact(high: int) -> Any:
    """The smallest unsigned dtype holding 0..high."""
    return np.min_scalar_type(max(0, int(high)))


_ONES = np.uint64(0x0101010101010101)
_ZEROS = np.uint64(0x3030303030303030)  # eight '0' characters
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH1 = np.uint64(0x8080808080808080)
_NIBBLE = np.uint64(0x0F0F0F0F0F0F0F0F)
#: the low (8 − length) bytes of a word, per number length 0..8
_PAD_MASK = np.array([(1 << (8 * (8 - k))) - 1 if k else (1 << 64) - 1 for k in range(9)], dtype=np.uint64)


def _u64(value: int) -> np.uint64:
    return np.uint64(value)


class _Block:
    """A block of stored lines as bytes, read at many positions at once through unaligned
    little-endian 64-bit words (one gather per 8 bytes and row, then SIMD-within-a-word
    arithmetic: no per-byte gather)."""

    def __init__(self, data: bytes) -> None:
        self.raw = _MARGIN + data + _MARGIN
        self.buf = np.frombuffer(self.raw, dtype=np.uint8)
        self.words = np.ndarray((self.buf.size - 7,), dtype="<u8", buffer=self.raw, strides=(1,))

    def literal(self, at: np.ndarray, text: bytes) -> bool:
        """Whether every position ``at`` starts the bytes ``text``."""
        for j in range(0, len(text), 8):
            piece = text[j : j + 8]
            value = int.from_bytes(piece, "little")
            mask = (1 << (8 * len(piece))) - 1
            if ((self.words[at + j] & _u64(mask)) != _u64(value)).any():
                return False
        return True

    def integers(self, start: np.ndarray, stop: np.ndarray, digits: int) -> np.ndarray | None:
        """The canonical non-negative integers (``0|[1-9][0-9]*``, at most ``digits``
        digits) in ``buf[start:stop]`` per row, or None if any is not one."""
        length = stop - start
        if length.size == 0:
            return np.zeros(0, dtype=np.int64)
        widest = int(length.max())
        if length.min() < 1 or widest > digits:
            return None
        if widest > 8:
            return self._long_integers(length, stop, widest)
        # the word ending at the number: its digits in the high bytes, '0's below them
        pad = _PAD_MASK[length]
        x = (self.words[stop - 8] & ~pad) | (_ZEROS & pad)
        x ^= _ZEROS  # '0'..'9' → 0..9; any other byte → above 9
        if ((((x & _LOW7) + _u64(0x7676767676767676)) | x) & _HIGH1).any():
            return None  # a byte that is not a digit
        first = (x >> (_u64(8) * (_u64(8) - length.astype(np.uint64)))) & _u64(0xFF)
        if ((first == 0) & (length > 1)).any():
            return None  # a leading zero
        # eight digits d0..d7 (d0 in the low byte) → d0·10^7 + … + d7, pairwise
        x = (x * _u64(10) + (x >> _u64(8))) & _u64(0x00FF00FF00FF00FF)
        x = (x * _u64(100) + (x >> _u64(16))) & _u64(0x0000FFFF0000FFFF)
        x = (x * _u64(10000) + (x >> _u64(32))) & _u64(0xFFFFFFFF)
        return x.astype(np.int64)

    def _long_integers(self, length: np.ndarray, stop: np.ndarray, widest: int) -> np.ndarray | None:
        cols = np.arange(widest)
        at = (stop - widest)[:, None] + cols
        d = self.buf[at] - np.uint8(48)  # wraps: a non-digit becomes > 9
        d[cols < (widest - length)[:, None]] = 0  # the bytes before the number
        if (d > 9).any():
            return None
        if ((d[np.arange(length.size), widest - length] == 0) & (length > 1)).any():
            return None  # a leading zero
        value = d[:, 0].astype(np.int64)
        for j in range(1, widest):
            value *= 10
            value += d[:, j]
        return value

    def hex_seeds(self, start: np.ndarray) -> np.ndarray | None:
        """The 16 lowercase hexadecimal digits at ``start`` per row as uint64, or None."""
        seeds = np.zeros(start.size, dtype=np.uint64)
        for half in (0, 8):
            w = self.words[start + half]
            # per byte: '0'..'9' → 0..9, 'a'..'f' → 10..15 (low nibble + 9 when bit 6 is set)
            nib = ((w & _NIBBLE) + _u64(9) * ((w >> _u64(6)) & _ONES)) & _NIBBLE
            # valid iff re-encoding the nibbles gives the same characters back
            letter = ((nib + _u64(0x0606060606060606)) & _u64(0x1010101010101010)) >> _u64(4)
            if ((nib + _ZEROS + _u64(39) * letter) != w).any():
                return None
            # eight nibbles n0..n7 (n0 in the low byte, the most significant) → 32 bits
            t = ((nib & _u64(0x000F000F000F000F)) << _u64(4)) | ((nib >> _u64(8)) & _u64(0x000F000F000F000F))
            value = (
                ((t & _u64(0xFF)) << _u64(24))
                | (((t >> _u64(16)) & _u64(0xFF)) << _u64(16))
                | (((t >> _u64(32)) & _u64(0xFF)) << _u64(8))
                | ((t >> _u64(48)) & _u64(0xFF))
            )
            seeds |= value << _u64(32 if half == 0 else 0)
        return seeds


def _parse_stored(
    data: bytes, mechanism: str, fields: list[str], bounds: dict[str, int], epoch_column: bool
) -> dict[str, np.ndarray] | None:
    """Columns of the lines of ``data`` — each ``[<epoch>\t]{"<key>":<value>,...}`` with the
    keys ``fields`` in that order, exactly as the server stores them — or None if any line
    differs in one byte. Vectorised over the block: the positions of the newlines, tabs
    and commas (a stored line has exactly its tab, len(fields) − 1 commas — none inside a
    value — and its newline, in that order) split every line into its fields, then each
    field's bytes are checked and converted at once.
    Integers come back in the smallest unsigned dtype holding ``bounds[key]`` (the largest
    valid value); a value above it makes the block invalid."""
    if not data:
        return None
    block = _Block(data if data.endswith(b"\n") else data + b"\n")
    buf = block.buf
    # every line's delimiters, in order: [tab,] len(fields) − 1 commas, newline
    pattern = np.array(([9] if epoch_column else []) + [44] * (len(fields) - 1) + [10], dtype=np.uint8)
    found = buf < 34  # tab, newline — and any other control character or space: not stored
    found |= buf == 44
    flat = np.flatnonzero(found)
    if flat.size % pattern.size:
        return None
    at = flat.reshape(-1, pattern.size)
    if not (buf[at] == pattern).all():
        return None
    n = at.shape[0]
    ends = at[:, -1]
    starts = np.empty(n, dtype=np.int64)
    starts[0] = len(_MARGIN)
    starts[1:] = ends[:-1] + 1
    commas = at[:, pattern.size - len(fields) : -1]
    out: dict[str, np.ndarray] = {}
    if epoch_column:
        epochs = block.integers(starts, at[:, 0], _MAX_DIGITS)
        if epochs is None:
            return None
        out["epoch"] = epochs
        opening = at[:, 0] + 1
    else:
        opening = starts
    if ((commas[:, 0] if commas.shape[1] else ends) - opening < 2).any():
        return None
    if (buf[opening] != ord("{")).any() or (buf[ends - 1] != ord("}")).any():
        return None
    bounds_of = [opening + 1, *(commas[:, j] + 1 for j in range(len(fields) - 1))]
    stops = [*(commas[:, j] for j in range(len(fields) - 1)), ends - 1]
    fixed = {"m": b'"' + mechanism.encode() + b'"', "v": b"%d" % WIRE_VERSION}
    for name, begin, stop in zip(fields, bounds_of, stops, strict=True):
        key = b'"' + name.encode() + b'":'
        if ((stop - begin) <= len(key)).any():
            return None
        value = begin + len(key)
        if name in fixed:
            if ((stop - value) != len(fixed[name])).any() or not block.literal(begin, key + fixed[name]):
                return None
        elif name in ("s", "s2"):
            if ((stop - value) != 18).any() or not block.literal(begin, key + b'"'):
                return None
            if (buf[stop - 1] != ord('"')).any():
                return None
            seeds = block.hex_seeds(value + 1)
            if seeds is None:
                return None
            out[name] = seeds
        else:
            if not block.literal(begin, key):
                return None
            high = bounds[name]
            values = block.integers(value, stop, len(str(high)))
            if values is None or (values.size and values.max() > high):
                return None
            out[name] = values.astype(_compact(high))
    return out


def _stored_bounds(groups: int, g: int, parties: int | None, item_g: int | None) -> dict[str, int]:
    bounds = {"l": groups, "y": g - 1}
    if parties is not None:
        bounds["p"] = parties - 1
    if item_g is not None:
        bounds["y2"] = item_g - 1
    return bounds


def _valid_levels(columns: dict[str, np.ndarray]) -> bool:
    return columns["l"].size == 0 or int(columns["l"].min()) >= 1


def decode_stored(
    texts: Sequence[str],
    mechanism: str,
    groups: int,
    g: int,
    parties: int | None = None,
    item_g: int | None = None,
) -> PrefixReports:
    """Decode stored payloads — the compact sorted-key JSON the server wrote after the
    strict decoder accepted them — vectorised over the whole block (no ``json.loads`` nor
    Python loop per report: a release reads 10^6 of them). Any text that is not exactly
    that form, or any value out of range, falls back to the strict decoder
    (:func:`decode_payloads`), which gives the same arrays or the same error. Integer
    columns come back in compact dtypes (levels and values fit 8 or 16 bits)."""
    import json

    columns = None
    if texts and not any("\n" in t for t in texts):
        try:
            data = "\n".join(texts).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not a stored form
            data = b""
        columns = _parse_stored(data, mechanism, _stored_fields(parties, item_g),
                                _stored_bounds(groups, g, parties, item_g), False)  # fmt: skip
    if columns is None or columns["l"].size != len(texts) or not _valid_levels(columns):
        return decode_payloads([json.loads(t) for t in texts], mechanism, groups, g, parties, item_g)
    return PrefixReports(
        columns["l"], columns["s"], columns["y"], columns.get("p"), columns.get("s2"), columns.get("y2")
    )


def decode_stored_rows(
    block: str | bytes,
    mechanism: str,
    groups: int,
    g: int,
    parties: int | None = None,
    item_g: int | None = None,
) -> tuple[np.ndarray, PrefixReports] | None:
    """Like :func:`decode_stored` for a block of ``<epoch>\\t<payload>`` lines (what
    PostgreSQL's ``COPY … TO STDOUT`` writes for those two columns; the payloads hold no
    character COPY escapes), as text or as its UTF-8 bytes. Returns (epochs, reports), or
    None if any line is not of that exact form or out of range (the caller then uses the
    row-by-row path)."""
    data = block.encode("utf-8", "surrogatepass") if isinstance(block, str) else bytes(block)
    if not data:
        empty = np.zeros(0, dtype=np.int64)
        return empty, PrefixReports(empty, empty, empty, *([empty] if parties is not None else [None]),
                                    *([empty, empty] if item_g is not None else [None, None]))  # fmt: skip
    columns = _parse_stored(data, mechanism, _stored_fields(parties, item_g),
                            _stored_bounds(groups, g, parties, item_g), True)  # fmt: skip
    if columns is None or not _valid_levels(columns):
        return None
    reports = PrefixReports(
        columns["l"], columns["s"], columns["y"], columns.get("p"), columns.get("s2"), columns.get("y2")
    )
    return columns["epoch"], reports


class GroupCounts:
    """Additive statistics of a protocol whose every report joins one of ``groups`` groups
    (TreeHist's levels, known candidates' screen and test): report counts per group, which
    ingestion keeps per epoch (the minimum-reports rule); results come from the raw reports."""

    @property
    def groups(self) -> int:  # pragma: no cover - provided by the protocol
        raise NotImplementedError

    @property
    def config(self) -> dict[str, Any]:  # pragma: no cover - provided by the protocol
        raise NotImplementedError

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> PrefixReports:  # pragma: no cover
        raise NotImplementedError

    def validate_payload(self, payload: Any) -> None:
        self.decode([payload])

    def aggregate(self, reports: PrefixReports | Sequence[Mapping[str, Any]]) -> Aggregate:
        """Report counts per group (additive)."""
        if not isinstance(reports, PrefixReports):
            reports = self.decode(reports)
        counts = np.bincount(reports.levels - 1, minlength=self.groups).astype(np.int64)
        return Aggregate(self.config, len(reports), counts)

    def empty_aggregate(self) -> Aggregate:
        return Aggregate(self.config, 0, np.zeros(self.groups, dtype=np.int64))


def encode_payloads(reports: PrefixReports, mechanism: str) -> list[dict[str, Any]]:
    """JSON-safe wire payloads of a batch."""
    out = []
    for i in range(len(reports)):
        payload: dict[str, Any] = {
            "v": WIRE_VERSION,
            "m": mechanism,
            "l": int(reports.levels[i]),
            "s": f"{int(reports.seeds[i]):016x}",
            "y": int(reports.ys[i]),
        }
        if reports.parties is not None:
            payload["p"] = int(reports.parties[i])
        if reports.item_seeds is not None:
            payload["s2"] = f"{int(reports.item_seeds[i]):016x}"
            payload["y2"] = int(reports.item_ys[i])  # type: ignore[index]
        out.append(payload)
    return out


def check_reports(
    reports: Any, groups: int, g: int, parties: int | None = None, item_g: int | None = None
) -> PrefixReports:
    """Validate decoded arrays (e.g. loaded from a database) before discovery."""
    if not isinstance(reports, PrefixReports):
        raise TypeError("reports must be PrefixReports (decode wire payloads with protocol.decode first)")
    if len(reports) == 0:
        raise InsufficientReportsError("no reports")
    if reports.levels.min() < 1 or reports.levels.max() > groups:
        raise ValueError(f"report levels must lie in [1, {groups}]")
    if reports.ys.min() < 0 or reports.ys.max() >= g:
        raise ValueError(f"report values y must lie in [0, {g})")
    if parties is not None:
        if reports.parties is None:
            raise ValueError("reports carry no party index but the protocol is federated")
        if reports.parties.min() < 0 or reports.parties.max() >= parties:
            raise ValueError(f"party indices must lie in [0, {parties})")
    if item_g is not None:
        if reports.item_seeds is None:
            raise ValueError("TreeHist reports need the full-item report (item_seeds, item_ys)")
        if reports.item_ys.min() < 0 or reports.item_ys.max() >= item_g:  # type: ignore[union-attr]
            raise ValueError(f"full-item values must lie in [0, {item_g})")
    return reports


# --- client side ---------------------------------------------------------------------------


def level_keys(items: Any, domain: Domain, levels: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """Per user: the OLH key of the prefix its level group reports (vectorised)."""
    enc = items if isinstance(items, EncodedItems) else domain.encode_many(items)
    if enc.bits != domain.bits:
        raise ValueError(f"items were encoded with {enc.bits} bits, the domain has {domain.bits}")
    if len(enc) != levels.shape[0]:
        raise ValueError("one level per user is needed")
    keys = np.empty(len(enc), dtype=np.uint64)
    for i, length in enumerate(lengths, start=1):
        mask = levels == i
        if mask.any():
            keys[mask] = enc.keys(length)[enc.inverse[mask]]
    return keys


def item_prefix_key(domain: Domain, item: Any, length: int) -> int:
    code = domain.encode(item)
    return prefix_key(code >> (domain.bits - length), length)


# --- server side ---------------------------------------------------------------------------

#: Central noise on the statistics discovery reads (a group's report count and every
#: support-count query), set by a server around a release's discovery so that its readers
#: get central DP on top of LDP (ldpserver/discovery_noise.py ``DiscoveryNoise``); ``None``
#: (exact statistics) everywhere else. The one place heavy-hitter statistics are noised.
CENTRAL_NOISE: ContextVar[Any] = ContextVar("heavy_hitters_central_noise", default=None)


def noisy_statistics() -> bool:
    """Whether discovery runs on centrally noised statistics (exact group emptiness is then
    not checked: it would be a decision on exact counts)."""
    return CENTRAL_NOISE.get() is not None


def party_size(estimators: Sequence[LevelEstimator], exact: int) -> int:
    """A party's size: exact, or the sum of its level groups' noisy counts under central noise."""
    return max(1, sum(e.n for e in estimators)) if noisy_statistics() else exact


class LevelEstimator:
    """OLH estimates of candidate prefixes from one group of reports (seeds, ys)."""

    def __init__(self, olh: OLH, seeds: np.ndarray, ys: np.ndarray, n_total: int, chunk: int = 4096) -> None:
        self.olh = olh
        self.seeds = seeds
        self.ys = ys
        self.noise = CENTRAL_NOISE.get()
        self.n = int(seeds.shape[0]) if self.noise is None else max(1, self.noise.count(int(seeds.shape[0]), self))
        self.n_total = n_total
        self.chunk = chunk
        self.hash_evaluations = 0
        self.support_noise_variance = 0.0  # per-count variance of the central noise of the last query

    @property
    def var_star(self) -> float:
        """Var* of one prefix frequency from this group (f = 0)."""
        return self.olh.variance_approx_per_user / self.n

    @property
    def sigma(self) -> float:
        return math.sqrt(self.var_star)

    def support(self, keys: np.ndarray) -> np.ndarray:
        self.hash_evaluations += int(self.seeds.shape[0]) * int(keys.size)
        if self.noise is None:
            return support_counts(self.seeds, self.ys, self.olh.g, keys, chunk=self.chunk)
        bound = self.noise.support_bound(int(keys.size), self.olh.g)  # keys one report may count for
        counts = support_counts(self.seeds, self.ys, self.olh.g, keys, chunk=self.chunk, max_per_report=bound)
        counts, self.support_noise_variance = self.noise.support(counts, self, bound)
        return counts

    def estimate(self, keys: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Unbiased f̂ = (C/N − q*)/(p* − q*) (times ``scale``)."""
        p, q = self.olh.p_star, self.olh.q_star
        return scale * (self.support(keys) / self.n - q) / (p - q)

    def variance(self, f_hat: np.ndarray) -> np.ndarray:
        """Variance of f̂ as an estimate of the *population* frequency: the exact OLH variance
        given the group (docs/algorithms.md) plus the sampling variance of a uniformly random
        group of N out of n users, both at the clipped estimate."""
        f = np.clip(np.asarray(f_hat, dtype=np.float64), 0.0, 1.0)
        ldp = pure_variance(self.olh.p_star, self.olh.q_star, self.n, f)
        if self.noise is not None:  # no exact n_total: the conservative finite-population factor 1
            central = self.support_noise_variance / (self.n * (self.olh.p_star - self.olh.q_star)) ** 2
            return ldp + f * (1 - f) / self.n + central
        finite = max(0.0, 1.0 - self.n / self.n_total) if self.n_total > 1 else 0.0
        return ldp + f * (1 - f) * finite / self.n


class CandidateKeys:
    """Keys of a level's candidates, with the fingerprint-collision check of encoding.py."""

    def __init__(self) -> None:
        self.collisions: list[dict[str, Any]] = []

    def __call__(self, prefixes: Sequence[int], length: int) -> np.ndarray:
        keys = prefix_keys(prefixes, length)
        if length > 32:
            found = key_collisions(prefixes, keys)
            if found:
                self.collisions.append({"length": length, "prefixes": [list(map(int, g)) for g in found]})
                warnings.warn(
                    f"{len(found)} group(s) of level-{length} candidates share a 32-bit key; their "
                    "estimates are merged (biased upward)",
                    KeyCollisionWarning,
                    stacklevel=3,
                )
        return keys


def feasible(domain: Domain, prefixes: Iterable[int], length: int, enabled: bool) -> list[int]:
    """Drop prefixes no item can have (public knowledge of the encoding; free)."""
    if not enabled:
        return list(prefixes)
    return [p for p in prefixes if domain.is_feasible_prefix(p, length)]


def first_level(domain: Domain, length: int, prune: bool) -> list[int]:
    return feasible(domain, range(1 << length), length, prune)


def extend(domain: Domain, kept: Sequence[int], step: int, length: int, prune: bool) -> list[int]:
    return feasible(domain, children(kept, step), length, prune)


def top_indices(values: np.ndarray, count: int, drop_negative: bool = False) -> np.ndarray:
    """Indices of the ``count`` largest values (ties by position), largest first."""
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
    if drop_negative:
        order = order[np.asarray(values)[order] >= 0]
    return order[:count]


def split_by(labels: np.ndarray, count: int, offset: int = 0) -> list[np.ndarray]:
    """Index arrays of each label value offset..offset+count−1, each in increasing order
    (what a stable sort gives), as int32 when they fit: a release of 10^7 reports holds
    them for the whole discovery.

    >>> [a.tolist() for a in split_by(np.array([2, 1, 2, 3, 1]), 3, offset=1)]
    [[1, 4], [0, 2], [3]]
    """
    labels = np.asarray(labels)
    kind = np.int32 if labels.size < 2**31 else np.int64
    if count > 64:  # many labels: one stable sort instead of a pass per label
        order = np.argsort(labels, kind="stable").astype(kind)
        bounds = np.searchsorted(labels[order], np.arange(offset, offset + count + 1))
        return [order[bounds[j] : bounds[j + 1]] for j in range(count)]
    return [np.flatnonzero(labels == offset + j).astype(kind) for j in range(count)]


# --- hierarchical consistency (Hay et al., VLDB 2010) -------------------------------------------


@dataclass
class LevelNodes:
    """One level of an estimated prefix tree: candidates, raw estimates, variances, and the
    candidates that were expanded (all their feasible children are in the next level)."""

    length: int
    prefixes: list[int]
    estimates: np.ndarray
    variances: np.ndarray
    expanded: set[int] = field(default_factory=set)


def consistent_tree(
    levels: Sequence[LevelNodes], root_complete: bool = True, root_value: float = 1.0, root_variance: float = 0.0
) -> list[np.ndarray]:
    """Weighted least-squares consistency (Hay et al., VLDB 2010, with unequal variances) wherever a node's
    children are complete: the root (frequency 1, variance 0) and every expanded prefix
    become the sum of their children. Nodes whose parent was not expanded (e.g. TAPS's
    injected prefixes) start their own subtree. Returns consistent values per level.

    The root is the empty prefix: frequency ``root_value`` (1, known exactly) unless given.

    >>> lv = [LevelNodes(1, [0, 1], np.array([4.0, 2.0]), np.ones(2), {0, 1}),
    ...       LevelNodes(2, [0, 1, 2, 3], np.array([3.0, 0.0, 1.0, 2.0]), np.ones(4))]
    >>> [np.round(v, 6).tolist() for v in consistent_tree(lv, root_value=10.0, root_variance=1.0)]
    [[4.809524, 3.47619], [3.904762, 0.904762, 1.238095, 2.238095]]
    """
    from client_sdk.postprocess import tree_consistency

    values = [float(root_value)]
    variances = [float(root_variance)]
    kids: list[list[int]] = [[]]
    parent: list[int | None] = [None]
    base = []
    prev_index: dict[int, int] = {}
    prev_expanded: set[int] = set()
    for depth, lvl in enumerate(levels):
        base.append(len(values))
        step = lvl.length - (levels[depth - 1].length if depth else 0)
        index = {}
        for j, pfx in enumerate(lvl.prefixes):
            node = len(values)
            index[pfx] = node
            values.append(float(lvl.estimates[j]))
            variances.append(float(lvl.variances[j]))
            kids.append([])
            if depth == 0:
                par = 0 if root_complete else None
            else:
                up = pfx >> step
                par = prev_index[up] if up in prev_expanded and up in prev_index else None
            parent.append(par)
            if par is not None:
                kids[par].append(node)
        prev_index, prev_expanded = index, lvl.expanded
    out = np.asarray(values, dtype=np.float64).copy()
    roots = [v for v in range(len(values)) if parent[v] is None and kids[v]]
    for r in roots:
        solved = tree_consistency(values, variances, kids, root=r)
        stack = [r]
        while stack:
            v = stack.pop()
            out[v] = solved[v]
            stack.extend(kids[v])
    return [out[base[d] : base[d] + len(lvl.prefixes)] for d, lvl in enumerate(levels)]


# --- results -------------------------------------------------------------------------------


# --- significance and publication ---------------------------------------------------------


def holm_adjusted(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (Holm 1979): ``max_{j≤i} min(1, (m−j+1)·p_(j))`` in
    increasing order of p. Rejecting where the adjusted value is ≤ α controls the
    family-wise error rate at α over the m tests under any dependence."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.maximum.accumulate(scaled)
    return out


def binomial_upper_tail(counts: np.ndarray, trials: np.ndarray, q: float) -> np.ndarray:
    """Exact ``P(X ≥ c)`` for ``X ~ Binomial(N, q)``, vectorised: the regularised incomplete
    beta ``I_q(c, N − c + 1)`` by its continued fraction (modified Lentz; Press et al.,
    Numerical Recipes §6.4), evaluated directly or through ``1 − I_{1−q}(b, a)``.

    Under H0 (f = 0) an OLH report supports a candidate's key with probability exactly
    ``q* = 1/g`` whatever the user's item, so a candidate's support count over N reports
    is Binomial(N, q*): this p-value is exact, where the normal approximation understates
    the right tail at small N (it published junk at n = 2,000)."""
    c = np.asarray(counts, dtype=np.float64)
    n = np.broadcast_to(np.asarray(trials, dtype=np.float64), c.shape)
    out = np.ones(c.shape)
    out[c > n] = 0.0  # beyond the support (only a centrally noised count can be there)
    live = (c > 0) & (c <= n)
    if not live.any():
        return out
    a = np.round(c[live])
    b = n[live] - a + 1
    out[live] = _betainc(a, b, q)
    return np.clip(out, 0.0, 1.0)


def _betainc(a: np.ndarray, b: np.ndarray, x: float) -> np.ndarray:
    from math import lgamma

    lg = np.vectorize(lgamma, otypes=[float])
    lbeta = lg(a + b) - lg(a) - lg(b)
    flip = x > (a + 1) / (a + b + 2)
    aa, bb = np.where(flip, b, a), np.where(flip, a, b)
    xx = np.where(flip, 1 - x, x)
    front = np.exp(lbeta + aa * np.log(xx) + bb * np.log1p(-xx)) / aa
    tiny = 1e-300
    qab, qap, qam = aa + bb, aa + 1, aa - 1
    cc = np.ones_like(aa)
    d = 1 - qab * xx / qap
    d = np.where(np.abs(d) < tiny, tiny, d)
    d = 1 / d
    h = d.copy()
    done = np.zeros(aa.shape, dtype=bool)
    for m in range(1, 100_000):
        m2 = 2 * m
        num = m * (bb - m) * xx / ((qam + m2) * (aa + m2))
        d = 1 + num * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        cc = 1 + num / cc
        cc = np.where(np.abs(cc) < tiny, tiny, cc)
        d = 1 / d
        h = np.where(done, h, h * d * cc)
        num = -(aa + m) * (qab + m) * xx / ((aa + m2) * (qap + m2))
        d = 1 + num * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        cc = 1 + num / cc
        cc = np.where(np.abs(cc) < tiny, tiny, cc)
        d = 1 / d
        delta = d * cc
        h = np.where(done, h, h * delta)
        done |= np.abs(delta - 1) < 1e-12
        if done.all():
            break
    value = front * h
    return np.where(flip, 1 - value, value)


def support_of(f_hat: np.ndarray, olh: OLH, trials: np.ndarray | float, scale: float = 1.0) -> np.ndarray:
    """The support count behind an estimate ``f̂ = scale·(C/N − q*)/(p* − q*)``."""
    f = np.asarray(f_hat, dtype=np.float64) / scale
    return np.round(np.asarray(trials, dtype=np.float64) * (f * (olh.p_star - olh.q_star) + olh.q_star))


@dataclass
class Selection:
    """Which tested candidates are published: indices (into the tested list) of the
    significant, valid ones (at most k, largest test estimate first), their adjusted
    p-values, and the counts the release reports."""

    published: np.ndarray
    p_adjusted: np.ndarray
    stats: dict[str, Any]


def upper_tail_p_values(
    counts: np.ndarray, trials: np.ndarray | float, q: float, noise_var: np.ndarray | float = 0.0
) -> np.ndarray:
    """One-sided p-values of H0 (each of ``trials`` reports supports the candidate with
    probability ``q``) for support ``counts``: the exact binomial upper tail, or — under a
    server's central noise of variance ``noise_var`` per count — the union bound
    ``min_t P(Bin ≥ c − t) + exp(−t²/2v)`` (valid: the discrete Gaussian is sub-Gaussian
    with variance proxy v)."""
    counts = np.asarray(counts, dtype=np.float64)
    trials_arr = np.broadcast_to(np.asarray(trials, dtype=np.float64), counts.shape)
    noise = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), counts.shape)
    raw = binomial_upper_tail(counts, trials_arr, q)
    if np.any(noise > 0):
        sd = np.sqrt(noise)
        bound = np.full(raw.shape, np.inf)
        for t in np.linspace(0.5, 8.0, 16):  # shifts of t·sd: the best of a grid (each is a valid bound)
            tail = binomial_upper_tail(np.ceil(counts - t * sd), trials_arr, q)
            bound = np.minimum(bound, tail + np.exp(-(t**2) / 2))
        raw = np.where(noise > 0, np.minimum(bound, 1.0), raw)
    return raw


def select_significant(
    domain: Domain,
    codes: Sequence[int],
    f_test: np.ndarray,
    k: int,
    alpha: float,
    *,
    counts: np.ndarray,
    trials: np.ndarray | float,
    q: float,
    noise_var: np.ndarray | float = 0.0,
) -> Selection:
    """Publish only valid items whose frequency is significantly above zero at level
    ``alpha`` after Holm's correction over every valid candidate tested; at most k (the
    largest test estimates ``f_test``). Each candidate's p-value is the exact binomial
    tail of its support ``counts`` over ``trials`` reports under H0 (f = 0: each report
    supports it with probability ``q`` = 1/g). Under a server's central noise
    (``noise_var`` > 0: the variance per count of the discrete Gaussian added to the
    counts) the p-value is the union bound ``min_t P(Bin ≥ c − t) + exp(−t²/2v)`` — valid
    (the discrete Gaussian is sub-Gaussian with variance proxy v), so the family-wise error
    stays ≤ α with the noise included. Invalid codes (no item of the domain has them) are
    never tested nor published."""
    valid = np.fromiter((domain.is_valid_code(c) for c in codes), dtype=bool, count=len(codes))
    idx = np.nonzero(valid)[0]
    f_test = np.asarray(f_test, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    trials_arr = np.broadcast_to(np.asarray(trials, dtype=np.float64), f_test.shape)
    p_adj = np.ones(len(codes))
    noise = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), f_test.shape)[idx]
    p_adj[idx] = holm_adjusted(upper_tail_p_values(counts[idx], trials_arr[idx], q, noise))
    significant = idx[p_adj[idx] <= alpha]
    chosen = significant[np.argsort(-f_test[significant], kind="stable")][:k]
    stats = {
        "alpha": alpha,
        "correction": "holm",
        "tested": int(idx.size),
        "significant": int(significant.size),
        "published": int(chosen.size),
        "withheld": int(idx.size - chosen.size),
        "invalid_dropped": int(len(codes) - idx.size),
    }
    return Selection(chosen, p_adj, stats)


def required_reports(
    epsilon: float,
    groups: float,
    k: int,
    candidates: int,
    alpha: float,
    olh_epsilon: float | None = None,
    g: int | None = None,
) -> int:
    """Smallest n at which an item holding 1/k of the users (the most the k-th heavy hitter
    can hold) clears the Holm/Bonferroni threshold of ``candidates`` tests from one of
    ``groups`` equal level groups: ``n ≥ groups·Var*·(z_{1−α/C}·k)²``."""
    olh = make_olh(epsilon if olh_epsilon is None else olh_epsilon, g)
    z = NormalDist().inv_cdf(1 - alpha / max(1, candidates))
    return int(math.ceil(groups * olh.variance_approx_per_user * (z * k) ** 2))


def check_hopeless(
    name: str, epsilon: float, expected: int | None, groups: float, k: int, candidates: int, alpha: float,
    per_report_epsilon: float = 1.0, g: int | None = None,
) -> int | None:  # fmt: skip
    """Refuse (ConfigError) a configuration whose expected report count cannot make even an
    item with 1/k of the users significant; the message gives the smallest n for this ε
    and the smallest ε for this n. ``per_report_epsilon`` is the share of ε each report
    gets (TreeHist: 1/2)."""
    if expected is None:
        return None
    expected = check_int(expected, "expected_reports", 1)
    need = required_reports(epsilon, groups, k, candidates, alpha, epsilon * per_report_epsilon, g)
    if expected >= need:
        return expected
    lo, hi = epsilon, 20.0
    if required_reports(hi, groups, k, candidates, alpha, hi * per_report_epsilon) > expected:
        eps_msg = "no ε up to 20 would do"
    else:
        for _ in range(60):
            mid = (lo + hi) / 2
            if required_reports(mid, groups, k, candidates, alpha, mid * per_report_epsilon) <= expected:
                hi = mid
            else:
                lo = mid
        eps_msg = f"or ε ≥ {hi:.3g} for n = {expected}"
    raise ConfigError(
        f"hopeless {name} configuration: with n = {expected} reports split over {groups} groups at ε = {epsilon}, "
        f"even an item held by 1/k of the users would not be significant among {candidates} candidates "
        f"(α = {alpha}, Holm); it needs n ≥ {need} at this ε, {eps_msg}; or fewer levels (shorter items, "
        "a smaller alphabet) or a smaller k"
    )


@dataclass(frozen=True)
class HeavyHitter:
    """One published item: unbiased frequency (fraction of all users) from the final
    estimation round, its variance and normal-approximation interval, the value after
    hierarchical consistency (when defined) and its Holm-adjusted p-value of H0: f = 0."""

    item: Any
    code: int
    frequency: float
    variance: float
    ci_lower: float
    ci_upper: float
    count: float
    consistent_frequency: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "item": self.item,
            "code": str(self.code),
            "frequency": self.frequency,
            "count": self.count,
            "variance": self.variance,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "consistent_frequency": self.consistent_frequency,
        }


def make_hitters(
    domain: Domain,
    codes: Sequence[int],
    freqs: np.ndarray,
    variances: np.ndarray,
    n: int,
    ci_level: float,
    consistent: np.ndarray | None = None,
    p_values: np.ndarray | None = None,
) -> list[HeavyHitter]:
    z = NormalDist().inv_cdf(0.5 + ci_level / 2)
    out = []
    for j, code in enumerate(codes):
        f, v = float(freqs[j]), float(variances[j])
        half = z * math.sqrt(max(v, 0.0))
        out.append(
            HeavyHitter(
                domain.decode(code),
                int(code),
                f,
                v,
                f - half,
                f + half,
                f * n,
                None if consistent is None else float(consistent[j]),
                None if p_values is None else float(p_values[j]),
            )  # fmt: skip
        )
    return out


@dataclass
class LevelTrace:
    level: int
    length: int
    reports: int
    candidates: int
    kept: int
    sigma: float
    party: int | None = None
    phase: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DiscoveryResult:
    """What discovery returns: the top items (best first) and how they were found."""

    protocol: str
    epsilon: float
    k: int
    n: int
    heavy_hitters: list[HeavyHitter]
    levels: list[LevelTrace]
    ci_level: float = 0.95
    local: dict[str, list[HeavyHitter]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    significance: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[Any]:
        return [h.item for h in self.heavy_hitters]

    @property
    def codes(self) -> list[int]:
        return [h.code for h in self.heavy_hitters]

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "epsilon": self.epsilon,
            "k": self.k,
            "n": self.n,
            "ci_level": self.ci_level,
            "heavy_hitters": [h.to_dict() for h in self.heavy_hitters],
            "local": {p: [h.to_dict() for h in hs] for p, hs in self.local.items()},
            "levels": [t.to_dict() for t in self.levels],
            "diagnostics": self.diagnostics,
            "significance": self.significance,
        }


def olh_config(olh: OLH) -> dict[str, Any]:
    return {"mechanism": "olh", "g": olh.g, "hash": HASH_FAMILY}
