"""Distribution-sensitive scores and likelihood-aware pairwise relations (TrustJudge).

A judge asked for ``Score: [X]`` does not only emit one value of the scale: at the score position
it holds a probability for every value. TrustJudge (Wang, Song et al., "TrustJudge:
Inconsistencies of LLM-as-a-Judge and How to Alleviate Them", arXiv 2509.21117, ICLR 2026) keeps
that distribution instead of its argmax, and for pairwise comparisons uses the verdict
probabilities of both presentation orders (or the perplexity of each order's judgement) instead of
the two-pass "agree, else tie" rule.

Everything here is a plain function of numbers::

    >>> dist = {80: 0.50, 85: 0.30, 75: 0.15, 8: 0.02}
    >>> round(expected_score(dist, "geval"), 2)
    76.91
    >>> round(expected_score(dist, "expectation"), 2)
    79.29
    >>> round(expected_score(dist, "trustjudge"), 2)
    80.07

Pairwise relations and verdict letters live in :mod:`judge.verdicts`; the table of score
methods built on these functions is :mod:`judge.scores`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.special import softmax
from scipy.stats import entropy as _entropy

from core.errors import ConfidantError

# The ``method`` choices of expected_score; the table of every score method is judge.scores.
EXPECTED_SCORE_METHODS = ("geval", "expectation", "trustjudge")
RELATION_METHODS = ("baseline", "likelihood")
DISCRETE_RULES = ("argmax", "first", "sample")
VERDICT_LETTERS = ("A", "B", "C")

# Added to p and 1 - p inside the log-odds, as the TrustJudge code does, so p = 1 stays finite.
LOG_ODDS_EPSILON = 1e-8
# Slack on Σp > 1 for probabilities that were rounded or merged from several tokens.
MASS_SLACK = 1e-6


# ----------------------------------------------------------------------------------------------
# Score distributions
# ----------------------------------------------------------------------------------------------


def validate_distribution(
    dist: Mapping[int, float], scale: tuple[int, int] | None = None
) -> dict[int, float]:
    """Check a score distribution and return it as a plain ``{int: float}`` dict (order kept).

    ``dist`` maps an integer score to its probability at the score position. The probabilities
    need not sum to 1 (tokens outside the scale or the top-k take the rest) but must be finite,
    in [0, 1], sum to at most 1 and put some mass on the scale. With ``scale = (lo, hi)`` every
    score must lie in [lo, hi].

    Raises ``ConfidantError`` for an empty map, a non-integer score, a negative, NaN or infinite
    probability, a total above 1 or a total of 0.
    """
    if not isinstance(dist, Mapping):
        raise ConfidantError(f"a score distribution must map scores to probabilities, got {dist!r}")
    if len(dist) == 0:
        raise ConfidantError("the score distribution is empty: no score value has a probability")
    clean: dict[int, float] = {}
    for score, prob in dist.items():
        if isinstance(score, bool) or not isinstance(score, (int, np.integer)):
            raise ConfidantError(f"scores must be integers, got {score!r}")
        try:
            p = float(prob)
        except (TypeError, ValueError):
            raise ConfidantError(
                f"probability of score {score} is not a number: {prob!r}"
            ) from None
        if not math.isfinite(p):
            raise ConfidantError(f"probability of score {score} is not finite: {p}")
        if p < 0.0 or p > 1.0 + MASS_SLACK:
            raise ConfidantError(f"probability of score {score} must be in [0, 1], got {p}")
        if scale is not None and not scale[0] <= int(score) <= scale[1]:
            raise ConfidantError(f"score {score} is outside the scale {scale[0]}..{scale[1]}")
        clean[int(score)] = min(p, 1.0)
    total = sum(clean.values())
    if total > 1.0 + MASS_SLACK:
        raise ConfidantError(f"the score probabilities sum to {total:.6g}, more than 1")
    if total <= 0.0:
        raise ConfidantError("the score distribution puts no probability on any score")
    return clean


def validate_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0.0):
        raise ConfidantError(f"temperature must be a positive number, got {temperature!r}")
    return t


def trustjudge_weights(dist: Mapping[int, float], temperature: float = 0.2) -> dict[int, float]:
    """TrustJudge's weights: a softmax over log-odds divided by a temperature.

    ℓ_s = ln((p_s + ε) / (1 − p_s + ε)) with ε = 1e-8, and w_s = exp(ℓ_s / T) / Σ_s' exp(ℓ_s' / T)
    (TrustJudge, arXiv 2509.21117, ``compute_softmax_weighted_score``; T = 0.2 there). Up to ε,
    w_s ∝ (p_s / (1 − p_s))^(1/T), a renormalisation sharpened towards the most likely score.

    Scores with p = 0 get weight 0, the limit of the formula as p → 0 (the reference code skips
    them too). A score with p = 1 keeps a finite, ε-regularised log-odds and so takes all the
    weight; the reference code skips it and returns 0, which we do not reproduce.
    """
    clean = validate_distribution(dist)
    t = validate_temperature(temperature)
    scores = [s for s, p in clean.items() if p > 0.0]
    probs = np.array([clean[s] for s in scores])
    log_odds = np.log(probs + LOG_ODDS_EPSILON) - np.log1p(-probs + LOG_ODDS_EPSILON)
    weights = softmax(log_odds / t)
    return {s: float(w) for s, w in zip(scores, weights, strict=True)}


def expected_score(dist: Mapping[int, float], method: str, temperature: float = 0.2) -> float:
    """A continuous score from the judge's distribution over the scale.

    - ``"geval"``: Σ_s s·p(s), not renormalised (G-Eval, Liu et al. 2023, as TrustJudge's
      baseline computes it; mass outside the scale pulls the score towards 0).
    - ``"expectation"``: Σ_s s·p(s) / Σ_s p(s), the mean of the distribution renormalised over
      the scale (equal to a softmax over the scores' log-probabilities).
    - ``"trustjudge"``: Σ_s s·w_s with w the softmax over log-odds ln(p/(1−p)) divided by
      ``temperature`` (TrustJudge, arXiv 2509.21117; T = 0.2), see :func:`trustjudge_weights`.

    ``temperature`` is used by ``"trustjudge"`` only.
    """
    clean = validate_distribution(dist)
    if method == "geval":
        return float(sum(s * p for s, p in clean.items()))
    if method == "expectation":
        return float(sum(s * p for s, p in clean.items()) / sum(clean.values()))
    if method == "trustjudge":
        weights = trustjudge_weights(clean, temperature)
        return float(sum(s * w for s, w in weights.items()))
    raise ConfidantError(
        f"unknown scoring method {method!r}; choose one of {EXPECTED_SCORE_METHODS}"
    )


def discrete_score(dist: Mapping[int, float], rule: str = "argmax", seed: int | None = None) -> int:
    """One value of the scale from the distribution.

    - ``"argmax"``: the most likely score; ties go to the lower score.
    - ``"first"``: the first key of ``dist``, i.e. the score the judge actually emitted when the
      map is in emission order (TrustJudge's ``baseline`` method).
    - ``"sample"``: a draw from the distribution renormalised over the scale, with
      ``numpy.random.default_rng(seed)``.
    """
    clean = validate_distribution(dist)
    if rule == "argmax":
        best = max(clean.values())
        return min(s for s, p in clean.items() if p == best)
    if rule == "first":
        return next(iter(clean))
    if rule == "sample":
        scores = list(clean)
        probs = np.array([clean[s] for s in scores])
        rng = np.random.default_rng(seed)
        return int(scores[rng.choice(len(scores), p=probs / probs.sum())])
    raise ConfidantError(f"unknown discrete rule {rule!r}; choose one of {DISCRETE_RULES}")


def distribution_entropy(dist: Mapping[int, float]) -> float:
    """Entropy of the score distribution renormalised over the scale, in nats.

    H = −Σ_s p̂(s) ln p̂(s) with p̂ = p / Σp. TrustJudge (arXiv 2509.21117, Theorem 3.1) uses it
    to show that distributions with different entropies collapse to the same discrete score.
    """
    clean = validate_distribution(dist)
    return float(_entropy(np.array(list(clean.values()))))


def as_scale(scale: tuple[int, int] | int) -> tuple[int, int]:
    lo, hi = (1, scale) if isinstance(scale, (int, np.integer)) else scale
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfidantError(f"a scale needs a minimum below its maximum, got {scale!r}")
    return lo, hi


def rescale_score(
    score: float,
    from_scale: tuple[int, int] | int = (1, 100),
    to_scale: tuple[int, int] | int = (1, 5),
) -> float:
    """Map a score linearly from one scale to another, endpoints onto endpoints.

    x' = lo' + (x − lo)·(hi' − lo') / (hi − lo). An integer scale N means 1..N. So on 1..100 →
    1..5: 1 → 1, 50.5 → 3, 100 → 5; and 1..5 → 1..100: 3 → 50.5.

    TrustJudge (arXiv 2509.21117, eq. for S) only multiplies by (s_max − s_min)/(s'_max − s'_min)
    with no offset; both maps are increasing, so orderings and comparisons are the same, but the
    affine map also sends the ends of one scale to the ends of the other. Tolerances scale by the
    same factor (hi' − lo')/(hi − lo).
    """
    lo, hi = as_scale(from_scale)
    new_lo, new_hi = as_scale(to_scale)
    x = float(score)
    if not math.isfinite(x):
        raise ConfidantError(f"score must be finite, got {score!r}")
    return new_lo + (x - lo) * (new_hi - new_lo) / (hi - lo)
