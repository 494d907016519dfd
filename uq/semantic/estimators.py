"""Semantic entropy and the sequence-level white-box measures that sit beside it.

Everything here is a plain function of numbers: cluster ids, per-answer log-likelihoods,
per-token log-probabilities and entropies, and an NLI callable that labels (premise,
hypothesis) pairs by index. No model object is touched; the pipeline computes the statistics
once and passes them in. Higher means more uncertain; entropies are in nats.

Sources: Kuhn, Gal & Farquhar, "Semantic Uncertainty" (ICLR 2023); Farquhar, Kossen, Kuhn &
Gal, "Detecting hallucinations in large language models using semantic entropy" (Nature 2024);
Kadavath et al., "Language Models (Mostly) Know What They Know" (2022) for p(True);
Malinin & Gales, "Uncertainty Estimation in Autoregressive Structured Prediction" (ICLR 2021)
for the predictive-entropy and token-entropy baselines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import expit, logsumexp

from core.errors import ConfidantError
from uq.token_stats import LOGPROB_TOLERANCE, perplexity  # noqa: F401  (perplexity: re-exported)

# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _cluster_array(cluster_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    ids = np.asarray(cluster_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ConfidantError("cluster ids must be a non-empty 1-D sequence, one id per answer")
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise ConfidantError("cluster ids must be integers")
    return ids


def _finite_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfidantError(f"{name} must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise ConfidantError(f"{name} must be finite (no NaN or infinity)")
    return arr


def _logprob_array(token_logprobs: Sequence[float] | np.ndarray) -> np.ndarray:
    lps = _finite_array(token_logprobs, "token log-probabilities")
    if np.any(lps > LOGPROB_TOLERANCE):
        raise ConfidantError("token log-probabilities must be ≤ 0")
    return np.minimum(lps, 0.0)


def _ids_and_likelihoods(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ids = _cluster_array(cluster_ids)
    ll = _finite_array(log_likelihoods, "log-likelihoods")
    if ll.shape != ids.shape:
        raise ConfidantError(
            f"need one log-likelihood per answer: {ids.size} cluster ids, {ll.size} values"
        )
    return ids, ll


def _entropy_of(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(max(0.0, -(p * np.log(p)).sum()))


# --------------------------------------------------------------------------------------------
# Semantic entropy family
# --------------------------------------------------------------------------------------------


def number_of_semantic_sets(cluster_ids: Sequence[int] | np.ndarray) -> int:
    """K, the number of distinct meanings among the answers (Kuhn et al. 2023)."""
    return int(np.unique(_cluster_array(cluster_ids)).size)


def label_uncertainty(cluster_ids: Sequence[int] | np.ndarray) -> float:
    """1 − max_C |C| / N: one minus the share of the answers in the largest meaning cluster
    (the "label probability" of the most common meaning, as an uncertainty; 0 when every
    answer means the same).

    >>> label_uncertainty([0, 0, 1, 2])
    0.5
    """
    ids = _cluster_array(cluster_ids)
    return float(1.0 - np.unique(ids, return_counts=True)[1].max() / ids.size)


def cluster_probabilities(
    cluster_ids: Sequence[int] | np.ndarray,
    log_likelihoods: Sequence[float] | np.ndarray | None = None,
) -> dict[int, float]:
    """Probability of each observed cluster, keyed by cluster id (ascending).

    Without likelihoods: the share of answers, p̂(C) = |C|/N. With likelihoods ℓ_i (one per
    answer, used as given): p(C) = Σ_{i∈C} e^{ℓ_i} / Σ_j e^{ℓ_j}, normalised over the observed
    clusters (Farquhar et al. 2024). Every sampled answer counts, duplicates included.
    """
    if log_likelihoods is None:
        ids = _cluster_array(cluster_ids)
        labels, counts = np.unique(ids, return_counts=True)
        return {int(c): float(k / ids.size) for c, k in zip(labels, counts, strict=True)}
    ids, ll = _ids_and_likelihoods(cluster_ids, log_likelihoods)
    labels = np.unique(ids)
    total = logsumexp(ll)
    return {int(c): float(np.exp(logsumexp(ll[ids == c]) - total)) for c in labels}


def discrete_semantic_entropy(cluster_ids: Sequence[int] | np.ndarray) -> float:
    """Discrete semantic entropy −Σ_C p̂(C) log p̂(C) with p̂(C) = |C|/N, nats.

    Needs no likelihoods, so it works for black-box models (Farquhar et al. 2024, "discrete
    semantic entropy"). Between 0 (one meaning) and log K.
    """
    return _entropy_of(np.array(list(cluster_probabilities(cluster_ids).values())))


def semantic_entropy(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> float:
    """Likelihood semantic entropy of Farquhar et al. 2024, nats.

    log p(C) = logsumexp_{i∈C} ℓ_i − logsumexp_j ℓ_j (cluster probabilities normalised over the
    observed clusters), then the plug-in estimate SE = −Σ_C p(C) log p(C). ``log_likelihoods``
    holds one value per answer, used as given; the paper passes the mean token
    log-probability. Every sample counts, duplicates included. Between 0 and log K.
    """
    return _entropy_of(np.array(list(cluster_probabilities(cluster_ids, log_likelihoods).values())))


def kuhn_semantic_entropy(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> float:
    """Semantic entropy as computed in the code of Kuhn et al. 2023, nats.

    SE = −(1/K) Σ_C log Σ_{i∈C} e^{ℓ_i}: the unweighted mean over clusters of the negative
    unnormalised cluster log-mass. Their code also subtracts a constant shift from ℓ, which
    changes no ranking and is left out. Not bounded by log K, and can be negative when a
    cluster's summed likelihood exceeds 1.
    """
    ids, ll = _ids_and_likelihoods(cluster_ids, log_likelihoods)
    masses = [logsumexp(ll[ids == c]) for c in np.unique(ids)]
    return float(-np.mean(masses))


def predictive_entropy(log_likelihoods: Sequence[float] | np.ndarray) -> float:
    """Monte Carlo predictive entropy PE = −(1/N) Σ_i ℓ_i, nats (Kuhn et al. 2023).

    ``log_likelihoods`` are used as given: total log p(s_i | x) gives PE; mean token
    log-probabilities give the length-normalised form that Farquhar et al. 2024 call "naive
    entropy".
    """
    return float(-_finite_array(log_likelihoods, "log-likelihoods").mean())


def length_normalised_predictive_entropy(
    log_likelihoods: Sequence[float] | np.ndarray, lengths: Sequence[int] | np.ndarray
) -> float:
    """Length-normalised predictive entropy −(1/N) Σ_i ℓ_i / L_i, nats (Malinin & Gales 2021;
    Kuhn et al. 2023), from total log-likelihoods ℓ_i and token counts L_i."""
    ll = _finite_array(log_likelihoods, "log-likelihoods")
    lengths_arr = np.asarray(lengths)
    if lengths_arr.shape != ll.shape:
        raise ConfidantError(
            f"need one length per answer: {ll.size} log-likelihoods, {lengths_arr.size} lengths"
        )
    if not np.issubdtype(lengths_arr.dtype, np.integer) or np.any(lengths_arr < 1):
        raise ConfidantError("answer lengths must be positive token counts")
    return float(-(ll / lengths_arr).mean())


def maximum_sequence_probability(token_logprobs: Sequence[float] | np.ndarray) -> float:
    """Maximum sequence probability as an uncertainty, −log p(y|x) = −Σ_t log p(y_t | y_<t, x),
    nats, for one answer (usually the greedy or low-temperature one; LM-Polygraph's MSP)."""
    return float(-_logprob_array(token_logprobs).sum())


def mean_token_entropy(token_entropies: Sequence[float] | np.ndarray) -> float:
    """Mean over the answer's tokens of H_t = −Σ_v p(v | y_<t, x) log p(v | y_<t, x), nats
    (Malinin & Gales 2021; LM-Polygraph's MeanTokenEntropy)."""
    return float(_token_entropy_array(token_entropies).mean())


def max_token_entropy(token_entropies: Sequence[float] | np.ndarray) -> float:
    """Largest per-token entropy max_t H_t over the answer, nats."""
    return float(_token_entropy_array(token_entropies).max())


def _token_entropy_array(token_entropies: Sequence[float] | np.ndarray) -> np.ndarray:
    ents = _finite_array(token_entropies, "token entropies")
    if np.any(ents < -LOGPROB_TOLERANCE):
        raise ConfidantError("token entropies must be ≥ 0")
    return np.maximum(ents, 0.0)


def p_true_uncertainty(logprob_true: float, logprob_false: float | None = None) -> float:
    """1 − p(True), the p(True) measure of Kadavath et al. 2022 as an uncertainty.

    The model is asked whether a proposed answer is true; ``logprob_true`` is log p("True")
    (or of the option standing for it). With ``logprob_false`` the probability is renormalised
    over the two options, p = e^{a} / (e^{a} + e^{b}) = σ(a − b); without it p = e^{a}.
    Farquhar et al.'s code stores this quantity as ``p_false_fixed``.
    """
    a = _check_logprob(logprob_true, "log p(True)")
    if logprob_false is None:
        return float(1.0 - math.exp(a))
    b = _check_logprob(logprob_false, "log p(False)")
    if a == -math.inf and b == -math.inf:
        raise ConfidantError("p(True) is undefined when both options have probability 0")
    return float(1.0 - expit(a - b))


def _check_logprob(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value) or value > LOGPROB_TOLERANCE:
        raise ConfidantError(f"{name} must be a log-probability ≤ 0, got {value}")
    return min(value, 0.0)


def normalise_by_log_n(value: float, n: int) -> float:
    """value / log N: an entropy over N answers (≤ log N) rescaled to [0, 1].

    For N = 1 such an entropy is 0 and so is the result.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfidantError(f"the number of answers must be a positive integer, got {n!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfidantError(f"cannot normalise a non-finite value {value}")
    if n == 1:
        return 0.0
    return value / math.log(n)
