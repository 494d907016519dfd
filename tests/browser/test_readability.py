"""What a person reads on the page: no number broken across lines, no label on another, no
legend cut off, whole turns, an entropy scale in nats, tokens as text (issue 12.9). Figures are
drawn by plotly.js in chromium from the same functions the tabs call."""

from __future__ import annotations

import re

import pytest

from ui.plots.cip import coverage_figure, game_figure
from ui.plots.judge import consistency_figure, score_distribution_figure

pytestmark = pytest.mark.browser

# Every text element of a drawn figure: its box, and whether two of them overlap.
OVERLAPS_JS = """(svg) => {
  const boxes = [...svg.querySelectorAll('text')]
    .filter(t => t.textContent.trim() && t.getBBox().width > 0)
    .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
  const hits = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, r] = boxes[i], [b, s] = boxes[j];
    const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
    const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
    if (w > 1 && h > 1) hits.push([a, b]);
  }
  return hits;
}"""

# Words and numbers in table cells (text without a space) drawn on more than one line: broken.
BROKEN_CELLS_JS = """() => {
  const out = [];
  for (const c of document.querySelectorAll('td, th')) {
    if (!c.offsetParent) continue;
    const walk = document.createTreeWalker(c, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const text = n.textContent.trim();
      if (!text || /\\s/.test(text)) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
        .map(r => Math.round(r.top)));
      if (lines.size > 1) out.push(text);
    }
  }
  return out;
}"""


def _draw(page, fig, width: int = 640):
    """The figure drawn by plotly.js at ``width`` pixels; returns its main svg."""
    page.set_content(fig.to_html(include_plotlyjs=True, full_html=True, default_width=width))
    svg = page.locator("svg.main-svg").first
    svg.wait_for()
    return svg


def test_judge_scores_close_together_have_no_overlapping_labels(page, screenshot_dir):
    scores = {"expectation": 2.61, "trustjudge": 2.58, "geval": 2.63, "mass": 0.3}
    fig = score_distribution_figure({1: 0.3, 2: 0.2, 3: 0.3, 4: 0.1, 5: 0.1}, scores)
    svg = _draw(page, fig, width=520)
    page.screenshot(path=str(screenshot_dir / "judge_scores_plot.png"))
    assert svg.evaluate(OVERLAPS_JS) == []
    legend = page.locator("g.legend").text_content()
    assert "expectation 2.61" in legend and "TrustJudge 2.58" in legend


def test_consistency_plot_labels_and_legend_do_not_overlap(page, screenshot_dir):
    ntr = {3: {"ratio": 0.2, "circular_ratio": 0.1, "equivalence_ratio": 0.1}}
    table = [
        {"method": m, "conflict_ratio": 0.1 * i, "ntr": ntr}
        for i, m in enumerate(["baseline", "geval", "trustjudge", "trustjudge_ppl"])
    ]
    svg = _draw(page, consistency_figure(table, ks=(3,)), width=700)
    page.screenshot(path=str(screenshot_dir / "judge_consistency_plot.png"))
    assert svg.evaluate(OVERLAPS_JS) == []


def _inside(inner, outer) -> bool:
    return (
        inner["x"] >= outer["x"] - 1
        and inner["y"] >= outer["y"] - 1
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def test_twenty_questions_plot_legend_is_whole_and_turns_are_integers(page, screenshot_dir):
    turns = [
        {"turn": t, "set_size": max(1, 33 - 9 * t), "bound": 3.0 - 0.7 * t, "set_members": []}
        for t in range(4)
    ]
    svg = _draw(page, game_figure(turns))
    page.screenshot(path=str(screenshot_dir / "cip_game_plot.png"))
    assert _inside(page.locator("g.legend").bounding_box(), svg.bounding_box())
    assert svg.evaluate(OVERLAPS_JS) == []
    ticks = page.locator("g.xtick text").all_text_contents()
    assert ticks == ["0", "1", "2", "3"]
    _draw(page, coverage_figure([{"method": "cip", "coverage_per_turn": [0.9, 0.95, 1.0]}]))
    assert page.locator("g.xtick text").all_text_contents() == ["1", "2", "3"]


def _visible(page, text: str) -> bool:
    """Whether ``text`` is shown in the open tab (other tabs keep theirs, hidden)."""
    return page.locator(f"text={text} >> visible=true").count() > 0


def _latest_run(ctx, kind: str) -> dict:
    from store.runs import get_run

    query = f"select id from runs where kind = '{kind}' order by created desc limit 1"
    return get_run(ctx.store, ctx.store.read(lambda db: next(db.query(query)))["id"])


def test_answers_tables_and_history_read_cleanly(page, live_app, screenshot_dir):
    url, ctx = live_app
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_label("Question").first.fill("What is the capital of France?")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Saved as run").first.wait_for()
    run = _latest_run(ctx, "trace")
    # the tiny model's byte-level tokenizer marks spaces "Ġ" and line breaks "Ċ" in its
    # vocabulary; the page shows the text those tokens decode to
    page.locator(".js-plotly-plot").first.wait_for()
    shown = page.locator("body").inner_text()
    shown += " ".join(page.locator("g.xtick text").all_text_contents())
    assert not {"Ġ", "Ċ", "▁"} & set(shown)
    # the tiny model never stops by itself: the answer ran into the 64-token limit
    assert run["result"]["generation"]["finish_reason"] == "length"
    assert _visible(page, "Cut at the 64-token limit")
    # the entropy scale is in nats from 0, not Gradio's −1 … +1
    legend = page.locator(".entropy-legend").first
    assert "0 nats" in legend.inner_text() and "3 nats or more" in legend.inner_text()
    assert page.get_by_test_id("highlighted-text:color-legend").count() == 0
    page.screenshot(path=str(screenshot_dir / "readable_generate.png"), full_page=True)

    page.get_by_role("tab", name="Semantic entropy").click()
    page.get_by_label("Question").nth(1).fill("What is the capital of France?")
    page.get_by_role("button", name="Sample and measure").click()
    page.get_by_text(re.compile(r"10 answers, \d+ meaning cluster")).wait_for()
    assert page.get_by_text("Discrete semantic entropy").first.is_visible()
    assert page.evaluate(BROKEN_CELLS_JS) == []
    assert _visible(page, "cut at the 64-token limit")
    page.screenshot(path=str(screenshot_dir / "readable_semantic.png"), full_page=True)

    page.get_by_role("tab", name="History").click()
    page.get_by_label("Run id").fill(run["id"])
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text("trace ·").wait_for()
    assert _visible(page, "Cut at the 64-token limit")
    # a trace has one plot: no empty box for a second one
    assert page.get_by_text("Second plot").count() == 0
    assert page.get_by_text("0 nats (clear) to 3 nats or more").is_visible()
    assert page.evaluate(BROKEN_CELLS_JS) == []
    page.screenshot(path=str(screenshot_dir / "readable_history.png"), full_page=True)


def test_twenty_questions_benchmark_and_review_are_apart_from_the_game(
    page, live_app, screenshot_dir
):
    url, _ctx = live_app
    page.goto(url)
    page.get_by_role("tab", name="20 Questions").click()
    start = page.get_by_role("button", name="I have an animal in mind: start")
    start.wait_for()
    # one row of sub-tabs: the game, the benchmark, the review; only the game is shown
    play = page.get_by_role("tab", name="Play a game")
    bench = page.get_by_role("tab", name="Benchmark")
    review = page.get_by_role("tab", name="Review a game")
    same_row = "(a, b) => a.parentElement === b.parentElement"
    assert play.evaluate(same_row, bench.element_handle())
    assert play.evaluate(same_row, review.element_handle())
    run_bench = page.get_by_role("button", name="Run benchmark")
    assert not run_bench.is_visible() and not _visible(page, "Review a stored game")
    bench.click()
    run_bench.wait_for()
    assert page.get_by_role("heading", name="Benchmark: every class, each querier").is_visible()
    assert not start.is_visible()
    assert not _visible(page, "Set size and entropy bound per turn")
    page.screenshot(path=str(screenshot_dir / "cip_benchmark_tab.png"), full_page=True)
    review.click()
    page.get_by_role("heading", name="Review a stored game").wait_for()
    assert not run_bench.is_visible() and not start.is_visible()


def test_twenty_questions_benchmark_table_keeps_numbers_whole(page, live_app, screenshot_dir):
    url, _ctx = live_app
    page.set_viewport_size({"width": 900, "height": 1000})  # a narrow window squeezes columns
    page.goto(url)
    page.get_by_role("tab", name="20 Questions").click()
    page.get_by_role("tab", name="Benchmark").click()
    page.get_by_label("Only these classes (comma-separated; empty = all)").fill("lion, penguin")
    page.get_by_role("button", name="Run benchmark").click()
    table = page.get_by_role("grid").filter(has_text="Success rate")
    table.get_by_role("gridcell", name="C-IP").first.wait_for(timeout=300_000)
    page.locator(".js-plotly-plot >> visible=true").first.wait_for()
    page.screenshot(path=str(screenshot_dir / "cip_benchmark_table.png"), full_page=True)
    assert page.evaluate(BROKEN_CELLS_JS) == []
