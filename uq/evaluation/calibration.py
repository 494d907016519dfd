"""Calibration: how well a confidence is a probability of being right, and turning any
uncertainty measure into one.

- :func:`expected_calibration_error`: ECE = Σ_b (n_b / N) · |acc_b − conf_b| over bins of the
  confidence, equal-width (``strategy="uniform"``, Guo et al. 2017) or equal-mass
  (``"quantile"``: each bin holds about N / B answers, Nixon et al. 2019).
- :func:`reliability_bins`: per bin, the mean confidence, the accuracy and the count (the
  reliability diagram's points).
- :func:`brier_score` and :func:`log_loss`: scikit-learn's, on P(correct).
- :func:`fit_calibrator`: Platt scaling (a logistic regression of correctness on the
  uncertainty, Platt 1999) or isotonic regression (non-increasing in the uncertainty, Zadrozny &
  Elkan 2002), both scikit-learn's, mapping an uncertainty to P(correct).
- :func:`calibrate_measure`: fit on a seeded calibration split, evaluate on the held-out rest
  (the split, its seed and fraction are recorded), each metric with a percentile bootstrap
  interval over the held-out questions (:func:`calibration_metrics`).

A measure whose value is already 1 − P(correct) (``p_true``, the verbalized confidences) is also
evaluated as it stands:
``confidence = 1 − value``.

>>> round(expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0], n_bins=2), 3)
0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.evaluation.metrics import BootstrapInterval, UndefinedMetricError

CALIBRATORS = ("platt", "isotonic")
BIN_STRATEGIES = ("uniform", "quantile")
DEFAULT_BINS = 10
DEFAULT_CALIBRATION_FRACTION = 0.5
CALIBRATION_METRICS = ("ece", "ece_equal_mass", "brier", "log_loss")
# Measures whose value is 1 − P(correct) as it stands, evaluated without a calibrator too.
PROBABILITY_MEASURES = ("p_true", "verbalized_one_stage", "verbalized_two_stage")


def _confidences(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(confidence, dtype=float)
    c = np.asarray(correct, dtype=float)
    if p.ndim != 1 or p.size == 0 or p.shape != c.shape:
        raise ConfidantError("need one confidence per correctness label, and at least one")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ConfidantError("confidences must be probabilities in [0, 1]")
    if not np.all((c == 0) | (c == 1)):
        raise ConfidantError("correctness labels must be 0/1 or booleans")
    return p, c


def _bin_index(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ConfidantError(f"the number of bins must be a positive whole number, got {n_bins!r}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        raise ConfidantError(f"bin strategy must be one of {', '.join(BIN_STRATEGIES)}")
    # Bins are [e_i, e_{i+1}); the last one also holds 1.0 (and the maximum, for quantiles).
    return np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, n_bins - 1)


def reliability_bins(
    confidence: Sequence[float], correct: Sequence[Any], n_bins: int = DEFAULT_BINS,
    strategy: str = "uniform",
) -> list[dict[str, float]]:  # fmt: skip
    """The non-empty bins of the confidence: mean confidence, accuracy and count of each."""
    p, c = _confidences(confidence, correct)
    index = _bin_index(p, n_bins, strategy)
    out = []
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            out.append(
                {
                    "confidence": float(p[inside].mean()),
                    "accuracy": float(c[inside].mean()),
                    "count": int(inside.sum()),
                }
            )
    return out


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[Any], n_bins: int = DEFAULT_BINS,
    strategy: str = "uniform",
) -> float:  # fmt: skip
    """ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b| (0 = perfectly calibrated)."""
    bins = reliability_bins(confidence, correct, n_bins, strategy)
    n = sum(b["count"] for b in bins)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins))


def brier_score(confidence: Sequence[float], correct: Sequence[Any]) -> float:
    """Mean of (P(correct) − correct)², scikit-learn's ``brier_score_loss``."""
    from sklearn.metrics import brier_score_loss

    p, c = _confidences(confidence, correct)
    return float(brier_score_loss(c, p))


def log_loss(confidence: Sequence[float], correct: Sequence[Any]) -> float:
    """Mean negative log-likelihood of the labels, scikit-learn's ``log_loss`` (nats); a
    probability of exactly 0 or 1 is clipped to machine precision."""
    from sklearn.metrics import log_loss as sk_log_loss

    p, c = _confidences(confidence, correct)
    eps = np.finfo(float).eps
    return float(sk_log_loss(c, np.clip(p, eps, 1 - eps), labels=[0, 1]))


class Calibrator:
    """A fitted map from an uncertainty (higher = more uncertain) to P(correct)."""

    def __init__(self, method: str, model) -> None:
        self.method, self.model = method, model

    def __call__(self, uncertainty: Sequence[float]) -> np.ndarray:
        u = np.asarray(uncertainty, dtype=float).reshape(-1)
        if self.method == "platt":
            return self.model.predict_proba(u[:, None])[:, 1]
        return np.clip(self.model.predict(u), 0.0, 1.0)


def fit_calibrator(uncertainty: Sequence[float], correct: Sequence[Any], method: str) -> Calibrator:
    """Platt (``"platt"``: P(correct) = σ(a·u + b), sklearn ``LogisticRegression`` without a
    penalty) or isotonic (``"isotonic"``: a non-increasing step function of u, sklearn
    ``IsotonicRegression``, clipped outside the fitted range). Needs both correct and wrong
    answers for Platt."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    u = np.asarray(uncertainty, dtype=float)
    c = np.asarray(correct, dtype=float)
    if u.ndim != 1 or u.size == 0 or u.shape != c.shape or not np.all(np.isfinite(u)):
        raise ConfidantError("need one finite uncertainty per correctness label")
    if method == "platt":
        if c.min() == c.max():
            raise UndefinedMetricError("Platt scaling needs correct and wrong answers to fit")
        return Calibrator(method, LogisticRegression(C=np.inf).fit(u[:, None], c.astype(int)))
    if method == "isotonic":
        model = IsotonicRegression(increasing=False, y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return Calibrator(method, model.fit(u, c))
    raise ConfidantError(f"calibration method must be one of {', '.join(CALIBRATORS)}")


@dataclass
class CalibrationReport:
    """One measure calibrated one way: the split, each metric with its interval on the
    held-out questions, and the reliability diagram's bins (equal-width)."""

    measure: str
    method: str  # "platt", "isotonic", or "raw" (1 − the value, for probability measures)
    n_calibration: int
    n_test: int
    fraction: float
    seed: int
    metrics: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    bins: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_metrics(
    confidence: Sequence[float], correct: Sequence[Any], *, n_bins: int = DEFAULT_BINS,
    n_boot: int = 1000, level: float = 0.95, seed: int = 0,
) -> dict[str, BootstrapInterval]:  # fmt: skip
    """ECE (equal-width, ``ece``; equal-mass, ``ece_equal_mass``), Brier score and log loss of
    P(correct), each with a percentile bootstrap interval over the SAME resamples (as
    :func:`uq.evaluation.metrics.bootstrap_ci` draws them). The estimates are the functions
    above (scikit-learn's Brier score and log loss); the resamples are computed row-wise, all
    at once, and equal them."""
    p, c = _confidences(confidence, correct)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ConfidantError(f"n_boot must be a positive integer, got {n_boot!r}")
    idx = np.random.default_rng(seed).integers(0, p.size, size=(n_boot, p.size))
    bp, bc = p[idx], c[idx]
    eps = np.finfo(float).eps
    clipped = np.clip(bp, eps, 1 - eps)
    rows = {
        "ece": _ece_rows(
            bp, bc, _bin_index(bp.reshape(-1), n_bins, "uniform").reshape(bp.shape), n_bins
        ),
        "ece_equal_mass": np.array(
            [expected_calibration_error(bp[b], bc[b], n_bins, "quantile") for b in range(n_boot)]
        ),
        "brier": ((bp - bc) ** 2).mean(axis=1),
        "log_loss": -(bc * np.log(clipped) + (1 - bc) * np.log(1 - clipped)).mean(axis=1),
    }
    estimates = {
        "ece": expected_calibration_error(p, c, n_bins, "uniform"),
        "ece_equal_mass": expected_calibration_error(p, c, n_bins, "quantile"),
        "brier": brier_score(p, c),
        "log_loss": log_loss(p, c),
    }
    alpha = (1.0 - float(level)) / 2
    out = {}
    for name in CALIBRATION_METRICS:
        low, high = np.percentile(rows[name], [100 * alpha, 100 * (1 - alpha)])
        out[name] = BootstrapInterval(
            estimate=float(estimates[name]), low=float(low), high=float(high), level=float(level),
            n_boot=int(n_boot), n_used=int(n_boot), seed=int(seed),
        )  # fmt: skip
    return out


def _ece_rows(bp: np.ndarray, bc: np.ndarray, index: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width ECE of every row of resampled confidences at once."""
    total = np.zeros(bp.shape[0])
    n = bp.shape[1]
    for b in range(n_bins):
        inside = index == b
        count = inside.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs((bc * inside).sum(axis=1) - (bp * inside).sum(axis=1)) / count
        total += np.where(count > 0, count / n * gap, 0.0)
    return total


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)``: (calibration indices, held-out indices), each
    sorted; at least one question on each side."""
    if not 0.0 < float(fraction) < 1.0:
        raise ConfidantError(f"the calibration fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise UndefinedMetricError("a calibration split needs at least 2 questions")
    order = np.random.default_rng(seed).permutation(n)
    k = min(n - 1, max(1, round(fraction * n)))
    return np.sort(order[:k]), np.sort(order[k:])


def calibrate_measure(
    measure: str,
    uncertainty: Sequence[float],
    correct: Sequence[Any],
    method: str,
    *,
    fraction: float = DEFAULT_CALIBRATION_FRACTION,
    seed: int = 0,
    n_bins: int = DEFAULT_BINS,
    n_boot: int = 1000,
    level: float = 0.95,
) -> CalibrationReport:
    """Fit ``method`` on a seeded ``fraction`` of the questions and report ECE (equal-width and
    equal-mass, ``n_bins`` bins), Brier score and log loss of its P(correct) on the rest, each
    with a percentile bootstrap interval over the held-out questions. ``method="raw"`` fits
    nothing and evaluates 1 − the value on the same held-out questions."""
    u = np.asarray(uncertainty, dtype=float)
    c = np.asarray(correct, dtype=float)
    cal, test = split_indices(u.size, fraction, seed)
    if method == "raw":
        p = np.clip(1.0 - u[test], 0.0, 1.0)
    else:
        p = fit_calibrator(u[cal], c[cal], method)(u[test])
    c_test = c[test]
    metrics = calibration_metrics(p, c_test, n_bins=n_bins, n_boot=n_boot, level=level, seed=seed)
    return CalibrationReport(
        measure=measure,
        method=method,
        n_calibration=int(cal.size),
        n_test=int(test.size),
        fraction=float(fraction),
        seed=int(seed),
        metrics={k: (v.to_dict() if v else None) for k, v in metrics.items()},
        bins=reliability_bins(p, c_test, n_bins, "uniform"),
    )
