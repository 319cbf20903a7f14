"""Columnar checks of a whole upload: the common, well-formed batch validated column by column.

A batch whose every report is a JSON object with exactly the five wire fields, every
``report_id`` and ``client_id`` matching its pattern, the collection's ``config_hash``, an
integer epoch inside the accepted window and an object payload is turned into
:class:`Report` tuples here, with a handful of C-level passes over the batch (lengths and
one byte-level pass per id column over the joined column, sets of types and values) instead of a
pydantic model per report. Any other batch returns None and ``services/ingest.py`` judges it
report by report with the wire model (``schemas/reports.py``), which names every fault:
this module only ever accepts what that model accepts.

``payload_texts`` writes the canonical JSON of each payload (sorted keys, no whitespace,
UTF-8, no NaN) by orjson or one C encoder built once, not one per payload: the same text as
``json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from itertools import chain, repeat
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from ldpserver.schemas.reports import ReportIn


class Report(NamedTuple):
    """One report that passed the wire contract (its fields as ``ReportIn`` holds them)."""

    report_id: str
    client_id: str
    config_hash: str
    epoch: int
    payload: dict[str, Any]


FIELDS = tuple(ReportIn.model_fields)  # report_id, client_id, config_hash, epoch, payload
_COLUMNS = itemgetter(*FIELDS)
_HEX = b"0123456789abcdef"  # ReportIn.report_id: [0-9a-f]{32}
_ID_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"  # client_id: [A-Za-z0-9_-]{1,64}
EPOCH_BOUND = 2**62  # ReportIn.epoch: -2^62 <= epoch <= 2^62


def well_formed(raws: Sequence[Any], config_hash: str, lowest: int, highest: int) -> list[Report] | None:
    """The batch as :class:`Report` tuples if every report passes the wire contract, carries
    ``config_hash`` and an epoch in ``lowest..highest``; else None (judge it report by report)."""
    if not raws or set(map(type, raws)) != {dict} or set(map(len, raws)) != {len(FIELDS)}:
        return None
    try:  # five keys each, and each of the five fields present: exactly the wire fields
        rows = list(map(_COLUMNS, raws))
    except KeyError:
        return None
    report_ids, client_ids, hashes, epochs, payloads = zip(*rows, strict=True)
    try:
        if set(map(type, report_ids)) != {str} or set(map(type, client_ids)) != {str}:
            return None
        if set(hashes) != {config_hash} or set(map(type, epochs)) != {int} or set(map(type, payloads)) != {dict}:
            return None
    except TypeError:  # an unhashable config_hash (a list, an object): not a string
        return None
    if not (max(-EPOCH_BOUND, lowest) <= min(epochs) and max(epochs) <= min(EPOCH_BOUND, highest)):
        return None
    if not (_spelled_with(report_ids, _HEX, 32, 32) and _spelled_with(client_ids, _ID_CHARS, 1, 64)):
        return None
    return list(map(tuple.__new__, repeat(Report), rows))  # Report._make, without a Python call per row


def _spelled_with(column: Sequence[str], alphabet: bytes, shortest: int, longest: int) -> bool:
    """Every string of ``column`` is ``shortest..longest`` characters of ``alphabet`` (ASCII):
    lengths by one ``map``, characters by deleting the alphabet from the joined column (C)."""
    lengths = set(map(len, column))
    if min(lengths) < shortest or max(lengths) > longest:
        return False
    joined = "".join(column)
    return joined.isascii() and not joined.encode("ascii").translate(None, alphabet)


def from_model(report: ReportIn) -> Report:
    return Report(report.report_id, report.client_id, report.config_hash, report.epoch, report.payload)


_ENCODE = c_make_encoder(
    None, None, json.encoder.encode_basestring, None, ":", ",", True, False, False
)  # markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys, allow_nan


#: value types whose JSON orjson writes exactly as ``json.dumps`` does (floats it writes in
#: another shortest form, e.g. ``1e-05`` → ``1e-5``; nested values are left to the standard encoder)
_ORJSON_SAME = frozenset({str, int, bool, type(None)})
_ORJSON_SORTED = functools.partial(orjson.dumps, option=orjson.OPT_SORT_KEYS)


def payload_texts(payloads: Sequence[dict[str, Any]]) -> list[str]:
    """Canonical JSON of each payload (see the module docstring); ValueError on NaN/Infinity.

    A batch whose payloads hold only strings, integers, booleans and nulls (every frequency
    oracle's) is written by orjson with sorted keys — the same text (its string escapes are
    ``json.dumps``'s with ``ensure_ascii=False``; ``tests/unit/test_batch_check.py``), in half the
    time; anything else, or anything orjson refuses (an integer beyond 64 bits, a lone
    surrogate), by the standard encoder, its chunks joined in C (no Python call per payload)."""
    if set(map(type, chain.from_iterable(map(dict.values, payloads)))) <= _ORJSON_SAME:
        try:
            return list(map(bytes.decode, map(_ORJSON_SORTED, payloads)))
        except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate
            pass
    return list(map("".join, map(_ENCODE, payloads, repeat(0))))
