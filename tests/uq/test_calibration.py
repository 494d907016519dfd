"""Calibration metrics and calibrators (uq/evaluation/calibration.py): hand-computed values,
scikit-learn agreement, the vectorised bootstrap against the plain functions, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from core.errors import ConfidantError
from uq.evaluation.calibration import (
    brier_score,
    calibrate_measure,
    calibration_metrics,
    expected_calibration_error,
    fit_calibrator,
    log_loss,
    reliability_bins,
    split_indices,
)
from uq.evaluation.metrics import UndefinedMetricError


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    truth = 1 / (1 + np.exp(2 * u))  # P(correct) falls as uncertainty rises
    return u, (rng.random(n) < truth).astype(int), truth


def test_ece_by_hand_and_bins():
    # Bin [0, .5): confidences .1, .1, accuracy 0 → gap .1; bin [.5, 1]: .9, .9, accuracy .5 → .4.
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0], n_bins=2) == (
        pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    )
    bins = reliability_bins([0.0, 0.2, 0.4, 1.0], [0, 0, 1, 1], n_bins=5)
    assert [b["count"] for b in bins] == [1, 1, 1, 1]
    assert bins[-1] == {"confidence": 1.0, "accuracy": 1.0, "count": 1}  # 1.0 is in the last bin
    mass = reliability_bins(np.linspace(0, 1, 100), [1] * 100, n_bins=4, strategy="quantile")
    assert [b["count"] for b in mass] == [25, 25, 25, 25]
    assert expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3, n_bins=10) == pytest.approx(0)


def test_brier_and_log_loss_are_sklearns():
    p, c = [0.2, 0.8, 0.6, 0.99], [0, 1, 0, 1]
    assert brier_score(p, c) == pytest.approx(brier_score_loss(c, p))
    expected = -np.mean([np.log(0.8), np.log(0.8), np.log(0.4), np.log(0.99)])
    assert log_loss(p, c) == pytest.approx(expected)
    assert np.isfinite(log_loss([0.0, 1.0], [1, 0]))  # clipped, not infinite


def test_the_vectorised_bootstrap_equals_the_functions_on_each_resample():
    u, c, truth = synthetic(60)
    p = np.clip(truth + 0.1, 0, 1)
    out = calibration_metrics(p, c, n_bins=5, n_boot=50, seed=3)
    idx = np.random.default_rng(3).integers(0, p.size, size=(50, p.size))
    fns = {
        "ece": lambda q, y: expected_calibration_error(q, y, 5, "uniform"),
        "ece_equal_mass": lambda q, y: expected_calibration_error(q, y, 5, "quantile"),
        "brier": brier_score,
        "log_loss": log_loss,
    }
    for name, fn in fns.items():
        values = [fn(p[i], c[i]) for i in idx]
        low, high = np.percentile(values, [2.5, 97.5])
        assert out[name].estimate == pytest.approx(fn(p, c))
        assert (out[name].low, out[name].high) == pytest.approx((low, high)), name


def test_platt_and_isotonic_recover_a_calibrated_probability():
    u, c, truth = synthetic(4000)
    for method in ("platt", "isotonic"):
        calibrator = fit_calibrator(u, c, method)
        p = calibrator(np.sort(u))
        assert np.all(np.diff(p) <= 1e-12), method  # more uncertain → less likely correct
        assert np.mean(np.abs(calibrator(u) - truth)) < 0.05, method
    report = calibrate_measure("x", u, c, "platt", n_boot=20, seed=1)
    assert report.metrics["ece"]["estimate"] < 0.05
    assert report.n_calibration + report.n_test == 4000 and report.fraction == 0.5
    assert sum(b["count"] for b in report.bins) == report.n_test
    # An uncalibrated confidence is worse than the calibrated one on the same questions.
    bad = calibrate_measure("x", 1 / (1 + np.exp(-u)), c, "raw", n_boot=20, seed=1)
    assert bad.metrics["ece"]["estimate"] > 0.08 > report.metrics["ece"]["estimate"]


def test_the_split_is_seeded_disjoint_and_recorded():
    cal, test = split_indices(10, 0.3, seed=7)
    assert len(cal) == 3 and len(test) == 7 and not set(cal) & set(test)
    again = split_indices(10, 0.3, seed=7)
    assert [list(a) for a in again] == [list(cal), list(test)]
    assert list(split_indices(10, 0.3, seed=8)[0]) != list(cal)
    assert [len(part) for part in split_indices(2, 0.01, 0)] == [1, 1]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: expected_calibration_error([1.2], [1]), ConfidantError, "in \\[0, 1\\]"),
        (lambda: expected_calibration_error([0.5], [1], n_bins=0), ConfidantError, "bins"),
        (lambda: expected_calibration_error([0.5], [2]), ConfidantError, "0/1"),
        (lambda: reliability_bins([0.5], [1], strategy="x"), ConfidantError, "strategy"),
        (lambda: fit_calibrator([0.1, 0.2], [1, 1], "platt"), UndefinedMetricError, "correct and"),
        (lambda: fit_calibrator([0.1], [1], "beta"), ConfidantError, "platt, isotonic"),
        (lambda: split_indices(5, 1.0, 0), ConfidantError, "fraction"),
        (lambda: split_indices(1, 0.5, 0), UndefinedMetricError, "at least 2"),
        (lambda: expected_calibration_error([], []), ConfidantError, "at least one"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
