import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.evaluation.tsu import (
    DEFAULT_TSU_TEMPERATURES,
    TsuSweep,
    temperature_sweep,
    tsu,
    tsu_summary,
)


def test_default_grid_is_the_papers():
    assert DEFAULT_TSU_TEMPERATURES == (0.3, 0.7, 1.0, 1.4)


def test_whole_chain_must_rise_strictly_at_every_step():
    values = [
        [0.1, 0.2, 0.3, 0.4],  # rises everywhere
        [0.5, 0.4, 0.6, 0.7],  # dips between 0.3 and 0.7
        [0.1, 0.2, 0.2, 0.3],  # tie between 0.7 and 1.0
        [0.9, 0.8, 0.7, 0.6],  # falls
    ]
    assert tsu(values) == pytest.approx(25.0)
    assert tsu(values, over=(0.7, 1.4)) == pytest.approx(75.0)
    assert tsu(values, over=(1.0, 1.4)) == pytest.approx(75.0)
    assert tsu(values, over=(0.7, 1.0)) == pytest.approx(50.0)


def test_summary_has_the_papers_columns():
    values = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.6, 0.7]]
    summary = tsu_summary(values)
    assert summary == {
        "TSU(0.3,1.4)": 100.0,
        "TSU(0.7,1.4)": 100.0,
        "TSU(1.0,1.4)": 100.0,
        "TSU(0.3-1.4)": 50.0,
    }
    assert tsu_summary([[1.0, 2.0], [2.0, 1.0]], temperatures=(0.5, 1.0)) == {"TSU(0.5,1.0)": 50.0}


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=4),
        min_size=1,
        max_size=20,
    )
)
def test_tsu_bounds_and_chain_is_stricter_than_any_pair(rows):
    values = np.array(rows)
    whole = tsu(values)
    assert 0.0 <= whole <= 100.0
    for low in (0.3, 0.7, 1.0):
        assert whole <= tsu(values, over=(low, 1.4)) + 1e-9
    # Reversing the temperature order of strictly ordered rows turns "always rises" into never.
    increasing = np.sort(values, axis=1) + np.arange(4) * 1e-3
    assert tsu(increasing) == 100.0
    assert tsu(increasing[:, ::-1]) == 0.0


@pytest.mark.parametrize(
    "values, kwargs, message",
    [
        ([[0.1, 0.2, 0.3]], {}, "columns"),
        ([], {}, "2-D"),
        ([[0.1, np.nan, 0.3, 0.4]], {}, "NaN"),
        ([[0.1, 0.2]], {"temperatures": (1.0, 0.5)}, "strictly increasing"),
        ([[0.1, 0.2, 0.3, 0.4]], {"over": (1.4, 0.3)}, "strictly increasing"),
        ([[0.1, 0.2, 0.3, 0.4]], {"over": (0.5, 1.4)}, "not in the grid"),
        ([[0.1, 0.2, 0.3, 0.4]], {"over": (1.4,)}, "at least two"),
    ],
)
def test_bad_input_is_rejected(values, kwargs, message):
    with pytest.raises(ConfidantError, match=message):
        tsu(values, **kwargs)


def test_temperature_sweep_runs_any_measure_and_summarises_it():
    calls = []

    def measure(questions, temperature):
        calls.append((tuple(questions), temperature))
        # "rising" rises with temperature for every question; "flat" never does
        return [{"rising": temperature * (i + 1), "flat": 1.0} for i, _ in enumerate(questions)]

    sweep = temperature_sweep(["q1", "q2"], measure, params={"seed": 3})
    assert calls == [(("q1", "q2"), t) for t in DEFAULT_TSU_TEMPERATURES]
    assert sweep.summary["rising"] == {
        "TSU(0.3,1.4)": 100.0,
        "TSU(0.7,1.4)": 100.0,
        "TSU(1.0,1.4)": 100.0,
        "TSU(0.3-1.4)": 100.0,
    }
    assert set(sweep.summary["flat"].values()) == {0.0}
    assert sweep.values["rising"][1] == pytest.approx([0.6, 1.4, 2.0, 2.8])
    assert TsuSweep.from_dict(sweep.to_dict()) == sweep


def test_temperature_sweep_leaves_missing_values_out_of_the_summary():
    def measure(questions, temperature):
        return [{"a": temperature, **({"b": 1.0} if temperature > 0.5 else {})} for _ in questions]

    sweep = temperature_sweep(["q"], measure, temperatures=(0.3, 1.0))
    assert "b" not in sweep.summary and sweep.values["b"] == [[None, 1.0]]
    assert sweep.summary["a"] == {"TSU(0.3,1.0)": 100.0}


def test_temperature_sweep_rejects_bad_input():
    with pytest.raises(ConfidantError, match="at least one question"):
        temperature_sweep([], lambda q, t: [])
    with pytest.raises(ConfidantError, match="strictly increasing"):
        temperature_sweep(["q"], lambda q, t: [{}], temperatures=(1.0, 0.5))
    with pytest.raises(ConfidantError, match="returned 0 results"):
        temperature_sweep(["q"], lambda q, t: [])
