from itertools import combinations, product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfidantError
from judge.consistency import (
    NonTransitivity,
    conflict_ratio,
    conflicting_pairs,
    non_transitivity_ratio,
    score_relation,
    triple_violation,
)

# --- Conflict Ratio -----------------------------------------------------------------------------

SCORES = [5, 3, 3, 1]
RELATIONS = {
    (0, 1): 1,  # 5 vs 3, first wins: consistent
    (0, 2): 0,  # 5 vs 3 called a tie: conflict
    (1, 2): 0,  # 3 vs 3, tie: consistent
    (1, 3): -1,  # 3 vs 1 but the second wins: conflict (reversal)
    (2, 3): 1,  # consistent
}


def test_conflict_ratio_hand_checked():
    assert conflict_ratio(SCORES, RELATIONS) == pytest.approx(2 / 5)
    assert conflicting_pairs(SCORES, RELATIONS) == ([(0, 2), (1, 3)], 5)


def test_equal_scores_against_a_preference_is_a_conflict():
    assert conflict_ratio([3, 3], {(0, 1): 1}) == 1.0
    assert conflict_ratio([3, 3], {(0, 1): 0}) == 0.0


def test_tolerance_is_strict():
    # |5 − 3| = 2 and |3 − 1| = 2: below 2.5 they become ties, at exactly 2 they do not.
    assert conflict_ratio(SCORES, RELATIONS, tolerance=2.5) == pytest.approx(3 / 5)
    assert conflict_ratio(SCORES, RELATIONS, tolerance=2.0) == pytest.approx(2 / 5)
    assert score_relation(3.0, 3.05, tolerance=0.1) == 0
    assert score_relation(3.0, 3.1, tolerance=0.1) == -1


def test_only_pairs_present_count_and_unscored_candidates_drop_out():
    assert conflict_ratio(SCORES, {(0, 3): 1}) == 0.0
    assert conflict_ratio({0: 4.2, 7: 2.0}, {(0, 7): -1}) == 1.0
    # Without candidate 1 the pairs (0, 2) and (2, 3) remain; (0, 2) conflicts.
    assert conflict_ratio([5, None, 3, 1], RELATIONS) == 0.5


def test_conflict_ratio_errors():
    with pytest.raises(ConfidantError, match="undefined"):
        conflict_ratio(SCORES, {})
    with pytest.raises(ConfidantError, match="undefined"):
        conflict_ratio([None, None], {(0, 1): 1})
    with pytest.raises(ConfidantError):
        conflict_ratio(SCORES, {(1, 0): 1})
    with pytest.raises(ConfidantError):
        conflict_ratio(SCORES, {(0, 1): 2})
    with pytest.raises(ConfidantError):
        conflict_ratio(SCORES, {(0, 9): 1})
    with pytest.raises(ConfidantError):
        conflict_ratio([1.0, float("nan")], {(0, 1): 1})
    with pytest.raises(ConfidantError):
        conflict_ratio(SCORES, RELATIONS, tolerance=-1)


scores_lists = st.lists(st.integers(1, 5) | st.floats(0, 100), min_size=2, max_size=8)


@given(scores_lists, st.floats(0, 3))
def test_relations_read_off_the_scores_never_conflict(scores, tolerance):
    relations = {
        (i, j): score_relation(scores[i], scores[j], tolerance)
        for i, j in combinations(range(len(scores)), 2)
    }
    assert conflict_ratio(scores, relations, tolerance) == 0.0
    flipped = {pair: -r if r else 1 for pair, r in relations.items()}
    assert conflict_ratio(scores, flipped, tolerance) == 1.0


# --- triple rule --------------------------------------------------------------------------------

# Every case of (C(x,y), C(y,z), C(x,z)) that violates transitivity, worked out by hand; the
# other 13 of the 27 are consistent.
VIOLATIONS = {
    (1, 1, 0): "equivalence",
    (1, 1, -1): "circular",
    (1, 0, 0): "equivalence",
    (1, 0, -1): "circular",  # x > y = z but z > x
    (0, 1, 0): "equivalence",
    (0, 1, -1): "circular",
    (-1, -1, 0): "equivalence",
    (-1, -1, 1): "circular",
    (-1, 0, 0): "equivalence",
    (-1, 0, 1): "circular",
    (0, -1, 0): "equivalence",
    (0, -1, 1): "circular",
    (0, 0, 1): "equivalence",  # x = y = z but x > z
    (0, 0, -1): "equivalence",
}


def test_triple_rule_all_27_cases():
    for a, b, c in product((1, 0, -1), repeat=3):
        assert triple_violation(a, b, c) == VIOLATIONS.get((a, b, c)), (a, b, c)
    # Opposite strict relations: y is the best or the worst, anything goes between x and z.
    assert all(triple_violation(1, -1, c) is None for c in (1, 0, -1))
    assert all(triple_violation(-1, 1, c) is None for c in (1, 0, -1))


# --- NTR_k --------------------------------------------------------------------------------------


def test_three_cycle():
    result = non_transitivity_ratio({(0, 1): 1, (1, 2): 1, (0, 2): -1}, n=3, k=3)
    assert (result.subsets, result.violating, result.circular, result.equivalence) == (1, 1, 1, 0)
    assert result.ratio == 1.0
    assert result.circular_ratio == 1.0
    assert result.equivalence_ratio == 0.0


def test_equivalence_violation():
    # A = B, B = C, A > C.
    result = non_transitivity_ratio({(0, 1): 0, (1, 2): 0, (0, 2): 1}, n=3, k=3)
    assert (result.violating, result.circular, result.equivalence) == (1, 0, 1)


def test_consistent_orders_including_ties():
    assert non_transitivity_ratio({(0, 1): 1, (1, 2): 1, (0, 2): 1}, n=3, k=3).ratio == 0.0
    assert non_transitivity_ratio({(0, 1): 0, (1, 2): 1, (0, 2): 1}, n=3, k=3).ratio == 0.0
    assert non_transitivity_ratio({(0, 1): 1, (1, 2): -1, (0, 2): 0}, n=3, k=3).ratio == 0.0


# 0 > 1 > 2 > 0 is a cycle; candidate 3 loses to all three.
CYCLE_AND_LOSER = {(0, 1): 1, (1, 2): 1, (0, 2): -1, (0, 3): 1, (1, 3): 1, (2, 3): 1}


def test_four_candidates_k3_and_k4():
    k3 = non_transitivity_ratio(CYCLE_AND_LOSER, n=4, k=3)
    # Subsets {0,1,2} (the cycle), {0,1,3}, {0,2,3} (2 beats 0 and 3: extreme), {1,2,3}.
    assert (k3.subsets, k3.violating, k3.circular, k3.equivalence) == (4, 1, 1, 0)
    assert k3.ratio == 0.25
    k4 = non_transitivity_ratio(CYCLE_AND_LOSER, n=4, k=4)
    assert (k4.subsets, k4.violating) == (1, 1)


def test_a_missing_pair_leaves_the_denominator():
    relations = dict(CYCLE_AND_LOSER)
    del relations[(2, 3)]
    k3 = non_transitivity_ratio(relations, n=4, k=3)
    assert (k3.subsets, k3.skipped, k3.violating) == (2, 2, 1)
    assert k3.ratio == 0.5
    k4 = non_transitivity_ratio(relations, n=4, k=4)
    assert (k4.subsets, k4.skipped, k4.violating) == (0, 1, 0)
    assert k4.ratio is None
    assert k4.to_dict()["ratio"] is None


def test_one_subset_can_hold_both_kinds():
    # The 0 > 1 > 2 > 0 cycle plus candidate 3 tied with everyone: the triples with 3 break
    # equivalence (e.g. 0 > 1 but 1 = 3 and 0 = 3).
    relations = {(0, 1): 1, (1, 2): 1, (0, 2): -1, (0, 3): 0, (1, 3): 0, (2, 3): 0}
    k4 = non_transitivity_ratio(relations, n=4, k=4)
    assert (k4.subsets, k4.violating, k4.circular, k4.equivalence) == (1, 1, 1, 1)
    k3 = non_transitivity_ratio(relations, n=4, k=3)
    assert (k3.subsets, k3.violating, k3.circular, k3.equivalence) == (4, 4, 1, 3)


def test_five_candidates_k5_counts_and_pooling():
    # A strict order 0 > 1 > 2 > 3 > 4 with one reversed verdict (4 beats 0): the triples
    # (0, j, 4) for j = 1, 2, 3 are cycles.
    relations = {(i, j): 1 for i, j in combinations(range(5), 2)}
    relations[(0, 4)] = -1
    for k, subsets, violating in ((3, 10, 3), (4, 5, 3), (5, 1, 1)):
        result = non_transitivity_ratio(relations, n=5, k=k)
        assert (result.subsets, result.violating, result.circular) == (
            subsets,
            violating,
            violating,
        )
    pooled = non_transitivity_ratio(relations, 5, 3) + non_transitivity_ratio(CYCLE_AND_LOSER, 4, 3)
    assert (pooled.n, pooled.subsets, pooled.violating) == (9, 14, 4)
    with pytest.raises(ConfidantError):
        non_transitivity_ratio(relations, 5, 3) + non_transitivity_ratio(relations, 5, 4)


def test_ntr_errors():
    with pytest.raises(ConfidantError):
        non_transitivity_ratio(CYCLE_AND_LOSER, n=4, k=2)
    with pytest.raises(ConfidantError):
        non_transitivity_ratio(CYCLE_AND_LOSER, n=4, k=5)
    with pytest.raises(ConfidantError):
        non_transitivity_ratio(CYCLE_AND_LOSER, n=3, k=3)  # pair (0, 3) is beyond n
    with pytest.raises(ConfidantError):
        non_transitivity_ratio({(1, 0): 1}, n=3, k=3)
    with pytest.raises(ConfidantError):
        non_transitivity_ratio({(0, 1): 0.5}, n=3, k=3)
    with pytest.raises(ConfidantError, match="pair of integers"):
        non_transitivity_ratio({("a", "b"): 1}, n=3, k=3)


@given(st.lists(st.integers(1, 4), min_size=3, max_size=7), st.sampled_from([3, 4, 5]))
def test_relations_from_scores_are_transitive(scores, k):
    if k > len(scores):
        k = 3
    relations = {
        (i, j): score_relation(scores[i], scores[j]) for i, j in combinations(range(len(scores)), 2)
    }
    result = non_transitivity_ratio(relations, n=len(scores), k=k)
    assert result.ratio == 0.0


@given(
    st.integers(3, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.dictionaries(
                st.sampled_from(list(combinations(range(n), 2))), st.sampled_from([1, 0, -1])
            ),
        )
    ),
    st.sampled_from([3, 4, 5]),
)
def test_ntr_counts_are_coherent(n_relations, k):
    n, relations = n_relations
    k = min(k, n)
    result = non_transitivity_ratio(relations, n=n, k=k)
    assert result.subsets + result.skipped == len(list(combinations(range(n), k)))
    assert max(result.circular, result.equivalence) <= result.violating
    assert result.violating <= result.circular + result.equivalence
    assert result.violating <= result.subsets
    if k == 3:  # NTR_3 is the share of judged triples that violate the rule, by brute force
        judged = [
            (x, y, z)
            for x, y, z in combinations(range(n), 3)
            if {(x, y), (y, z), (x, z)} <= relations.keys()
        ]
        bad = [
            t
            for t in judged
            if triple_violation(relations[t[:2]], relations[t[1:]], relations[(t[0], t[2])])
        ]
        assert (result.subsets, result.violating) == (len(judged), len(bad))


def test_result_type():
    result = non_transitivity_ratio(CYCLE_AND_LOSER, n=4, k=3)
    assert isinstance(result, NonTransitivity)
    d = result.to_dict()
    assert d["ratio"] == 0.25 and d["subsets"] == 4 and d["k"] == 3


def test_module_examples_run():
    import doctest

    import judge.consistency

    result = doctest.testmod(judge.consistency)
    assert result.attempted > 0 and result.failed == 0
