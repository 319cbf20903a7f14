"""The column-wise formatting of a block's charge lines equals RFC 8785, line by line."""

from __future__ import annotations

import rfc8785

from ldpserver.services.ledger import charge_line, charge_lines


def _charge(i: int, window: int, units: int = 1) -> tuple:
    return (f"0521{i:028x}", f"{i:032x}", window, window, units, 0.5 * units, 0.5 * units, None, None, "record")


def test_one_window_and_several_windows_give_rfc8785_lines():
    one_tail = [_charge(i, 20429) for i in range(5)]
    several = one_tail + [_charge(5, 20430), _charge(6, 20429, units=2)]
    for charges in (one_tail, several, one_tail[:1]):
        expected = "".join(rfc8785.dumps(list(c)).decode() + "\n" for c in charges)
        assert charge_lines(charges) == expected == "".join(map(charge_line, charges))
    assert charge_lines([]) == ""
