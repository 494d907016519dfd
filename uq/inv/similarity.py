"""Similarities between responses for Inv-Entropy: NLI entailment probabilities or embedding
cosines, and the semantic-entropy comparison on the same responses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.inv.maths import (
    absolute_cosine_similarity,
    entailment_similarity,
    shifted_cosine_similarity,
)
from uq.inv.options import (
    DEFAULT_SE_COSINE_THRESHOLD,
    DEFAULT_SIMILARITY,
    MAX_NLI_DISTINCT_RESPONSES,
    Embed,
    check_similarity,
)
from uq.semantic.clustering import ENTAILMENT, NEUTRAL, cluster_texts
from uq.semantic.estimators import (
    discrete_semantic_entropy,
    number_of_semantic_sets,
    semantic_entropy,
)

# --------------------------------------------------------------------------- similarities


def _nli_probability(nli: Any) -> Callable[[list[tuple[str, str]]], np.ndarray]:
    if hasattr(nli, "probs"):
        return nli.probs
    if callable(nli):
        return nli
    raise ConfidantError("the NLI model must have a probs(pairs) method or be callable")


def _embeddings(embed: Embed, texts: list[str]) -> dict[str, np.ndarray]:
    distinct = list(dict.fromkeys(texts))
    vectors = np.asarray(embed(distinct), dtype=float)
    if vectors.ndim != 2 or vectors.shape[0] != len(distinct):
        raise ConfidantError(
            f"the embedding model returned shape {vectors.shape} for {len(distinct)} texts"
        )
    if not np.all(np.isfinite(vectors)):
        raise ConfidantError("the embedding model returned NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ConfidantError("the embedding model returned a zero vector")
    return dict(zip(distinct, vectors / norms, strict=True))


def _cosine(vectors: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
    matrix = np.stack([vectors[t] for t in texts])
    cosine = np.clip(matrix @ matrix.T, -1.0, 1.0)
    np.fill_diagonal(cosine, 1.0)
    return cosine


def similarity_statistics(
    groups: Sequence[tuple[Sequence[str], Sequence[str]]],
    similarity: str = DEFAULT_SIMILARITY,
    *,
    embed: Embed | None = None,
    nli: Any = None,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
) -> list[dict[str, np.ndarray]]:
    """S_x, the full response-similarity matrix and the same-meaning labels, per question.

    ``groups`` holds (inputs, responses flattened input-major) per question. Embeddings: ONE
    ``embed`` call over every distinct text of every question; Sim = (1 + cos)/2
    ("embedding", the paper) or |cos| ("embedding_abs", the authors' code). NLI: ONE call over
    every ordered pair of distinct texts within each question; Sim = (E + Eᵀ)/2 with
    E[i, j] = p(i entails j) (Song et al. 2025, §3); identical strings count as E = 1.

    ``labels`` (responses × responses, 0/1/2) feed semantic-entropy clustering: the NLI argmax,
    or for embeddings ENTAILMENT where cos ≥ ``se_cosine_threshold`` and NEUTRAL elsewhere.
    """
    similarity = check_similarity(similarity)
    if not 0.0 < float(se_cosine_threshold) <= 1.0:
        raise ConfidantError(
            f"the clustering cosine threshold must be in (0, 1], got {se_cosine_threshold}"
        )
    stats: list[dict[str, np.ndarray]] = []
    if similarity in ("embedding", "embedding_abs"):
        if embed is None:
            raise ConfidantError("embedding similarity needs an embedding model")
        every = [t for inputs, responses in groups for t in list(inputs) + list(responses)]
        vectors = _embeddings(embed, every)
        rule = (
            shifted_cosine_similarity if similarity == "embedding" else absolute_cosine_similarity
        )
        for inputs, responses in groups:
            response_cosine = _cosine(vectors, list(responses))
            labels = np.where(response_cosine >= se_cosine_threshold, ENTAILMENT, NEUTRAL)
            stats.append(
                {
                    "sim_x": rule(_cosine(vectors, list(inputs))),
                    "response_similarity": rule(response_cosine),
                    "labels": labels,
                }
            )
        return stats

    if nli is None:
        raise ConfidantError("NLI similarity needs an NLI model")
    probability = _nli_probability(nli)
    pair_index: dict[tuple[str, str], int] = {}
    for inputs, responses in groups:
        for texts in (inputs, responses):
            distinct = list(dict.fromkeys(texts))
            if len(distinct) > MAX_NLI_DISTINCT_RESPONSES:
                raise ConfidantError(
                    f"NLI similarity over {len(distinct)} distinct texts needs "
                    f"{len(distinct) * (len(distinct) - 1):,} model calls; the limit is "
                    f"{MAX_NLI_DISTINCT_RESPONSES} texts — use embedding similarity"
                )
            for a in distinct:
                for b in distinct:
                    if a != b:
                        pair_index.setdefault((a, b), len(pair_index))
    pairs = list(pair_index)
    probs = np.asarray(probability(pairs), dtype=float) if pairs else np.zeros((0, 3))
    if probs.shape != (len(pairs), 3) or not np.all(np.isfinite(probs)):
        raise ConfidantError(f"the NLI model returned shape {probs.shape} for {len(pairs)} pairs")

    def matrices(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        size = len(texts)
        entail = np.ones((size, size))
        labels = np.full((size, size), ENTAILMENT)
        for i, a in enumerate(texts):
            for j, b in enumerate(texts):
                if a != b:
                    row = probs[pair_index[(a, b)]]
                    entail[i, j] = row[ENTAILMENT]
                    labels[i, j] = int(np.argmax(row))
        return entailment_similarity(np.clip(entail, 0.0, 1.0)), labels

    for inputs, responses in groups:
        sim_x, _ = matrices(list(inputs))
        response_similarity, labels = matrices(list(responses))
        stats.append({"sim_x": sim_x, "response_similarity": response_similarity, "labels": labels})
    return stats


def semantic_entropy_of_responses(
    responses: list[str],
    labels: np.ndarray,
    replicates: int,
    mean_logprobs: list[float] | None,
) -> dict[str, Any]:
    """Semantic entropy of the same responses, clustered from labels already computed."""

    def clustering(indices: list[int]) -> list[int]:
        texts = [responses[i] for i in indices]
        return cluster_texts(
            texts, lambda pairs: [int(labels[indices[a], indices[b]]) for a, b in pairs]
        ).cluster_ids

    everything = list(range(len(responses)))
    original = list(range(replicates))
    ids_all, ids_original = clustering(everything), clustering(original)
    out: dict[str, Any] = {
        "cluster_ids_all": ids_all,
        "cluster_ids_original": ids_original,
        "n_clusters_all": number_of_semantic_sets(ids_all),
        "n_clusters_original": number_of_semantic_sets(ids_original),
        "discrete_all": discrete_semantic_entropy(ids_all),
        "discrete_original": discrete_semantic_entropy(ids_original),
        "likelihood_all": None,
        "likelihood_original": None,
    }
    if mean_logprobs is not None:
        out["likelihood_all"] = semantic_entropy(ids_all, mean_logprobs)
        out["likelihood_original"] = semantic_entropy(ids_original, mean_logprobs[:replicates])
    return out
