"""NUL bytes are refused before anything reaches the database.

PostgreSQL cannot store U+0000 in ``text`` (nor ``\\u0000`` in ``jsonb``): a NUL in a path,
a query parameter or a JSON string would otherwise surface as a driver error, a 500. No
field of this API has a use for it, so every request carrying one gets a 4xx problem
(docs/api.md, "Strictness") on SQLite too, and both databases behave alike.
"""

from __future__ import annotations

from typing import Any

from flask import request

from ldpserver.errors import ProblemError

NUL = "\x00"


def refuse_nul_in_url() -> None:
    """before_request: a NUL in the (decoded) path or in any query name or value is a 400."""
    if NUL in request.path:
        raise ProblemError("bad-request", "the request path contains a NUL byte")
    for name, value in request.args.items(multi=True):
        if NUL in name or NUL in value:
            raise ProblemError(
                "bad-request",
                "a query parameter contains a NUL byte",
                errors=[{"path": f"/{name.replace(NUL, '')}", "message": "NUL byte", "code": "nul_byte"}],
            )


def nul_pointer(document: Any, path: str = "") -> str | None:
    """JSON pointer of the first string (or key) holding a NUL, else None. Callers only walk a
    document whose text contains ``\\u0000`` (a byte search), so clean bodies cost nothing."""
    if isinstance(document, str):
        return path if NUL in document else None
    if isinstance(document, dict):
        for key, value in document.items():
            here = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if NUL in key:
                return here
            found = nul_pointer(value, here)
            if found is not None:
                return found
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found = nul_pointer(value, f"{path}/{i}")
            if found is not None:
                return found
    return None


def refuse_nul_in_json(data: bytes, document: Any) -> None:
    """A JSON body with a NUL in any string or key is a 422 naming the field."""
    if b"\\u0000" not in data:
        return
    pointer = nul_pointer(document)
    if pointer is not None:
        raise ProblemError(
            "validation",
            f"{pointer or 'body'}: strings may not contain NUL (U+0000)",
            errors=[{"path": pointer, "message": "NUL byte", "code": "nul_byte"}],
        )
