"""Result widgets and small event helpers shared by the tabs."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.plots.trace import ENTROPY_COLOUR_MAX_NATS


def token_highlights(
    label: str = "Tokens coloured by entropy", *, legend: bool = True, **kwargs
) -> gr.HighlightedText:
    """The text of an answer, each token coloured by its entropy (values in [0, 1] from
    ``ui.plots.trace.entropy_highlights``). Gradio's own legend for scores runs from −1 to +1,
    which entropy never reaches, so it is replaced by a scale in nats: a gradient under the
    text, or (``legend=False``, for a box that is hidden and shown) words in the label."""
    scale = f"0 nats (clear) to {ENTROPY_COLOUR_MAX_NATS:g} nats or more (darkest)"
    hl = gr.HighlightedText(
        label=label if legend else f"{label}: {scale}",
        combine_adjacent=False,
        show_legend=False,
        elem_classes="entropy-highlights",
        **kwargs,
    )
    if legend:
        gr.HTML(
            '<div class="entropy-legend">Token entropy: <span>0 nats</span>'
            '<span class="entropy-scale"></span>'
            f"<span>{ENTROPY_COLOUR_MAX_NATS:g} nats or more</span></div>",
            padding=False,
        )
    return hl


def saved_note(run_id: str) -> str:
    """The status line after a run is stored."""
    return f"Saved as run `{run_id}` (History tab)."


def first_cell_of_selected_row(evt: gr.SelectData, data: Any):
    """Handler for a table's ``select`` event: the first cell (the id) of the clicked row, or
    ``gr.skip()`` when the click was not on a row."""
    try:
        row = evt.index[0]
        return data.iloc[row, 0] if hasattr(data, "iloc") else data[row][0]
    except Exception:  # noqa: BLE001
        return gr.skip()
