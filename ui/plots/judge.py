"""Figures, tables and Markdown views for the Judge tab, built from stored results. No gradio
import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.text import html_text, md_text
from judge.grading import GradeResult
from judge.pairwise import PairwiseResult
from judge.pipeline import METHOD_LABELS, ConsistencyResult
from judge.scores import SCORE_METHODS, ScoreMethod

# Colours of the continuous scores' lines; a method without one takes the next of _SPARE.
_SCORE_COLOURS = {"expectation": "#1f77b4", "trustjudge": "#d62728", "geval": "#2ca02c"}
_SPARE = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
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
    continuous = [m for m in SCORE_METHODS if not m.discrete]
    spare = cycle(_SPARE)
    top = max([float(distribution[v]) for v in values] or [1.0])
    for m in continuous:
        colour = _SCORE_COLOURS.get(m.key) or next(spare)
        value = (scores or {}).get(m.key)
        if value is not None:
            # A dashed line per score, named in the legend under the plot: the scores often lie
            # within a tenth of each other, where labels on the lines would overlap.
            fig.add_trace(
                go.Scatter(
                    x=[float(value)] * 2,
                    y=[0, top * 1.05],
                    mode="lines",
                    line={"color": colour, "dash": "dash"},
                    name=f"{m.label} {float(value):.2f}",
                    hovertemplate=f"{html_text(m.label)} {float(value):.3f}<extra></extra>",
                )
            )
    mass = (scores or {}).get("mass")
    suffix = f" · mass on the scale {mass:.3g}" if mass is not None else ""
    fig.update_layout(
        title=(title or "Judge's score distribution") + suffix,
        height=360,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        xaxis={"title": "score", "dtick": 1 if len(values) <= 10 else 10},
        yaxis={"title": "probability", "rangemode": "tozero"},
        showlegend=True,
        legend={"orientation": "h", "y": -0.25},
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
            # "TrustJudge (PPL)" on two lines: side by side the names ran into each other
            x=[
                html_text(METHOD_LABELS.get(r["method"], r["method"])).replace(" (", "<br>(")
                for r in with_cr
            ],
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
        label = html_text(METHOD_LABELS.get(r["method"], r["method"]))
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
        height=420,
        barmode="group",
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        # under the method names, never on them
        legend={"orientation": "h", "yanchor": "top", "y": -0.25},
    )
    fig.update_xaxes(tickangle=0, automargin=True)
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


def agreement_markdown(report: Mapping[str, Any]) -> str:
    """One line per group of items: its annotators and Krippendorff's α, people alone and with
    the judge (names escaped)."""
    lines = []
    for g in report["groups"]:
        people = ", ".join(md_text(a) for a in g["annotators"]) or "none"
        a_people = "—" if g["alpha_people"] is None else f"{g['alpha_people']:.3f}"
        a_judge = "—" if g["alpha_with_judge"] is None else f"{g['alpha_with_judge']:.3f}"
        lines.append(
            f"- **{md_text(g['name'])}**: {g['items']} item(s), annotators {people}; "
            f"Krippendorff's α people {a_people}, people + "
            f"{md_text(g['alpha_judge'], empty='judge')} {a_judge}"
        )
    return "\n".join(lines)


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


# ----------------------------------------------------------------------------------------------
# Markdown views of one judged item and of a consistency run
# ----------------------------------------------------------------------------------------------


def _markdown_table(heads: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def judge_markdown(result: dict) -> str:
    """The judge's numbers for one item (grade or pairwise result dict) as Markdown."""
    if result.get("type") == "pairwise":
        pr = PairwiseResult.from_dict(result)
        view = pr.judge_view()
        first, second = view["first_order"], view["second_order_swapped"]
        lines = [
            "| | first better (A) | second better (B) | tie (C) | emitted | perplexity |",
            "|---|---|---|---|---|---|",
        ]
        for label, probs, read in (
            ("order 1", first, pr.first),
            ("order 2 (swapped back)", second, pr.second),
        ):
            ppl = f"{read.perplexity:.3g}" if read.perplexity is not None else "—"
            lines.append(
                f"| {label} | {probs['A']:.3f} | {probs['B']:.3f} | {probs['C']:.3f} | "
                f"{md_text(read.emitted, empty='—')} | {ppl} |"
            )
        names = {1: "first better", 0: "tie", -1: "second better", None: "—"}
        rel = " · ".join(f"{rule}: **{names[r]}**" for rule, r in pr.relations.items())
        trunc = " (top-k only)" if pr.first.truncated else ""
        return (
            "\n".join(lines)
            + f"\n\nRelations{trunc}: {rel}\n\n"
            + _rationales([pr.first.judgement, pr.second.judgement])
        )
    gr_ = GradeResult.from_dict(result)
    if gr_.summary is None:
        return "The judge's reply could not be scored: " + "; ".join(map(md_text, gr_.notes))
    s = gr_.summary
    trunc = " (top-k log-probabilities only: a lower bound on the mass)" if gr_.truncated else ""
    heads = [
        f"{m.label} (T={s.temperature:g})" if m.uses_temperature else m.label for m in SCORE_METHODS
    ]
    cells = [
        str(s.scores[m.key]) if m.discrete else f"{s.scores[m.key]:.3f}" for m in SCORE_METHODS
    ]
    heads += ["entropy (nats)", "mass on scale"]
    cells += [f"{s.entropy:.3f}", f"{s.mass:.3g}{trunc}"]
    scales = [_scale_text(m, gr_.scale, s.mass) for m in SCORE_METHODS]
    scales += [f"0 … ln {gr_.scale}", "0 … 1"]
    return _markdown_table(heads, [cells, scales]) + "\n\n" + _rationales([gr_.judgement])


def _scale_text(method: ScoreMethod, hi: int, mass: float) -> str:
    """Where a score method's value lies for a 1..hi grade: one of the values, the range, or
    for G-Eval the range times the mass on the scale (it is not renormalised)."""
    if method.discrete:
        return f"*one of 1 … {hi}*"
    if method.scale == "mass":
        return f"*0 … {hi}·mass = {hi * mass:.3g} (not renormalised)*"
    return f"*1 … {hi}*"


def _rationales(texts: list[str]) -> str:
    shown = [t.strip() for t in texts if t and t.strip()]
    if not shown:
        return ""
    # The model's words, quoted line by line as text (never as Markdown or HTML).
    quoted = "\n\n".join(
        "\n".join("> " + md_text(line, inline=False) for line in t[:2000].split("\n"))
        for t in shown
    )
    return "**Judge's rationale**\n\n" + quoted


def judge_figure(result: dict) -> go.Figure:
    """The judge's score distribution (a grade) or verdict probabilities (a pairwise result)."""
    if result.get("type") == "pairwise":
        return verdict_figure(PairwiseResult.from_dict(result).judge_view())
    g = GradeResult.from_dict(result)
    return score_distribution_figure(g.distribution, g.scores(), f"Judge · 1..{g.scale}")


def consistency_markdown(res: ConsistencyResult) -> str:
    """A consistency run's settings and its CR / NTR_k table as Markdown."""
    cfg = res.config
    rows = consistency_rows([r.to_dict() for r in res.table], cfg.ks)
    table = _markdown_table(CONSISTENCY_HEADERS, [[md_text(c) for c in row] for row in rows])
    return (
        f"**Consistency run** on {len(res.questions)} question(s) · model {md_text(res.model)} · "
        f"baseline and G-Eval on 1..{cfg.baseline_scale}, TrustJudge on 1..{cfg.trustjudge_scale} "
        f"rescaled · δ = {cfg.tolerance:g} · {'direct' if cfg.judge.direct else 'rationale'} "
        f"mode\n\nCR compares single scores with the baseline two-pass verdicts; NTR_k counts "
        f"k-subsets of candidates with a cycle or a broken tie.\n\n{table}"
    )
