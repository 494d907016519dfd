"""The Generate → History flow a person follows, in a real browser."""

import csv

import pytest

pytestmark = pytest.mark.browser


def shown_prompt_is(page, sent: str, shot) -> None:
    """Open the visible "Prompt sent to the model" accordion and read its code box: every line
    of ``sent``, as plain text."""
    page.get_by_text("Prompt sent to the model").locator("visible=true").first.click()
    box = page.locator(".cm-content").locator("visible=true").filter(has_text="<|im_start|>")
    box.first.wait_for()
    assert box.first.inner_text().strip() == sent.strip()
    page.screenshot(path=str(shot), full_page=True)


def test_question_to_rendered_trace_then_history(page, live_app, screenshot_dir):
    url, ctx = live_app
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_label("Question").first.fill("What is the capital of France?")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Saved as run").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.get_by_text("mean token entropy").is_visible()
    page.screenshot(path=str(screenshot_dir / "generate.png"), full_page=True)
    sent = ctx.backends.generator().format_prompt("What is the capital of France?")
    assert "<|im_start|>" in sent  # the chat template, shown as the characters it is
    shown_prompt_is(page, sent, screenshot_dir / "generate_prompt.png")

    page.get_by_role("tab", name="History").click()
    page.get_by_role("button", name="Refresh").click()
    # The browser tests share one app: other flows store runs too.
    latest_trace = "select id from runs where kind = 'trace' order by created desc limit 1"
    run_id = ctx.store.read(lambda db: next(db.query(latest_trace)))["id"]
    page.get_by_text(run_id).first.wait_for(state="attached")
    page.get_by_label("Run id").fill(run_id)
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text("trace ·").wait_for()
    page.screenshot(path=str(screenshot_dir / "history.png"), full_page=True)
    shown_prompt_is(page, sent, screenshot_dir / "history_prompt.png")

    with page.expect_download() as dl:
        page.get_by_role("button", name="Export runs (CSV)").click()
        page.locator("a[download]").first.click()
    path = dl.value.path()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    mine = [r for r in rows if r["id"] == run_id]
    assert len(rows) == ctx.store.read(lambda db: db["runs"].count)
    assert [r["title"] for r in mine] == ["What is the capital of France?"]
