"""A job past the per-user cap is refused with a message the page shows (and nothing waits)."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.browser


def test_a_job_past_the_cap_shows_the_busy_message(
    page, tmp_path, tiny_lm_dir, tiny_nli_dir, monkeypatch, screenshot_dir
):
    import ui.tabs.generate as generate_tab
    from backends.registry import BackendConfig, Backends
    from store.db import Store
    from tests.helpers import serving
    from ui.app import build_app
    from ui.components.jobs import JobLimiter
    from ui.context import AppContext

    gate, started = threading.Event(), threading.Event()
    real = generate_tab.run_trace

    def held(lm, question, params, **kwargs):
        started.set()
        assert gate.wait(120), "the test never opened the gate"
        return real(lm, question, params, **kwargs)

    monkeypatch.setattr(generate_tab, "run_trace", held)
    backends = Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(tiny_nli_dir)))
    ctx = AppContext(backends=backends, store=Store(tmp_path / "app.db"), jobs=JobLimiter(1))
    try:
        with serving(build_app(ctx)) as url:
            page.goto(url)
            page.get_by_label("Question").first.fill("What is the capital of France?")
            page.get_by_role("button", name="Generate", exact=True).click()
            assert started.wait(60), "the first job never started"
            page.get_by_role("tab", name="Semantic entropy").click()
            page.get_by_role("tab", name="Pasted answers").click()
            page.get_by_label("Answers", exact=True).fill("Paris\nLondon")
            page.get_by_role("button", name="Measure", exact=True).click()
            page.get_by_text("Busy: you already have 1 job(s) queued or running").wait_for()
            page.screenshot(path=str(screenshot_dir / "busy.png"), full_page=True)
            gate.set()
            deadline = time.monotonic() + 120
            while ctx.jobs.total() and time.monotonic() < deadline:  # Generate ends
                time.sleep(0.1)
            page.get_by_role("button", name="Measure", exact=True).click()
            page.locator("text=Saved as run >> visible=true").first.wait_for()
    finally:
        gate.set()
