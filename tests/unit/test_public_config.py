"""The typed public config (client_sdk.public_config): one copy of the epoch and budget rules,
checked against the shared runtime vectors the web and Android SDKs also run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client_sdk.canonical import config_hash
from client_sdk.public_config import (
    CONFIG_VERSION,
    BudgetRule,
    EpochRule,
    PublicConfig,
    PublicConfigError,
    UnsupportedConfigVersion,
    epoch_boundary,
    lifetime_units,
    max_units,
)

RUNTIME = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "runtime.json").read_text(encoding="utf-8"))


def _served() -> list[dict[str, Any]]:
    return [c for c in RUNTIME["configs"] if "extra" not in json.loads(c["text"])]


@pytest.mark.parametrize("case", _served(), ids=lambda c: c["config_hash"][7:19])
def test_to_dict_writes_back_exactly_the_served_config(case: dict[str, Any]) -> None:
    served = json.loads(case["text"])
    public = PublicConfig.from_dict(served)
    assert public.to_dict() == served
    assert public.config_hash() == case["config_hash"] and public.canonical() == case["canonical"]
    compiled = case.get("compiled")
    if compiled is not None:  # what a device compiles: the same numbers from the typed config
        assert public.epoch.seconds == compiled["epoch_seconds"]
        assert public.epoch.start_us == compiled["epoch_start_us"]
        assert public.unit_epsilon == compiled["unit_epsilon"]
        assert public.max_units_lifetime == compiled["max_units_lifetime"]
        assert public.max_units_window == compiled["max_units_window"]


def test_epochs_and_units_follow_the_shared_vectors() -> None:
    for start, seconds, now_ms, epoch, start_us in RUNTIME["epochs"]:
        rule = EpochRule(seconds, start, 1)
        assert rule.start_us == start_us
        assert rule.epoch_at(now_ms / 1000) == epoch, (start, seconds, now_ms)
    for cap, unit, units in RUNTIME["units"]:
        assert max_units(cap, unit) == units
    assert max_units(None, 1.0) is None


def test_the_server_side_builds_what_a_device_reads() -> None:
    start = epoch_boundary(datetime(2030, 1, 1, 10, 17, 3, tzinfo=UTC), 3600)
    assert start == datetime(2030, 1, 1, 10, tzinfo=UTC)
    public = PublicConfig(
        kind="longitudinal",
        mechanism={"kind": "longitudinal", "mechanism": "l-grr", "epsilon_perm": 2.0, "epsilon_first": 1.0},
        epsilon=1.0,
        neighbouring="record",
        epoch=EpochRule.starting(start, 3600, 2),
        budget=BudgetRule(cap_lifetime=5.0, cap_per_window=4.0, window_epochs=24, memoized=True, epsilon_per_memo=2.0),
        release={"windows": [1], "cumulative": True, "min_reports": 100},
    )
    data = public.to_dict()
    assert data["epoch"] == {"seconds": 3600, "start": "2030-01-01T10:00:00Z", "grace": 2}
    assert "parties" not in data and data["version"] == CONFIG_VERSION
    again = PublicConfig.from_dict(json.loads(json.dumps(data)))
    assert again == public and again.config_hash() == config_hash(data)
    # memoized: the unit is ε∞ per new memo; 5 / 2 -> 2 units, 4 / 2 -> 2 per window
    assert (again.unit_epsilon, again.max_units_lifetime, again.max_units_window) == (2.0, 2, 2)
    assert again.epoch_at(start) == 0 and again.epoch_at(datetime(2030, 1, 2, 9, 59, tzinfo=UTC)) == 23
    assert again.window_of(23) == 0 and again.window_of(24) == 1
    assert lifetime_units(2, None) == 2 and lifetime_units(9, 4) == 4 and lifetime_units(9, 0) == 1


def test_other_versions_are_refused_by_a_device_but_read_by_the_server() -> None:
    served = json.loads(_served()[0]["text"])
    old = {**served, "version": 1}
    with pytest.raises(UnsupportedConfigVersion, match="version 1 configs were hashed as Python json.dumps"):
        PublicConfig.from_dict(old, "col_x")
    assert PublicConfig.from_dict(old, accept=(1, 2)).version == 1
    for version in (2.0, True, "2", 3, None):
        with pytest.raises(UnsupportedConfigVersion, match=f"config version {version!r} is not supported"):
            PublicConfig.from_dict({**served, "version": version})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("budget"), "missing or has a bad field"),
        (lambda c: c["epoch"].update(seconds=0), "epoch.seconds must be a positive integer"),
        (lambda c: c["epoch"].update(start="2030-01-01T00:00:00"), "has no time zone"),
        (lambda c: c["epoch"].update(start=7), "must be a timestamp string"),
        (lambda c: c["budget"].update(window_epochs=0), "window_epochs must be a positive integer"),
        (lambda c: c.update(epsilon=float("nan")), "epsilon must be positive"),
        (lambda c: c.update(budget=[]), "missing or has a bad field"),
    ],
)
def test_a_bad_field_is_named(change: Any, message: str) -> None:
    config = json.loads(_served()[0]["text"])
    change(config)
    with pytest.raises(PublicConfigError, match=message):
        PublicConfig.from_dict(config)
