import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.semantic.black_box import (
    degree,
    eccentricity,
    eigv,
    jaccard_matrix,
    kernel_language_entropy,
    lexical_similarity,
    lexical_uncertainty,
    nli_graph_weights,
    nli_similarity_matrix,
    rouge_l,
    rouge_l_matrix,
    rouge_tokens,
    von_neumann_entropy,
)

# ---------------------------------------------------------------------------------------------
# ROUGE-L and lexical similarity
# ---------------------------------------------------------------------------------------------


def test_rouge_l_hand_computed():
    # LCS("the cat sat on the mat", "the cat lay on a mat") = the cat on mat = 4 tokens.
    assert rouge_l("the cat sat on the mat", "the cat lay on a mat") == pytest.approx(
        2 * 4 / (6 + 6)
    )
    # P = 2/2, R = 2/4 → F = 2·1·0.5/1.5.
    assert rouge_l("Eiffel Tower", "the Eiffel Tower, Paris") == pytest.approx(2 / 3)
    assert rouge_l("Paris", "paris!") == 1.0
    assert rouge_l("abc", "xyz") == 0.0
    assert rouge_l("", "") == 1.0 and rouge_l("", "word") == 0.0
    assert rouge_tokens("Zürich, 1,200 km") == ["zürich", "1", "200", "km"]


def test_rouge_l_respects_order():
    # Same bag of words, reversed order: the LCS has length 1.
    assert rouge_l("a b c", "c b a") == pytest.approx(1 / 3)


def _lcs_brute(a, b):
    from itertools import combinations

    for k in range(min(len(a), len(b)), 0, -1):
        subs = set(combinations(a, k))
        if any(s in subs for s in combinations(b, k)):
            return k
    return 0


words = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=7)


@given(words, words)
@settings(max_examples=150)
def test_rouge_l_matches_brute_force_lcs(a, b):
    lcs = _lcs_brute(a, b)
    expected = float(a == b) if not a or not b else 2 * lcs / (len(a) + len(b))
    assert rouge_l(" ".join(a), " ".join(b)) == pytest.approx(expected)
    assert rouge_l(" ".join(a), " ".join(b)) == rouge_l(" ".join(b), " ".join(a))


def test_lexical_similarity_is_mean_over_pairs():
    texts = ["Paris", "Paris France", "London"]
    pairwise = [rouge_l("Paris", "Paris France"), rouge_l("Paris", "London"), 0.0]
    assert lexical_similarity(texts) == pytest.approx(sum(pairwise) / 3)
    assert lexical_uncertainty(texts) == pytest.approx(1 - sum(pairwise) / 3)
    assert lexical_similarity(["one answer"]) == 1.0
    assert lexical_uncertainty(["x", "x", "x"]) == 0.0
    m = rouge_l_matrix(texts)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 1)
    with pytest.raises(ConfidantError):
        lexical_similarity("not a list")
    with pytest.raises(ConfidantError):
        lexical_similarity([])


def test_jaccard_matrix():
    m = jaccard_matrix(["a b c", "b c d", ""])
    assert m[0, 1] == pytest.approx(2 / 4)
    assert m[0, 2] == 0.0 and m[2, 2] == 1.0


# ---------------------------------------------------------------------------------------------
# NLI graphs
# ---------------------------------------------------------------------------------------------


def test_nli_similarity_and_graph_weights():
    labels = np.array([[-1, 2, 0], [1, -1, 2], [0, 2, -1]])
    entail = nli_similarity_matrix(labels, "entail")
    assert entail[0, 1] == 0.5 and entail[1, 2] == 1.0 and entail[0, 2] == 0.0
    assert np.all(np.diag(entail) == 1)
    no_contra = nli_similarity_matrix(labels, "no_contradiction")
    assert no_contra[0, 1] == 1.0 and no_contra[0, 2] == 0.0
    w = nli_graph_weights(labels)
    assert w[0, 1] == w[1, 0] == 1.5 and w[1, 2] == 2.0 and w[0, 2] == 0.0
    assert np.all(np.diag(w) == 0)
    with pytest.raises(ConfidantError, match="not computed"):
        nli_similarity_matrix([[-1, -1], [2, -1]])


# ---------------------------------------------------------------------------------------------
# Spectral measures: closed forms at the extremes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_spectral_extremes(n):
    same = np.ones((n, n))
    apart = np.eye(n)
    assert eigv(same) == pytest.approx(1.0)
    assert eigv(apart) == pytest.approx(n)
    assert degree(same) == pytest.approx(0.0)
    assert degree(apart) == pytest.approx(1 - 1 / n)
    assert eccentricity(same) == pytest.approx(0.0, abs=1e-9)
    assert eccentricity(apart) == pytest.approx(math.sqrt(n - 1))


def test_eigv_counts_blocks():
    # Two groups of equivalent answers with no similarity across: EigV = 2.
    w = np.zeros((5, 5))
    w[:3, :3] = 1
    w[3:, 3:] = 1
    assert eigv(w) == pytest.approx(2.0)
    assert degree(w) == pytest.approx(1 - 13 / 25)


def test_degree_hand_computed_and_symmetrised():
    w = np.array([[1.0, 0.2], [0.6, 1.0]])  # symmetrised to 0.4 off the diagonal
    assert degree(w) == pytest.approx(1 - (2 + 0.8) / 4)


similarities = st.integers(min_value=2, max_value=7).flatmap(
    lambda n: st.lists(
        st.floats(min_value=0, max_value=1, allow_nan=False), min_size=n * n, max_size=n * n
    ).map(lambda flat: np.array(flat).reshape(n, n))
)


def _with_unit_diagonal(m):
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    return m


@given(similarities, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_spectral_measures_bounds_and_permutation_invariance(m, rnd):
    w = _with_unit_diagonal(m)
    n = w.shape[0]
    order = list(range(n))
    rnd.shuffle(order)
    permuted = w[np.ix_(order, order)]
    for fn in (eigv, degree, eccentricity, kernel_language_entropy):
        assert fn(permuted) == pytest.approx(fn(w), abs=1e-7)
    assert 1 - 1e-9 <= eigv(w) <= n + 1e-9
    assert 0 <= degree(w) <= 1 - 1 / n + 1e-12
    assert 0 <= eccentricity(w) <= math.sqrt(n - 1) + 1e-9


def test_similarity_checks():
    with pytest.raises(ConfidantError, match="square"):
        eigv(np.ones((2, 3)))
    with pytest.raises(ConfidantError, match=r"\[0, 1\]"):
        degree(np.full((2, 2), 2.0))
    with pytest.raises(ConfidantError, match="diagonal"):
        eigv(np.zeros((2, 2)))
    with pytest.raises(ConfidantError, match="finite"):
        eccentricity(np.array([[1.0, np.nan], [np.nan, 1.0]]))


# ---------------------------------------------------------------------------------------------
# Kernel Language Entropy
# ---------------------------------------------------------------------------------------------


def _complete_graph_kle(n, w, t):
    # L = w(nI − J): eigenvalue 0 once and wn (n − 1) times; both kernel normalisations agree.
    e = math.exp(-t * w * n)
    trace = 1 + (n - 1) * e
    probs = [1 / trace] + [e / trace] * (n - 1)
    return -sum(p * math.log(p) for p in probs)


@pytest.mark.parametrize(("n", "w", "t"), [(2, 1.0, 0.3), (5, 0.5, 0.3), (10, 2.0, 1.0)])
def test_kle_complete_graph_closed_form(n, w, t):
    weights = w * (np.ones((n, n)) - np.eye(n))
    expected = _complete_graph_kle(n, w, t)
    assert kernel_language_entropy(weights, t) == pytest.approx(expected)
    assert kernel_language_entropy(weights, t, kernel_normalisation="trace") == pytest.approx(
        expected
    )


def test_kle_extremes_and_self_loops():
    n = 6
    assert kernel_language_entropy(np.zeros((n, n))) == pytest.approx(math.log(n))
    strong = 50 * (np.ones((n, n)) - np.eye(n))
    assert kernel_language_entropy(strong) == pytest.approx(0.0, abs=1e-9)
    # Self-loops cancel in D − W.
    w = nli_graph_weights(np.array([[-1, 2, 0], [2, -1, 1], [0, 1, -1]]))
    assert kernel_language_entropy(w + 3 * np.eye(3)) == pytest.approx(kernel_language_entropy(w))


def test_kle_grows_as_the_graph_splits():
    together = np.ones((4, 4)) - np.eye(4)
    split = np.zeros((4, 4))
    split[:2, :2] = split[2:, 2:] = 1
    np.fill_diagonal(split, 0)
    assert kernel_language_entropy(together) < kernel_language_entropy(split)
    assert kernel_language_entropy(split) < kernel_language_entropy(np.zeros((4, 4)))


weights_strategy = st.integers(min_value=1, max_value=7).flatmap(
    lambda n: st.lists(
        st.floats(min_value=0, max_value=2, allow_nan=False), min_size=n * n, max_size=n * n
    ).map(lambda flat: np.array(flat).reshape(n, n))
)


@given(weights_strategy, st.floats(min_value=0.05, max_value=3), st.booleans(), st.booleans())
@settings(max_examples=100, deadline=None)
def test_kle_between_zero_and_log_n(w, t, normalised_laplacian, by_trace):
    w = (w + w.T) / 2
    if normalised_laplacian:
        np.fill_diagonal(w, 1.0)  # every answer needs a positive degree
    value = kernel_language_entropy(
        w,
        t,
        laplacian="normalised" if normalised_laplacian else "combinatorial",
        kernel_normalisation="trace" if by_trace else "diagonal",
    )
    assert -1e-12 <= value <= math.log(w.shape[0]) + 1e-9


def test_von_neumann_entropy_of_a_diagonal_density():
    assert von_neumann_entropy(np.diag([0.5, 0.25, 0.25])) == pytest.approx(
        -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    )
    with pytest.raises(ConfidantError, match="unit trace"):
        von_neumann_entropy(np.eye(2))


def test_kle_checks():
    with pytest.raises(ConfidantError, match="non-negative"):
        kernel_language_entropy(-np.ones((2, 2)))
    with pytest.raises(ConfidantError, match="positive"):
        kernel_language_entropy(np.ones((2, 2)), t=0)
    with pytest.raises(ConfidantError, match="unknown"):
        kernel_language_entropy(np.ones((2, 2)), laplacian="random-walk")


def test_eccentricity_does_not_depend_on_the_answers_order_at_the_threshold():
    # This similarity's normalised Laplacian has an eigenvalue of exactly 0.9, the threshold.
    w = np.array([[1, 0, 0.5, 0.5], [0, 1, 0.5, 0.5], [0.5, 0.5, 1, 0.5], [0.5, 0.5, 0.5, 1]])
    order = [0, 2, 3, 1]
    assert eccentricity(w[np.ix_(order, order)]) == pytest.approx(eccentricity(w), abs=1e-12)
