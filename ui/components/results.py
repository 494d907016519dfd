"""Result widgets and small event helpers shared by the tabs."""

from __future__ import annotations

from typing import Any

import gradio as gr


def token_highlights(label: str = "Tokens coloured by entropy") -> gr.HighlightedText:
    """The text of an answer, each token coloured by its entropy (values in [0, 1] from
    ``ui.plots.trace.entropy_highlights``)."""
    return gr.HighlightedText(label=label, combine_adjacent=False, show_legend=True)


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
