"""Figures and highlighted text built from results. No gradio import: testable on its own."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from backends.base import Generation
from core.text import html_text, md_text


def _hover(tok, i: int) -> str:
    alts = "<br>".join(f"{_visible(t)!s}: {p:.3f}" for t, p in tok.top)
    return (
        f"#{i} <b>{_visible(tok.text)}</b><br>p = {math.exp(tok.logprob):.4f}"
        f"<br>entropy {tok.entropy:.3f} nats · surprisal {-tok.logprob:.3f}"
        f"<br><i>top alternatives</i><br>{alts}"
    )


def _visible(text: str) -> str:
    """A token for a plotly label: escaped, with line breaks and spaces made visible."""
    return html_text(text).replace("\n", "⏎").replace(" ", "␣") or "∅"


def trace_figure(gen: Generation, title: str = "Per-token entropy and surprisal") -> go.Figure:
    """Entropy (raw next-token distribution) and surprisal per generated token."""
    x = list(range(len(gen.tokens)))
    labels = [_visible(t.text) for t in gen.tokens]
    hover = [_hover(t, i) for i, t in enumerate(gen.tokens)]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[t.entropy for t in gen.tokens],
            mode="lines+markers",
            name="entropy (nats)",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=[-t.logprob for t in gen.tokens],
            name="surprisal (nats)",
            opacity=0.45,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    truncated = " (top-k only: lower bounds)" if gen.truncated else ""
    fig.update_layout(
        title=title + truncated,
        height=360,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        xaxis={"tickmode": "array", "tickvals": x, "ticktext": labels, "title": "token"},
        yaxis={"title": "nats"},
        legend={"orientation": "h", "y": -0.25},
        bargap=0.2,
    )
    return fig


# Token entropies are coloured on one fixed scale, from 0 nats (clear) to this value and above
# (darkest), so that colours mean the same in every answer and every tab; the legend under the
# text says so (ui.components.results.token_highlights).
ENTROPY_COLOUR_MAX_NATS = 3.0


def entropy_highlights(
    gen: Generation, max_entropy: float = ENTROPY_COLOUR_MAX_NATS
) -> list[tuple[str, float]]:
    """(token text, score in [0, 1]) pairs for ``gr.HighlightedText`` in score mode: each
    token's entropy divided by ``max_entropy`` nats, capped at 1 (entropy is never negative,
    so no score is)."""
    top = max_entropy if max_entropy and max_entropy > 0 else ENTROPY_COLOUR_MAX_NATS
    return [(t.text, round(min(1.0, max(0.0, t.entropy) / top), 4)) for t in gen.tokens]


def cut_note(gen: Generation | None, max_new_tokens, *, short: bool = False) -> str | None:
    """A warning when an answer stopped at the token limit rather than where the model ended
    it (``finish_reason == "length"``), or ``None``; ``short`` for a list of answers."""
    if gen is None or gen.finish_reason != "length" or not gen.tokens:
        return None
    limit = f"{int(max_new_tokens)}-token" if max_new_tokens else "token"
    if short:
        return f"cut at the {limit} limit"
    return f"Cut at the {limit} limit: the answer may be unfinished (raise Max new tokens)."


def summary_markdown(summary, notes=()) -> str:
    """The trace's measures as a Markdown table, then the notes as warnings."""
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| tokens | {summary.n_tokens} |",
        f"| mean token entropy | {summary.mean_entropy:.3f} nats |",
        f"| max token entropy | {summary.max_entropy:.3f} nats |",
        f"| perplexity | {summary.perplexity:.3f} |",
        f"| sequence log-probability | {summary.sequence_logprob:.3f} |",
        f"| sequence probability | {summary.sequence_probability:.3g} |",
    ]
    text = "\n".join(lines)
    text += (
        "\n\nToken entropy is of the model's raw next-token distribution "
        "(temperature 1, no truncation); surprisal is −log p of the token produced."
    )
    for n in notes:
        text += f"\n\n⚠ {md_text(n)}"
    return text
