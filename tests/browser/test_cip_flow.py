"""The 20 Questions flows a person follows, in a real browser: think of an animal, answer every
question with Yes or No (the answers looked up in the bank, as an honest player would give
them), watch the prediction set shrink to the final guess; review the game; watch an automatic
game. The bank-oracle posterior makes each game deterministic."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# A short game (L = 6, 30 calibration histories per length, labels from the posterior) in which
# the oracle finds these animals (checked against the bank by the assertions below).
HIDDEN, AUTO_HIDDEN = "lion", "tiger"
QUESTION = re.compile(r"^Question (\d+): (.+)$")
SET_SIZE = re.compile(r"Prediction set: (\d+) of (\d+)")


def _open_with_short_settings(page, url: str):
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_role("tab", name="20 Questions", exact=True).click()
    panel = page.get_by_role("tabpanel").filter(has_text="conformal information pursuit")
    assert panel.get_by_role(
        "radio", name=re.compile("^Bank oracle")
    ).is_checked()  # the tiny model's default
    panel.get_by_role("radio", name="from the current posterior").check()
    panel.get_by_role("button", name="Calibration and game settings ▼").click()
    for label, value in (("calibration histories / length", 30), ("max questions L", 6)):
        box = panel.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Tab")
    return panel


def _set_size(panel) -> tuple[int, int]:
    text = panel.get_by_text(SET_SIZE).first.inner_text()
    size, total = SET_SIZE.search(text).groups()
    return int(size), int(total)


def test_human_game_to_the_final_guess_then_review(page, live_app, screenshot_dir):
    from store.games import get_game, list_games
    from uq.cip.class_sets import load_default_class_set

    bank = load_default_class_set()
    url, ctx = live_app
    panel = _open_with_short_settings(page, url)
    panel.get_by_role("tab", name="Play (you answer)").click()
    panel.get_by_role("button", name="I have an animal in mind: start").click()

    sizes, asked = [], []
    heading = panel.get_by_role("heading", name=QUESTION)
    while True:
        final = panel.get_by_role("heading", name=re.compile("^My final guess"))
        expect(heading.or_(final)).to_be_visible()
        if final.is_visible():
            break
        number, query = QUESTION.match(heading.inner_text()).groups()
        assert int(number) == len(asked) + 1
        size, total = _set_size(panel)
        assert total == bank.n_classes
        sizes.append(size)
        asked.append(query)
        answer = bank.answer(HIDDEN, query)  # "yes" or "no", as the bank says for a lion
        panel.get_by_role("button", name=answer.capitalize(), exact=True).click()
        # Wait until the page shows the next turn (or the end).
        expect(heading.filter(has_text=re.compile(f"^Question {len(asked)}:"))).to_have_count(0)
    sizes.append(_set_size(panel)[0])

    assert 1 <= len(asked) <= 6 and sizes[0] == bank.n_classes
    assert sizes[-1] < sizes[0] and sizes[-1] >= 1  # the set shrank and still holds an animal
    assert final.inner_text().endswith(HIDDEN)
    if len(asked) < 6:  # it stops as soon as the set holds one animal, and says so
        assert sizes[-1] == 1 and panel.get_by_text("single animal").first.is_visible()
    else:
        assert panel.get_by_text("Stopped because the question budget L was used").is_visible()
    # The turns table lists every question with the answer given; the plot has a bar per turn.
    turns = panel.locator("table").filter(has_text="bound (bits)")
    for query in asked:
        assert turns.get_by_text(query, exact=True).count() == 1
    game_plot = panel.locator(".js-plotly-plot").filter(has_text="set size |C|")
    expect(game_plot.locator(".barlayer .point")).to_have_count(len(asked) + 1)
    page.screenshot(path=str(screenshot_dir / "twenty_questions.png"), full_page=True)

    game = get_game(ctx.store, list_games(ctx.store)[0]["id"])
    assert game["status"] == "finished" and game["mode"] == "human"
    assert [t["query"] for t in game["turns"][1:]] == asked
    assert [t["set_size"] for t in game["turns"]] == sizes

    # Review the game, as stored, from the table of games.
    panel.get_by_role("tab", name="Review a game").click()
    panel.get_by_role("button", name="Refresh", exact=True).click()
    games = panel.get_by_role("grid").filter(has_text="final guess")
    games.get_by_role("gridcell", name=game["id"], exact=True).click()
    expect(panel.get_by_label("Game id", exact=True)).to_have_value(game["id"])
    panel.get_by_role("button", name="Review game", exact=True).click()
    panel.get_by_text("human game").wait_for()
    # the game view keeps its own "Final guess" line, hidden under the Play a game sub-tab
    assert panel.locator(f"text=Final guess: {HIDDEN} >> visible=true").count() == 1
    review_plot = panel.locator(".js-plotly-plot").filter(has_text="set size |C|").last
    expect(review_plot.locator(".barlayer .point")).to_have_count(len(asked) + 1)


def test_auto_play_game(page, live_app):
    from store.games import get_game, list_games

    url, ctx = live_app
    panel = _open_with_short_settings(page, url)
    panel.get_by_role("tab", name="Auto play").click()
    hidden = panel.get_by_label("Hidden animal")
    hidden.click()
    hidden.fill(AUTO_HIDDEN)
    page.get_by_role("option", name=AUTO_HIDDEN, exact=True).click()
    panel.get_by_role("button", name="Play automatically", exact=True).click()
    final = panel.get_by_role("heading", name=re.compile("^My final guess"))
    final.wait_for()
    assert final.inner_text().endswith(AUTO_HIDDEN)
    # The hidden animal is known, so the turns table ticks every correct guess.
    assert panel.get_by_text(f"{AUTO_HIDDEN} ✓").first.is_visible()
    game = get_game(ctx.store, list_games(ctx.store)[0]["id"])
    assert game["mode"] == "auto" and game["truth"] == AUTO_HIDDEN
    assert game["final_guess"] == AUTO_HIDDEN and game["status"] == "finished"
    assert _set_size(panel)[0] == game["turns"][-1]["set_size"]
