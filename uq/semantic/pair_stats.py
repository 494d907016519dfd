"""Pair statistics: which answer pairs go to the entailment model, the label matrix, and the
clusters read from it. Identical normalised strings are labelled once; a pair cache can be
shared between calls on the same question.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfidantError
from uq.semantic.black_box import (
    nli_graph_weights,
    nli_similarity_matrix,
)
from uq.semantic.clustering import (
    ENTAILMENT,
    NEUTRAL,
    EntailmentClustering,
    cluster_texts,
    normalise_answer_text,
)
from uq.semantic.entailment import EmbeddingEntailment

# --------------------------------------------------------------------------------------------
# Pair statistics: clustering, label matrix, similarity — computed once
# --------------------------------------------------------------------------------------------


@dataclass
class PairStatistics:
    """What the entailment step produced for N answers.

    ``clustering.labels`` is the N×N NLI label matrix (−1 where no label was needed);
    ``similarity`` the N×N similarity in [0, 1] the spectral measures use and
    ``kernel_weights`` the semantic-graph weights of KLE (None when no measure needed them).
    ``model_pairs`` counts pairs sent to the entailment model, ``model_calls`` its calls,
    ``embedded`` texts embedded.
    """

    clustering: EntailmentClustering
    similarity: np.ndarray | None
    kernel_weights: np.ndarray | None
    model_pairs: int
    model_calls: int
    cached_pairs: int
    embedded: int


def _expand(distinct_matrix: np.ndarray, index_of: list[int]) -> np.ndarray:
    idx = np.asarray(index_of)
    return distinct_matrix[np.ix_(idx, idx)]


def pair_statistics(
    question: str,
    texts: Sequence[str],
    entailment,
    *,
    strict: bool = True,
    full_matrix: bool = True,
    cache: MutableMapping[tuple[str, str], int] | None = None,
) -> PairStatistics:
    """Cluster ``texts`` and, when ``full_matrix``, label every ordered pair of distinct answers.

    - Embedding entailment: the distinct answers are embedded once; labels, clusters,
      similarity and KLE weights all come from that one cosine matrix.
    - NLI / generator with ``full_matrix``: all D(D−1) ordered pairs of the D distinct answers
      not in ``cache`` go through ONE ``label_pairs`` call; the clustering reads from it.
      Similarity is the symmetrised entailment indicator (Lin et al. 2024) and the KLE weights
      are entailment + ½ neutral (Nikitin et al. 2024).
    - Without ``full_matrix``: the clustering asks only the pairs the first-member walk needs.
    ``cache`` maps (normalised premise, normalised hypothesis) to a label; share it only
    between calls on the same question with the same entailment model.
    """
    texts = list(texts)
    if not texts:
        raise ConfidantError("need at least one answer")
    keys = [normalise_answer_text(t) for t in texts]
    first: dict[str, int] = {}
    distinct: list[int] = []
    for i, key in enumerate(keys):
        if key not in first:
            first[key] = len(distinct)
            distinct.append(i)
    index_of = [first[k] for k in keys]  # answer -> position among the distinct answers
    d = len(distinct)
    model_pairs = model_calls = cached = embedded = 0

    if isinstance(entailment, EmbeddingEntailment):
        cos = entailment.cosine(question, [texts[i] for i in distinct])
        embedded = d
        dist_labels = np.where(cos >= entailment.threshold, ENTAILMENT, NEUTRAL)
        clustering = _cluster_from_matrix(texts, distinct, dist_labels, strict)
        clustering.labels = _full_labels(dist_labels, index_of).tolist()
        sim = np.clip(cos, 0.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        similarity = _expand(sim, index_of)
        weights = similarity.copy()
        np.fill_diagonal(weights, 0.0)
        return PairStatistics(clustering, similarity, weights, 0, 0, 0, embedded)

    if full_matrix:
        dist_labels = np.full((d, d), ENTAILMENT, dtype=int)
        wanted = [(a, b) for a in range(d) for b in range(d) if a != b]
        to_ask = []
        for a, b in wanted:
            key = (keys[distinct[a]], keys[distinct[b]])
            if cache is not None and key in cache:
                dist_labels[a, b] = cache[key]
                cached += 1
            else:
                to_ask.append((a, b))
        if to_ask:
            answers = entailment.label_pairs(
                question, texts, [(distinct[a], distinct[b]) for a, b in to_ask]
            )
            model_pairs, model_calls = len(to_ask), 1
            for (a, b), label in zip(to_ask, answers, strict=True):
                dist_labels[a, b] = label
                if cache is not None:
                    cache[(keys[distinct[a]], keys[distinct[b]])] = int(label)
        clustering = _cluster_from_matrix(texts, distinct, dist_labels, strict)
        full = _full_labels(dist_labels, index_of)
        clustering.labels = full.tolist()
        return PairStatistics(
            clustering,
            nli_similarity_matrix(full, "entail"),
            nli_graph_weights(full),
            model_pairs,
            model_calls,
            cached,
            0,
        )

    clustering = cluster_texts(
        texts,
        lambda pairs: entailment.label_pairs(question, texts, pairs),
        strict=strict,
        cache=cache,
    )
    return PairStatistics(
        clustering, None, None, clustering.n_pairs, clustering.n_calls, clustering.n_cached, 0
    )


def _full_labels(dist_labels: np.ndarray, index_of: list[int]) -> np.ndarray:
    """N×N labels from the distinct answers' matrix; identical answers entail each other."""
    full = _expand(dist_labels, index_of).copy()
    idx = np.asarray(index_of)
    full[idx[:, None] == idx[None, :]] = ENTAILMENT
    return full


def _cluster_from_matrix(
    texts: list[str], distinct: list[int], dist_labels: np.ndarray, strict: bool
) -> EntailmentClustering:
    """Run the clustering walk reading labels from an already computed matrix (no model)."""
    position = {answer: k for k, answer in enumerate(distinct)}
    clustering = cluster_texts(
        texts,
        lambda pairs: [int(dist_labels[position[i], position[j]]) for i, j in pairs],
        strict=strict,
    )
    # Those were lookups, not model calls: the model work is counted by the caller.
    clustering.n_pairs = clustering.n_calls = clustering.n_cached = 0
    return clustering
