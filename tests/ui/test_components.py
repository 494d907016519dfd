"""The shared input checks and table helper in ui/components, called directly."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gradio as gr
import pytest

from core.errors import ConfidantError
from ui.components.inputs import number, upload_path, whole_number
from ui.components.results import first_cell_of_selected_row


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [("0.5", {}, 0.5), (3, {"low": 0, "high": 3}, 3.0), (-1e9, {}, -1e9),
     (0.01, {"low": 0.01}, 0.01)],
)  # fmt: skip
def test_number_accepts_finite_values_in_range(value, kwargs, expected):
    assert number(value, "x", **kwargs) == expected


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (None, {}, "α must be a number, got None"),
        ("abc", {}, "α must be a number, got 'abc'"),
        (math.nan, {}, "α must be a finite number"),
        (math.inf, {}, "α must be a finite number"),
        (0.5, {"low": 0.01, "high": 0.49}, "α must be between 0.01 and 0.49, got 0.5"),
    ],
)
def test_number_names_the_field_in_its_message(value, kwargs, message):
    with pytest.raises(ConfidantError) as raised:
        number(value, "α", **kwargs)
    assert str(raised.value) == message


def test_whole_number_accepts_integral_values_and_returns_an_int():
    for value in (2, 2.0, "2", True + 1):
        result = whole_number(value, "N", 2, 50)
        assert result == 2 and isinstance(result, int)
    assert whole_number(2**31 - 1, "the seed", 0, 2**31 - 1) == 2**31 - 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("two", "N must be a whole number, got 'two'"),
        (2.5, "N must be a whole number, got 2.5"),
        (math.nan, "N must be a whole number, got nan"),
        (math.inf, "N must be a whole number, got inf"),
        (1, "N must be between 2 and 50, got 1"),
        (51.0, "N must be between 2 and 50, got 51"),
    ],
)
def test_whole_number_refuses_fractions_non_finite_and_out_of_range(value, message):
    with pytest.raises(ConfidantError) as raised:
        whole_number(value, "N", 2, 50)
    assert str(raised.value) == message


def test_upload_path_of_each_kind_of_file_value():
    assert upload_path(None) is None and upload_path("") is None
    assert upload_path("/tmp/a.csv") == "/tmp/a.csv"
    assert upload_path(SimpleNamespace(name="/tmp/b.jsonl")) == "/tmp/b.jsonl"


def test_first_cell_of_selected_row_from_lists_and_frames():
    pandas = pytest.importorskip("pandas")
    rows = [["run-a", "trace"], ["run-b", "judge"]]
    event = SimpleNamespace(index=[1, 1])
    assert first_cell_of_selected_row(event, rows) == "run-b"
    assert first_cell_of_selected_row(event, pandas.DataFrame(rows)) == "run-b"
    skipped = first_cell_of_selected_row(SimpleNamespace(index=[5, 0]), rows)
    assert skipped == gr.skip()
