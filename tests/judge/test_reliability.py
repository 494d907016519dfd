"""Reliability measures on hand-built judges whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import ConfidantError
from judge.length_bias import length_controlled_win_rate, length_spearman, longer_win_rate
from judge.reliability import (
    RELIABILITY_MEASURES,
    PairObservation,
    ReliabilityStatistics,
    SingleObservation,
    bootstrap_intervals,
    measure_rows,
    pair_disagreements,
    reliability_values,
)

LENGTHS = [(10, 40), (30, 20), (5, 60), (80, 15), (25, 26), (50, 10)]


def _pairs(judge) -> list[PairObservation]:
    """Pairs judged by ``judge(len_a, len_b) -> letter`` in both orders."""
    return [
        PairObservation(judge(x, y), judge(y, x), length_x=x, length_y=y, item_id=f"p{i}")
        for i, (x, y) in enumerate(LENGTHS)
    ]


def test_a_judge_that_always_picks_a_flips_every_pair():
    values = reliability_values(ReliabilityStatistics(pairs=_pairs(lambda a, b: "A")))
    assert values["flip_rate"] == 1.0
    assert values["position_a_share"] == 1.0
    assert values["tie_flip_rate"] == 0.0
    assert values["win_rate"] == 0.5  # x wins the first order, loses the second


def test_a_position_blind_judge_never_flips_and_ties_count_apart():
    pairs = _pairs(lambda a, b: "A" if a > b else "B")
    pairs.append(PairObservation("C", "A", length_x=3, length_y=3))
    values = reliability_values(ReliabilityStatistics(pairs=pairs))
    assert values["flip_rate"] == 0.0
    assert values["tie_flip_rate"] == pytest.approx(1 / 7)
    assert values["longer_win_rate"] == 1.0


def test_a_judge_scoring_by_length_has_spearman_one():
    singles = [SingleObservation({"expectation": n / 10}, length=n) for n in (12, 40, 7, 90)]
    assert reliability_values(ReliabilityStatistics(singles=singles))["length_spearman"] == 1.0
    assert length_spearman([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)


def test_probability_shift_is_zero_when_order_blind_and_one_for_all_mass_on_a():
    blind = PairObservation(
        "A", "B", {"A": 0.7, "B": 0.2, "C": 0.1}, {"A": 0.2, "B": 0.7, "C": 0.1}
    )
    stuck = PairObservation("A", "A", {"A": 1.0}, {"A": 1.0})
    assert reliability_values(ReliabilityStatistics(pairs=[blind]))["probability_shift"] == 0.0
    assert reliability_values(ReliabilityStatistics(pairs=[stuck]))["probability_shift"] == 1.0


def test_the_length_controlled_win_rate_removes_a_pure_length_preference():
    # The judge picks the longer answer; x is longer in half the pairs: raw win rate 0.5, and
    # once length is held at zero difference the model predicts an even split.
    deltas = [30, -30, 10, -10, 50, -50, 5, -5]
    prefs = [1.0 if d > 0 else 0.0 for d in deltas]
    fit = length_controlled_win_rate(prefs, deltas)
    assert fit.length_coefficient > 1.0
    assert fit.lc_win_rate == pytest.approx(0.5, abs=1e-6)
    # x better in content but also usually longer: raw win rate overstates it.
    deltas = [40, 35, 20, 50, -10, 30, 45, 25]
    prefs = [1, 1, 1, 1, 0, 1, 1, 0]
    fit = length_controlled_win_rate(prefs, deltas)
    assert fit.win_rate == 0.75 and fit.lc_win_rate < fit.win_rate


def test_longer_win_rate_needs_different_lengths():
    with pytest.raises(ConfidantError):
        longer_win_rate([1, 0], [0, 0])


def test_run_to_run_spread_and_the_entropy_correlation():
    singles = [
        SingleObservation({"emitted": 3}, 10, entropy=0.0, runs=[3, 3, 3, 3]),
        SingleObservation({"emitted": 3}, 12, entropy=0.5, runs=[3, 3, 4, 3]),
        SingleObservation({"emitted": 2}, 14, entropy=1.2, runs=[1, 3, 5, 2]),
    ]
    values = reliability_values(ReliabilityStatistics(singles=singles))
    assert values["changed_share"] == pytest.approx(2 / 3)
    expected = np.mean([0.0, np.std([3, 3, 4, 3]), np.std([1, 3, 5, 2])])
    assert values["score_spread"] == pytest.approx(expected)
    assert values["entropy_spread_rho"] == pytest.approx(1.0)


def test_human_majority_accuracy_and_disagreement_rows_apart():
    pairs = [
        PairObservation("A", "B", humans={"ada": "A", "bo": "A", "cy": "B"}, item_id="p1"),
        PairObservation("A", "B", humans={"ada": "B", "bo": "B"}, item_id="p2"),
        PairObservation("B", "A", humans={"ada": "A", "bo": "B"}, item_id="p3"),
    ]
    values = reliability_values(ReliabilityStatistics(pairs=pairs))
    assert values["human_pair_accuracy"] == 0.5  # p3 has no majority
    split = pair_disagreements(pairs)
    assert split == {"humans_disagree": ["p1", "p3"], "judge_disagrees": ["p2"]}


def test_missing_statistics_give_none_for_every_measure():
    values = reliability_values(ReliabilityStatistics())
    assert set(values) == {m.key for m in RELIABILITY_MEASURES}
    assert all(v is None for v in values.values())


def test_bootstrap_intervals_contain_the_value_and_are_seeded():
    stats = ReliabilityStatistics(pairs=_pairs(lambda a, b: "A" if a > b + 5 else "B"))
    rows = measure_rows(stats, n_boot=50, seed=3)
    again = measure_rows(stats, n_boot=50, seed=3)
    assert rows == again
    for row in rows:
        if row["value"] is not None and row["ci_low"] is not None:
            assert row["ci_low"] - 1e-9 <= row["ci_high"]
    flip = next(r for r in rows if r["key"] == "position_a_share")
    assert flip["ci_low"] <= flip["value"] <= flip["ci_high"]
    assert bootstrap_intervals(ReliabilityStatistics(), n_boot=5)["flip_rate"] is None


def test_statistics_round_trip_through_a_dict():
    stats = ReliabilityStatistics(
        pairs=_pairs(lambda a, b: "A"),
        singles=[SingleObservation({"expectation": 2.5}, 10, 0.3, [2, 3], {"ada": 2.0})],
    )
    back = ReliabilityStatistics.from_dict(stats.to_dict())
    assert back == stats
    assert all(
        (a is None and b is None) or math.isclose(a, b)
        for a, b in zip(
            reliability_values(stats).values(), reliability_values(back).values(), strict=True
        )
    )
