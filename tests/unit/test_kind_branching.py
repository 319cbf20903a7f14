"""Kind-specific behaviour lives in the kind modules: the SDK packages of each kind and the
server's adapters (``ldpserver/kinds``). Everywhere else the code asks the adapter or the
SDK object (``value_shape``, ``parse_value``, ``estimate_scope``, ...) and never compares a
collection kind with a name — that is what makes adding a kind one SDK package and one
adapter (docs/architecture.md, "Adding a kind")."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("frequency", "multidim", "heavy_hitters", "longitudinal")
#: the kind modules: free to branch on their own kind
KIND_MODULES = (
    "ldpserver/kinds/",
    "client_sdk/mechanisms/",
    "client_sdk/multidim/",
    "client_sdk/heavy_hitters/",
    "client_sdk/longitudinal/",
)
_NAME = "(?:" + "|".join(KINDS) + ")"
PATTERNS = [
    re.compile(r"\bkind\s*[!=]=\s*['\"]"),  # kind == "multidim"
    re.compile(rf"['\"]{_NAME}['\"]\s*[!=]=\s*[\w.]*kind\b"),  # "multidim" == c.kind
    re.compile(r"\bkind\s+(?:not\s+)?in\s*[(\[{]\s*['\"]"),  # kind in ("frequency", ...)
    re.compile(rf"\bkind\s*[!=]=\s*{_NAME}\b"),
]


def offending_lines() -> list[str]:
    found = []
    for folder in ("ldpserver", "ldp_tools", "client_sdk"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(KIND_MODULES):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if any(p.search(code) for p in PATTERNS):
                    found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_no_branching_on_a_collection_kind_outside_the_kind_modules() -> None:
    assert offending_lines() == []


def test_the_rule_catches_what_it_is_for() -> None:
    samples = ['if c.kind == "heavy_hitters":', "if 'multidim' == kind:", 'if kind in ("frequency", "x"):']
    assert all(any(p.search(s) for p in PATTERNS) for s in samples)
    assert not any(p.search("query.where(collections_t.c.kind == kind)") for p in PATTERNS)
