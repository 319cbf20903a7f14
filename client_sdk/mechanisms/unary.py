"""Unary encoding: SUE (basic one-time RAPPOR) and OUE (optimised unary encoding).

Privacy: epsilon-LDP. A value is one-hot encoded into k bits; a 1-bit stays 1 with
probability p, a 0-bit becomes 1 with probability q. Two inputs differ in two bits, so
the worst output ratio is p(1−q)/((1−p)q) = e^epsilon (Wang, Blocki, Li, Jha, USENIX
Security 2017; docs/algorithms.md).

* SUE: ``p = e^{ε/2}/(e^{ε/2}+1)``, ``q = 1 − p``.
* OUE: ``p = 1/2``, ``q = 1/(e^ε + 1)``; variance ``4e^ε/(n(e^ε−1)²)``, independent of k.

Reports travel as packed bits (little-endian bit order within each byte), base64.

>>> m = OUE(epsilon=1.0, domain_size=100)
>>> round(m.q_star, 6), round(m.variance_approx_per_user, 6)
(0.268941, 3.682694)
>>> round(SUE(epsilon=1.0, domain_size=8).variance_approx_per_user, 6)
3.917698
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from client_sdk import _random
from client_sdk.errors import ReportDecodeError
from client_sdk.mechanisms._base import WIRE_VERSION, FrequencyOracle, ReportBatch

# Per byte value, which of its 8 bits are set (little-endian): used to count bits fast.
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(np.int64)


class UnaryReports(ReportBatch):
    """Packed bit vectors: ``bits[i]`` holds report i's k bits in ceil(k/8) bytes."""

    mechanism = "ue"

    def __init__(self, packed: np.ndarray, domain_size: int) -> None:
        self.packed = np.ascontiguousarray(packed, dtype=np.uint8)
        self.domain_size = domain_size

    def __len__(self) -> int:
        return int(self.packed.shape[0])

    def unpacked(self) -> np.ndarray:
        return np.unpackbits(self.packed, axis=1, count=self.domain_size, bitorder="little")


def count_set_bits(packed: np.ndarray, domain_size: int, chunk: int = 1 << 16) -> np.ndarray:
    """Per-position count of set bits over packed rows, without unpacking.

    Each byte column gets a 256-bin histogram (one bincount over the whole batch); the
    histogram times the byte-to-bits table gives the counts of that column's 8 bits.
    """
    n, width = packed.shape
    histogram = np.zeros(width * 256, dtype=np.int64)
    offsets = (np.arange(width, dtype=np.int64) * 256)[None, :]
    for start in range(0, n, chunk):
        block = packed[start : start + chunk].astype(np.int64) + offsets
        histogram += np.bincount(block.ravel(), minlength=width * 256)
    counts = histogram.reshape(width, 256) @ _BYTE_BITS
    return counts.ravel()[:domain_size]


_B64_VALUES = np.full(256, 255, dtype=np.uint8)
_B64_VALUES[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)] = (
    np.arange(64, dtype=np.uint8)
)
_PAYLOAD_FIELDS = frozenset({"v", "m", "bits"})


def decode_canonical_bits(payloads: Sequence[Any], name: str, width: int, domain_size: int) -> np.ndarray | None:
    """Every payload's bits at once, as ``(n, width)`` bytes, when the whole batch is the common
    case: objects of exactly ``v`` (the integer wire version), ``m`` (``name``) and ``bits``,
    each ``bits`` base64 of exactly ``width`` bytes with its ``=`` padding and zero bits past
    the domain. Base64 is decoded by table look-up over the joined batch, as
    ``base64.b64decode(validate=True)`` decodes each string. None otherwise: the caller then
    decodes payload by payload and names the first bad one."""
    if not payloads or set(map(type, payloads)) != {dict} or set(map(frozenset, payloads)) != {_PAYLOAD_FIELDS}:
        return None
    versions = [p["v"] for p in payloads]
    if set(map(type, versions)) != {int} or set(versions) != {WIRE_VERSION} or {p["m"] for p in payloads} != {name}:
        return None
    texts = [p["bits"] for p in payloads]
    chars = 4 * ((width + 2) // 3)
    if set(map(type, texts)) != {str} or set(map(len, texts)) != {chars}:
        return None
    joined = "".join(texts)
    if not joined.isascii():
        return None
    pad = (3 - width % 3) % 3
    grid = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(texts), chars)
    values = _B64_VALUES[grid]
    if pad and not (grid[:, chars - pad :] == ord("=")).all():
        return None
    values[:, chars - pad :] = 0
    if (values == 255).any():
        return None
    quads = values.reshape(len(texts), chars // 4, 4).astype(np.uint32)
    triples = (quads[..., 0] << 18) | (quads[..., 1] << 12) | (quads[..., 2] << 6) | quads[..., 3]
    data = np.stack([triples >> 16, triples >> 8, triples], axis=-1).astype(np.uint8).reshape(len(texts), -1)
    packed = np.ascontiguousarray(data[:, :width])
    spare = width * 8 - domain_size
    if spare and (packed[:, -1] >> (8 - spare)).any():
        return None
    return packed


class UnaryEncoding(FrequencyOracle[UnaryReports]):
    """Shared code of SUE and OUE; subclasses set p and q."""

    max_domain_size = 1 << 16  # 8 KiB per report; beyond that use OLH
    wire_fields = frozenset({"v", "m", "bits"})
    _p: float
    _q: float

    @property
    def p_star(self) -> float:
        return self._p

    @property
    def q_star(self) -> float:
        return self._q

    @property
    def report_bits(self) -> int:
        return self.domain_size

    @property
    def _width(self) -> int:
        return (self.domain_size + 7) // 8

    def _bit_probabilities(self, v: int) -> np.ndarray:
        probs = np.full(self.domain_size, self._q)
        probs[v] = self._p
        return probs

    def perturb(self, value: int) -> dict[str, Any]:
        v = self._check_value(value)
        bits = _random.bernoulli_vector(self._bit_probabilities(v)).astype(np.uint8)
        return self._payload(np.packbits(bits, bitorder="little"))

    def _payload(self, packed_row: np.ndarray) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "m": self.name, "bits": base64.b64encode(packed_row.tobytes()).decode("ascii")}

    def perturb_batch(self, values: Any, rng: np.random.Generator, chunk: int = 1 << 14) -> UnaryReports:
        v = self._check_values(values)
        packed = np.empty((v.size, self._width), dtype=np.uint8)
        q32, p32 = np.float32(self._q), np.float32(self._p)
        rows = np.arange(min(chunk, v.size))
        for start in range(0, v.size, chunk):
            part = v[start : start + chunk]
            # float32 uniforms: probabilities realised to 2**-24, ample for simulation
            uniform = rng.random((part.size, self.domain_size), dtype=np.float32)
            bits = uniform < q32
            bits[rows[: part.size], part] = uniform[rows[: part.size], part] < p32
            packed[start : start + chunk] = np.packbits(bits, axis=1, bitorder="little")
        return UnaryReports(packed, self.domain_size)

    def encode(self, batch: UnaryReports) -> list[dict[str, Any]]:
        return [self._payload(row) for row in batch.packed]

    def decode(self, payloads: Sequence[Mapping[str, Any]]) -> UnaryReports:
        packed = decode_canonical_bits(payloads, self.name, self._width, self.domain_size)
        if packed is not None:
            return UnaryReports(packed, self.domain_size)
        width = self._width
        spare = width * 8 - self.domain_size
        out = np.empty((len(payloads), width), dtype=np.uint8)
        for i, payload in enumerate(payloads):
            self._check_header(payload, i)
            raw = payload.get("bits")
            if not isinstance(raw, str):
                raise ReportDecodeError("bad_type", "field 'bits' must be a base64 string", i)
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise ReportDecodeError("bad_encoding", "field 'bits' is not valid base64", i) from None
            if len(data) != width:
                raise ReportDecodeError(
                    "bad_length", f"field 'bits' holds {len(data)} bytes, expected {width} for k={self.domain_size}", i
                )
            if spare and data[-1] >> (8 - spare):
                raise ReportDecodeError("out_of_range", "padding bits beyond the domain must be zero", i)
            out[i] = np.frombuffer(data, dtype=np.uint8)
        return UnaryReports(out, self.domain_size)

    def _support_counts(self, batch: UnaryReports) -> np.ndarray:
        return count_set_bits(batch.packed, self.domain_size)

    def output_distribution(self, value: int) -> dict[Any, float]:
        v = self._check_value(value)
        if self.domain_size > 12:
            raise NotImplementedError("output distribution enumerated for k <= 12 only")
        probs = self._bit_probabilities(v)
        out = {}
        for pattern in range(1 << self.domain_size):
            bits = np.array([(pattern >> j) & 1 for j in range(self.domain_size)])
            out[pattern] = float(np.prod(np.where(bits == 1, probs, 1 - probs)))
        return out


class OUE(UnaryEncoding):
    name = "oue"

    def __init__(self, epsilon: float, domain_size: int) -> None:
        super().__init__(epsilon, domain_size)
        self._p = 0.5
        self._q = 1.0 / (math.exp(self.epsilon) + 1.0)


class SUE(UnaryEncoding):
    name = "sue"

    def __init__(self, epsilon: float, domain_size: int) -> None:
        super().__init__(epsilon, domain_size)
        half = math.exp(self.epsilon / 2)
        self._p = half / (half + 1.0)
        self._q = 1.0 / (half + 1.0)
