"""A judging round as a person does it, in a real browser: a name, the demo items, a blind score
with a note, a blind pairwise preference, then the CSV download, whose content is checked."""

from __future__ import annotations

import csv
import json

import pytest
from playwright.sync_api import expect

from store.judgements import list_judgements

pytestmark = pytest.mark.browser

ANNOTATOR = "Zoë browser"
# A comma, quotes, a newline, non-ASCII text and a leading "=": a spreadsheet formula if the
# export did not neutralise it.
NOTE = '=HYPERLINK("http://evil.example","click"), says "Zoë" — naïve ☕\nsecond line'


def _judge_hidden(panel) -> None:
    expect(panel.get_by_text("The judge is hidden until you save")).to_be_visible()
    expect(panel.locator(".js-plotly-plot")).to_have_count(0)
    assert "G-Eval" not in panel.inner_text() and "perplexity" not in panel.inner_text()


def test_judging_round_with_blind_mode_and_csv_download(page, live_app, screenshot_dir):
    url, ctx = live_app
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_role("tab", name="Judge", exact=True).click()
    panel = page.get_by_role("tabpanel").last
    panel.get_by_label("Your name", exact=True).fill(ANNOTATOR)
    assert panel.get_by_label("Blind mode (hide the judge until I answer)").is_checked()
    panel.get_by_text("Judge settings").click()
    panel.get_by_label("Direct score (no rationale)").check()

    # A single item, blind: the judge's distribution appears only once the score is saved.
    panel.get_by_role("button", name="Load items", exact=True).click()
    panel.get_by_text("Loaded 50 single item(s)").wait_for()
    panel.get_by_role("button", name="Show item", exact=True).click()
    panel.get_by_text("of 50").wait_for()
    _judge_hidden(panel)
    # No score is preset: saving before picking one is refused and stores nothing.
    three = panel.get_by_role("radio", name="3", exact=True)
    expect(three).not_to_be_checked()
    panel.get_by_role("button", name="Save my judgement").click()
    page.get_by_text("Give your score before saving").first.wait_for()
    assert list_judgements(ctx.store, annotator=ANNOTATOR) == []
    three.check()
    panel.get_by_label("Note (optional)").fill(NOTE)
    panel.get_by_role("button", name="Save my judgement").click()
    panel.get_by_text("on item 1 (3 / 5)").wait_for()
    single = list_judgements(ctx.store, annotator=ANNOTATOR)[0]
    scores = json.loads(single["scores"])
    chart = panel.locator(".js-plotly-plot").filter(has_text="Judge · 1..5")
    chart.wait_for()
    expect(chart.locator(".barlayer .trace").first.locator(".point")).to_have_count(5)
    expect(panel.get_by_text(f"{scores['expectation']:.3f}").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "judge.png"), full_page=True)

    # A pairwise item, blind: the verdict probabilities in both orders after the preference.
    panel.get_by_role("radio", name="pairwise", exact=True).check()
    panel.get_by_role("button", name="Load items", exact=True).click()
    panel.get_by_text("Loaded 100 pairwise item(s)").wait_for()
    panel.get_by_role("button", name="Show item", exact=True).click()
    panel.get_by_text("of 100").wait_for()
    expect(panel.get_by_label("Response B", exact=True)).to_be_visible()
    _judge_hidden(panel)
    panel.get_by_label("Note (optional)").fill("")
    panel.get_by_role("radio", name="B", exact=True).check()
    panel.get_by_role("button", name="Save my judgement").click()
    panel.get_by_text("on item 1 (second better)").wait_for()
    verdicts = panel.locator(".js-plotly-plot").filter(has_text="verdict probabilities")
    verdicts.wait_for()
    expect(verdicts.locator(".barlayer .trace")).to_have_count(2)  # both presentation orders
    expect(panel.get_by_role("cell", name="order 2 (swapped back)")).to_be_visible()
    pair = json.loads(list_judgements(ctx.store, annotator=ANNOTATOR)[1]["judge"])
    first_a = f"{pair['first_order']['A']:.3f}"
    expect(panel.get_by_role("cell", name=first_a, exact=True).first).to_be_visible()

    # The export button, then the downloaded file itself.
    panel.get_by_text("Agreement and export").click()
    with page.expect_download() as download:
        panel.get_by_role("button", name="Export judgements").click()
        panel.locator("a[download]").first.click()
    with open(download.value.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["kind"], r["annotator"]) for r in rows] == [
        ("single", ANNOTATOR),
        ("pairwise", ANNOTATOR),
    ]
    first, second = rows
    assert float(first["human_score"]) == 3 and first["human_preference"] == ""
    assert first["note"] == "'" + NOTE  # round-tripped, the formula neutralised
    assert first["blind"] == "1" and first["scale"] == "5"
    distribution = json.loads(first["judge"])["distribution"]
    assert sorted(distribution, key=int) == ["1", "2", "3", "4", "5"]
    assert sum(distribution.values()) == pytest.approx(1.0)
    assert float(first["score_expectation"]) == pytest.approx(scores["expectation"])
    assert second["human_preference"] == "B" and second["human_score"] == ""
    judge = json.loads(second["judge"])
    for order in ("first_order", "second_order_swapped"):
        assert sum(judge[order].values()) == pytest.approx(1.0)
