"""Shifting Attention to Relevance (SAR; Duan et al. 2024, "Shifting Attention to Relevance:
Towards the Predictive Uncertainty Quantification of Free-Form Large Language Models", ACL
2024): TokenSAR, SentSAR and SAR as pure functions over arrays.

- TokenSAR weights each token's surprisal −log p(z_k) by its relevance R_k = 1 − g(s, s∖z_k),
  where g is a semantic similarity in [0, 1] and s∖z_k the answer with token k removed:
  ``TokenSAR(s) = Σ_k −log p(z_k) · R_k / Σ_j R_j`` (a relevance-weighted mean token NLL).
- SentSAR boosts each answer's probability by the similarity-weighted probabilities of the
  other answers, at temperature t:
  ``SentSAR = (1/N) Σ_i −log( p(s_i) + (1/t) Σ_{j≠i} g(s_i, s_j) p(s_j) )``.
- SAR is SentSAR with the TokenSAR probabilities p'(s_i) = exp(−TokenSAR(s_i)) in place of
  p(s_i).

LM-Polygraph (``estimators/token_sar.py``, ``sentence_sar.py``, ``sar.py``) implements the same
formulas with t = 0.001 and the total (not length-normalised) sequence probability in SentSAR;
we match it numerically, with these deliberate differences:

- when every relevance is 0 (e.g. removing any token leaves the meaning unchanged) TokenSAR
  falls back to uniform weights, the plain mean token NLL; LM-Polygraph then returns 0, which
  claims certainty that nothing supports;
- SentSAR and SAR are computed in log space (log-sum-exp), so long answers whose probability
  underflows to 0 still give a finite value instead of +∞;
- an answer with no tokens has TokenSAR 0 (probability 1), as in LM-Polygraph and as the mean
  token log-probability of such an answer is 0 elsewhere in this package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from core.errors import ConfidantError

# Duan et al.'s temperature, also LM-Polygraph's (``self.t = 0.001``).
DEFAULT_SAR_TEMPERATURE = 1e-3


def token_relevance_weights(relevance: Sequence[float]) -> np.ndarray:
    """Normalised token weights R_k / Σ_j R_j from relevances R_k = 1 − g(s, s∖z_k), clipped to
    [0, 1]; uniform when every relevance is 0 (see the module docstring)."""
    r = np.clip(np.asarray(relevance, dtype=float), 0.0, 1.0)
    if r.size == 0:
        return r
    total = r.sum()
    return r / total if total > 0 else np.full(r.size, 1.0 / r.size)


def token_sar(token_logprobs: Sequence[float], relevance: Sequence[float]) -> float:
    """TokenSAR = Σ_k −log p(z_k) · R_k / Σ_j R_j (Duan et al. 2024): the mean token
    surprisal with each token weighted by how much the answer's meaning depends on it.
    0 for an answer with no tokens."""
    lp = np.asarray(token_logprobs, dtype=float)
    if lp.shape != np.shape(relevance):
        raise ConfidantError(
            f"{lp.size} token log-probabilities but {np.size(relevance)} token relevances"
        )
    if lp.size == 0:
        return 0.0
    return float(np.sum(-lp * token_relevance_weights(relevance)))


def sentence_sar(
    log_probs: Sequence[float],
    similarity: np.ndarray,
    temperature: float = DEFAULT_SAR_TEMPERATURE,
) -> float:
    """SentSAR = (1/N) Σ_i −log( p_i + (1/t) Σ_{j≠i} g_ij p_j ) with p_i = exp(log_probs[i])
    and g the N×N similarity in [0, 1] (Duan et al. 2024), in log space.

    Higher = more uncertain; it is negative when similar answers reinforce each other (at
    t = 0.001 one fully similar, fully probable neighbour gives −log 1001)."""
    lp = np.asarray(log_probs, dtype=float)
    n = lp.size
    if n == 0:
        raise ConfidantError("need at least one answer")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfidantError(f"the SAR temperature must be > 0, got {temperature}")
    g = np.clip(np.asarray(similarity, dtype=float), 0.0, 1.0)
    if g.shape != (n, n):
        raise ConfidantError(f"the similarity matrix must be {n}×{n}, got {g.shape}")
    weights = g / temperature
    np.fill_diagonal(weights, 1.0)  # the answer's own probability, unscaled
    # log(Σ_j w_ij exp(lp_j)) row by row; weights of 0 give log 0 = −∞ and drop out.
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    terms = logsumexp(lp[None, :] + log_weights, axis=1)
    return float(np.mean(-terms))


def sar(
    token_logprobs: Sequence[Sequence[float]],
    relevance: Sequence[Sequence[float]],
    similarity: np.ndarray,
    temperature: float = DEFAULT_SAR_TEMPERATURE,
) -> float:
    """SAR = SentSAR over the TokenSAR probabilities p'(s_i) = exp(−TokenSAR(s_i))
    (Duan et al. 2024): relevance at both the token and the sentence level."""
    if len(token_logprobs) != len(relevance):
        raise ConfidantError(
            f"{len(token_logprobs)} answers with token log-probabilities but "
            f"{len(relevance)} with token relevances"
        )
    corrected = [-token_sar(lp, r) for lp, r in zip(token_logprobs, relevance, strict=True)]
    return sentence_sar(corrected, similarity, temperature)
