import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from core.errors import ConfidantError
from uq.evaluation.metrics import (
    AURAC_FRACTIONS,
    UndefinedMetricError,
    aurac,
    auroc,
    bootstrap_ci,
    prr,
    prr_normalised,
    rejection_accuracy,
)

# ---------------------------------------------------------------------------------------------
# AUROC
# ---------------------------------------------------------------------------------------------


def test_auroc_hand_computed_with_a_tie():
    # Wrong answers have uncertainty 0.9 and 0.5; correct ones 0.5 and 0.1.
    # Pairs (wrong, correct): (0.9,0.5) 1, (0.9,0.1) 1, (0.5,0.5) ½, (0.5,0.1) 1 → 3.5/4.
    assert auroc([0.9, 0.5, 0.5, 0.1], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert auroc([0.1, 0.2], [0, 1]) == 0.0
    assert auroc([3, 3, 3], [True, False, True]) == 0.5


labelled = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=0, max_value=5), min_size=n, max_size=n).map(
            lambda xs: [x / 5 for x in xs]  # coarse values, so ties are common
        ),
        st.lists(st.integers(min_value=0, max_value=1), min_size=n, max_size=n),
    )
)


def _pairwise_auroc(u, c):
    wrong = [x for x, ok in zip(u, c, strict=True) if not ok]
    right = [x for x, ok in zip(u, c, strict=True) if ok]
    wins = sum(1.0 if w > r else 0.5 if w == r else 0.0 for w in wrong for r in right)
    return wins / (len(wrong) * len(right))


@given(labelled)
def test_auroc_equals_sklearn_and_the_pairwise_definition(args):
    u, c = args
    if len(set(c)) < 2:
        with pytest.raises(UndefinedMetricError):
            auroc(u, c)
        return
    value = auroc(u, c)
    assert value == pytest.approx(roc_auc_score([1 - x for x in c], u))
    assert value == pytest.approx(_pairwise_auroc(u, c))
    assert auroc([-x for x in u], c) == pytest.approx(1 - value)


def test_auroc_one_class_is_a_clear_error():
    with pytest.raises(UndefinedMetricError, match="all are correct"):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ConfidantError, match="0/1"):
        auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ConfidantError, match="one correctness label per uncertainty"):
        auroc([0.1, 0.2], [0])
    with pytest.raises(ConfidantError, match="finite"):
        auroc([0.1, float("nan")], [0, 1])


# ---------------------------------------------------------------------------------------------
# Rejection accuracy and AURAC
# ---------------------------------------------------------------------------------------------


def test_rejection_accuracy_hand_computed():
    u = [0.1, 0.2, 0.3, 0.4, 0.5]
    c = [1, 1, 0, 1, 0]
    assert rejection_accuracy(u, c, 1.0) == pytest.approx(0.6)
    # 0.8 quantile with linear interpolation = 0.42 → keep 0.1..0.4.
    assert rejection_accuracy(u, c, 0.8) == pytest.approx(0.75)
    # 0.5 quantile = 0.3 → keep 0.1, 0.2, 0.3.
    assert rejection_accuracy(u, c, 0.5) == pytest.approx(2 / 3)
    # 0.1 quantile = 0.14 → keep only 0.1.
    assert rejection_accuracy(u, c, 0.1) == 1.0
    # Ties at the cut-off are all kept.
    assert rejection_accuracy([0.0, 1.0, 1.0, 1.0], [1, 1, 0, 0], 0.5) == pytest.approx(0.5)
    with pytest.raises(ConfidantError, match=r"\(0, 1\]"):
        rejection_accuracy(u, c, 0.0)


@given(labelled)
def test_aurac_is_the_weighted_sum_of_rejection_accuracies(args):
    u, c = args
    fractions = np.linspace(0.1, 1, 20)
    assert np.allclose(AURAC_FRACTIONS, fractions)
    expected = sum(rejection_accuracy(u, c, q) * 0.9 / 19 for q in fractions)
    assert aurac(u, c) == pytest.approx(expected)
    # The same by the definition, without calling rejection_accuracy.
    uu, cc = np.array(u), np.array(c)
    direct = sum(cc[uu <= np.quantile(uu, q)].mean() for q in fractions) * (0.9 / 19)
    assert aurac(u, c) == pytest.approx(direct)


def test_aurac_perfect_and_constant():
    # Uncertainty separates perfectly; every retained fraction up to 0.5 is all correct.
    u = np.arange(10) / 10
    c = np.array([1] * 5 + [0] * 5)
    fractions = np.linspace(0.1, 1, 20)
    expected = sum(c[u <= np.quantile(u, q)].mean() for q in fractions) * 0.9 / 19
    assert aurac(u, c) == pytest.approx(expected)
    assert aurac(u, np.ones(10)) == pytest.approx(20 * 0.9 / 19)
    assert aurac(u, c) > aurac(u[::-1], c)


# ---------------------------------------------------------------------------------------------
# Prediction-rejection ratio
# ---------------------------------------------------------------------------------------------


def test_prr_hand_computed():
    # Order by uncertainty: qualities 1, 0, 1 → running means 1, 1/2, 2/3.
    assert prr([0.1, 0.5, 0.3], [1, 1, 0]) == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    # Oracle ordering of the same qualities: 1, 1, 0 → 1, 1, 2/3.
    oracle = (1 + 1 + 2 / 3) / 3
    assert prr([0.0, 0.1, 0.9], [1, 1, 0]) == pytest.approx(oracle)
    assert prr_normalised([0.0, 0.1, 0.9], [1, 1, 0]) == pytest.approx(1.0)
    # Reverse oracle: 0, 1, 1 → 0, 1/2, 2/3.
    worst = (0 + 0.5 + 2 / 3) / 3
    random = 2 / 3
    assert prr_normalised([0.9, 0.1, 0.0], [1, 1, 0]) == pytest.approx(
        (worst - random) / (oracle - random)
    )


def test_prr_ties_count_as_random_order():
    # All uncertainties tie: every order is equally likely, so PRR is the mean quality.
    assert prr([0.5] * 4, [1, 0, 0, 1]) == pytest.approx(0.5)
    assert prr_normalised([0.5] * 4, [1, 0, 0, 1]) == pytest.approx(0.0)
    # Brute force over tie-breaking orders.
    u = [0.2, 0.2, 0.7, 0.1]
    q = [0.0, 1.0, 0.3, 0.6]
    orders = [
        perm
        for perm in itertools.permutations(range(4))
        if all(u[perm[i]] <= u[perm[i + 1]] for i in range(3))
    ]
    areas = [np.mean(np.cumsum([q[i] for i in perm]) / np.arange(1, 5)) for perm in orders]
    assert prr(u, q) == pytest.approx(np.mean(areas))


qualities = st.integers(min_value=2, max_value=30).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False), min_size=n, max_size=n),
        st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=n, max_size=n),
    )
)


@given(qualities, st.floats(min_value=0.1, max_value=10), st.floats(min_value=-3, max_value=3))
@settings(max_examples=150)
def test_prr_oracle_bounds_and_affine_invariance(args, scale, offset):
    u, q = args
    q_arr = np.array(q)
    if np.ptp(q_arr) == 0:
        with pytest.raises(UndefinedMetricError):
            prr_normalised(u, q)
        return
    assume(np.ptp(q_arr) > 1e-6)  # nearly constant qualities: too ill-conditioned to compare
    value = prr_normalised(u, q)
    assert value <= 1 + 1e-9  # no lower bound: the worst order can fall further below chance
    assert prr_normalised(-q_arr, q) == pytest.approx(1.0)  # oracle: least uncertain = best
    assert prr(-q_arr, q) >= prr(u, q) - 1e-12
    assert prr_normalised(u, scale * q_arr + offset) == pytest.approx(value, abs=1e-9)


def test_prr_random_baseline_matches_shuffles():
    rng = np.random.default_rng(1)
    q = rng.random(12)
    shuffled = np.mean([prr(rng.permutation(12), q) for _ in range(4000)])
    assert shuffled == pytest.approx(q.mean(), abs=0.01)


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, size=60)
    u = c * -0.5 + rng.random(60)  # wrong answers are more uncertain on average
    first = bootstrap_ci(auroc, u, c, n_boot=100, seed=3)
    again = bootstrap_ci(auroc, u, c, n_boot=100, seed=3)
    assert first == again
    assert first.estimate == pytest.approx(auroc(u, c))
    assert first.low <= first.estimate <= first.high
    assert first.n_used == 100 and first.level == 0.95
    narrow = bootstrap_ci(auroc, u, c, n_boot=100, seed=3, level=0.5)
    assert first.low <= narrow.low <= narrow.high <= first.high


def test_bootstrap_skips_resamples_with_one_class():
    u = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5])
    c = np.array([0, 1, 1, 1, 1, 1])  # a resample misses the single wrong answer ~40% of the time
    result = bootstrap_ci(auroc, u, c, n_boot=200, seed=0)
    expected_missing = (5 / 6) ** 6
    assert 0 < result.n_used < 200
    assert result.n_used / 200 == pytest.approx(1 - expected_missing, abs=0.12)
    assert result.estimate == 1.0


def test_bootstrap_percentiles_by_hand():
    data = np.arange(5.0)
    result = bootstrap_ci(np.mean, data, n_boot=200, seed=7, level=0.9)
    rng = np.random.default_rng(7)
    means = [data[rng.integers(0, 5, size=5)].mean() for _ in range(200)]
    assert result.low == pytest.approx(np.percentile(means, 5))
    assert result.high == pytest.approx(np.percentile(means, 95))


def test_bootstrap_checks():
    with pytest.raises(ConfidantError, match="same length"):
        bootstrap_ci(auroc, [0.1, 0.2], [1])
    with pytest.raises(ConfidantError, match="n_boot"):
        bootstrap_ci(np.mean, [1.0], n_boot=0)
    with pytest.raises(ConfidantError, match="level"):
        bootstrap_ci(np.mean, [1.0], level=1.0)
    with pytest.raises(UndefinedMetricError):
        bootstrap_ci(auroc, [0.1, 0.2], [1, 1])
    assert math.isfinite(bootstrap_ci(np.mean, [1.0, 2.0], n_boot=10).high)


# ---------------------------------------------------------------------------------------------
# Rank-based AUROC and the all-metrics bootstrap
# ---------------------------------------------------------------------------------------------


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=40).filter(
        lambda xs: len({c for _, c in xs}) == 2
    )
)
@settings(max_examples=200, deadline=None)
def test_auroc_by_ranks_equals_sklearn_with_ties(rows):
    from uq.evaluation.metrics import auroc_by_ranks

    u = [float(x) for x, _ in rows]
    c = [int(y) for _, y in rows]
    assert auroc_by_ranks(u, c) == pytest.approx(auroc(u, c), abs=1e-12)


def test_evaluation_metrics_resamples_equal_the_scalar_metrics():
    from uq.evaluation.metrics import evaluation_metrics

    rng = np.random.default_rng(3)
    u = rng.integers(0, 6, 40).astype(float)
    c = (rng.random(40) < 0.6).astype(int)
    q = rng.random(40)
    out = evaluation_metrics(u, c, q, n_boot=60, level=0.9, seed=5)
    idx = np.random.default_rng(5).integers(0, 40, size=(60, 40))
    scalar = {
        "auroc": auroc,
        "aurac": aurac,
        "rejection_accuracy_80": lambda a, b: rejection_accuracy(a, b, 0.8),
        "rejection_accuracy_90": lambda a, b: rejection_accuracy(a, b, 0.9),
        "rejection_accuracy_95": lambda a, b: rejection_accuracy(a, b, 0.95),
    }
    for name, fn in scalar.items():
        values = []
        for row in idx:
            try:
                values.append(fn(u[row], c[row]))
            except UndefinedMetricError:
                pass
        low, high = np.percentile(values, [5, 95])
        assert out[name].estimate == pytest.approx(fn(u, c))
        assert (out[name].low, out[name].high) == pytest.approx((low, high))
        assert out[name].n_used == len(values)
    prr_values = [prr(u[row], q[row]) for row in idx]
    assert out["prr"].estimate == pytest.approx(prr(u, q))
    assert (out["prr"].low, out["prr"].high) == pytest.approx(
        tuple(np.percentile(prr_values, [5, 95]))
    )
    assert out["prr_normalised"].estimate == pytest.approx(prr_normalised(u, q))


def test_evaluation_metrics_undefined_auroc_is_none():
    from uq.evaluation.metrics import evaluation_metrics

    out = evaluation_metrics([0.1, 0.2, 0.3], [1, 1, 1], n_boot=10)
    assert out["auroc"] is None and out["rejection_accuracy_80"].estimate == 1.0
