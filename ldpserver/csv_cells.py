"""CSV cells that a spreadsheet will not run as formulas (every CSV the server or CLI writes).

OWASP "CSV Injection": a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return may be evaluated as a formula by Excel, LibreOffice or Google Sheets (a device can
choose its heavy-hitter item or its ``client_id``; ``=cmd|' /C calc'!A0`` runs a program).
Such a *string* cell gets a leading ``'``, which spreadsheets show as text. Numbers are
never touched: a negative estimate stays the number ``-0.01`` (docs/api.md, "CSV").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value to write: a string that could start a formula is prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """One CSV row of ``columns``: None as an empty cell, strings neutralised."""
    return {k: ("" if row.get(k) is None else safe_cell(row[k])) for k in columns}
