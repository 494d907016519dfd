"""Stored HTML injection, in a real browser: a run, judge items, annotator names and a 20
Questions game planted in the store with a fake login form, a remote image and a javascript:
link are opened where another annotator would open them (History, the Judge tab, the agreement
table, the game review). Each shows as text, no such element is in the page, and no request
leaves for the planted address."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from store.runs import list_runs, save_run
from tests.ui.planted import (
    FORM,
    IMG,
    LINK,
    NAMES,
    PAYLOAD,
    plant_game,
    planted_items,
    planted_trace,
)
from ui.tabs.judge_handlers import JudgeHandlers

pytestmark = pytest.mark.browser

MARKUP = "form, input[type=password], img[src*='127.0.0.1:9'], a[href^='javascript']"
PLANTED_ADDRESS = "127.0.0.1:9/"


def plant(ctx, folder) -> dict:
    """Everything planted through the store and the handlers, before the page opens."""
    trace = planted_trace()
    trace_id = save_run(
        ctx.store, kind="trace", model=IMG, params={}, result=trace.to_dict(), title=PAYLOAD,
        generations=[("answer", trace.generation)], annotator=NAMES[1],
    )  # fmt: skip
    items_path = planted_items(folder)
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Import file", str(items_path), "single")
    for name in NAMES:
        for index, score in ((1, 2), (2, 4)):
            request = SimpleNamespace(username=None, session_hash=f"planted-{len(name)}")
            out = h.show_item(items, index, 5, True, 4, False, request)
            h.submit(items, out[8], out[9], out[10], score, None, FORM, name, request)
    judge_run = next(
        r
        for r in list_runs(ctx.store, kind="judge")
        if (r["title"], r["annotator"]) == (PAYLOAD, NAMES[1])
    )
    return {
        "trace": trace_id,
        "judge": judge_run["id"],
        "game": plant_game(ctx.store),
        "items": items_path,
    }


def no_markup(page) -> None:
    expect(page.locator(MARKUP)).to_have_count(0)


def shown(scope, text: str) -> None:
    """``text`` is visible, as text, in one of the Markdown views of ``scope``."""
    expect(scope.locator(".prose").get_by_text(text, exact=False).first).to_be_visible()


def test_planted_markup_is_shown_as_text_and_fires_no_request(
    page, live_app, tmp_path, screenshot_dir
):
    url, ctx = live_app
    ids = plant(ctx, tmp_path)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()

    # History: the runs table lists the planted titles; the trace run and a judge run open.
    page.get_by_role("tab", name="History", exact=True).click()
    history = page.get_by_role("tabpanel").filter(has_text="Every run is saved")
    expect(history.get_by_role("gridcell", name=PAYLOAD).first).to_be_visible()
    history.get_by_label("Run id").fill(ids["trace"])
    history.get_by_role("button", name="Open", exact=True).click()
    shown(history, f"Question: {PAYLOAD}")
    shown(history, f"Answer: {FORM} {IMG} {LINK}")
    history.locator(".js-plotly-plot").first.wait_for()
    no_markup(page)
    page.screenshot(path=str(screenshot_dir / "injection_history.png"), full_page=True)
    history.get_by_label("Run id").fill(ids["judge"])
    history.get_by_role("button", name="Open", exact=True).click()
    shown(history, f"Human ({NAMES[1]}): 2 / 5")
    shown(history, f"Question: {PAYLOAD}")
    shown(history, f"Response: {LINK}")  # a line break, then the second line
    shown(history, FORM)
    no_markup(page)

    # The Judge tab: the planted items file, an item shown with the judge visible, and the
    # agreement table and summary naming the planted annotators.
    page.get_by_role("tab", name="Judge", exact=True).click()
    judge = page.get_by_role("tabpanel").filter(has_text="Judge answers beside the LLM judge")
    judge.get_by_role("radio", name="Import file").check()
    judge.locator("input[type=file]").first.set_input_files(str(ids["items"]))
    judge.get_by_role("button", name="Load items", exact=True).click()
    judge.get_by_text("Loaded 2 single item(s) from single.csv").wait_for()
    judge.get_by_label("Blind mode (hide the judge until I answer)").uncheck()
    judge.get_by_text("Judge settings").click()
    judge.get_by_label("Direct score (no rationale)").check()
    judge.get_by_role("button", name="Show item", exact=True).click()
    shown(judge, f"Item 1 of 2 · {PAYLOAD} · single")
    expect(judge.get_by_label("Question", exact=True)).to_have_value(PAYLOAD)
    judge.get_by_text("Agreement and export").click()
    judge.get_by_role("button", name="Compute agreement").click()
    for name in NAMES:
        expect(judge.get_by_role("gridcell", name=name, exact=True).first).to_be_visible()
        shown(judge, name)
    no_markup(page)
    page.screenshot(path=str(screenshot_dir / "injection_judge.png"), full_page=True)

    # 20 Questions: the stored game in the games table and in its review.
    page.get_by_role("tab", name="20 Questions", exact=True).click()
    cip = page.get_by_role("tabpanel").filter(has_text="conformal information pursuit")
    cip.get_by_role("tab", name="Review a game").click()
    cip.get_by_role("button", name="Refresh", exact=True).click()
    games = cip.get_by_role("grid").filter(has_text="final guess")
    expect(games.get_by_role("gridcell", name=IMG, exact=True).first).to_be_visible()
    cip.get_by_label("Game id", exact=True).fill(ids["game"])
    cip.get_by_role("button", name="Review game", exact=True).click()
    shown(cip, f"posterior: {FORM}")
    shown(cip, f"class set {LINK}")
    shown(cip, PAYLOAD)
    no_markup(page)
    page.screenshot(path=str(screenshot_dir / "injection_cip.png"), full_page=True)

    assert not [u for u in requests if PLANTED_ADDRESS in u]
