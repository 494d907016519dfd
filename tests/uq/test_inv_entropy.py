import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from core.errors import ConfidantError
from uq.inv.maths import (
    absolute_cosine_similarity,
    cosine_matrix,
    dual_random_walk,
    entailment_similarity,
    input_marginal,
    inv_entropy,
    inverse_conditional,
    max_forward_conditional,
    ni_entropy,
    output_marginal,
    shifted_cosine_similarity,
    transition_matrix,
    wasserstein_px_py,
)
from uq.inv.measures import (
    bootstrap_output_similarities,
    draw_bootstrap_indices,
    first_replicate_indices,
    inv_entropy_from_responses,
    inv_entropy_measures,
)


def toy_similarity(size: int, epsilon: float) -> np.ndarray:
    """The paper's §2.5 toy model: Sim(i, i) = 1, Sim(i, j) = 1 − ε."""
    similarity = np.full((size, size), 1.0 - epsilon)
    np.fill_diagonal(similarity, 1.0)
    return similarity


@st.composite
def similarity_matrices(draw, size=None):
    n = size if size is not None else draw(st.integers(2, 7))
    values = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=n * n, max_size=n * n))
    matrix = np.array(values).reshape(n, n)
    matrix = (matrix + matrix.T) / 2
    np.fill_diagonal(matrix, 1.0)
    return matrix


@st.composite
def matrix_pairs(draw):
    n = draw(st.integers(2, 7))
    return draw(similarity_matrices(n)), draw(similarity_matrices(n))


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("n", [1, 4, 9])
@pytest.mark.parametrize("eps_x, eps_y", [(0.1, 0.1), (0.05, 0.6), (0.5, 0.2), (0.0, 0.9)])
def test_toy_model_matches_hand_derived_closed_form(n, eps_x, eps_y):
    # Row sums: 1 + n(1 − ε), so P[i, i] = 1 / (n + 1 − nε) and P[i, j] = (1 − ε) / (n + 1 − nε).
    # d_i = Σ_k P_y[i, k] P_x[k, i] = P_y[i, i] P_x[i, i] + n P_y[i, k≠i] P_x[k≠i, i]
    #     = (1 + n (1 − ε_x)(1 − ε_y)) / ((n + 1 − nε_x)(n + 1 − nε_y))
    #     = (1 + n − nε_x − nε_y + nε_xε_y) / ((n + 1 − nε_x)(n + 1 − nε_y))   (paper §2.5)
    expected = (1 + n - n * eps_x - n * eps_y + n * eps_x * eps_y) / (
        (n + 1 - n * eps_x) * (n + 1 - n * eps_y)
    )
    walk = dual_random_walk(toy_similarity(n + 1, eps_x), toy_similarity(n + 1, eps_y))
    np.testing.assert_allclose(np.diag(walk.p_x_given_y), expected, rtol=1e-12)
    value = inv_entropy(toy_similarity(n + 1, eps_x), [toy_similarity(n + 1, eps_y)])
    assert value == pytest.approx(-(n + 1) * expected * math.log(expected), rel=1e-12)


def test_toy_model_p_rises_with_output_dispersion_and_so_does_inv_entropy_below_1_over_e():
    n = 9
    sim_x = toy_similarity(n + 1, 0.1)
    diagonal = [
        np.diag(dual_random_walk(sim_x, toy_similarity(n + 1, e)).p_x_given_y)[0]
        for e in (0.0, 0.3, 0.6, 0.9)
    ]
    assert all(b > a for a, b in zip(diagonal, diagonal[1:], strict=False))
    assert max(diagonal) < 1 / math.e
    values = [inv_entropy(sim_x, [toy_similarity(n + 1, e)]) for e in (0.0, 0.3, 0.6, 0.9)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))


def test_two_state_example_by_hand():
    sim_x = np.array([[1.0, 0.9], [0.9, 1.0]])
    sim_y = np.array([[1.0, 0.2], [0.2, 1.0]])
    p_x = np.array([[1, 0.9], [0.9, 1]]) / 1.9
    p_y = np.array([[1, 0.2], [0.2, 1]]) / 1.2
    d = p_y[0, 0] * p_x[0, 0] + p_y[0, 1] * p_x[1, 0]
    assert inv_entropy(sim_x, [sim_y]) == pytest.approx(-2 * d * math.log(d))
    walk = dual_random_walk(sim_x, sim_y)
    # Both matrices are symmetric and doubly stochastic, so the marginals are uniform and
    # Bayes gives p(y_i | x_i) = p(x_i | y_i).
    np.testing.assert_allclose(walk.p_y, [0.5, 0.5])
    np.testing.assert_allclose(walk.p_x, [0.5, 0.5])
    assert ni_entropy(walk) == pytest.approx(-2 * d * math.log(d))
    assert max_forward_conditional(walk) == pytest.approx(d)
    assert wasserstein_px_py(walk) == pytest.approx(0.0)


def test_asymmetric_example_against_explicit_formulas():
    sim_x = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 1.0]])
    sim_y = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.2], [0.0, 0.2, 1.0]])
    p_x = sim_x / sim_x.sum(1, keepdims=True)
    p_y = sim_y / sim_y.sum(1, keepdims=True)
    pi = np.full(3, 1 / 3)
    walk = dual_random_walk(sim_x, sim_y)
    np.testing.assert_allclose(walk.p_y, pi @ p_y)
    np.testing.assert_allclose(walk.p_x, pi @ p_y @ p_y @ p_x)
    for i in range(3):
        for j in range(3):
            assert walk.p_x_given_y[j, i] == pytest.approx((p_y @ p_x)[j, i])
            bayes = (p_y @ p_x)[j, i] * walk.p_y[j] / walk.p_x[i]
            assert walk.p_y_given_x[i, j] == pytest.approx(bayes)
    forward_diagonal = np.diag(walk.p_y_given_x)
    assert ni_entropy(walk) == pytest.approx(-np.sum(forward_diagonal * np.log(forward_diagonal)))
    assert max_forward_conditional(walk) == pytest.approx(forward_diagonal.max())
    assert wasserstein_px_py(walk) == pytest.approx(wasserstein_distance(walk.p_x, walk.p_y))
    assert wasserstein_px_py(walk) > 0


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(similarity_matrices())
def test_transition_rows_sum_to_one(similarity):
    transition = transition_matrix(similarity)
    np.testing.assert_allclose(transition.sum(axis=1), 1.0)
    assert np.all(transition >= 0)
    # The ratio within a row is the ratio of similarities: no temperature, no sharpening.
    np.testing.assert_allclose(
        transition * similarity.sum(1, keepdims=True), similarity, atol=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(matrix_pairs())
def test_marginals_and_conditionals_are_consistent(pair):
    sim_x, sim_y = pair
    walk = dual_random_walk(sim_x, sim_y)
    size = sim_x.shape[0]
    pi = np.full(size, 1 / size)
    np.testing.assert_allclose(walk.p_y, pi @ walk.p_y_transition)
    np.testing.assert_allclose(walk.p_y, output_marginal(walk.p_y_transition))
    np.testing.assert_allclose(
        walk.p_x_given_y, inverse_conditional(walk.p_x_transition, walk.p_y_transition)
    )
    np.testing.assert_allclose(
        walk.p_x, pi @ walk.p_y_transition @ walk.p_y_transition @ walk.p_x_transition
    )
    np.testing.assert_allclose(walk.p_x, input_marginal(walk.p_x_transition, walk.p_y_transition))
    assert walk.p_y.sum() == pytest.approx(1.0)
    assert walk.p_x.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(walk.p_x_given_y.sum(axis=1), 1.0)
    np.testing.assert_allclose(walk.p_y_given_x.sum(axis=1), 1.0)
    # p(x) is the mixture Σ_j p(y_j) p(x | y_j), and both factorisations of the joint agree.
    np.testing.assert_allclose(walk.p_x, walk.p_y @ walk.p_x_given_y)
    joint_from_y = walk.p_x_given_y.T * walk.p_y[None, :]  # [i, j] = p(x_i | y_j) p(y_j)
    joint_from_x = walk.p_y_given_x * walk.p_x[:, None]  # [i, j] = p(y_j | x_i) p(x_i)
    np.testing.assert_allclose(joint_from_y, joint_from_x, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_inv_entropy_averages_exactly_the_matrices_given(data):
    size = data.draw(st.integers(2, 6))
    sim_x = data.draw(similarity_matrices(size))
    matrices = data.draw(st.lists(similarity_matrices(size), min_size=1, max_size=5))
    singles = [inv_entropy(sim_x, [m]) for m in matrices]
    assert inv_entropy(sim_x, matrices) == pytest.approx(np.mean(singles))
    # Giving a matrix twice weights it twice: no resampling happens inside.
    doubled = [matrices[0]] + matrices
    assert inv_entropy(sim_x, doubled) == pytest.approx(np.mean([singles[0]] + singles))
    result = inv_entropy_measures(sim_x, matrices, matrices[0])
    assert result.inv_entropy_per_bootstrap == pytest.approx(singles)
    assert result.n_bootstraps == len(matrices)
    assert result.nr_inv_entropy == pytest.approx(singles[0])
    assert 0 < result.max_py_x <= 1
    assert result.inv_entropy >= 0 and result.ni_entropy >= 0


# --------------------------------------------------------------------------- similarities


def test_similarity_transforms_keep_diagonal_at_one_and_map_into_unit_interval():
    cosine = np.array([[1.0, -0.4, 0.2], [-0.4, 1.0, 0.9], [0.2, 0.9, 0.999999]])
    shifted = shifted_cosine_similarity(cosine)
    absolute = absolute_cosine_similarity(cosine)
    assert shifted[0, 1] == pytest.approx(0.3)
    assert absolute[0, 1] == pytest.approx(0.4)
    np.testing.assert_array_equal(np.diag(shifted), 1.0)
    np.testing.assert_array_equal(np.diag(absolute), 1.0)
    with pytest.raises(ConfidantError, match="outside"):
        shifted_cosine_similarity([[1.0, 1.5], [1.5, 1.0]])


def test_entailment_similarity_averages_both_directions():
    p_entail = np.array([[0.7, 0.9, 0.1], [0.3, 0.8, 0.0], [0.5, 1.0, 0.2]])
    similarity = entailment_similarity(p_entail)
    assert similarity[0, 1] == similarity[1, 0] == pytest.approx(0.6)
    assert similarity[1, 2] == pytest.approx(0.5)
    np.testing.assert_array_equal(np.diag(similarity), 1.0)
    with pytest.raises(ConfidantError, match=r"\[0, 1\]"):
        entailment_similarity([[1.0, 1.2], [0.0, 1.0]])


def test_cosine_matrix_of_unnormalised_embeddings():
    embeddings = np.array([[3.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    cosine = cosine_matrix(embeddings)
    assert cosine[0, 1] == pytest.approx(1 / math.sqrt(2))
    assert cosine[0, 2] == pytest.approx(-1.0)
    np.testing.assert_array_equal(np.diag(cosine), 1.0)
    with pytest.raises(ConfidantError, match="zero vector"):
        cosine_matrix([[0.0, 0.0], [1.0, 0.0]])


@pytest.mark.parametrize(
    "matrix, message",
    [
        ([[1.0, 0.5, 0.2], [0.5, 1.0, 0.1]], "square"),
        (np.zeros((0, 0)), "empty"),
        ([[1.0, np.nan], [0.2, 1.0]], "NaN"),
        ([[1.0, -0.1], [0.2, 1.0]], "negative"),
        ([[0.0, 0.0], [0.2, 1.0]], "row of zeros"),
    ],
)
def test_transition_matrix_rejects_bad_input(matrix, message):
    with pytest.raises(ConfidantError, match=message):
        transition_matrix(matrix)


def test_inv_entropy_rejects_empty_or_mismatched_input():
    sim = toy_similarity(3, 0.2)
    with pytest.raises(ConfidantError, match="empty"):
        inv_entropy(sim, [])
    with pytest.raises(ConfidantError, match="list of matrices"):
        inv_entropy(sim, sim)
    with pytest.raises(ConfidantError, match="same shape"):
        inv_entropy(sim, [toy_similarity(4, 0.2)])


# --------------------------------------------------------------------------- bootstraps


def test_bootstrap_indices_pick_one_replicate_per_input_and_are_seeded():
    indices = draw_bootstrap_indices(n_inputs=10, n_replicates=5, n_bootstraps=20, rng=7)
    assert indices.shape == (20, 10)
    np.testing.assert_array_equal(indices // 5, np.tile(np.arange(10), (20, 1)))
    np.testing.assert_array_equal(indices, draw_bootstrap_indices(10, 5, 20, rng=7))
    assert not np.array_equal(indices, draw_bootstrap_indices(10, 5, 20, rng=8))
    np.testing.assert_array_equal(first_replicate_indices(3, 4), [0, 4, 8])
    with pytest.raises(ConfidantError, match="positive integer"):
        draw_bootstrap_indices(0, 5, 20)


def test_bootstrap_matrices_index_into_the_one_response_matrix():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(12, 8))  # 4 inputs × 3 replicates, input-major
    full = shifted_cosine_similarity(cosine_matrix(embeddings))
    indices = draw_bootstrap_indices(4, 3, 6, rng=1)
    matrices = bootstrap_output_similarities(full, indices)
    assert len(matrices) == 6
    for row, matrix in zip(indices, matrices, strict=True):
        expected = shifted_cosine_similarity(cosine_matrix(embeddings[row]))
        np.testing.assert_allclose(matrix, expected, atol=1e-12)
        np.testing.assert_array_equal(np.diag(matrix), 1.0)
    with pytest.raises(ConfidantError, match="outside"):
        bootstrap_output_similarities(full, [[0, 3, 6, 12]])


def test_inv_entropy_from_responses_uses_seeded_bootstraps_and_first_replicate():
    rng = np.random.default_rng(3)
    n_inputs, n_replicates = 5, 4
    sim_x = shifted_cosine_similarity(cosine_matrix(rng.normal(size=(n_inputs, 6))))
    full = shifted_cosine_similarity(cosine_matrix(rng.normal(size=(n_inputs * n_replicates, 6))))
    result = inv_entropy_from_responses(sim_x, full, n_replicates, n_bootstraps=7, seed=11)
    indices = draw_bootstrap_indices(n_inputs, n_replicates, 7, 11)
    assert result.bootstrap_indices == indices.tolist()
    assert result.seed == 11 and result.n_bootstraps == 7 and result.n_inputs == n_inputs
    assert result.inv_entropy == pytest.approx(
        inv_entropy(sim_x, bootstrap_output_similarities(full, indices))
    )
    single = bootstrap_output_similarities(full, first_replicate_indices(n_inputs, n_replicates))
    assert result.nr_inv_entropy == pytest.approx(inv_entropy(sim_x, single))
    assert result.to_dict()["inv_entropy"] == result.inv_entropy
    with pytest.raises(ConfidantError, match="replicates need"):
        inv_entropy_from_responses(sim_x, full, n_replicates=3)


def test_with_one_replicate_every_bootstrap_equals_no_replication():
    rng = np.random.default_rng(5)
    sim_x = shifted_cosine_similarity(cosine_matrix(rng.normal(size=(6, 4))))
    full = shifted_cosine_similarity(cosine_matrix(rng.normal(size=(6, 4))))
    result = inv_entropy_from_responses(sim_x, full, n_replicates=1, n_bootstraps=5)
    assert result.inv_entropy == pytest.approx(result.nr_inv_entropy)
    assert np.ptp(result.inv_entropy_per_bootstrap) == pytest.approx(0.0)


def test_result_round_trips_through_a_dict():
    from uq.inv.measures import InvEntropyResult, inv_entropy_from_responses

    rng = np.random.default_rng(0)
    sim = rng.uniform(0.1, 1.0, size=(6, 6))
    sim = (sim + sim.T) / 2
    result = inv_entropy_from_responses(sim[:3, :3], sim, n_replicates=2, n_bootstraps=4, seed=1)
    assert InvEntropyResult.from_dict(result.to_dict()) == result
