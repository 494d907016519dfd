"""The Semantic entropy flows a person follows, in a real browser: ask a question and read the
meaning clusters, the entailment heatmap and the measures; score pasted answers; evaluate the
bundled dataset and download its CSV."""

from __future__ import annotations

import csv
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.widgets import set_number
from ui.tabs.semantic_handlers import BUNDLED_DATASET

pytestmark = pytest.mark.browser


def _member_index(text: str) -> int:
    return int(text[1:].split(":", 1)[0])


def _latest_run(ctx, kind: str) -> dict:
    from store.runs import get_run, list_runs

    return get_run(ctx.store, list_runs(ctx.store, kind=kind)[0]["id"])


def _open(page, url: str, *tabs: str):
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    for name in tabs:
        page.get_by_role("tab", name=name, exact=True).click()
    return page.get_by_role("tabpanel").last


def test_ask_shows_clusters_heatmap_and_explained_measures(page, live_app, screenshot_dir):
    url, ctx = live_app
    panel = _open(page, url, "Semantic entropy", "Ask")
    panel.get_by_label("Question", exact=True).fill("What is the capital of France?")
    set_number(panel, "N answers", 4)
    set_number(panel, "Max new tokens", 6)
    panel.get_by_role("button", name="Sample and measure", exact=True).click()
    panel.get_by_text("Saved as run").wait_for()
    run = _latest_run(ctx, "semantic_entropy")
    assert run["params"]["n"] == 4

    # The clusters: each one's share as the person reads it, and every answer listed once.
    result = run["result"]
    ids = result["clustering"]["cluster_ids"]
    for c in sorted(set(ids)):
        share = ids.count(c) / len(ids)
        assert panel.get_by_text(f"C{c} · share {share:.2f}").first.is_visible()
    members = panel.locator("li").filter(has_text=re.compile(r"^#\d+: "))
    assert sorted(_member_index(t) for t in members.all_inner_texts()) == [0, 1, 2, 3]
    # The bar chart (one bar per cluster) and the NLI label heatmap (4 × 4).
    clusters_plot = panel.locator(".js-plotly-plot").filter(
        has_text="Meaning clusters and their probability"
    )
    clusters_plot.wait_for()
    bars = clusters_plot.locator(".barlayer .trace")
    expect(bars).to_have_count(2)  # share of answers, likelihood mass
    expect(bars.first.locator(".point")).to_have_count(len(set(ids)))
    heat = panel.locator(".js-plotly-plot").filter(has_text="Entailment labels")
    heat.wait_for()
    expect(heat.locator(".hm")).to_have_count(1)
    expect(heat.locator(".xtick")).to_have_count(4)
    # The measures table: a row per measure, each with its explanation.
    table = panel.locator("table").filter(has_text="what it says")
    assert table.get_by_text("Discrete semantic entropy").first.is_visible()
    assert table.locator("tbody tr").count() == len(result["measures"])
    assert panel.get_by_text("4 answers,").first.is_visible()
    # The reference answer and a token trace of it.
    reference = panel.get_by_label("Reference answer (temperature 0.1)")
    assert reference.input_value() == result["reference"]["text"]
    panel.locator(".js-plotly-plot").filter(has_text="Token trace of the reference").wait_for()
    page.screenshot(path=str(screenshot_dir / "semantic.png"), full_page=True)


def test_pasted_answers_are_clustered_by_meaning(page, live_app):
    url, ctx = live_app
    panel = _open(page, url, "Semantic entropy", "Pasted answers")
    panel.get_by_label("Question (optional)").fill("What is the capital of France?")
    panel.get_by_label("Answers", exact=True).fill("Paris\nIt is Paris.\nLondon")
    panel.get_by_label("Log-likelihoods, one per line (optional)").fill("-0.1\n-0.2\n-3")
    panel.get_by_role("button", name="Entailment ▼").click()
    panel.get_by_label("Embedding cosine similarity").check()
    panel.get_by_role("button", name="Measure", exact=True).click()
    panel.get_by_text("Saved as run").wait_for()
    # Paris / It is Paris. share one meaning, London another (embeddings, threshold 0.75).
    assert panel.get_by_text("C0 · share 0.67").first.is_visible()
    assert panel.get_by_text("C1 · share 0.33").first.is_visible()
    assert panel.get_by_text("London (log-lik -3.000)").first.is_visible()
    clusters_plot = panel.locator(".js-plotly-plot").filter(has_text="Meaning clusters")
    clusters_plot.wait_for()
    expect(clusters_plot.locator(".barlayer .trace").first.locator(".point")).to_have_count(2)
    panel.locator(".js-plotly-plot").filter(has_text="Entailment labels (embedding)").wait_for()
    run = _latest_run(ctx, "semantic_entropy")
    assert run["model"] == "(pasted answers)"
    assert run["result"]["texts"] == ["Paris", "It is Paris.", "London"]


def test_dataset_evaluation_shows_metrics_plots_and_downloads_csv(page, live_app):
    url, _ = live_app
    panel = _open(page, url, "Semantic entropy", "Evaluate a dataset")
    panel.get_by_label("Questions (first N)").fill("2")
    panel.get_by_label("Questions (first N)").press("Tab")
    set_number(panel, "N answers", 2)
    set_number(panel, "Max new tokens", 4)
    panel.get_by_role("button", name="Evaluate", exact=True).click()
    panel.get_by_text("2 questions · accuracy").wait_for()
    # The metrics table names the measures; both plots are drawn.
    metrics = panel.get_by_role("grid", name="Metrics per measure")
    metrics.get_by_text("auroc").first.wait_for(state="attached")
    metrics.get_by_text("discrete_semantic_entropy", exact=True).wait_for(state="attached")
    panel.get_by_role("grid", name="Per question").get_by_text("trivia-002").wait_for(
        state="attached"
    )
    panel.locator(".js-plotly-plot").filter(has_text="ROC").wait_for()
    panel.locator(".js-plotly-plot").filter(has_text="Accuracy vs fraction answered").wait_for()

    links = panel.locator("a[download]")
    names = [links.nth(i).get_attribute("download") for i in range(links.count())]
    assert sorted(names) == ["calibration.csv", "evaluation.json", "metrics.csv", "questions.csv"]
    with page.expect_download() as dl:
        panel.locator('a[download="questions.csv"]').click()
    with open(dl.value.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(BUNDLED_DATASET, encoding="utf-8") as f:
        bundled = [json.loads(line) for line in f][:2]
    assert [r["id"] for r in rows] == [b["id"] for b in bundled]
    assert [r["question"] for r in rows] == [b["question"] for b in bundled]
    assert all(r["discrete_semantic_entropy"] not in ("", None) for r in rows)
