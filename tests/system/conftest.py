"""Every test under tests/system is marked ``system`` (live servers, subprocesses, browsers,
packaging): ``pytest -m "not system"`` is the quick loop, CI runs everything."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.system)
