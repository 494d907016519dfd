"""Conformal maths of C-IP: split-conformal thresholds, prediction sets ``{y : p̂(y | h) ≥ τ}``,
the split-by-coverage entropy upper bound, posterior entropies (bits) and the stopping rule.

Plain functions of probability arrays; see :mod:`uq.cip` for the method and its source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import ConfidantError

History = list[tuple[str, str]]
PosteriorBatch = Callable[[list[History]], np.ndarray]
Answerer = Callable[[str, str], str]

METHODS = ("cip", "ip", "random")
METHOD_NAMES = {"cip": "C-IP", "ip": "IP", "random": "Random"}
HYPOTHESIS_MODES = ("uniform", "posterior")
# Probabilities are clamped here before log2 in the IP entropy, as in the reference code.
ENTROPY_CLAMP = 1e-5
# Row sums of a posterior may drift this far from 1 (float32 softmax) and are renormalised.
ROW_SUM_TOLERANCE = 1e-3
# ⌈(n + 1)(1 − α)⌉ is taken after removing this much, so 10 × 0.9 = 9.000000000000002 is 9.
_RANK_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------------
# Conformal thresholds, sets and the entropy bound
# --------------------------------------------------------------------------------------------


def check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating):
        raise ConfidantError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ConfidantError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def check_probabilities(values: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be numbers") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise ConfidantError(f"{name} must be a {' or '.join(f'{d}-D' for d in dims)} array")
    if arr.size == 0:
        raise ConfidantError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ConfidantError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0.0) or np.any(arr > 1.0 + 1e-9):
        raise ConfidantError(f"{name} must be probabilities in [0, 1]")
    return arr


def binary_entropy_bits(p: float) -> float:
    """h_b(p) = −p log2 p − (1 − p) log2(1 − p), in bits; 0 at p ∈ {0, 1}."""
    if not 0.0 <= p <= 1.0:
        raise ConfidantError(f"binary entropy needs p in [0, 1], got {p}")
    return float(sum(-x * math.log2(x) for x in (p, 1.0 - p) if x > 0.0))


def conformal_threshold(
    true_class_probs: Sequence[float] | np.ndarray, alpha: float, finite_sample: bool = False
) -> float:
    """Split-conformal threshold τ for sets ``{y : p̂(y) ≥ τ}`` (inclusive).

    Scores are s_i = −p̂(y_i | h_i), the negated probability of the true class on n calibration
    histories.

    - ``finite_sample=False`` (the C-IP reference code): τ = −q, q the 1 − α quantile of the
      scores with numpy's ``method="higher"``.
    - ``finite_sample=True`` (textbook split conformal, Vovk et al. 2005; Angelopoulos & Bates
      2021): τ = −s_(r), the r-th smallest score with r = ⌈(n + 1)(1 − α)⌉, which guarantees
      P(y ∈ C) ≥ 1 − α for an exchangeable test point. When r > n (too few calibration points
      for this α) no finite threshold gives the guarantee and τ = −inf: the set is every class.

    Source: Chan et al. 2025, Algorithm 1 and §3.2.
    """
    alpha = check_alpha(alpha)
    probs = check_probabilities(true_class_probs, "true-class probabilities", 1)
    scores = -probs
    if not finite_sample:
        return float(-np.quantile(scores, 1.0 - alpha, method="higher"))
    n = scores.size
    rank = math.ceil((n + 1) * (1.0 - alpha) - _RANK_TOLERANCE)
    if rank > n:
        return -math.inf
    return float(-np.sort(scores)[rank - 1])


def prediction_set(probs: Sequence[float] | np.ndarray, tau: float) -> np.ndarray:
    """Boolean membership of the conformal set C = {y : p̂(y) ≥ τ}; ``probs`` is (K,) or (N, K).

    Source: Chan et al. 2025, eq. (7) with the inclusive inequality of the reference code.
    """
    arr = check_probabilities(probs, "probabilities", (1, 2))
    if isinstance(tau, bool) or not isinstance(tau, int | float | np.floating):
        raise ConfidantError(f"the threshold must be a number, got {tau!r}")
    if math.isnan(tau):
        raise ConfidantError("the threshold is NaN")
    return arr >= tau


def entropy_upper_bound(
    set_sizes: Sequence[int] | np.ndarray,
    covered: Sequence[bool] | np.ndarray,
    alpha: float,
    n_classes: int,
    n_est: int,
) -> float:
    """Upper bound on H(Y | q(X), H_k) in bits from the conformal sets of n_est simulated draws.

    B = h_b(α) + (1 − α_n) · mean_{s covered} log2 |C_s| + α · mean_{s not covered} log2(K − |C_s|),

    with α_n = α − 1/(n_est + 1) and K = ``n_classes``. It is the mean of the log sizes, not the
    log of the mean size. A group with no draws adds 0. A draw is covered when its hypothetical
    label is in its set, so a covered set has |C| ≥ 1 and an uncovered one |C| ≤ K − 1 (the full
    set covers every label): both logs are finite, and inputs breaking this are rejected.
    h_b(α) is the binary entropy in bits at α itself.

    Source: Chan et al. 2025, Proposition 3.1 (after Correia et al. 2024) in the split-by-coverage
    form of the authors' 20 Questions code.
    """
    alpha = check_alpha(alpha)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ConfidantError(f"n_classes must be an integer ≥ 2, got {n_classes!r}")
    if isinstance(n_est, bool) or not isinstance(n_est, int | np.integer) or n_est < 1:
        raise ConfidantError(f"n_est must be a positive integer, got {n_est!r}")
    sizes = np.asarray(set_sizes)
    cov = np.asarray(covered)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ConfidantError("set_sizes must be a non-empty 1-D array")
    if cov.shape != sizes.shape:
        raise ConfidantError(f"covered has shape {cov.shape} but set_sizes has shape {sizes.shape}")
    if cov.dtype != bool:
        if not np.all(np.isin(cov, (0, 1))):
            raise ConfidantError("covered must be booleans")
        cov = cov.astype(bool)
    if not np.issubdtype(sizes.dtype, np.number) or not np.all(np.isfinite(sizes)):
        raise ConfidantError("set_sizes must be finite numbers")
    if np.any(sizes != np.round(sizes)) or np.any(sizes < 0) or np.any(sizes > n_classes):
        raise ConfidantError(f"set sizes must be integers between 0 and {n_classes}")
    sizes = sizes.astype(float)
    if np.any(sizes[cov] < 1):
        raise ConfidantError("a covered draw must have a set of size ≥ 1")
    if np.any(sizes[~cov] >= n_classes):
        raise ConfidantError("an uncovered draw cannot have the full set")
    alpha_n = alpha - 1.0 / (n_est + 1)
    bound = binary_entropy_bits(alpha)
    if cov.any():
        bound += (1.0 - alpha_n) * float(np.mean(np.log2(sizes[cov])))
    if (~cov).any():
        bound += alpha * float(np.mean(np.log2(n_classes - sizes[~cov])))
    return float(bound)


def entropy_upper_bounds(
    sizes: np.ndarray, covered: np.ndarray, alpha: float, n_classes: int, n_est: int
) -> np.ndarray:
    """:func:`entropy_upper_bound` for every row of (candidates, draws) arrays at once; the
    sets come from :func:`prediction_set`, so covered sets are non-empty and uncovered ones
    are not full."""
    sizes = sizes.astype(float)
    alpha_n = alpha - 1.0 / (n_est + 1)
    n_cov = covered.sum(axis=1)
    n_unc = covered.shape[1] - n_cov
    log_cov = np.where(covered, np.log2(np.maximum(sizes, 1.0)), 0.0).sum(axis=1)
    log_unc = np.where(covered, 0.0, np.log2(np.maximum(n_classes - sizes, 1.0))).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cov = np.where(n_cov > 0, log_cov / n_cov, 0.0)
        mean_unc = np.where(n_unc > 0, log_unc / n_unc, 0.0)
    return binary_entropy_bits(alpha) + (1.0 - alpha_n) * mean_cov + alpha * mean_unc


def posterior_entropy_bits(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Entropy −Σ_y p log2 p of each posterior row, in bits, with p clamped below at 1e-5 as
    in the IP baseline of Chan et al. 2025 (reference code ``compute_entropy_formula``).
    Returns a scalar array for one posterior, a (N,) array for (N, K)."""
    arr = check_probabilities(probs, "probabilities", (1, 2))
    clamped = np.clip(arr, ENTROPY_CLAMP, None)
    return -(clamped * np.log2(clamped)).sum(axis=-1)


def should_stop(scores: Sequence[float] | np.ndarray, epsilon: float | None) -> bool:
    """The practical stopping rule (Chan et al. 2025, Appendix G.10): stop when the population
    standard deviation of the candidates' objective values is below ε. ``None`` disables it."""
    if epsilon is None:
        return False
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return True
    return bool(np.std(values) < epsilon)


CalibrationCache = Callable[..., tuple[dict[str, Any], bool]]
