"""Relevance statistics from the similarity model, computed once per question for SAR
(:mod:`uq.semantic.sar`) and Semantic Density (:mod:`uq.semantic.semantic_density`):

- per-token relevance R_k = 1 − g(s, s∖z_k) of every sampled answer and of the reference
  answer (s∖z_k: the answer with token k removed);
- the graded N×N similarity g(s_i, s_j) of the sampled answers;
- the kernel K(reference, s_i) of the reference answer to each sample.

The similarity model is the one the entailment back-end already holds, and every text pair
of a question goes through it in ONE call:

- embeddings (:class:`EmbeddingEntailment`): g = cosine of the sentence embeddings clipped to
  [0, 1], and K = g; every distinct text is embedded once, in one ``embed`` call;
- NLI (:class:`NLIEntailment`): g(a, b) = ½ (p_entail(a → b) + p_entail(b → a)), symmetric like
  the STS cross-encoder LM-Polygraph uses, and K = 1 − (p_contradiction + ½ p_neutral) of
  reference → sample (Qiu & Miikkulainen 2024); all ordered pairs in one ``probs`` call;
- the generator as entailment model gives no graded similarity: None (the measures then say
  they need a similarity model).

Texts are prefixed with the question when the entailment back-end does so. A token whose
removal leaves the text unchanged (an empty piece) gets relevance 0 without a model call; a
one-token answer gets relevance 1 (its normalised weight is 1 whatever the value; LM-Polygraph
stores 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backends.base import Generation
from uq.semantic.clustering import CONTRADICTION, ENTAILMENT, NEUTRAL
from uq.semantic.entailment import EmbeddingEntailment, NLIEntailment
from uq.semantic.semantic_density import nli_kernel


@dataclass
class RelevanceStatistics:
    """What the similarity model gave for one question (see the module docstring)."""

    sample_token_relevance: list[list[float]]
    reference_token_relevance: list[float]
    answer_similarity: np.ndarray
    reference_kernel: list[float]
    scored: int  # texts embedded (embeddings) or ordered pairs labelled (NLI)


def has_similarity_model(entailment) -> bool:
    """Whether ``entailment`` holds a graded similarity model (NLI or embeddings)."""
    return isinstance(entailment, EmbeddingEntailment | NLIEntailment)


def _deletions(gen: Generation) -> tuple[str, list[str | None]]:
    """The answer text and, per token, the text without that token (None: unchanged)."""
    pieces = [t.text for t in gen.tokens]
    full = "".join(pieces).strip()
    out: list[str | None] = []
    for k, piece in enumerate(pieces):
        shorter = "".join(pieces[:k] + pieces[k + 1 :]).strip()
        out.append(None if not piece or shorter == full else shorter)
    return full, out


def _condition(entailment, question: str, text: str) -> str:
    return f"{question} {text}" if entailment.condition_on_question and question else text


def _score(entailment, question: str, symmetric: set, forward: set) -> tuple[dict, dict, int]:
    """(g for each unordered pair in ``symmetric``, K for each (reference, sample) in
    ``forward``, work done) from ONE call to the similarity model."""
    if isinstance(entailment, EmbeddingEntailment):
        texts = sorted({t for pair in symmetric | forward for t in pair})
        if not texts:
            return {}, {}, 0
        vecs = np.asarray(
            entailment.embedder.embed([_condition(entailment, question, t) for t in texts]),
            dtype=float,
        )
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(norms > 0, norms, 1.0)
        row = {t: k for k, t in enumerate(texts)}

        def cos(a: str, b: str) -> float:
            return float(np.clip(vecs[row[a]] @ vecs[row[b]], 0.0, 1.0))

        return (
            {p: cos(*p) for p in symmetric},
            {p: cos(*p) for p in forward},
            len(texts),
        )
    ordered = sorted({(a, b) for a, b in symmetric} | {(b, a) for a, b in symmetric} | forward)
    if not ordered:
        return {}, {}, 0
    probs = np.asarray(
        entailment.nli.probs(
            [
                (_condition(entailment, question, a), _condition(entailment, question, b))
                for a, b in ordered
            ]
        ),
        dtype=float,
    )
    at = {pair: probs[k] for k, pair in enumerate(ordered)}
    sim = {(a, b): 0.5 * (at[(a, b)][ENTAILMENT] + at[(b, a)][ENTAILMENT]) for a, b in symmetric}
    kernel = {p: nli_kernel(at[p][CONTRADICTION], at[p][NEUTRAL]) for p in forward}
    return sim, kernel, len(ordered)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def relevance_statistics(
    question: str,
    samples: Sequence[Generation],
    reference: Generation,
    entailment,
) -> RelevanceStatistics | None:
    """Token relevances, the answers' similarity and the reference kernel (module docstring)
    for ``samples`` and ``reference``; None when ``entailment`` has no similarity model."""
    if not has_similarity_model(entailment):
        return None
    answers = [_deletions(g) for g in [*samples, reference]]
    texts = [g.text.strip() for g in samples]
    symmetric: set[tuple[str, str]] = set()
    for full, shorter in answers:
        if len(shorter) > 1:
            symmetric |= {_pair(full, s) for s in shorter if s is not None}
    distinct = sorted(set(texts))
    symmetric |= {_pair(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]}
    ref_text = reference.text.strip()
    forward = {(ref_text, t) for t in distinct if t != ref_text}
    sim, kernel, scored = _score(entailment, question, symmetric, forward)

    def relevance(full: str, shorter: list[str | None]) -> list[float]:
        if len(shorter) == 1:
            return [1.0]
        return [0.0 if s is None else 1.0 - float(sim[_pair(full, s)]) for s in shorter]

    relevances = [relevance(full, shorter) for full, shorter in answers]
    n = len(texts)
    similarity = np.ones((n, n))
    for i in range(n):
        for j in range(n):
            if texts[i] != texts[j]:
                similarity[i, j] = sim[_pair(texts[i], texts[j])]
    return RelevanceStatistics(
        sample_token_relevance=relevances[:-1],
        reference_token_relevance=relevances[-1],
        answer_similarity=similarity,
        reference_kernel=[1.0 if t == ref_text else kernel[(ref_text, t)] for t in texts],
        scored=scored,
    )
