"""Views of a judge reliability report (:class:`judge.report.ReliabilityReport` as stored):
the measure table, the score methods side by side, and plotly figures (flip rate per method,
score vs length with its least-squares line, run-to-run spread per answer). Every view is
rebuilt from the stored dict, so a report reopens from History without a model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.text import md_text
from judge.report import RUN_KIND as RUN_KIND

METHOD_COLUMNS = ("conflict_ratio", "flip_rate", "human_rho", "human_pair_accuracy")


def _number(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"


def _table(heads: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def measure_rows(measures: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per measure: family, measure, value, 95% interval."""
    rows = []
    for m in measures:
        ci = "—" if m.get("ci_low") is None else f"{m['ci_low']:.3f} … {m['ci_high']:.3f}"
        rows.append([md_text(m["family"]), md_text(m["label"]), _number(m["value"]), ci])
    return rows


def report_markdown(report: Mapping[str, Any]) -> str:
    """The whole report as Markdown: settings, measures, methods side by side, disagreements."""
    config = report["config"]
    stats = report["statistics"]
    head = (
        f"**{len(stats['singles'])} answers, {len(stats['pairs'])} pairs** judged by "
        f"{md_text(report['model'])} · k = {config['k']} runs at T = {config['temperature']} · "
        f"{config['n_boot']} bootstrap resamples\n\n"
    )
    methods = report["methods"]
    ntr = next((k for k in (methods[0] if methods else {}) if k.startswith("ntr_")), None)
    cols = ["conflict_ratio", *([ntr] if ntr else []), *METHOD_COLUMNS[1:]]
    method_rows = [[md_text(r["label"]), *(_number(r.get(c)) for c in cols)] for r in methods]
    split = report.get("disagreements", {})
    notes = (
        f"\n\nPairs where people disagree with each other: "
        f"{md_text(', '.join(split.get('humans_disagree', [])) or 'none')}. "
        f"Pairs where people agree and the judge does not: "
        f"{md_text(', '.join(split.get('judge_disagrees', [])) or 'none')}."
    )
    return (
        head
        + _table(["family", "measure", "value", "95% interval"], measure_rows(report["measures"]))
        + "\n\n**Score methods side by side**\n\n"
        + _table(["method", *(md_text(c) for c in cols)], method_rows)
        + notes
    )


def flip_figure(methods: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Position flip rate and Conflict Ratio of each score method, as bars."""
    labels = [m["label"] for m in methods]
    fig = go.Figure()
    for key, name in (("flip_rate", "position flip rate"), ("conflict_ratio", "Conflict Ratio")):
        fig.add_bar(x=labels, y=[m.get(key) for m in methods], name=name)
    fig.update_layout(title="Flip rate per score method", yaxis_range=[0, 1], barmode="group")
    return fig


def length_figure(statistics: Mapping[str, Any]) -> go.Figure:
    """Each answer's score against its length, with the least-squares line."""
    key = statistics.get("score_key", "expectation")
    rows = [s for s in statistics["singles"] if key in s["scores"]]
    x = np.array([s["length"] for s in rows], dtype=float)
    y = np.array([s["scores"][key] for s in rows], dtype=float)
    fig = go.Figure()
    fig.add_scatter(x=x, y=y, mode="markers", name="answers", text=[s["item_id"] for s in rows])
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        ends = np.array([x.min(), x.max()])
        fig.add_scatter(x=ends, y=slope * ends + intercept, mode="lines", name="fit")
    fig.update_layout(
        title=f"Score ({key}) vs length", xaxis_title="characters", yaxis_title="score"
    )
    return fig


def spread_figure(statistics: Mapping[str, Any]) -> go.Figure:
    """Run-to-run standard deviation of each answer's score, beside its one-pass entropy."""
    rows = [s for s in statistics["singles"] if len(s["runs"]) >= 2]
    ids = [s["item_id"] for s in rows]
    fig = go.Figure()
    fig.add_bar(x=ids, y=[float(np.std(s["runs"])) for s in rows], name="score std over k runs")
    fig.add_scatter(
        x=ids, y=[s["entropy"] for s in rows], mode="markers", name="entropy (nats), one pass"
    )
    fig.update_layout(title="Run-to-run spread per answer")
    return fig


def render_reliability_run(run: Mapping[str, Any]) -> dict:
    """History's view of a stored reliability report (no model needed)."""
    report = run["result"]
    return {
        "markdown": report_markdown(report),
        "plot": flip_figure(report["methods"]),
        "plot2": length_figure(report["statistics"]),
    }
