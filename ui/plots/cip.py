"""Figures and text for 20 Questions (C-IP) games and benchmarks; plotly only, no gradio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def game_figure(turns: Sequence[dict[str, Any]]) -> go.Figure:
    """Conformal set size (bars) and the chosen question's C-IP entropy bound in bits (line,
    right axis) per turn; turn 0 is before any question (every class)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [t["turn"] for t in turns]
    fig.add_trace(
        go.Bar(
            x=x,
            y=[t["set_size"] for t in turns],
            name="set size |C|",
            marker_color="#4C78A8",
            hovertext=[", ".join(t.get("set_members", [])[:12]) for t in turns],
        ),
        secondary_y=False,
    )
    bounds = [(t["turn"], t["bound"]) for t in turns if t.get("bound") is not None]
    if bounds:
        fig.add_trace(
            go.Scatter(
                x=[b[0] for b in bounds],
                y=[b[1] for b in bounds],
                mode="lines+markers",
                name="entropy bound (bits)",
                marker_color="#F58518",
            ),
            secondary_y=True,
        )
    fig.update_layout(
        height=320,
        margin=dict(l=40, r=40, t=30, b=40),
        legend=dict(orientation="h", y=1.15),
        xaxis_title="turn (answers so far)",
    )
    fig.update_yaxes(title_text="set size", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="bound (bits)", secondary_y=True, rangemode="tozero")
    return fig


def coverage_figure(rows: Sequence[dict[str, Any]], alpha: float | None = None) -> go.Figure:
    """Per-turn coverage of the conformal sets (share of games whose set holds the hidden
    class) for each benchmark row, with the 1 − α target as a dashed line."""
    fig = go.Figure()
    for r in rows:
        cover = r.get("coverage_per_turn") or []
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(cover) + 1)), y=cover, mode="lines+markers", name=r["method"]
            )
        )
    if alpha is not None:
        fig.add_hline(y=1 - alpha, line_dash="dash", annotation_text=f"1 − α = {1 - alpha:g}")
    fig.update_layout(
        height=320,
        margin=dict(l=40, r=20, t=30, b=40),
        xaxis_title="turn",
        yaxis_title="coverage",
        yaxis_range=[0, 1.05],
    )
    return fig


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def turns_markdown(turns: Sequence[dict[str, Any]], *, truth: str | None = None) -> str:
    """A markdown table of the turns: question, answer, set size, bound, guess."""
    lines = [
        "| turn | question | answer | set size | bound (bits) | guess |",
        "|---|---|---|---|---|---|",
    ]
    for t in turns:
        bound = "" if t.get("bound") is None else f"{t['bound']:.3f}"
        guess = t["guess"] + (" ✓" if truth is not None and t["guess"] == truth else "")
        lines.append(
            f"| {t['turn']} | {_cell(t.get('query') or '(before any question)')} | "
            f"{_cell(t.get('answer') or '')} | {t['set_size']} | {bound} | {_cell(guess)} |"
        )
    return "\n".join(lines)


def set_markdown(turn: dict[str, Any], n_classes: int) -> str:
    """The current prediction set and the top of the posterior."""
    members = ", ".join(_cell(m) for m in turn.get("set_members", []))
    if not turn.get("set_members"):
        members = (
            "*Empty: no class is as probable as τ. A valid conformal outcome (the set misses "
            "the answer on at most a fraction α of calibration histories), and a sign the "
            "answers so far fit no class well.*"
        )
    top = ", ".join(f"{_cell(c)} {p:.2f}" for c, p in turn.get("posterior_top", []))
    tau = "" if turn.get("tau") is None else f" (threshold τ = {turn['tau']:.3g})"
    return (
        f"**Prediction set: {turn['set_size']} of {n_classes}**{tau}\n\n{members}\n\n"
        f"**Current guess:** {_cell(turn['guess'])} · most likely: {top}"
    )
