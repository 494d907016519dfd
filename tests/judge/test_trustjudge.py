import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfidantError
from judge.scores import ScoreSummary, score_summary
from judge.trustjudge import (
    discrete_score,
    distribution_entropy,
    expected_score,
    rescale_score,
    trustjudge_weights,
    validate_distribution,
)
from judge.verdicts import (
    judgement_perplexity,
    letter_to_relation,
    pairwise_relation,
    ppl_relation,
    swap_letter,
)

# The worked example of the reference notes: a 100-point distribution with 3% of the mass off
# the listed scores.
WORKED = {80: 0.50, 85: 0.30, 75: 0.15, 8: 0.02}


# --- scores from a distribution -----------------------------------------------------------------


def test_worked_example_all_three_methods():
    assert expected_score(WORKED, "geval") == pytest.approx(76.91)
    assert expected_score(WORKED, "expectation") == pytest.approx(76.91 / 0.97)
    # w ∝ (p / (1 − p))^5: 1, (3/7)^5, (3/17)^5, (1/49)^5.
    odds5 = {80: 1.0, 85: (3 / 7) ** 5, 75: (3 / 17) ** 5, 8: (1 / 49) ** 5}
    hand = sum(s * w for s, w in odds5.items()) / sum(odds5.values())
    assert expected_score(WORKED, "trustjudge") == pytest.approx(hand, rel=1e-7)
    assert round(expected_score(WORKED, "trustjudge"), 2) == 80.07


def test_symmetric_distribution_gives_its_centre():
    dist = {1: 0.1, 2: 0.2, 3: 0.4, 4: 0.2, 5: 0.1}
    for method in ("geval", "expectation", "trustjudge"):
        assert expected_score(dist, method) == pytest.approx(3.0)


def test_geval_is_not_renormalised_but_expectation_is():
    dist = {3: 0.5, 4: 0.3}  # 20% of the mass is on tokens that are not scores
    assert expected_score(dist, "geval") == pytest.approx(2.7)
    assert expected_score(dist, "expectation") == pytest.approx(2.7 / 0.8)


def test_trustjudge_hand_computed_at_two_temperatures():
    dist = {3: 0.5, 4: 0.3}
    w4 = (3 / 7) ** 5
    assert expected_score(dist, "trustjudge") == pytest.approx((3 + 4 * w4) / (1 + w4), rel=1e-7)
    # T = 1: the weights are the odds themselves, 1 and 1/3.
    assert expected_score({1: 0.5, 2: 0.25}, "trustjudge", temperature=1.0) == pytest.approx(1.25)


def test_trustjudge_temperature_limits():
    dist = {2: 0.6, 3: 0.1, 5: 0.2}
    assert expected_score(dist, "trustjudge", temperature=0.01) == pytest.approx(2.0, abs=1e-9)
    # A very high temperature flattens the weights over the scores that have any probability.
    assert expected_score(dist, "trustjudge", temperature=1e9) == pytest.approx(10 / 3)


def test_trustjudge_edge_probabilities():
    # p = 1 takes all the weight (the reference code would skip it and return 0).
    assert expected_score({4: 1.0}, "trustjudge") == pytest.approx(4.0)
    assert expected_score({4: 1.0, 5: 0.0}, "trustjudge") == pytest.approx(4.0)
    # p = 0 gets no weight at all.
    weights = trustjudge_weights({1: 0.0, 2: 0.5, 3: 0.5})
    assert weights == pytest.approx({2: 0.5, 3: 0.5})
    assert expected_score({1: 0.0, 2: 0.5, 3: 0.5}, "trustjudge") == pytest.approx(2.5)


def test_bad_distributions_are_refused():
    bad = [
        {},
        {1: -0.1, 2: 0.5},
        {1: float("nan")},
        {1: float("inf")},
        {1: 0.7, 2: 0.6},
        {1: 0.0, 2: 0.0},
        {1.5: 0.5},
        {"3": 0.5},
        {True: 0.5},
        {1: "high"},
        [0.2, 0.8],
    ]
    for dist in bad:
        with pytest.raises(ConfidantError):
            expected_score(dist, "expectation")
    with pytest.raises(ConfidantError, match="outside the scale"):
        validate_distribution({6: 0.5}, scale=(1, 5))


def test_bad_method_and_temperature():
    with pytest.raises(ConfidantError, match="unknown scoring method"):
        expected_score({1: 1.0}, "median")
    for t in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfidantError, match="temperature"):
            expected_score({1: 0.5, 2: 0.5}, "trustjudge", temperature=t)


def test_probability_rounding_slack_is_accepted():
    assert validate_distribution({1: 0.5, 2: 0.5 + 1e-9}) == {1: 0.5, 2: 0.5 + 1e-9}


distributions = st.dictionaries(
    st.integers(1, 100), st.floats(0.0, 1.0), min_size=1, max_size=12
).filter(lambda d: 0 < sum(d.values()))


def _normalised(d, mass):
    total = sum(d.values())
    return {s: p / total * mass for s, p in d.items()}


@given(distributions, st.floats(0.05, 1.0), st.floats(0.05, 5.0))
def test_scores_stay_within_the_support(dist, mass, temperature):
    dist = _normalised(dist, mass)
    support = [s for s, p in dist.items() if p > 0]
    for method in ("expectation", "trustjudge"):
        value = expected_score(dist, method, temperature)
        assert min(support) - 1e-9 <= value <= max(support) + 1e-9
    # With every score positive and Σp ≤ 1, G-Eval never exceeds the renormalised mean.
    assert expected_score(dist, "geval") <= expected_score(dist, "expectation") + 1e-9


@given(distributions, st.floats(0.05, 1.0))
def test_expectation_ignores_the_missing_mass(dist, mass):
    full, partial = _normalised(dist, 1.0), _normalised(dist, mass)
    assert expected_score(partial, "expectation") == pytest.approx(
        expected_score(full, "expectation")
    )
    assert expected_score(partial, "geval") == pytest.approx(mass * expected_score(full, "geval"))


# --- discrete scores, entropy, rescaling --------------------------------------------------------


def test_discrete_rules():
    dist = {2: 0.3, 4: 0.4, 5: 0.3}
    assert discrete_score(dist) == 4
    assert discrete_score(dist, "first") == 2
    assert discrete_score({5: 0.4, 1: 0.4, 3: 0.2}, "argmax") == 1  # ties go to the lower
    assert discrete_score({3: 1.0}, "sample", seed=1) == 3
    draws = [discrete_score(dist, "sample", seed=s) for s in range(200)]
    assert set(draws) == {2, 4, 5}
    assert draws == [discrete_score(dist, "sample", seed=s) for s in range(200)]
    with pytest.raises(ConfidantError):
        discrete_score(dist, "median")


def test_sampling_follows_the_renormalised_distribution():
    dist = {1: 0.1, 2: 0.3}  # renormalised: 1 → 0.25, 2 → 0.75
    draws = [discrete_score(dist, "sample", seed=s) for s in range(4000)]
    assert draws.count(2) / len(draws) == pytest.approx(0.75, abs=0.03)


def test_entropy_in_nats_of_the_renormalised_distribution():
    assert distribution_entropy({s: 0.2 for s in range(1, 6)}) == pytest.approx(math.log(5))
    assert distribution_entropy({3: 0.2, 4: 0.2}) == pytest.approx(math.log(2))
    assert distribution_entropy({3: 0.9, 4: 0.0}) == pytest.approx(0.0)
    p = [0.5, 0.25, 0.25]
    expected = -sum(x * math.log(x) for x in p)
    assert distribution_entropy(dict(zip((1, 2, 3), p, strict=True))) == pytest.approx(expected)


def test_rescaling_maps_endpoints_to_endpoints():
    assert rescale_score(1) == 1
    assert rescale_score(100) == 5
    assert rescale_score(50.5) == pytest.approx(3.0)
    assert rescale_score(3, from_scale=5, to_scale=100) == pytest.approx(50.5)
    assert rescale_score(5, from_scale=(1, 5), to_scale=(0, 1)) == 1.0
    with pytest.raises(ConfidantError):
        rescale_score(3, from_scale=(5, 5))
    with pytest.raises(ConfidantError):
        rescale_score(float("nan"))


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_rescaling_round_trips_and_keeps_order(x, y):
    back = rescale_score(rescale_score(x, 100, 5), 5, 100)
    assert back == pytest.approx(x, abs=1e-9)
    if x < y:
        assert rescale_score(x) <= rescale_score(y)


def test_summary_holds_every_score_and_round_trips_json():
    summary = score_summary(WORKED, temperature=0.2, scale=100)
    assert summary.argmax == 80
    assert summary.first == 80
    assert summary.geval == pytest.approx(76.91)
    assert summary.expectation == pytest.approx(76.91 / 0.97)
    assert summary.trustjudge == pytest.approx(expected_score(WORKED, "trustjudge"))
    assert summary.mass == pytest.approx(0.97)
    assert summary.entropy == pytest.approx(distribution_entropy(WORKED))
    back = ScoreSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert back == summary
    with pytest.raises(ConfidantError):
        score_summary(WORKED, scale=5)


# --- pairwise relations -------------------------------------------------------------------------


def test_letters():
    assert [swap_letter(x) for x in "ABC"] == ["B", "A", "C"]
    assert [letter_to_relation(x) for x in "ABC"] == [1, -1, 0]
    assert letter_to_relation(" ĠA") == 1
    with pytest.raises(ConfidantError):
        swap_letter("D")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("A", "B", 1),  # x wins in both orders
        ("B", "A", -1),  # y wins in both orders
        ("C", "C", 0),
        ("A", "A", 0),  # each order prefers whatever it shows first: forced tie
        ("B", "B", 0),
        ("A", "C", 0),
        ("C", "B", 0),
    ],
)
def test_baseline_two_pass_rule(first, second, expected):
    p1 = {first: 0.6, **{k: 0.2 for k in "ABC" if k != first}}
    p2 = {second: 0.6, **{k: 0.2 for k in "ABC" if k != second}}
    assert pairwise_relation(p1, p2, "baseline") == expected


def test_baseline_reads_the_first_key_not_the_most_likely_letter():
    # The judge sampled B although A was more likely; the produced verdict is what counts.
    p1 = {"B": 0.3, "A": 0.6, "C": 0.1}
    p2 = {"A": 0.7, "B": 0.2}
    assert pairwise_relation(p1, p2, "baseline") == -1
    assert pairwise_relation(p1, p2, "likelihood") == -1  # m: A 0.8, B 1.0, C 0.1
    p2 = {"B": 0.7, "A": 0.2}
    assert pairwise_relation(p1, p2, "baseline") == 0
    assert pairwise_relation(p1, p2, "likelihood") == 1  # m: A 1.3, B 0.5


def test_baseline_needs_a_produced_letter():
    with pytest.raises(ConfidantError, match="first key"):
        pairwise_relation({"The": 0.5, "A": 0.4}, {"B": 0.9}, "baseline")
    with pytest.raises(ConfidantError):
        pairwise_relation({}, {"B": 0.9}, "baseline")


def test_likelihood_hand_computed_and_tolerance():
    p1 = {"A": 0.5, "B": 0.25, "C": 0.25}
    p2 = {"B": 0.5, "A": 0.25, "C": 0.25}
    # m = {A: 0.5 + 0.5, B: 0.25 + 0.25, C: 0.25 + 0.25}; (top − second) / 2 = 0.25.
    assert pairwise_relation(p1, p2, "likelihood") == 1
    assert pairwise_relation(p1, p2, "likelihood", tolerance=0.2) == 1
    assert pairwise_relation(p1, p2, "likelihood", tolerance=0.25) == 1  # not strictly below
    assert pairwise_relation(p1, p2, "likelihood", tolerance=0.3) == 0
    # The baseline calls it a win too; both orders agree.
    assert pairwise_relation(p1, p2, "baseline") == 1


def test_likelihood_breaks_the_baseline_forced_tie():
    p1 = {"A": 0.55, "B": 0.40, "C": 0.05}  # order 1 prefers x, narrowly
    p2 = {"A": 0.51, "B": 0.45, "C": 0.04}  # order 2 prefers y, even more narrowly
    assert pairwise_relation(p1, p2, "baseline") == 0
    # m[A] = 0.55 + 0.45 = 1.00, m[B] = 0.40 + 0.51 = 0.91.
    assert pairwise_relation(p1, p2, "likelihood") == 1
    assert pairwise_relation(p1, p2, "likelihood", tolerance=0.05) == 0


def test_likelihood_with_letters_missing_does_not_crash():
    assert pairwise_relation({"A": 0.9}, {"B": 0.8}, "likelihood") == 1
    assert pairwise_relation({"A": 0.9}, {}, "likelihood") == 1
    assert pairwise_relation({"B": 0.9}, {"Sure": 0.7}, "likelihood") == -1
    assert pairwise_relation({"C": 0.9}, {"C": 0.8}, "likelihood") == 0
    with pytest.raises(ConfidantError, match="neither order"):
        pairwise_relation({}, {"The": 1.0}, "likelihood")


def test_likelihood_shared_maximum_is_a_tie():
    p = {"A": 0.5, "B": 0.5}
    assert pairwise_relation(p, p, "likelihood") == 0


def test_tokens_are_cleaned_and_merged_and_others_ignored():
    p1 = {"ĠA": 0.3, " A": 0.2, "▁B": 0.35, "Both": 0.15}
    p2 = {"B": 0.6, "A ": 0.4}
    # A: 0.5 + 0.6 = 1.1; B: 0.35 + 0.4 = 0.75.
    assert pairwise_relation(p1, p2, "likelihood") == 1
    assert pairwise_relation(p1, p2, "baseline") == 1


def test_relation_input_errors():
    with pytest.raises(ConfidantError, match="unknown relation method"):
        pairwise_relation({"A": 1.0}, {"B": 1.0}, "ppl")
    with pytest.raises(ConfidantError, match="tolerance"):
        pairwise_relation({"A": 1.0}, {"B": 1.0}, "likelihood", tolerance=-0.1)
    with pytest.raises(ConfidantError):
        pairwise_relation({"A": float("nan")}, {"B": 1.0}, "likelihood")
    with pytest.raises(ConfidantError):
        pairwise_relation({"A": -0.2}, {"B": 1.0}, "likelihood")


letter_maps = st.dictionaries(st.sampled_from("ABC"), st.floats(0.0, 1.0), min_size=1)


@given(letter_maps, letter_maps, st.sampled_from(["baseline", "likelihood"]), st.floats(0, 0.5))
def test_swapping_the_orders_negates_the_relation(p1, p2, method, tolerance):
    assert pairwise_relation(p2, p1, method, tolerance) == -pairwise_relation(
        p1, p2, method, tolerance
    )


# --- perplexity rule ----------------------------------------------------------------------------


def test_perplexity_of_a_judgement():
    assert judgement_perplexity([-1.0, -1.0]) == pytest.approx(math.e)
    assert judgement_perplexity([-0.5, -1.5]) == pytest.approx(math.e)
    assert judgement_perplexity([0.0]) == 1.0
    for bad in ([], [0.5], [float("nan")]):
        with pytest.raises(ConfidantError):
            judgement_perplexity(bad)


@pytest.mark.parametrize(
    ("v1", "ppl1", "v2", "ppl2", "tolerance", "expected"),
    [
        ("A", 2.0, "A", 3.0, 0.0, 1),  # order 1 more likely, it says x
        ("B", 2.0, "B", 3.0, 0.0, -1),
        ("C", 2.0, "A", 3.0, 0.0, 0),
        ("A", 3.0, "A", 2.0, 0.0, -1),  # order 2 more likely; its A is y
        ("A", 3.0, "B", 2.0, 0.0, 1),
        ("A", 3.0, "C", 2.0, 0.0, 0),
        ("A", 2.0, "A", 2.0, 0.0, 0),  # equal perplexities: tie
        ("A", 2.0, "A", 2.5, 0.5, 0),  # gap equal to the tolerance: not strictly greater
        ("A", 2.0, "A", 2.5, 0.4, 1),
        ("A", 2.5, "B", 2.0, 0.5, 0),
        ("A", 2.5, "B", 2.0, 0.4, 1),
    ],
)
def test_ppl_relation(v1, ppl1, v2, ppl2, tolerance, expected):
    assert ppl_relation(v1, ppl1, v2, ppl2, tolerance) == expected


def test_ppl_relation_errors():
    with pytest.raises(ConfidantError):
        ppl_relation("D", 2.0, "A", 3.0)
    with pytest.raises(ConfidantError):
        ppl_relation("A", 0.0, "A", 3.0)
    with pytest.raises(ConfidantError):
        ppl_relation("A", 2.0, "A", float("nan"))
    with pytest.raises(ConfidantError):
        ppl_relation("A", 2.0, "A", 3.0, tolerance=-1)


def test_module_examples_run():
    import doctest

    import judge.trustjudge
    import judge.verdicts

    for module in (judge.trustjudge, judge.verdicts):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
