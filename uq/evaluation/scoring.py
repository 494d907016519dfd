"""Scoring a finished evaluation's measure columns: how well each predicts errors (AUROC,
AURAC, rejection accuracy, PRR with bootstrap intervals, and the ROC and rejection curves), and
how well each is calibrated into P(correct) (Platt, isotonic, and a probability measure as it
stands) on a held-out split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from core.errors import ConfidantError
from uq.evaluation.calibration import CALIBRATORS, PROBABILITY_MEASURES, calibrate_measure
from uq.evaluation.metrics import AURAC_FRACTIONS, evaluation_metrics, rejection_accuracy
from uq.evaluation.result import METRIC_NAMES
from uq.evaluation.settings import EvalSettings


def _measure_columns(rows: Sequence[dict[str, Any]]):
    """(name, uncertainties, correctness labels, the rows they come from) of every measure
    column, in first-seen order, over the questions where the measure has a value."""
    names: list[str] = []
    for r in rows:
        names += [m for m in r["measures"] if m not in names]
    for name in names:
        used = [r for r in rows if r["measures"].get(name) is not None]
        u = np.array([r["measures"][name] for r in used], dtype=float)
        c = np.array([r["correct"] for r in used], dtype=float)
        yield name, u, c, used


def score_measures(
    rows: Sequence[dict[str, Any]], settings: EvalSettings
) -> tuple[dict[str, dict[str, dict | None]], dict[str, dict[str, Any]]]:
    """Metrics with bootstrap intervals (``settings.n_boot`` resamples at ``settings.level``,
    seeded by ``settings.metrics_seed``) and plot curves for every measure column, over the
    questions where the measure has a value."""
    metrics: dict[str, dict[str, dict | None]] = {}
    curves: dict[str, dict[str, Any]] = {}
    for name, u, c, used in _measure_columns(rows):
        if not used:
            metrics[name] = {m: None for m in METRIC_NAMES}
            continue
        q = np.array([r["score"] for r in used], dtype=float)
        out = evaluation_metrics(
            u, c, q, n_boot=settings.n_boot, level=settings.level, seed=settings.metrics_seed
        )
        metrics[name] = {m: (v.to_dict() if v else None) for m, v in out.items()}
        curve: dict[str, Any] = {
            "fraction": [float(f) for f in AURAC_FRACTIONS],
            "accuracy": [rejection_accuracy(u, c, f) for f in AURAC_FRACTIONS],
        }
        if 0 < c.sum() < c.size:
            fpr, tpr, _ = roc_curve(1 - c, u)
            curve["fpr"], curve["tpr"] = fpr.tolist(), tpr.tolist()
        curves[name] = curve
    return metrics, curves


def calibrate_measures(
    rows: Sequence[dict[str, Any]], settings: EvalSettings
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every measure calibrated into P(correct) by Platt scaling and isotonic regression on a
    seeded split (``settings.calibration_fraction``, seed ``settings.metrics_seed``), and a
    probability measure (``p_true``) also as it stands; each evaluated on the held-out
    questions (:func:`uq.evaluation.calibration.calibrate_measure`). A measure that cannot be
    calibrated here (too few questions, one class in the calibration split) is left out."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, u, c, _ in _measure_columns(rows):
        methods = [*CALIBRATORS, *(["raw"] if name in PROBABILITY_MEASURES else [])]
        for method in methods:
            try:
                report = calibrate_measure(
                    name, u, c, method, fraction=settings.calibration_fraction,
                    seed=settings.metrics_seed, n_bins=settings.calibration_bins,
                    n_boot=settings.n_boot, level=settings.level,
                )  # fmt: skip
            except ConfidantError:  # too few questions, one class, a value that is not finite
                continue
            out.setdefault(name, {})[method] = report.to_dict()
    return out
