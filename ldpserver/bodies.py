"""Strict request bodies: JSON only, bounded in size and depth, no NaN/Infinity.

Runs before the view (after authentication) for POST/PUT/PATCH:

* a content type other than ``application/json`` (or ``*/*+json``) → 415;
* a declared or actual body (chunked too) larger than ``LDP_MAX_BODY_BYTES`` (a dictionary upload:
  ``LDP_MAX_DICTIONARY_BYTES``) → 413;
* an empty body, invalid UTF-8, malformed JSON, ``NaN``/``Infinity``, numbers too long
  to convert, or nesting deeper than ``LDP_MAX_JSON_DEPTH`` → 400 (``malformed-json``).
* a NUL (``\u0000``) in any string or key → 422 (``validation``, ldpserver/nul_bytes.py),
  except in uploads, where the report holding it is rejected on its own.

The parsed document is cached on the request, so ``request.get_json()`` (and
flask-openapi3's validation) reuse it.

Uploads (the hot path: hundreds of kB per batch) are parsed by orjson, 2–4 times faster than
the standard library; whatever orjson refuses (lone surrogates, a byte order mark, UTF-16,
numbers beyond a double) is parsed again by the standard library, so every body keeps the
standard reading and error message. One difference remains, documented in docs/wire.md:
an integer beyond 64 bits in an upload is read as a float, which no report field accepts
(the report holding it is rejected, as its out-of-range integer was).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from flask import current_app, request

from ldpserver.errors import ProblemError
from ldpserver.nul_bytes import refuse_nul_in_json

BODY_METHODS = {"POST", "PUT", "PATCH"}
#: uploads are judged report by report (a bad report is rejected, the rest of the batch kept,
#: docs/api.md): there a NUL is refused per report — the id, hash and client-id patterns and
#: every decoder's exact fields exclude it, and only decoded reports are stored
PER_REPORT_RULES = frozenset({"/v1/collections/<collection_id>/reports"})
#: routes whose bodies may reach ``LDP_MAX_DICTIONARY_BYTES`` instead of ``LDP_MAX_BODY_BYTES``
LARGE_BODY_RULES = frozenset({"/v1/collections/<collection_id>/dictionary"})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are refused)")


_DELETE_ALL_BUT_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1
_QUOTE = ord('"')


def nesting_depth(data: bytes) -> int:
    """Deepest bracket nesting of a JSON text, ignoring brackets inside strings (vectorised).

    Escaped backslashes, then escaped quotes, are removed (a left-to-right pairing, which
    is JSON's), then everything but quotes and brackets; what remains alternates between
    string and non-string at every quote.
    """
    if b"\\" in data:  # each replace copies the body: only when it has an escape (one search in C)
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _DELETE_ALL_BUT_QUOTES_AND_BRACKETS)
    if not skeleton:
        return 0
    chars = np.frombuffer(skeleton, dtype=np.uint8)
    inside = (np.cumsum(chars == _QUOTE, dtype=np.int32) & 1).astype(bool)
    steps = _DEPTH_STEP[chars]
    steps[inside] = 0
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _more_to_read() -> bool:
    """Whether the client sent more than werkzeug read (the raw WSGI stream is not empty)."""
    try:
        return bool(request.environ["wsgi.input"].read(1))
    except (OSError, ValueError):
        return False


def _parse(data: bytes, fast: bool) -> Any:
    """The JSON document of ``data``; ``fast``: orjson first (see the module docstring)."""
    if fast:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard parser reads it, or names the fault
    return json.loads(data, parse_constant=_no_constants)


def parse_json_body() -> None:
    if request.method not in BODY_METHODS or request.url_rule is None:
        return
    settings = current_app.extensions["ldp"].settings
    mimetype = request.mimetype or ""
    if not (mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise ProblemError(
            "unsupported-media-type",
            f"send the body as application/json, not {mimetype or 'no content type'}",
        )
    limit = settings.max_body_bytes
    if request.url_rule.rule in LARGE_BODY_RULES:
        limit = settings.max_dictionary_bytes
        request.max_content_length = limit  # werkzeug's own cap, for this request only
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError("payload-too-large", f"the body has {request.content_length} bytes; the limit is {limit}")
    data = request.get_data(cache=True)  # werkzeug stops reading at MAX_CONTENT_LENGTH
    if request.content_length is None and len(data) >= limit and _more_to_read():
        # a chunked body: werkzeug hands back its first `limit` bytes without complaint
        raise ProblemError("payload-too-large", f"the chunked body exceeds the limit of {limit} bytes")
    if not data.strip():
        raise ProblemError("malformed-json", "the request body is empty; a JSON document is required")
    limit_depth = settings.max_json_depth
    if nesting_depth(data) > limit_depth:
        raise ProblemError("malformed-json", f"the JSON document is nested deeper than {limit_depth} levels")
    per_report = request.url_rule.rule in PER_REPORT_RULES
    try:
        document = _parse(data, per_report)
    except RecursionError:
        raise ProblemError("malformed-json", "the JSON document is nested too deeply") from None
    except UnicodeDecodeError:
        raise ProblemError("malformed-json", "the body is not valid UTF-8") from None
    except ValueError as exc:
        raise ProblemError("malformed-json", f"the body is not valid JSON: {exc}") from None
    if not per_report:
        refuse_nul_in_json(data, document)
    request._cached_json = (document, document)  # what request.get_json() returns from now on
