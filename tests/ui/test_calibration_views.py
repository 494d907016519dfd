"""The calibration table and reliability diagram built from a harness result."""

from __future__ import annotations

import numpy as np

from ui.plots.calibration import calibration_rows, default_measure, reliability_figure
from uq.evaluation.calibration import calibrate_measure


def _calibration():
    rng = np.random.default_rng(0)
    u = rng.normal(size=80)
    c = (rng.random(80) < 1 / (1 + np.exp(2 * u))).astype(int)
    return {
        "<b>se</b>": {m: calibrate_measure("se", u, c, m, n_boot=20).to_dict()
                      for m in ("platt", "isotonic")},
        "p_true": {"raw": calibrate_measure("p", 1 / (1 + np.exp(-u)), c, "raw", n_boot=20).to_dict()},
    }  # fmt: skip


def test_rows_diagram_and_default():
    cal = _calibration()
    rows = calibration_rows(cal)
    assert [r[:3] for r in rows] == [
        ["<b>se</b>", "Platt", "40"], ["<b>se</b>", "isotonic", "40"],
        ["p_true", "as it stands (1 − value)", "40"],
    ]  # fmt: skip
    low, high = (float(x) for x in rows[0][3].split("[")[1].rstrip("]").split(","))
    assert low <= high
    metrics = {"p_true": {"auroc": {"estimate": 0.6}}, "<b>se</b>": {"auroc": {"estimate": 0.8}}}
    assert default_measure(cal, metrics) == "<b>se</b>"
    assert default_measure({}, metrics) is None
    fig = reliability_figure(cal, "<b>se</b>")
    assert len(fig.data) == 3  # the diagonal, Platt, isotonic
    assert "<b>" not in fig.layout.title.text and "&lt;b&gt;" in fig.layout.title.text
    platt = fig.data[1]
    assert all(0 <= x <= 1 for x in platt.x) and all(0 <= y <= 1 for y in platt.y)
    assert sum(int(t.split()[0]) for t in platt.text) == 40
    assert len(reliability_figure(None, None).data) == 1  # before any evaluation
