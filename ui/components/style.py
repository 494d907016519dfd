"""The page's own style sheet, shipped inside the page so that every way of serving it (``python
app.py``, the tests, a Space) gets the same rules."""

from __future__ import annotations

import gradio as gr

# Gradio's prose and table styles let a cell break anywhere ("0.0650 6", "valu e"). A cell may
# wrap at spaces only, so numbers and single words stay whole; long text still wraps.
APP_CSS = """
.gradio-container td, .gradio-container th,
.gradio-container td *, .gradio-container th * {
  overflow-wrap: normal !important;
  word-break: normal !important;
}
.gradio-container .prose table { display: block; overflow-x: auto; }
.entropy-legend { display: flex; align-items: center; gap: 0.5em; font-size: 0.85em; }
.entropy-legend .entropy-scale {
  display: inline-block; width: 12em; height: 0.9em; border: 1px solid #ccc;
  background: linear-gradient(to right, rgba(239, 68, 60, 0), rgba(239, 68, 60, 1));
}
"""


def style_sheet() -> gr.HTML:
    """An invisible block holding :data:`APP_CSS`; put it once near the top of the page."""
    return gr.HTML(f"<style>{APP_CSS}</style>", elem_id="confidant-style", padding=False)
