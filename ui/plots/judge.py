"""Figures and tables for the Judge tab, built from stored results. No gradio import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from judge.pipeline import METHOD_LABELS

_SCORE_LINES = (
    ("expectation", "expectation", "#1f77b4"),
    ("trustjudge", "TrustJudge", "#d62728"),
    ("geval", "G-Eval", "#2ca02c"),
)
_VERDICT_LABELS = {"A": "first answer better (A)", "B": "second answer better (B)", "C": "tie (C)"}


def score_distribution_figure(
    distribution: Mapping[int, float], scores: Mapping[str, Any] | None = None, title: str = ""
) -> go.Figure:
    """The judge's probability for every value of the scale (renormalised over the scale), with
    the continuous scores marked as vertical lines."""
    values = sorted(int(v) for v in distribution)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[float(distribution[v]) for v in values],
            name="p(score)",
            marker_color="#7f7f7f",
            hovertemplate="score %{x}: p = %{y:.4f}<extra></extra>",
        )
    )
    for key, label, colour in _SCORE_LINES:
        value = (scores or {}).get(key)
        if value is not None:
            fig.add_vline(
                x=float(value),
                line_color=colour,
                line_dash="dash",
                annotation_text=f"{label} {float(value):.2f}",
                annotation_position="top",
            )
    mass = (scores or {}).get("mass")
    suffix = f" · mass on the scale {mass:.3g}" if mass is not None else ""
    fig.update_layout(
        title=(title or "Judge's score distribution") + suffix,
        height=320,
        margin={"l": 40, "r": 10, "t": 60, "b": 40},
        xaxis={"title": "score", "dtick": 1 if len(values) <= 10 else 10},
        yaxis={"title": "probability", "rangemode": "tozero"},
        showlegend=False,
    )
    return fig


def verdict_figure(view: Mapping[str, Any]) -> go.Figure:
    """Verdict probabilities in both presentation orders, the second mapped back so that "A"
    always means the first answer shown in the first order."""
    letters = ["A", "B", "C"]
    fig = go.Figure()
    for key, name in (
        ("first_order", "order 1 (as shown)"),
        ("second_order_swapped", "order 2 (swapped back)"),
    ):
        probs = view.get(key) or {}
        fig.add_trace(
            go.Bar(
                x=[_VERDICT_LABELS[k] for k in letters],
                y=[float(probs.get(k, 0.0)) for k in letters],
                name=name,
                hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title="Judge's verdict probabilities (normalised over A / B / C)",
        barmode="group",
        height=320,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        yaxis={"title": "probability", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.1f}%"


CONSISTENCY_HEADERS = ["method", "single score", "pairwise rule", "CR", "pairs"] + [
    f"NTR{k} (circ / equiv)" for k in (3, 4, 5)
]


def consistency_rows(table: Sequence[Mapping[str, Any]], ks: Sequence[int] = (3, 4, 5)) -> list:
    """The consistency table as display rows: CR and NTR_k with circular / equivalence shares."""
    rows = []
    for row in table:
        ntr = {int(k): v for k, v in (row.get("ntr") or {}).items()}
        cells = [
            METHOD_LABELS.get(row["method"], row["method"]),
            row.get("score") or "—",
            row.get("relation") or "—",
            _pct(row.get("conflict_ratio")),
            row.get("compared") or 0,
        ]
        for k in ks:
            n = ntr.get(k)
            cells.append(
                "—"
                if not n
                else f"{_pct(n['ratio'])} ({_pct(n['circular_ratio'])} / "
                f"{_pct(n['equivalence_ratio'])})"
            )
        rows.append(cells)
    return rows


def consistency_figure(table: Sequence[Mapping[str, Any]], ks: Sequence[int] = (3, 4, 5)):
    """Left: Conflict Ratio per method. Right: NTR_k per pairwise rule, split into subsets with
    a circular violation and with an equivalence violation (a subset may have both)."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Conflict Ratio (lower is better)", "NTR_k (lower is better)"),
    )
    with_cr = [r for r in table if r.get("conflict_ratio") is not None]
    fig.add_trace(
        go.Bar(
            x=[METHOD_LABELS.get(r["method"], r["method"]) for r in with_cr],
            y=[100.0 * r["conflict_ratio"] for r in with_cr],
            name="CR",
            marker_color="#636efa",
            hovertemplate="%{x}: %{y:.1f}%<extra>CR</extra>",
        ),
        row=1,
        col=1,
    )
    with_ntr = [r for r in table if r.get("ntr")]
    for r in with_ntr:
        ntr = {int(k): v for k, v in r["ntr"].items()}
        label = METHOD_LABELS.get(r["method"], r["method"])
        fig.add_trace(
            go.Bar(
                x=[f"k={k}" for k in ks if k in ntr],
                y=[100.0 * (ntr[k]["ratio"] or 0.0) for k in ks if k in ntr],
                name=f"NTR {label}",
                customdata=[
                    [
                        100.0 * (ntr[k]["circular_ratio"] or 0.0),
                        100.0 * (ntr[k]["equivalence_ratio"] or 0.0),
                    ]
                    for k in ks
                    if k in ntr
                ],
                hovertemplate=(
                    "%{x}: %{y:.1f}% (circular %{customdata[0]:.1f}%, equivalence "
                    "%{customdata[1]:.1f}%)<extra>" + label + "</extra>"
                ),
            ),
            row=1,
            col=2,
        )
    fig.update_layout(
        height=380,
        barmode="group",
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_yaxes(title_text="%", rangemode="tozero")
    return fig


AGREEMENT_HEADERS = [
    "group",
    "rater A",
    "rater B",
    "items",
    "Spearman",
    "Kendall τ",
    "Cohen κ",
    "κ (quadratic)",
]


def agreement_rows(report: Mapping[str, Any]) -> list[list]:
    """Rows for the agreement table from :func:`judge.annotation.agreement_report`."""

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    rows = []
    for group in report.get("groups", []):
        for pair in group["pairs"]:
            rows.append(
                [
                    group["name"],
                    pair["rater_a"],
                    pair["rater_b"],
                    pair["items"],
                    fmt(pair["spearman"]),
                    fmt(pair["kendall_tau"]),
                    fmt(pair["cohen_kappa"]),
                    fmt(pair["weighted_kappa"]),
                ]
            )
    return rows
