"""Inv-Entropy: uncertainty from a dual random walk over perturbed inputs and their answers.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy: A Fully Probabilistic Framework for
Uncertainty Quantification in Language Models", arXiv 2506.09684.

The question is perturbed into n versions, giving n+1 inputs x_0..x_n; each is answered r times.
S_x is the similarity between inputs, S_y between one answer per input. Both are row-normalised
into transition matrices and the state i is the pair (x_i, y_i):

    p(y)          = π P_y                      (one step of the output walk from a uniform start)
    p(x_i | y_j)  = (P_y P_x)[j, i]            (a step among outputs, then a step among inputs)
    p(x)          = π P_y P_y P_x              (= Σ_j p(y_j) p(x_i | y_j))
    p(y_j | x_i)  = p(x_i | y_j) p(y_j) / p(x_i)

Inv-Entropy is the mean over B bootstraps (one replicate per input each) of −Σ_i d_i ln d_i with
d_i = p(x_i | y_i), in nats. Higher means more uncertain.

Example::

    >>> import numpy as np
    >>> sim_x = np.array([[1.0, 0.9], [0.9, 1.0]])
    >>> sim_y = np.array([[1.0, 0.2], [0.2, 1.0]])
    >>> round(inv_entropy(sim_x, [sim_y]), 4)
    0.6818

The pipeline computes one similarity matrix over all (n+1)·r responses once; a bootstrap only
indexes into it (:func:`draw_bootstrap_indices`, :func:`bootstrap_output_similarities`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import entr
from scipy.stats import wasserstein_distance

from core.errors import ConfidantError

# --------------------------------------------------------------------------- validation


def square_matrix(matrix: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    array = np.asarray(matrix, dtype=float)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ConfidantError(f"{name} must be a square matrix, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ConfidantError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ConfidantError(f"{name} contains NaN or infinite values")
    return array


def _similarity_matrix(similarity: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    array = square_matrix(similarity, name)
    if np.any(array < 0):
        raise ConfidantError(
            f"{name} has negative entries; map cosines to [0, 1] first "
            "(shifted_cosine_similarity or absolute_cosine_similarity)"
        )
    if np.any(array.sum(axis=1) <= 0):
        raise ConfidantError(f"{name} has a row of zeros; its transition row is undefined")
    return array


def _transition_rows(matrix: np.ndarray, name: str) -> np.ndarray:
    array = square_matrix(matrix, name)
    if np.any(array < 0) or not np.allclose(array.sum(axis=1), 1.0, atol=1e-8):
        raise ConfidantError(f"{name} must be row-stochastic (non-negative rows summing to 1)")
    return array


# --------------------------------------------------------------------------- similarities


def cosine_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity between every pair of rows: cos(a, b) = a·b / (‖a‖ ‖b‖).

    Rows need not be normalised. The diagonal is exactly 1. Rows of zeros are rejected.
    """
    array = np.asarray(embeddings, dtype=float)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ConfidantError(f"embeddings must be a non-empty 2-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ConfidantError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ConfidantError("an embedding is the zero vector; its cosine is undefined")
    unit = array / norms
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(cosine, 1.0)
    return cosine


def _cosine_input(cosine: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    array = square_matrix(cosine, "cosine matrix")
    if np.any(np.abs(array) > 1.0 + 1e-6):
        raise ConfidantError("cosine matrix has values outside [-1, 1]")
    return np.clip(array, -1.0, 1.0)


def shifted_cosine_similarity(cosine: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Sim = (1 + cos) / 2, in [0, 1], diagonal set to 1.

    The rule in Song et al. (2025), §3 (SBERT embedders).
    """
    similarity = (1.0 + _cosine_input(cosine)) / 2.0
    np.fill_diagonal(similarity, 1.0)
    return similarity


def absolute_cosine_similarity(cosine: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Sim = |cos|, in [0, 1], diagonal set to 1.

    The rule in the authors' released code (``compute_similarity_matrix``) and the
    ``inventropy`` package, which differs from the paper's (1 + cos) / 2.
    """
    similarity = np.abs(_cosine_input(cosine))
    np.fill_diagonal(similarity, 1.0)
    return similarity


def entailment_similarity(p_entail: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Symmetrised NLI similarity: Sim = (E + Eᵀ) / 2 with E[i, j] = p(i entails j); diagonal 1.

    Song et al. (2025), §3 (DeBERTa-v2-xlarge-MNLI, entailment probability averaged over both
    directions); the authors' package also sets the diagonal to 1.
    """
    array = square_matrix(p_entail, "entailment probability matrix")
    if np.any(array < 0) or np.any(array > 1):
        raise ConfidantError("entailment probabilities must lie in [0, 1]")
    similarity = (array + array.T) / 2.0
    np.fill_diagonal(similarity, 1.0)
    return similarity


# --------------------------------------------------------------------------- random walk


def transition_matrix(similarity: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Row-normalised similarity: P[i, j] = S[i, j] / Σ_k S[i, k]; no temperature.

    Song et al. (2025), §2.3. The diagonal is kept, so every state has a self-loop. The matrix
    must be square, finite and non-negative, with no row of zeros.
    """
    array = _similarity_matrix(similarity, "similarity matrix")
    return array / array.sum(axis=1, keepdims=True)


def output_marginal(p_y: np.ndarray) -> np.ndarray:
    """p(Y = y_j) = (π P_y)[j] with π uniform (Song et al. 2025, §2.4)."""
    p_y = _transition_rows(p_y, "P_y")
    return p_y.mean(axis=0)


def inverse_conditional(p_x: np.ndarray, p_y: np.ndarray) -> np.ndarray:
    """Matrix C with C[j, i] = p(X = x_i | Y = y_j) = (P_y P_x)[j, i].

    The dual random walk of Song et al. (2025), §2.4: from y_j one step among outputs to y_k,
    across to x_k, then one step among inputs to x_i. Each row sums to 1.
    """
    p_x = _transition_rows(p_x, "P_x")
    p_y = _transition_rows(p_y, "P_y")
    if p_x.shape != p_y.shape:
        raise ConfidantError(f"P_x {p_x.shape} and P_y {p_y.shape} must have the same shape")
    return p_y @ p_x


def input_marginal(p_x: np.ndarray, p_y: np.ndarray) -> np.ndarray:
    """p(X = x_i) = (π P_y P_y P_x)[i] = Σ_j p(y_j) p(x_i | y_j), π uniform.

    The consistent marginal computed in the authors' code (the paper's text writes π P_y P_x).
    """
    return output_marginal(p_y) @ inverse_conditional(p_x, p_y)


@dataclass
class DualRandomWalk:
    """Every quantity of the dual random walk for one output-similarity matrix.

    ``p_x_given_y[j, i] = p(x_i | y_j)``; ``p_y_given_x[i, j] = p(y_j | x_i)`` (rows sum to 1).
    """

    p_x_transition: np.ndarray
    p_y_transition: np.ndarray
    p_y: np.ndarray
    p_x: np.ndarray
    p_x_given_y: np.ndarray
    p_y_given_x: np.ndarray


def dual_random_walk(sim_x: np.ndarray, sim_y: np.ndarray) -> DualRandomWalk:
    """Transition matrices, marginals and both conditionals (Song et al. 2025, §2.3–2.4).

    p(y_j | x_i) = p(x_i | y_j) p(y_j) / p(x_i) (Bayes).
    """
    p_x_transition = transition_matrix(sim_x)
    p_y_transition = transition_matrix(sim_y)
    if p_x_transition.shape != p_y_transition.shape:
        raise ConfidantError(
            f"S_x {p_x_transition.shape} and S_y {p_y_transition.shape} must have the same shape"
        )
    p_x_given_y = p_y_transition @ p_x_transition
    p_y = p_y_transition.mean(axis=0)
    p_x = p_y @ p_x_given_y
    p_y_given_x = (p_x_given_y * p_y[:, None]).T / p_x[:, None]
    return DualRandomWalk(
        p_x_transition=p_x_transition,
        p_y_transition=p_y_transition,
        p_y=p_y,
        p_x=p_x,
        p_x_given_y=p_x_given_y,
        p_y_given_x=p_y_given_x,
    )


# --------------------------------------------------------------------------- measures


def single_inv_entropy(walk: DualRandomWalk) -> float:
    return float(entr(np.diag(walk.p_x_given_y)).sum())


def validated_bootstraps(sim_y_bootstraps: Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(sim_y_bootstraps, np.ndarray) and sim_y_bootstraps.ndim == 2:
        raise ConfidantError("sim_y_bootstraps must be a list of matrices, not one matrix")
    matrices = list(sim_y_bootstraps)
    if not matrices:
        raise ConfidantError("sim_y_bootstraps is empty; give at least one output matrix")
    return matrices


def inv_entropy(sim_x: np.ndarray, sim_y_bootstraps: Sequence[np.ndarray]) -> float:
    """Inv-Entropy = (1/B) Σ_b −Σ_i d_i ln d_i, d_i = (P_y⁽ᵇ⁾ P_x)[i, i] = p(x_i | y_i).

    Song et al. (2025), eqs. 5–6. Averages over exactly the matrices given (one per bootstrap);
    natural log. Unnormalised on purpose: the d_i do not sum to 1.
    """
    matrices = validated_bootstraps(sim_y_bootstraps)
    return float(np.mean([single_inv_entropy(dual_random_walk(sim_x, s)) for s in matrices]))


def ni_entropy(walk: DualRandomWalk) -> float:
    """NI-Entropy = −Σ_i p(y_i | x_i) ln p(y_i | x_i), forward conditional by Bayes.

    The non-inverse variant of Song et al. (2025), §3.
    """
    return float(entr(np.diag(walk.p_y_given_x)).sum())


def wasserstein_px_py(walk: DualRandomWalk) -> float:
    """WD-px-py: 1-D Wasserstein distance between the values of p(X) and of p(Y).

    As in the authors' code (Song et al. 2025), ``scipy.stats.wasserstein_distance`` treats
    the n+1 probability values of each marginal as samples.
    """
    return float(wasserstein_distance(walk.p_x, walk.p_y))


def max_forward_conditional(walk: DualRandomWalk) -> float:
    """MAX-py-x = max_i p(y_i | x_i), the paper's definition (Song et al. 2025, §3).

    The authors' code instead returns max_j p(y_j), the largest output marginal.
    """
    return float(np.max(np.diag(walk.p_y_given_x)))
