"""Figures, tables and text for Inv-Entropy runs. No gradio import: testable on its own.

Everything is rebuilt from an :class:`uq.inv.result.InvEntropyRun`, so a stored run
reopens in the History tab without a model.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.text import html_text, md_text
from ui.plots.trace import cut_note
from uq.inv.measures import MEASURE_BY_KEY, MEASURES
from uq.inv.options import SIMILARITIES
from uq.inv.result import InvEntropyRun, measure_values

INPUT_COLUMNS = ["#", "kind", "similarity to original", "input"]
RESPONSE_COLUMNS = ["input #", "replicate", "meaning cluster", "response", "note"]


def _short(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters, escaped for a plotly label (cut
    before escaping, so no entity is cut in half)."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return html_text(text if len(text) <= limit else text[: limit - 1] + "…")


def input_rows(run: InvEntropyRun) -> list[list]:
    """One row per input: index, original or perturbation, S_x[0, i], the text."""
    similarity = run.similarity_to_original
    return [
        [i, "original" if i == 0 else "perturbation", round(float(similarity[i]), 4), text]
        for i, text in enumerate(run.inputs)
    ]


def response_rows(run: InvEntropyRun) -> list[list]:
    """One row per response: input index, replicate, semantic cluster (over all), the text, and
    a note when the answer was cut at the token limit."""
    clusters = run.semantic_entropy.get("cluster_ids_all") or []
    gens, limit = run.generations or [], (run.params or {}).get("max_new_tokens")
    rows, at = [], 0
    for i, answers in enumerate(run.responses):
        for k, text in enumerate(answers):
            cut = (
                cut_note(gens[i][k], limit, short=True)
                if i < len(gens) and k < len(gens[i])
                else None
            )
            # known for a fresh run only: a stored run keeps its tokens elsewhere
            note = f"✂ {cut}" if cut else ""
            rows.append([i, k + 1, clusters[at] if at < len(clusters) else "", text, note])
            at += 1
    return rows


def heatmaps_figure(run: InvEntropyRun) -> go.Figure:
    """S_x, S_y and p(x_i | y_j) side by side (the last two averaged over the bootstraps)."""
    labels = [f"x{i}" for i in range(len(run.inputs))]
    answer_labels = [f"y{i}" for i in range(len(run.inputs))]
    first_answers = [row[0] if row else "" for row in run.responses]
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "S_x: similarity of inputs",
            "S_y: similarity of answers (bootstrap mean)",
            "p(x_i | y_j) (bootstrap mean)",
        ),
        horizontal_spacing=0.1,
    )
    panels = [
        (run.sim_x, labels, labels, run.inputs, run.inputs, "Blues", "S_x"),
        (run.mean_sim_y, answer_labels, answer_labels, first_answers, first_answers, "Greens",
         "S_y"),
        (run.mean_p_x_given_y, labels, answer_labels, run.inputs, first_answers, "Oranges",
         "p(x|y)"),
    ]  # fmt: skip
    for col, panel in enumerate(panels, start=1):
        matrix, x_labels, y_labels, x_texts, y_texts, scale, scale_title = panel
        values = np.asarray(matrix, dtype=float)
        hover = [
            [
                f"{y_labels[r]}: {_short(y_texts[r])}<br>{x_labels[c]}: {_short(x_texts[c])}"
                f"<br>value {values[r, c]:.4f}"
                for c in range(values.shape[1])
            ]
            for r in range(values.shape[0])
        ]
        fig.add_trace(
            go.Heatmap(
                z=values,
                x=x_labels,
                y=y_labels,
                colorscale=scale,
                # Each panel has its own scale, drawn just right of it.
                colorbar={
                    "title": {"text": scale_title, "side": "right"},
                    "x": fig.layout[f"xaxis{'' if col == 1 else col}"].domain[1] + 0.005,
                    "xanchor": "left",
                    "thickness": 10,
                    "len": 0.8,
                },
                hovertext=hover,
                hoverinfo="text",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(height=380, margin={"l": 30, "r": 40, "t": 60, "b": 30})
    return fig


def bootstrap_histogram(run: InvEntropyRun) -> go.Figure:
    """The per-bootstrap values of Inv-Entropy and NI-Entropy, with their means marked."""
    m = run.measures
    fig = go.Figure()
    for key, values in (
        ("inv_entropy", m.inv_entropy_per_bootstrap),
        ("ni_entropy", m.ni_entropy_per_bootstrap),
    ):
        name, mean = MEASURE_BY_KEY[key].label, m.values[key]
        fig.add_trace(go.Histogram(x=values, name=name, opacity=0.6, nbinsx=20))
        fig.add_vline(
            x=mean, line_dash="dash", annotation_text=f"{name} mean {mean:.3f}", line_width=1
        )
    fig.update_layout(
        barmode="overlay",
        title=f"Per-bootstrap values ({m.n_bootstraps} bootstraps, nats)",
        xaxis_title="value (nats)",
        yaxis_title="bootstraps",
        height=320,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )
    return fig


def _number(value) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def measures_markdown(run: InvEntropyRun) -> str:
    """Every measure of :data:`uq.inv.measures.MEASURES` with its value and one-line
    explanation, the meaning clusters, and the setup."""
    m, se, p = run.measures, run.semantic_entropy, run.params
    lines = ["| measure | value | what it says |", "|---|---|---|"]
    values = measure_values(run)
    for measure in MEASURES:
        lines.append(
            f"| **{measure.label}** | {_number(values[measure.key])} | "
            f"{md_text(measure.explanation)} |"
        )
    r = len(run.responses[0]) if run.responses else 0
    # Stored values are shown as text (a stored run may come from anyone).
    lines.append(
        f"\nSemantic entropy clusters the same answers by meaning: "
        f"{md_text(se.get('n_clusters_original'), empty='?')} clusters among the {r} answers to "
        f"the original, {md_text(se.get('n_clusters_all'), empty='?')} among all "
        f"{len(run.inputs) * r}; the likelihood-weighted "
        "values need the model's log-probabilities (— without them)."
    )
    source = md_text(run.perturbation.source)
    method = {"paraphrase": "LLM paraphrases", "gaap": "GAAP", "given": "your own list"}.get(
        run.perturbation.method, md_text(run.perturbation.method)
    )
    setup = (
        f"\n\nInputs: the question and {len(run.inputs) - 1} perturbations ({method}"
        + (f", substitutes from **{source}**" if run.perturbation.method == "gaap" else "")
        + f") · {r} answers each · similarity: {SIMILARITIES.get(p.get('similarity'), '?')} · "
        f"{md_text(m.n_bootstraps)} bootstraps · seed {md_text(p.get('seed'), empty='—')}"
    )
    if len(run.inputs) > 1:
        # The value every similarity being equal gives: a run near it separates nothing.
        setup += (
            f" · ln(n+1) = {math.log(len(run.inputs)):.4f}, Inv-Entropy when all inputs look alike"
        )
    if p.get("temperature") is not None:
        setup += f" · temperature {md_text(p.get('temperature'))}"
    rule = md_text(p.get("se_rule"), empty="the same similarity")
    setup += (
        f" · answers clustered for semantic entropy by {rule}."
        "\n\nEntropies in nats; higher means more uncertain (MAX-py-x is a confidence)."
    )
    return "\n".join(lines) + setup + rejected_markdown(run)


def rejected_markdown(run: InvEntropyRun) -> str:
    """The model's paraphrases that were rejected because they answered instead of asking
    (:func:`uq.inv.paraphrase.answer_instead_of_question`), each with its reason; empty when
    none was."""
    rejected = [r for r in run.perturbation.details.get("rejected") or [] if isinstance(r, dict)]
    if not rejected:
        return ""
    rounds = run.perturbation.details.get("rounds")
    asked = f" (asked {md_text(rounds)} times in all)" if isinstance(rounds, int) else ""
    items = "\n".join(
        f"- {md_text(r.get('text'), empty='∅')} — *{md_text(r.get('reason'), empty='?')}*"
        for r in rejected
    )
    return (
        f"\n\n**Rejected paraphrases: {len(rejected)}** — they answered the question instead of "
        f"asking it, so they are not among the inputs{asked}:\n\n{items}"
    )
