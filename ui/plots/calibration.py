"""Calibration views of a dataset evaluation: the calibration table and the reliability
diagram (accuracy against confidence per bin, for each way a measure was turned into
P(correct)), built from ``EvaluationResult.calibration`` without a model."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from core.text import html_text

CALIBRATION_HEADERS = [
    "measure",
    "method",
    "held out",
    "ECE",
    "ECE (equal mass)",
    "Brier",
    "log loss",
]
METHOD_NAMES = {"platt": "Platt", "isotonic": "isotonic", "raw": "as it stands (1 − value)"}
_COLOURS = {"platt": "#1f77b4", "isotonic": "#ff7f0e", "raw": "#2ca02c"}


def _cell(interval: dict[str, Any] | None) -> str:
    if not interval:
        return "—"
    return f"{interval['estimate']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"


def calibration_rows(calibration: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """One row per measure and calibrator: the held-out count and each metric with its 95 %
    interval (lower is better for all four)."""
    rows = []
    for measure, methods in calibration.items():
        for method, report in methods.items():
            m = report.get("metrics") or {}
            rows.append(
                [measure, METHOD_NAMES.get(method, method), str(report.get("n_test", "")),
                 _cell(m.get("ece")), _cell(m.get("ece_equal_mass")), _cell(m.get("brier")),
                 _cell(m.get("log_loss"))]
            )  # fmt: skip
    return rows


def default_measure(calibration: dict, metrics: dict) -> str | None:
    """The calibrated measure with the best AUROC (the first one when none has an AUROC)."""
    names = list(calibration)
    if not names:
        return None

    def auroc(name: str) -> float:
        interval = (metrics.get(name) or {}).get("auroc")
        return interval["estimate"] if interval else float("-inf")

    return max(names, key=auroc)


def reliability_figure(calibration: dict, measure: str | None) -> go.Figure:
    """Accuracy against mean confidence in each bin of the held-out questions, one line per
    calibrator; marker area follows the bin's count; the diagonal is perfect calibration."""
    calibration = calibration or {}
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                   line={"dash": "dot", "color": "#888"}, hoverinfo="skip")
    )  # fmt: skip
    methods = calibration.get(measure) or {} if measure else {}
    for method, report in methods.items():
        bins = report.get("bins") or []
        ece = (report.get("metrics") or {}).get("ece")
        name = METHOD_NAMES.get(method, method) + (f" (ECE {ece['estimate']:.3f})" if ece else "")
        fig.add_trace(
            go.Scatter(
                x=[b["confidence"] for b in bins],
                y=[b["accuracy"] for b in bins],
                mode="lines+markers",
                name=html_text(name),
                marker={"size": [6 + 2 * b["count"] ** 0.5 for b in bins],
                        "color": _COLOURS.get(method)},
                text=[f"{b['count']} answers" for b in bins],
                hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{text}<extra></extra>",
            )
        )  # fmt: skip
    title = f"Reliability: {html_text(measure)}" if measure else "Reliability (nothing calibrated)"
    fig.update_layout(
        title=title,
        xaxis={"title": "P(correct) from the calibrated measure", "range": [0, 1]},
        yaxis={"title": "fraction correct", "range": [0, 1]},
        height=420,
        margin={"l": 50, "r": 10, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
