"""CoCoA (Vashurin et al. 2025, "Uncertainty Quantification for LLMs through
Confidence-Consistency Aggregation"): the reference answer's confidence term times its
inconsistency with the samples,

    U_CoCoA = u(y*) · (1 − (1/N) Σ_i s(y*, y_i)),

with u the reference answer's −log p (MSP), its mean token surprisal (log perplexity, PPL) or
its mean token entropy (MTE), and s ∈ [0, 1] the similarity of the reference answer y* to each
sampled answer y_i. Checked against LM-Polygraph's CocoaMSP / CocoaPPL / CocoaMTE on the same
numbers (tests/uq/test_cocoa.py).

Deliberate differences from LM-Polygraph: the similarity comes from the pipeline's entailment
model (NLI: the mean of p(entailment) in both directions; embeddings: the clipped cosine;
the generator: the mean of the two entailment indicators) where LM-Polygraph uses the
stsb-roberta-large cross-encoder score; a sample identical to the reference (after the
clustering's normalisation) has similarity 1 and is not sent to the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import ConfidantError
from uq.semantic.clustering import ENTAILMENT, normalise_answer_text
from uq.semantic.estimators import (
    maximum_sequence_probability,
    mean_token_entropy,
)


def _dissimilarity(similarities: Sequence[float] | np.ndarray) -> float:
    sim = np.asarray(similarities, dtype=float)
    if sim.ndim != 1 or sim.size == 0:
        raise ConfidantError("CoCoA needs the reference answer's similarity to each sample")
    if not np.all(np.isfinite(sim)) or np.any(sim < -1e-9) or np.any(sim > 1 + 1e-9):
        raise ConfidantError("similarities must lie in [0, 1]")
    return float(1.0 - np.clip(sim, 0.0, 1.0).mean())


def cocoa(confidence_term: float, similarities: Sequence[float] | np.ndarray) -> float:
    """u · (1 − mean_i s_i): a confidence term u ≥ 0 (higher = less confident) times the
    reference answer's mean dissimilarity to the samples (Vashurin et al. 2025)."""
    return float(confidence_term) * _dissimilarity(similarities)


def cocoa_msp(token_logprobs: Sequence[float], similarities: Sequence[float]) -> float:
    """CoCoA-MSP = −Σ_t log p(y*_t | y*_<t, x) · (1 − mean_i s(y*, y_i)) (LM-Polygraph
    CocoaMSP)."""
    return cocoa(maximum_sequence_probability(token_logprobs), similarities)


def cocoa_ppl(token_logprobs: Sequence[float], similarities: Sequence[float]) -> float:
    """CoCoA-PPL = −(1/L) Σ_t log p(y*_t | …) · (1 − mean_i s(y*, y_i)): the log perplexity,
    as LM-Polygraph's CocoaPPL uses (not the perplexity itself)."""
    lps = list(token_logprobs)
    if not lps:
        raise ConfidantError("the reference answer has no tokens")
    return cocoa(maximum_sequence_probability(lps) / len(lps), similarities)


def cocoa_mte(token_entropies: Sequence[float], similarities: Sequence[float]) -> float:
    """CoCoA-MTE = (1/L) Σ_t H_t · (1 − mean_i s(y*, y_i)) (LM-Polygraph CocoaMTE)."""
    return cocoa(mean_token_entropy(token_entropies), similarities)


def reference_similarity(
    question: str, reference: str, texts: Sequence[str], entailment
) -> tuple[list[float], int]:
    """(s(y*, y_i) for each sample, texts or pairs sent to the model), with the pipeline's
    entailment back-end, in ONE batched call over the distinct samples.

    NLI: (p_entail(y* → y_i) + p_entail(y_i → y*)) / 2, the question prepended as the
    back-end does; embeddings: max(0, cosine); generator: the mean of the two directions'
    entailment indicators. A sample equal to the reference after normalisation has s = 1."""
    texts = list(texts)
    ref_key = normalise_answer_text(reference)
    keys = [normalise_answer_text(t) for t in texts]
    distinct = sorted({k for k in keys if k != ref_key})
    first = {k: keys.index(k) for k in distinct}
    sim: dict[str, float] = {ref_key: 1.0}
    work = 0
    if distinct:
        method = getattr(entailment, "method", None)
        if method == "embedding":
            cos = entailment.cosine(question, [reference] + [texts[first[k]] for k in distinct])
            values = np.clip(cos[0, 1:], 0.0, 1.0)
            work = len(distinct) + 1
        elif method == "nli":
            cond = entailment.condition_on_question

            def side(text: str) -> str:
                return f"{question} {text}" if cond and question else text

            pairs = [(side(reference), side(texts[first[k]])) for k in distinct]
            probs = np.asarray(entailment.nli.probs(pairs + [(h, p) for p, h in pairs]))
            entail = probs[:, ENTAILMENT]
            values = (entail[: len(distinct)] + entail[len(distinct) :]) / 2
            work = 2 * len(distinct)
        elif method == "generator":
            all_texts = [reference] + [texts[first[k]] for k in distinct]
            pairs = [(0, j) for j in range(1, len(all_texts))]
            labels = entailment.label_pairs(question, all_texts, pairs + [(j, 0) for _, j in pairs])
            hits = np.asarray(labels) == ENTAILMENT
            values = (hits[: len(distinct)] + hits[len(distinct) :].astype(float)) / 2
            work = 2 * len(distinct)
        else:
            raise ConfidantError(f"no reference similarity for entailment {method!r}")
        sim.update({k: float(v) for k, v in zip(distinct, values, strict=True)})
    return [sim[k] for k in keys], work
