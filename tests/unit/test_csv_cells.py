"""CSV formula neutralisation (OWASP "CSV Injection"): strings only, numbers untouched."""

from __future__ import annotations

import csv

import pytest

from ldp_tools.simulate import SimulationResult, write_result
from ldpserver.csv_cells import safe_cell, safe_row


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", "=", "-"])
def test_formula_strings_get_a_leading_quote(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["ok", "a=b", " =x", "'=x", "", "1e-3", "ü-"])
def test_other_strings_are_unchanged(cell):
    assert safe_cell(cell) == cell


@pytest.mark.parametrize("value", [-0.0123, -5, 0, 3.5, True, None])
def test_numbers_and_other_values_stay_as_they_are(value):
    assert safe_cell(value) is value


def test_safe_row_keeps_column_order_and_writes_none_as_empty():
    assert safe_row({"b": None, "a": "=x", "c": -1.5}, ["a", "b", "c"]) == {"a": "'=x", "b": "", "c": -1.5}


def test_ldp_simulate_csv_output_is_neutralised(tmp_path):
    result = SimulationResult(
        kind="heavy_hitters", protocol="pem", n=3, seed=1, privacy={},
        rows=[{"item": "=1+2", "estimate": -0.25}, {"item": "@SUM", "estimate": 0.5}],
    )  # fmt: skip
    path = tmp_path / "out.csv"
    write_result(result, path)
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"item": "'=1+2", "estimate": "-0.25"}, {"item": "'@SUM", "estimate": "0.5"}]
