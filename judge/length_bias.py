"""Length bias of a judge: does it prefer longer answers?

Plain functions over numbers (no model):

- :func:`length_spearman`: Spearman's ρ of the judge's score with the response length;
- :func:`longer_win_rate`: over pairwise verdicts, the share won by the longer answer (a tie
  counts one half);
- :func:`length_controlled_win_rate`: a logistic model of the verdict with a length-difference
  term, reported with that term set to zero, in the manner of AlpacaEval 2.0's length-controlled
  win rate (Dubois et al. 2024, "Length-Controlled AlpacaEval", arXiv 2404.04475).

A preference is the share of a verdict that goes to answer x: 1 (x better), 0 (y better) or 0.5
(a tie); ``delta`` is len(x) − len(y)::

    >>> longer_win_rate([1, 0, 0], [30, 12, -5])
    0.6666666666666666
    >>> round(length_spearman([1, 2, 3], [10, 25, 40]), 3)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import spearmanr

from core.errors import ConfidantError

# L2 penalty on the model's coefficients (not the intercept): keeps the fit finite when the
# verdicts are separable by length, as with a judge that always picks the longer answer.
LC_PENALTY = 1e-2


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ConfidantError(f"{what} must be a list of finite numbers")
    return array


def length_spearman(scores: Sequence[float], lengths: Sequence[float]) -> float:
    """Spearman's ρ between the judge's scores and the responses' lengths (``spearmanr``).

    ρ = Pearson correlation of the ranks, ties at their mean rank (Spearman 1904). ρ = 1: the
    judge ranks answers exactly by length. Raises ``ConfidantError`` with fewer than three
    items or a constant side."""
    s, n = _finite(scores, "scores"), _finite(lengths, "lengths")
    if len(s) != len(n):
        raise ConfidantError("one length per score is needed")
    if len(s) < 3:
        raise ConfidantError("a length correlation needs at least three scored items")
    if np.ptp(s) == 0 or np.ptp(n) == 0:
        raise ConfidantError(
            "a length correlation is undefined when scores or lengths are constant"
        )
    return float(spearmanr(s, n).statistic)


def longer_win_rate(preferences: Sequence[float], deltas: Sequence[float]) -> float:
    """Win rate of the longer answer: mean over verdicts with len(x) ≠ len(y) of the share the
    longer one got, pref if Δ > 0 else 1 − pref (ties count ½, as FastChat's adjusted win rate).
    0.5 = no length preference."""
    p, d = _finite(preferences, "preferences"), _finite(deltas, "deltas")
    if len(p) != len(d):
        raise ConfidantError("one length difference per verdict is needed")
    keep = d != 0
    if not keep.any():
        raise ConfidantError("no verdict compares answers of different lengths")
    return float(np.mean(np.where(d[keep] > 0, p[keep], 1.0 - p[keep])))


@dataclass
class LengthControlledFit:
    """The fitted model logit P(x wins) = θ + β·tanh(Δ/s) + π·o, with o = +½ when x was shown
    first and −½ when second, s the standard deviation of Δ."""

    win_rate: float  # mean preference for x, as the judge gave it
    lc_win_rate: float  # mean σ(θ + π·o): the length term set to zero
    intercept: float
    length_coefficient: float
    position_coefficient: float
    scale: float
    n: int


def length_controlled_win_rate(
    preferences: Sequence[float],
    deltas: Sequence[float],
    positions: Sequence[float] | None = None,
) -> LengthControlledFit:
    """AlpacaEval-2.0-style length-controlled win rate of x over y.

    A logistic GLM of the preference, logit P(x wins) = θ + β·tanh(Δ/s) + π·o, fitted by
    penalised maximum likelihood (soft labels: a tie is half a win; L2 penalty
    ``LC_PENALTY``·(β² + π²)); s = std(Δ) (1 if Δ is constant); o = +½ / −½ for x shown first /
    second (``positions``; 0 when not given). LC-WR = mean_i σ(θ + π·o_i): the verdicts the
    model predicts with the length difference at zero (Dubois et al. 2024, arXiv 2404.04475,
    which also models instruction difficulty; with one pair of systems it reduces to this).
    """
    p, d = _finite(preferences, "preferences"), _finite(deltas, "deltas")
    o = np.zeros_like(p) if positions is None else _finite(positions, "positions")
    if not (len(p) == len(d) == len(o)):
        raise ConfidantError("preferences, length differences and positions must align")
    if len(p) < 2:
        raise ConfidantError("a length-controlled win rate needs at least two verdicts")
    if np.any((p < 0) | (p > 1)):
        raise ConfidantError("preferences must lie in [0, 1]")
    scale = float(np.std(d)) or 1.0
    x = np.column_stack([np.ones_like(p), np.tanh(d / scale), o])
    penalty = np.array([0.0, LC_PENALTY, LC_PENALTY])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        # Soft-label log loss: −Σ [p·log σ(z) + (1 − p)·log σ(−z)], computed stably.
        value = float(np.sum(np.logaddexp(0.0, z) - p * z) + np.sum(penalty * w * w))
        grad = x.T @ (expit(z) - p) + 2.0 * penalty * w
        return value, grad

    fit = minimize(loss, np.zeros(3), jac=True, method="BFGS", options={"gtol": 1e-10})
    theta, beta, pi = (float(v) for v in fit.x)
    if not all(math.isfinite(v) for v in (theta, beta, pi)):
        raise ConfidantError("the length-controlled model did not converge")
    return LengthControlledFit(
        win_rate=float(np.mean(p)),
        lc_win_rate=float(np.mean(expit(theta + pi * o))),
        intercept=theta,
        length_coefficient=beta,
        position_coefficient=pi,
        scale=scale,
        n=len(p),
    )
