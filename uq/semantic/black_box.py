"""Uncertainty from the answer texts alone (black-box): nothing but strings and similarity
matrices go in, so these work for any model, including pasted answers.

- Lexical similarity: mean pairwise ROUGE-L (Kuhn et al. 2023 baseline).
- EigV, Degree, Eccentricity: spectral measures over a similarity graph of the answers (Lin,
  Trivedi & Sun, "Generating with Confidence", TMLR 2024).
- Kernel Language Entropy: von Neumann entropy of a unit-trace heat kernel over the semantic
  graph (Nikitin, Kossen, Gal & Marttinen, NeurIPS 2024).

The spectral measures and KLE take the similarity matrix as input, so NLI-based, lexical or
embedding-based similarities can all feed them. Higher means more uncertain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from core.errors import ConfidantError

_WORD = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------------------------------
# Lexical similarity
# --------------------------------------------------------------------------------------------


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (any script); punctuation separates tokens.

    Close to the ``rouge-score`` tokenizer, which keeps only ASCII a-z0-9 and so splits
    accented words; no stemming."""
    return _WORD.findall(str(text).lower())


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l_of_tokens(a: Sequence[str], b: Sequence[str]) -> float:
    if not a or not b:
        return float(len(a) == len(b))
    # F = 2PR/(P + R) with P = LCS/|a|, R = LCS/|b| simplifies to 2·LCS/(|a| + |b|).
    return 2 * _lcs_length(a, b) / (len(a) + len(b))


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (Lin 2004) of two texts: with LCS the longest common subsequence of
    their tokens, P = LCS/|prediction|, R = LCS/|reference|, F = 2PR/(P + R).

    Symmetric. Two texts without tokens score 1 (they agree), one empty text scores 0."""
    return _rouge_l_of_tokens(rouge_tokens(prediction), rouge_tokens(reference))


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ConfidantError("give a list of answers, not a single string")
    texts = list(texts)
    if not texts:
        raise ConfidantError("need at least one answer")
    if not all(isinstance(t, str) for t in texts):
        raise ConfidantError("answers must be strings")
    return texts


def rouge_l_matrix(texts: Sequence[str]) -> np.ndarray:
    """N×N matrix of pairwise ROUGE-L F-measures (symmetric, diagonal 1)."""
    texts = _check_texts(texts)
    tokens = [rouge_tokens(t) for t in texts]
    n = len(texts)
    sim = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            sim[i, j] = sim[j, i] = _rouge_l_of_tokens(tokens[i], tokens[j])
    return sim


def lexical_similarity(texts: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure over all pairs i ≠ j of answers (Kuhn et al. 2023), in [0, 1];
    a similarity, so higher means *more* certain. 1 for a single answer."""
    sim = rouge_l_matrix(texts)
    n = sim.shape[0]
    if n == 1:
        return 1.0
    return float((sim.sum() - n) / (n * (n - 1)))


def lexical_uncertainty(texts: Sequence[str]) -> float:
    """1 − :func:`lexical_similarity`: the lexical-similarity baseline as an uncertainty."""
    return 1.0 - lexical_similarity(texts)


def jaccard_matrix(texts: Sequence[str]) -> np.ndarray:
    """N×N Jaccard similarity |A∩B| / |A∪B| of the answers' token sets (Lin et al. 2024's
    model-free similarity); two answers without tokens count as identical."""
    texts = _check_texts(texts)
    sets = [set(rouge_tokens(t)) for t in texts]
    n = len(texts)
    sim = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            union = sets[i] | sets[j]
            sim[i, j] = sim[j, i] = len(sets[i] & sets[j]) / len(union) if union else 1.0
    return sim


# --------------------------------------------------------------------------------------------
# Similarity graphs from NLI labels
# --------------------------------------------------------------------------------------------


def _full_label_matrix(labels: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.shape[0] != lab.shape[1] or lab.shape[0] == 0:
        raise ConfidantError("an NLI label matrix must be square and non-empty")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ConfidantError("NLI labels must be integers 0, 1 or 2")
    off = ~np.eye(lab.shape[0], dtype=bool)
    if np.any(lab[off] == -1):
        raise ConfidantError(
            "the NLI label matrix has pairs that were not computed (−1); these measures need "
            "every ordered pair labelled"
        )
    if np.any((lab[off] < 0) | (lab[off] > 2)):
        raise ConfidantError("NLI labels must be 0, 1 or 2")
    return lab


def nli_similarity_matrix(
    labels: Sequence[Sequence[int]] | np.ndarray,
    affinity: Literal["entail", "no_contradiction"] = "entail",
) -> np.ndarray:
    """Symmetric similarity W = (A + Aᵀ)/2 with diagonal 1, from NLI labels (Lin et al. 2024).

    ``labels[i][j]`` labels premise i, hypothesis j (0 contradiction, 1 neutral, 2 entailment).
    A_ij = 1[entailment] for ``"entail"``, 1[not contradiction] for ``"no_contradiction"``: the
    argmax form of their p_entail and 1 − p_contra affinities. The diagonal is ignored.
    """
    lab = _full_label_matrix(labels)
    if affinity == "entail":
        a = (lab == 2).astype(float)
    elif affinity == "no_contradiction":
        a = (lab != 0).astype(float)
    else:
        raise ConfidantError(f"unknown affinity {affinity!r}; use 'entail' or 'no_contradiction'")
    w = (a + a.T) / 2
    np.fill_diagonal(w, 1.0)
    return w


def nli_graph_weights(labels: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Semantic-graph weights of Kernel Language Entropy from NLI labels (Nikitin et al. 2024):
    W_ij = w(l_ij) + w(l_ji) with w(entailment) = 1, w(neutral) = ½, w(contradiction) = 0, so
    W_ij ∈ [0, 2]; no self-loops (diagonal 0)."""
    lab = _full_label_matrix(labels)
    weight = np.where(lab == 2, 1.0, np.where(lab == 1, 0.5, 0.0))
    w = weight + weight.T
    np.fill_diagonal(w, 0.0)
    return w


# --------------------------------------------------------------------------------------------
# Spectral measures (Lin et al.) and Kernel Language Entropy (Nikitin et al.)
# --------------------------------------------------------------------------------------------


def _square_matrix(matrix: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ConfidantError(f"{name} must be a non-empty square matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ConfidantError(f"{name} must be finite (no NaN or infinity)")
    if np.any(m < 0):
        raise ConfidantError(f"{name} must be non-negative")
    return (m + m.T) / 2


def _similarity(similarity: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    w = _square_matrix(similarity, "the similarity matrix")
    if np.any(w > 1 + 1e-9):
        raise ConfidantError("similarities must lie in [0, 1]")
    if np.any(w.sum(axis=1) <= 0):
        raise ConfidantError(
            "every answer needs a positive total similarity; set the diagonal to 1 "
            "(each answer is similar to itself)"
        )
    return w


def _normalised_laplacian(w: np.ndarray) -> np.ndarray:
    inv_sqrt = 1.0 / np.sqrt(w.sum(axis=1))
    return np.eye(w.shape[0]) - inv_sqrt[:, None] * w * inv_sqrt[None, :]


def eigv(similarity: Sequence[Sequence[float]] | np.ndarray) -> float:
    """U_EigV = Σ_k max(0, 1 − λ_k), with λ_k the eigenvalues of the normalised graph Laplacian
    L = I − D^{−½} W D^{−½} (Lin et al. 2024).

    W is the N×N similarity of the answers (symmetrised as (W + Wᵀ)/2; diagonal 1 expected),
    D its degree matrix. A soft count of semantic clusters: 1 when all answers are equivalent,
    N when none are."""
    w = _similarity(similarity)
    eigenvalues = np.linalg.eigvalsh(_normalised_laplacian(w))
    return float(np.clip(1.0 - eigenvalues, 0.0, None).sum())


def degree(similarity: Sequence[Sequence[float]] | np.ndarray) -> float:
    """U_Deg = trace(N·I − D) / N² = 1 − (1/N²) Σ_ij W_ij, with D the degree matrix of the
    symmetrised similarity W (Lin et al. 2024). 0 when all answers are fully similar."""
    w = _similarity(similarity)
    n = w.shape[0]
    return float(np.trace(n * np.eye(n) - np.diag(w.sum(axis=1))) / n**2)


_EIGENVALUE_ROUNDING = 1e-9


def eccentricity(
    similarity: Sequence[Sequence[float]] | np.ndarray, eigenvalue_threshold: float = 0.9
) -> float:
    """U_Ecc = ‖[v'_1, …, v'_N]‖₂ (Lin et al. 2024).

    The eigenvectors of the normalised Laplacian L = I − D^{−½} W D^{−½} with eigenvalue below
    ``eigenvalue_threshold`` (0.9 as in LM-Polygraph) embed each answer j as v_j; v'_j = v_j −
    mean_k v_k; the score is the Frobenius norm of the centred embeddings. It does not depend on
    which orthonormal basis of those eigenvectors the solver returns. 0 when all answers are
    equivalent; √(N − 1) when none are similar.
    """
    w = _similarity(similarity)
    threshold = float(eigenvalue_threshold)
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfidantError("the eigenvalue threshold must be a positive number")
    eigenvalues, eigenvectors = np.linalg.eigh(_normalised_laplacian(w))
    # Similarities from NLI labels (0, ½, 1) can give an eigenvalue of exactly 0.9; rounding
    # then put it on either side of the threshold depending on the answers' order. Within
    # rounding of the threshold counts as equal to it, so not below it.
    embedding = eigenvectors[:, eigenvalues < threshold - _EIGENVALUE_ROUNDING]
    centred = embedding - embedding.mean(axis=0, keepdims=True)
    return float(np.linalg.norm(centred))


def von_neumann_entropy(density: Sequence[Sequence[float]] | np.ndarray) -> float:
    """VNE(ρ) = −tr(ρ log ρ) = −Σ_k λ_k log λ_k over the eigenvalues of a symmetric, positive
    semi-definite, unit-trace matrix ρ, nats; between 0 and log N."""
    rho = np.asarray(density, dtype=float)
    if rho.ndim != 2 or rho.shape[0] != rho.shape[1] or rho.shape[0] == 0:
        raise ConfidantError("a density matrix must be square and non-empty")
    if not np.all(np.isfinite(rho)):
        raise ConfidantError("a density matrix must be finite")
    if not math.isclose(float(np.trace(rho)), 1.0, abs_tol=1e-6):
        raise ConfidantError(f"a density matrix must have unit trace, got {np.trace(rho):.6g}")
    eigenvalues = np.clip(np.linalg.eigvalsh((rho + rho.T) / 2), 0.0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(max(0.0, -(eigenvalues * np.log(eigenvalues)).sum()))


def kernel_language_entropy(
    weights: Sequence[Sequence[float]] | np.ndarray,
    t: float = 0.3,
    *,
    laplacian: Literal["combinatorial", "normalised"] = "combinatorial",
    kernel_normalisation: Literal["diagonal", "trace"] = "diagonal",
) -> float:
    """Kernel Language Entropy KLE = VNE(K̃), nats (Nikitin et al. 2024).

    ``weights`` is the symmetric, non-negative N×N weight matrix of the semantic graph (e.g.
    :func:`nli_graph_weights`, or an embedding similarity). L is its graph Laplacian — D − W
    (``"combinatorial"``, the paper's default; self-loops cancel) or I − D^{−½} W D^{−½}
    (``"normalised"``). The heat kernel K = exp(−tL) (t = 0.3 as in LM-Polygraph) is made
    unit-trace: ``"diagonal"`` scales it to unit diagonal, K_ij / √(K_ii K_jj), then divides by
    N, as the authors' code does; ``"trace"`` divides by tr K. Then VNE(K̃) = −Σ λ log λ.
    Between 0 and log N: log N for a graph with no edges.
    """
    w = _square_matrix(weights, "the weight matrix")
    t = float(t)
    if not (math.isfinite(t) and t > 0):
        raise ConfidantError(f"the heat-kernel time t must be positive, got {t}")
    n = w.shape[0]
    if laplacian == "combinatorial":
        lap = np.diag(w.sum(axis=1)) - w
    elif laplacian == "normalised":
        if np.any(w.sum(axis=1) <= 0):
            raise ConfidantError("the normalised Laplacian needs every answer to have an edge")
        lap = _normalised_laplacian(w)
    else:
        raise ConfidantError(
            f"unknown laplacian {laplacian!r}; use 'combinatorial' or 'normalised'"
        )
    eigenvalues, eigenvectors = np.linalg.eigh((lap + lap.T) / 2)
    kernel = (eigenvectors * np.exp(-t * eigenvalues)) @ eigenvectors.T
    if kernel_normalisation == "diagonal":
        scale = np.sqrt(np.diag(kernel))
        density = kernel / np.outer(scale, scale) / n
    elif kernel_normalisation == "trace":
        density = kernel / np.trace(kernel)
    else:
        raise ConfidantError(
            f"unknown kernel normalisation {kernel_normalisation!r}; use 'diagonal' or 'trace'"
        )
    return von_neumann_entropy(density)
