"""The Judge tab's reliability report in a real browser: run it on the authored set, see the
measure table and the three plots, and find the run saved for History."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from store.runs import list_runs

pytestmark = pytest.mark.browser


def test_reliability_report_runs_and_shows_table_and_plots(page, live_app, screenshot_dir):
    url, ctx = live_app
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_role("tab", name="Judge", exact=True).click()
    panel = page.get_by_role("tabpanel").last
    panel.get_by_text("Reliability report (position, length, spread, human agreement)").click()
    panel.get_by_role("button", name="Run reliability report").click()
    panel.get_by_text("Saved as run").wait_for(timeout=240_000)
    expect(panel.get_by_text("Score methods side by side", exact=True)).to_be_visible()
    expect(panel.get_by_role("cell", name="position flip rate", exact=True)).to_be_visible()
    for title in ("Flip rate per score method", "Score (expectation) vs length",
                  "Run-to-run spread per answer"):  # fmt: skip
        panel.locator(".js-plotly-plot").filter(has_text=title).wait_for(timeout=60_000)
    page.screenshot(path=str(screenshot_dir / "judge_reliability.png"), full_page=True)
    runs = list_runs(ctx.store, kind="judge_reliability")
    assert len(runs) == 1
    expect(panel.get_by_text(runs[0]["id"]).first).to_be_visible()
