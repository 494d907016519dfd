"""Figures and tables for semantic entropy and the evaluation harness. No gradio import."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.text import html_text, md_text
from ui.plots.trace import cut_note
from uq.evaluation.harness import METRIC_NAMES, EvaluationResult
from uq.measure_docs import range_text
from uq.semantic.measures import MEASURE_BY_KEY, MEASURES
from uq.semantic.result import SemanticEntropyResult

LABEL_NAMES = {-1: "not computed", 0: "contradiction", 1: "neutral", 2: "entailment"}


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cluster_figure(result: SemanticEntropyResult) -> go.Figure:
    """Bar per meaning cluster: share of answers and (when known) likelihood mass; hover lists
    the members."""
    clusters = result.clusters()
    x = [f"C{c['cluster']}" for c in clusters]
    hover = [
        "<br>".join(f"#{i}: {html_text(_short(result.texts[i], 60))}" for i in c["members"])
        for c in clusters
    ]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=x,
            y=[c["share"] for c in clusters],
            name="share of answers",
            hovertext=hover,
            hoverinfo="text+y",
        )
    )
    if any(c["likelihood_mass"] is not None for c in clusters):
        fig.add_trace(
            go.Bar(
                x=x,
                y=[c["likelihood_mass"] for c in clusters],
                name="likelihood mass",
                hovertext=hover,
                hoverinfo="text+y",
            )
        )
    fig.update_layout(
        title="Meaning clusters and their probability",
        barmode="group",
        height=340,
        yaxis={"title": "probability", "range": [0, 1]},
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def label_heatmap(result: SemanticEntropyResult) -> go.Figure:
    """The NLI label matrix (premise row, hypothesis column); −1 = not needed, not computed."""
    labels = np.array(result.clustering.labels)
    n = labels.shape[0]
    names = [f"#{i} C{result.clustering.cluster_ids[i]}" for i in range(n)]
    text = [
        [
            f"premise #{i}: {html_text(_short(result.texts[i]))}<br>hypothesis #{j}: "
            f"{html_text(_short(result.texts[j]))}<br>{LABEL_NAMES[int(labels[i, j])]}"
            for j in range(n)
        ]
        for i in range(n)
    ]
    colours = [
        [0.0, "#dddddd"], [0.25, "#dddddd"], [0.25, "#d62728"], [0.5, "#d62728"],
        [0.5, "#f2c94c"], [0.75, "#f2c94c"], [0.75, "#2ca02c"], [1.0, "#2ca02c"],
    ]  # fmt: skip
    fig = go.Figure(
        go.Heatmap(
            z=labels,
            x=names,
            y=names,
            zmin=-1.5,
            zmax=2.5,
            colorscale=colours,
            hovertext=text,
            hoverinfo="text",
            colorbar={
                "tickvals": [-1, 0, 1, 2],
                "ticktext": [LABEL_NAMES[k] for k in (-1, 0, 1, 2)],
            },
        )
    )
    method = html_text(result.params.get("entailment", "nli"))
    fig.update_layout(
        title=f"Entailment labels ({method}): row = premise, column = hypothesis",
        height=420,
        yaxis={"autorange": "reversed"},
        margin={"l": 60, "r": 10, "t": 50, "b": 40},
    )
    return fig


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}"


def measures_markdown(result: SemanticEntropyResult) -> str:
    """Every measure with its value, value / log N where it applies, and a one-line
    explanation; higher = more uncertain."""
    lines = [
        f"**{result.n} answers, {result.clustering.n_clusters} meaning clusters.** "
        "Higher = more uncertain; entropies in nats.",
        "",
        "| measure | value | range | ÷ log N | what it says |",
        "|---|---|---|---|---|",
    ]
    for key, entry in result.measures.items():
        m = MEASURE_BY_KEY.get(key)
        label = m.label if m else md_text(key)
        explanation = m.explanation if m else ""
        if entry.get("note"):
            explanation = f"*{md_text(entry['note'])}.* {explanation}"
        lines.append(
            f"| {label} | {_fmt(entry['value'])} | {range_text(m) if m else '—'} "
            f"| {_fmt(entry.get('per_log_n'))} | {explanation} |"
        )
    skipped = [m.label for m in MEASURES if m.key not in result.measures]
    if skipped:
        lines += ["", f"Not computed in this run (not selected): {', '.join(skipped)}."]
    work = result.work
    lines += [
        "",
        f"Work: {work.get('generate_calls', 0)} generate call(s), "
        f"{work.get('entailment_pairs', 0)} entailment pairs in "
        f"{work.get('entailment_calls', 0)} call(s), {work.get('cached_pairs', 0)} from cache, "
        f"{work.get('embedded_texts', 0)} texts embedded.",
    ]
    if result.likelihood_source:
        lines.append(f"Likelihoods: {md_text(result.likelihood_source)}.")
    lines += [f"⚠ {md_text(note)}" for note in result.notes]
    return "\n".join(lines)


def _cut(gen, limit) -> str:
    """ " ✂ …" after an answer that stopped at the token limit."""
    note = cut_note(gen, limit, short=True)
    return f" ✂ *{md_text(note)}*" if note else ""


def answers_markdown(result: SemanticEntropyResult) -> str:
    """The answers grouped by cluster, and the reference answer."""
    lines = []
    limit = result.params.get("max_new_tokens")
    if result.reference is not None:
        temp = md_text(result.params.get("reference_temperature"), empty="?")
        text = md_text(result.reference.text, empty="∅")
        lines.append(
            f"**Reference answer** (temperature {temp}): {text}{_cut(result.reference, limit)}"
        )
        lines.append("")
    for c in result.clusters():
        mass = c["likelihood_mass"]
        head = f"**C{c['cluster']}** · share {c['share']:.2f}"
        head += f" · likelihood mass {mass:.2f}" if mass is not None else ""
        lines.append(head)
        for i in c["members"]:
            extra = ""
            if result.log_likelihoods is not None:
                extra = f" (log-lik {result.log_likelihoods[i]:.3f})"
            sample = result.samples[i] if i < len(result.samples) else None
            extra += _cut(sample, limit)
            lines.append(f"- #{i}: {md_text(result.texts[i], empty='∅')}{extra}")
        lines.append("")
    return "\n".join(lines)


def metrics_rows(result: EvaluationResult) -> tuple[list[str], list[list]]:
    """A compact table for the UI: per measure, each metric as "estimate [low, high]"."""
    headers = ["measure", "n", *METRIC_NAMES, "note"]
    rows = []
    for row in result.metric_table()[1]:
        cells = [row["measure"], row["n"]]
        for m in METRIC_NAMES:
            est = row[m]
            cells.append(
                "—" if est is None else f"{est:.3f} [{row[f'{m}_low']:.3f}, {row[f'{m}_high']:.3f}]"
            )
        rows.append([*cells, row.get("note") or ""])
    return headers, rows


def roc_figure(result: EvaluationResult, top: int = 8) -> go.Figure:
    """ROC curves of the measures (predicting a wrong answer), best AUROC first."""
    fig = go.Figure()
    ranked = sorted(
        (m for m in result.curves if "fpr" in result.curves[m]),
        key=lambda m: -(result.metrics[m]["auroc"] or {"estimate": 0})["estimate"],
    )
    for m in ranked[:top]:
        auc = result.metrics[m]["auroc"]
        fig.add_trace(
            go.Scatter(
                x=result.curves[m]["fpr"],
                y=result.curves[m]["tpr"],
                mode="lines",
                name=f"{m} ({auc['estimate']:.3f})" if auc else m,
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot"}))
    fig.update_layout(
        title="ROC: uncertainty as a detector of wrong answers",
        xaxis={"title": "false positive rate"},
        yaxis={"title": "true positive rate"},
        height=420,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )
    return fig


def rejection_figure(result: EvaluationResult, top: int = 8) -> go.Figure:
    """Accuracy of the answers kept when the most uncertain are refused."""
    fig = go.Figure()
    ranked = sorted(
        result.curves,
        key=lambda m: -(result.metrics[m]["aurac"] or {"estimate": 0})["estimate"],
    )
    for m in ranked[:top]:
        curve = result.curves[m]
        fig.add_trace(go.Scatter(x=curve["fraction"], y=curve["accuracy"], mode="lines", name=m))
    fig.update_layout(
        title="Accuracy vs fraction answered (the rest refused as most uncertain)",
        xaxis={"title": "fraction answered"},
        yaxis={"title": "accuracy"},
        height=420,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )
    return fig
