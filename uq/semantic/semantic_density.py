"""Semantic Density (Qiu & Miikkulainen 2024, "Semantic Density: Uncertainty Quantification
for Large Language Models through Confidence Measurement in Semantic Space", NeurIPS 2024) as a
pure function over arrays.

The density of the reference answer y* in semantic space is a kernel estimate over the sampled
answers, each weighted by its length-normalised probability p̄_i = exp(mean token log p):

    SD(y*) = ( p̄* + Σ_i p̄_i K(y*, y_i) ) / ( p̄* + Σ_i p̄_i ),

summed over the DISTINCT sampled answers, with the reference itself counted once at kernel 1.
With an NLI model the kernel is K = 1 − E‖v* − v_i‖² = 1 − (p_contradiction + ½ p_neutral) of
"y* entails y_i" (the paper's expected squared distance under the Epanechnikov kernel); with
sentence embeddings we take the cosine similarity clipped to [0, 1]. We report 1 − SD, so
higher = more uncertain and the value lies in [0, 1).

LM-Polygraph (``estimators/semantic_density.py``) computes the same density and returns −SD;
1 − SD ranks questions identically. Deliberate differences: duplicates are grouped by exact
text as there, but a group's probability and kernel are the means over its members (equal for
identical token sequences), so the value does not depend on which duplicate comes first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.errors import ConfidantError


def nli_kernel(p_contradiction: float, p_neutral: float) -> float:
    """K = 1 − (p_contradiction + ½ p_neutral), clipped to [0, 1]: one minus the expected
    squared semantic distance of Qiu & Miikkulainen 2024."""
    return float(min(1.0, max(0.0, 1.0 - (p_contradiction + 0.5 * p_neutral))))


def semantic_density(
    texts: Sequence[str],
    mean_log_likelihoods: Sequence[float],
    kernel: Sequence[float],
    reference_mean_log_likelihood: float,
) -> float:
    """SD(y*) of the module docstring: ``texts`` and ``mean_log_likelihoods`` of the N sampled
    answers, ``kernel[i]`` = K(reference, answer i) in [0, 1], and the reference's mean token
    log-probability. In (0, 1]: 1 when every answer means what the reference means."""
    n = len(texts)
    if n == 0:
        raise ConfidantError("need at least one answer")
    if len(mean_log_likelihoods) != n or len(kernel) != n:
        raise ConfidantError(
            f"{n} answers but {len(mean_log_likelihoods)} log-likelihoods and "
            f"{len(kernel)} kernel values"
        )
    if not math.isfinite(reference_mean_log_likelihood):
        raise ConfidantError("the reference answer's log-likelihood is not finite")
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(text, []).append(i)
    lls = np.asarray(mean_log_likelihoods, dtype=float)
    k = np.clip(np.asarray(kernel, dtype=float), 0.0, 1.0)
    # Scale every probability by the largest so that none underflows; the ratio is unchanged.
    top = max(float(lls.max()), float(reference_mean_log_likelihood))
    probs = np.exp(lls - top)
    ref = math.exp(reference_mean_log_likelihood - top)
    numerator, denominator = ref, ref
    for members in groups.values():
        p = float(probs[members].mean())
        numerator += p * float(k[members].mean())
        denominator += p
    return numerator / denominator


def semantic_density_uncertainty(
    texts: Sequence[str],
    mean_log_likelihoods: Sequence[float],
    kernel: Sequence[float],
    reference_mean_log_likelihood: float,
) -> float:
    """1 − SD(y*) (Qiu & Miikkulainen 2024): 0 when the samples all mean what the reference
    answer means, towards 1 when the probable ones mean something else."""
    return 1.0 - semantic_density(
        texts, mean_log_likelihoods, kernel, reference_mean_log_likelihood
    )
