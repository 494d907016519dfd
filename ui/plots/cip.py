"""Figures and text for 20 Questions (C-IP) games and benchmarks, and the History view of a
stored game; plotly only, no gradio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.text import html_text, md_text
from uq.cip.conformal import METHOD_NAMES

STOP_REASONS = {
    "max_queries": "the question budget L was used",
    "bounds_settled": "the candidates' scores stopped differing (std < ε)",
    "no_questions_left": "no question was left",
    "single_class": "the prediction set holds a single animal",
}


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
            hovertext=[
                html_text(", ".join(map(str, t.get("set_members", [])[:12]))) for t in turns
            ],
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
        height=360,
        margin=dict(l=50, r=50, t=20, b=40),
        # Under the plot, where it has room (above it, the legend was cut off at the top).
        legend=dict(orientation="h", y=-0.3, yanchor="top", x=0),
        xaxis=dict(title="turn (answers so far)", dtick=1, tickformat="d"),
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
        xaxis=dict(title="turn", dtick=1, tickformat="d"),
        yaxis_title="coverage",
        yaxis_range=[0, 1.05],
    )
    return fig


def _cell(text: Any) -> str:
    """A class, question, answer or stored value as literal text in a Markdown line or cell."""
    return md_text(text)


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
            f"| {_cell(t['turn'])} | {_cell(t.get('query') or '(before any question)')} | "
            f"{_cell(t.get('answer') or '')} | {_cell(t['set_size'])} | {bound} | {_cell(guess)} |"
        )
    return "\n".join(lines)


EMPTY_SET = (
    "*Empty: no animal is as probable as the threshold τ calibrated for this many answers. "
    "The answers so far fit every animal less well than random histories of this length fit "
    "their own animal (a contradictory or unusual answer does this); conformal sets may be "
    "empty on up to a fraction α of histories. The current guess is still the most probable "
    "animal.*"
)


def set_markdown(turn: dict[str, Any], n_classes: int) -> str:
    """The current prediction set and the top of the posterior."""
    members = ", ".join(_cell(m) for m in turn.get("set_members", []))
    if not turn.get("set_members"):
        members = EMPTY_SET
    top = ", ".join(f"{_cell(c)} {p:.2f}" for c, p in turn.get("posterior_top", []))
    tau = "" if turn.get("tau") is None else f" (threshold τ = {turn['tau']:.3g})"
    return (
        f"**Prediction set: {_cell(turn['set_size'])} of {n_classes}**{tau}\n\n{members}\n\n"
        f"**Current guess:** {_cell(turn['guess'])} · most likely: {top}"
    )


def choice_note(step: dict[str, Any] | None) -> str:
    """Why this question, when the querier could not tell the candidates apart: every score
    equal (e.g. every imagined answer leaves the set empty), so the first unasked question in
    bank order was taken."""
    if not step or step.get("method") == "random":
        return ""
    scores = step.get("scores") or []
    if len(scores) > 1 and max(scores) - min(scores) <= 1e-12:
        what = "bound" if step.get("method") == "cip" else "expected entropy"
        return (
            f"\n\n*All {len(scores)} candidate questions scored the same {what} "
            f"({scores[0]:.3f} bits): no imagined answer changes the prediction set, so none "
            "is preferred and this is simply the first unasked question in bank order. IP, "
            "which scores the posterior itself, can still tell them apart.*"
        )
    return ""


def stop_text(reason: str | None, last: dict[str, Any]) -> str:
    """Why a game ended, in words; a one-animal set is named."""
    if reason == "single_class":
        return (
            f"Stopped because the prediction set holds a single animal, "
            f"**{_cell(last['guess'])}**: at the calibrated level nothing is left to tell apart."
        )
    return f"Stopped because {STOP_REASONS.get(reason or '', _cell(reason or '?'))}."


def review_markdown(game: dict[str, Any]) -> str:
    p = game.get("params", {})
    turns = game.get("turns", [])
    truth = game.get("truth")
    # Every stored field is shown as text: a class set, and so a game, may come from anyone.
    head = (
        f"**{_cell(game.get('mode', '?'))} game**, querier "
        f"{METHOD_NAMES.get(game['method'], '?')}, "
        f"posterior: {_cell(game.get('posterior_label') or p.get('posterior', '?'))}, "
        f"class set {_cell(game.get('class_set_name', '?'))}, α = {_cell(p.get('alpha', '?'))}, "
        f"hypothetical labels {_cell(p.get('hypotheses', '?'))}, "
        f"status {_cell(game.get('status', '?'))}"
    )
    if truth:
        head += f", hidden class **{_cell(truth)}**"
    final = _cell(turns[-1]["guess"]) if turns else "\\-"
    return f"{head}\n\nFinal guess: **{final}**\n\n" + turns_markdown(turns, truth=truth)


def render_cip_game(run: dict) -> dict:
    """History renderer for runs of kind ``cip_game`` (the whole game is in the result)."""
    result = run["result"]
    game = {
        "mode": result.get("mode"),
        "method": result.get("method"),
        "posterior_label": result.get("posterior"),
        "class_set_name": result.get("class_set"),
        "truth": result.get("truth"),
        "status": "finished" if result.get("finished") else "stopped",
        "params": run.get("params", {}),
        "turns": result.get("turns", []),
    }
    return {"markdown": review_markdown(game), "plot": game_figure(game["turns"]), "plot2": None}
