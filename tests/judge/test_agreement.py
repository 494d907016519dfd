import math
from itertools import combinations, permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from judge.agreement import (
    agreement_table,
    cohen_kappa,
    coincidence_matrix,
    kendall_tau,
    krippendorff_alpha,
    spearman,
)

N = None

# --- rank correlations --------------------------------------------------------------------------


def test_spearman_and_kendall_without_ties():
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    # Σd² = 4: ρ = 1 − 6·4 / (5·24) = 0.8. Two discordant pairs of ten: τ = (8 − 2)/10 = 0.6.
    assert spearman(x, y) == pytest.approx(0.8)
    assert kendall_tau(x, y) == pytest.approx(0.6)
    assert spearman(x, [-v for v in y]) == pytest.approx(-0.8)


def test_kendall_tau_b_with_ties():
    # P = 4, Q = 0, one pair tied on x only, one on y only: τ_b = 4 / √(5·5) = 0.8.
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)


def test_missing_ratings_are_dropped_pairwise():
    x = [1, 2, N, 3, 4, 5, float("nan")]
    y = [2, 1, 5, 4, N, 3, 1]
    # Items 0, 1, 3, 5 remain: (1, 2), (2, 1), (3, 4), (5, 3).
    assert spearman(x, y) == pytest.approx(spearman([1, 2, 3, 5], [2, 1, 4, 3]))
    assert kendall_tau(x, y) == pytest.approx(kendall_tau([1, 2, 3, 5], [2, 1, 4, 3]))


def test_correlation_errors():
    with pytest.raises(ConfidantError, match="same items"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ConfidantError, match="at least two"):
        spearman([1, N, 3], [N, 2, 3])
    with pytest.raises(ConfidantError, match="same rating"):
        kendall_tau([3, 3, 3], [1, 2, 3])
    with pytest.raises(ConfidantError, match="numbers"):
        spearman(["a", "b"], [1, 2])
    with pytest.raises(ConfidantError, match="finite"):
        spearman([1, float("inf")], [1, 2])


# --- Cohen's kappa ------------------------------------------------------------------------------


def test_cohen_kappa_textbook_two_by_two():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15. p_o = 0.7, p_e = 0.5, κ = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_weighted_kappa_hand_computed():
    a, b = [1, 2, 3], [1, 3, 3]
    # Unweighted: p_o = 2/3, p_e = 1/3, κ = 0.5. Quadratic: Σ w·O = 1, Σ w·E = 5, κ = 0.8.
    # Linear: Σ w·O = 1, Σ w·E = 3, κ = 2/3.
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(0.8)
    assert cohen_kappa(a, b, weights="linear") == pytest.approx(2 / 3)


def test_weighted_kappa_uses_true_score_distances():
    a, b = [1, 2, 5], [1, 5, 5]
    # On labels 1..5: Σ w·O = 9, Σ w·E = 67/3, κ = 1 − 27/67.
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(40 / 67)
    assert cohen_kappa(a, b, weights="quadratic", labels=range(1, 6)) == pytest.approx(40 / 67)
    # Treating the used values as adjacent categories would give a different number.
    assert cohen_kappa(a, b, weights="quadratic", labels=[1, 2, 5]) != pytest.approx(40 / 67)


def test_kappa_missing_and_errors():
    assert cohen_kappa(["A", "B", N, "C"], ["A", "B", "C", "C"]) == 1.0
    with pytest.raises(ConfidantError, match="undefined"):
        cohen_kappa([3, 3, 3], [3, 3, 3])
    with pytest.raises(ConfidantError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")
    with pytest.raises(ConfidantError, match="not among the labels"):
        cohen_kappa([1, 2, 7], [1, 2, 3], labels=[1, 2, 3])


# --- Krippendorff's alpha -----------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": four observers, twelve units,
# missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849.
TEXTBOOK = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


def test_alpha_textbook_values():
    assert round(krippendorff_alpha(TEXTBOOK, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(TEXTBOOK, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(TEXTBOOK, "interval"), 3) == 0.849
    # Unit 12 has one value only and is not pairable: n = 40 pairable values.
    values, matrix = coincidence_matrix(TEXTBOOK)
    assert values == [1, 2, 3, 4, 5]
    assert matrix.sum() == pytest.approx(40)
    assert matrix.sum(axis=1) == pytest.approx([9, 13, 10, 5, 3])


def test_alpha_binary_two_observers_by_hand():
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    # o_00 = 10, o_01 = o_10 = 4, o_11 = 2; n_0 = 14, n_1 = 6, n = 20.
    # α = 1 − 19·8 / (2·14·6) = 1 − 152/168.
    assert krippendorff_alpha([a, b], "nominal") == pytest.approx(1 - 152 / 168)
    # With two values the interval metric gives the same α.
    assert krippendorff_alpha([a, b], "interval") == pytest.approx(1 - 152 / 168)


def test_alpha_small_interval_by_hand():
    # Two raters, three units: (1, 2), (3, 3), (5, 4). Pairable values 1,2,3,3,5,4 (n = 6).
    # Σ o·δ² = 2·(1 + 0 + 1) = 4. Σ n_c n_k δ² over ordered pairs of the six values
    # = 2·n·Σ(x − mean)² = 2·6·10 = 120. α = 1 − (n − 1)·4 / 120 = 1 − 20/120 = 5/6.
    assert krippendorff_alpha([[1, 3, 5], [2, 3, 4]], "interval") == pytest.approx(5 / 6)


def test_alpha_on_perfect_agreement_and_labels():
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3], [1, N, 3]]) == pytest.approx(1.0)
    assert krippendorff_alpha([["A", "B", "C"], ["A", "B", "C"]], "nominal") == pytest.approx(1.0)


def test_alpha_errors():
    with pytest.raises(ConfidantError, match="two raters"):
        krippendorff_alpha([[1, 2, 3]])
    with pytest.raises(ConfidantError, match="same items"):
        krippendorff_alpha([[1, 2, 3], [1, 2]])
    with pytest.raises(ConfidantError, match="at least two raters"):
        krippendorff_alpha([[1, N, 3], [N, 2, N]])
    with pytest.raises(ConfidantError, match="same value"):
        krippendorff_alpha([[2, 2, 2], [2, 2, N]])
    with pytest.raises(ConfidantError, match="numbers"):
        krippendorff_alpha([["A", "B"], ["A", "A"]], "interval")
    with pytest.raises(ConfidantError, match="level"):
        krippendorff_alpha(TEXTBOOK, "ratio-ish")


def _alpha_by_pairs(ratings, distance):
    """α = 1 − D_o / D_e straight from the pair definitions, without a coincidence matrix."""
    units = [[r[u] for r in ratings if r[u] is not None] for u in range(len(ratings[0]))]
    units = [u for u in units if len(u) >= 2]
    pooled = [v for u in units for v in u]
    n = len(pooled)
    observed = (
        sum(sum(distance(x, y) for x, y in permutations(u, 2)) / (len(u) - 1) for u in units) / n
    )
    expected = sum(distance(x, y) for x, y in permutations(pooled, 2)) / (n * (n - 1))
    return 1 - observed / expected


rating_matrices = st.integers(2, 4).flatmap(
    lambda raters: st.integers(2, 8).flatmap(
        lambda items: st.lists(
            st.lists(st.none() | st.integers(1, 5), min_size=items, max_size=items),
            min_size=raters,
            max_size=raters,
        )
    )
)


@settings(max_examples=60)
@given(rating_matrices)
def test_alpha_matches_the_pair_definition(ratings):
    for level, distance in (
        ("interval", lambda x, y: (x - y) ** 2),
        ("nominal", lambda x, y: float(x != y)),
    ):
        try:
            alpha = krippendorff_alpha(ratings, level)
        except ConfidantError:
            continue  # nothing pairable, or a single value throughout
        assert alpha == pytest.approx(_alpha_by_pairs(ratings, distance), abs=1e-9)
        assert alpha <= 1.0 + 1e-9


@settings(max_examples=40)
@given(rating_matrices)
def test_ordinal_alpha_depends_on_ranks_only(ratings):
    # Stretch the scale monotonically: ordinal α must not change (interval α generally does).
    stretched = [[None if v is None else v**3 for v in row] for row in ratings]
    try:
        alpha = krippendorff_alpha(ratings, "ordinal")
    except ConfidantError:
        return
    assert krippendorff_alpha(stretched, "ordinal") == pytest.approx(alpha, abs=1e-9)


# --- table --------------------------------------------------------------------------------------


def test_agreement_table_rows_and_undefined_cells():
    raters = {
        "judge": [5, 4, 3, 2, 1],
        "ana": [5, 4, 3, 1, 2],
        "ben": [3, 3, N, 3, 3],
    }
    table = agreement_table(raters)
    assert [(r.rater_a, r.rater_b) for r in table] == [p for p in combinations(raters, 2)]
    judge_ana = table[0]
    assert judge_ana.items == 5
    assert judge_ana.spearman == pytest.approx(spearman(raters["judge"], raters["ana"]))
    assert judge_ana.cohen_kappa == pytest.approx(cohen_kappa(raters["judge"], raters["ana"]))
    assert judge_ana.weighted_kappa == pytest.approx(
        cohen_kappa(raters["judge"], raters["ana"], weights="quadratic")
    )
    judge_ben = table[1]
    assert judge_ben.items == 4
    assert judge_ben.spearman is None  # ben is constant
    assert not math.isnan(judge_ben.cohen_kappa)
    continuous = agreement_table({"judge": [4.2, 3.1, 1.7], "ana": [5, 3, 2]}, discrete=False)
    assert continuous[0].cohen_kappa is None and continuous[0].spearman == pytest.approx(1.0)
    assert continuous[0].to_dict()["rater_a"] == "judge"
    with pytest.raises(ConfidantError):
        agreement_table({"judge": [1, 2]})
    with pytest.raises(ConfidantError):
        agreement_table({"judge": [1, 2], "ana": [1, 2, 3]})


def test_module_examples_run():
    import doctest

    import judge.agreement

    result = doctest.testmod(judge.agreement)
    assert result.attempted > 0 and result.failed == 0
