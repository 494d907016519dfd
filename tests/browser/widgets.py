"""Filling Gradio widgets from Playwright without racing the page."""

from __future__ import annotations


def set_number(scope, label: str, value, timeout_ms: float = 60_000) -> None:
    """Type into a slider's number box (or a plain number field) labelled ``label`` and commit
    it. Waits for the field to be shown first: a field inside an accordion that was just
    clicked open is not there yet, and looking only once picks the wrong locator."""
    slider_box = scope.get_by_label(f"number input for {label}", exact=True)
    plain = scope.get_by_label(label, exact=True)
    slider_box.or_(plain).first.wait_for(state="visible", timeout=timeout_ms)
    box = slider_box if slider_box.count() else plain
    box.fill(str(value))
    box.press("Tab")
