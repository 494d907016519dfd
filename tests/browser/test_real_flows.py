"""Every tab's main flow once in a real browser with the embedded real model (smollm2-135m,
SmolLM2-135M-Instruct): small N and short answers, English text and real entropies. These
flows write the README's screenshots (``python tests/browser/screenshots.py``) and the wall
time of each main action, from the click to the saved result, to ``timings.json`` beside
them."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.widgets import set_number

pytestmark = [pytest.mark.browser, pytest.mark.real]

QUESTION = "What is the capital of France?"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def real_app(tmp_path_factory, screenshot_dir):
    """The whole app as ``python app.py`` serves it by default: the embedded real model,
    embedding entailment (no NLI model offline), MiniLM embeddings."""
    from backends.embedded import is_prepared
    from backends.registry import BackendConfig, Backends
    from store.db import Store
    from tests.helpers import serving
    from ui.app import build_app
    from ui.context import AppContext

    if not is_prepared():
        message = "the embedded model is not prepared: run python -m backends.embedded"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    backends = Backends(BackendConfig(model="smollm2-135m"))
    backends.generator()  # loaded once here, not inside the first flow's timing
    backends.embedder()
    ctx = AppContext(backends=backends, store=Store(tmp_path_factory.mktemp("db") / "app.db"))
    with serving(build_app(ctx)) as url:
        yield url, ctx
    (screenshot_dir / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
    print("\nwall time of each main action (s):", json.dumps(TIMINGS))


def _open(page, url: str, *tabs: str):
    page.goto(url)
    page.get_by_text("Embedded real model").wait_for()
    for name in tabs:
        page.get_by_role("tab", name=name, exact=True).click()
    return page.get_by_role("tabpanel").last


def _timed(name: str, click, done) -> None:
    started = time.perf_counter()
    click()
    done()
    TIMINGS[name] = round(time.perf_counter() - started, 2)


def _runs(ctx) -> list[dict]:
    from store.runs import list_runs

    return list_runs(ctx.store)


def _latest_run(ctx, kind: str) -> dict:
    from store.runs import get_run, list_runs

    return get_run(ctx.store, list_runs(ctx.store, kind=kind)[0]["id"])


def test_generate_answers_in_english_then_history(page, real_app, screenshot_dir):
    url, ctx = real_app
    page.goto(url)
    page.get_by_text("Embedded real model").wait_for()
    assert page.get_by_text("generator smollm2-135m").first.is_visible()
    page.get_by_label("Question").first.fill(QUESTION)
    _timed(
        "generate",
        lambda: page.get_by_role("button", name="Generate", exact=True).click(),
        lambda: page.get_by_text("Saved as run").wait_for(timeout=600_000),
    )
    answer = page.get_by_label("Answer", exact=True).input_value()
    assert "Paris" in answer
    run = _latest_run(ctx, "trace")
    entropies = [t["entropy"] for t in run["result"]["generation"]["tokens"]]
    assert max(entropies) > 0.0  # a real model is unsure of some token
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(screenshot_dir / "generate.png"), full_page=True)

    page.get_by_role("tab", name="History").click()
    history = page.get_by_role("tabpanel").filter(has_text="Every run is saved")
    history.get_by_role("button", name="Refresh").click()
    history.get_by_label("Run id").fill(run["id"])
    history.get_by_role("button", name="Open", exact=True).click()
    history.get_by_text("trace ·").wait_for()
    expect(history.get_by_text(answer.strip()).first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "history.png"), full_page=True)


def test_semantic_entropy_ask_with_offline_entailment(page, real_app, screenshot_dir):
    url, ctx = real_app
    panel = _open(page, url, "Semantic entropy", "Ask")
    panel.get_by_label("Question", exact=True).fill(QUESTION)
    set_number(panel, "N answers", 5)
    set_number(panel, "Max new tokens", 24)
    panel.get_by_role("button", name="Entailment ▼").click()
    # Offline there is no NLI model: the tab opens on embedding entailment and says why.
    expect(panel.get_by_label("Embedding cosine similarity")).to_be_checked()
    assert panel.get_by_text("NLI model cannot be used").first.is_visible()
    _timed(
        "semantic_entropy_ask_n5",
        lambda: panel.get_by_role("button", name="Sample and measure", exact=True).click(),
        lambda: panel.get_by_text("Saved as run").wait_for(timeout=600_000),
    )
    run = _latest_run(ctx, "semantic_entropy")
    result = run["result"]
    assert run["params"]["n"] == 5 and run["params"]["entailment"] == "embedding"
    assert sum("Paris" in t for t in result["texts"]) >= 3  # the model knows this one
    measures = panel.locator("table").filter(has_text="what it says")
    assert measures.locator("tbody tr").count() == len(result["measures"])
    panel.locator(".js-plotly-plot").filter(has_text="Meaning clusters").wait_for()
    page.screenshot(path=str(screenshot_dir / "semantic.png"), full_page=True)


def test_inv_entropy_with_llm_paraphrases(page, real_app, screenshot_dir):
    url, ctx = real_app
    panel = _open(page, url, "Inv-Entropy")
    panel.get_by_label("Question", exact=True).fill(QUESTION)
    panel.get_by_label("LLM paraphrases", exact=True).check()
    set_number(panel, "n perturbations", 3)
    set_number(panel, "r answers per input", 2)
    set_number(panel, "B bootstraps", 5)
    panel.get_by_role("button", name="Sampling and GAAP ▼").click()
    set_number(panel, "Max new tokens per answer", 16)
    saved = panel.get_by_text("Saved as run").first
    # The 135M model's "paraphrases" of this question are answers ("The capital of France is
    # Paris."): every one is rejected and the page says so, naming them and the fixes.
    refused = page.get_by_text(re.compile("held no usable paraphrase")).first
    _timed(
        "inv_entropy_paraphrases_n3_r2",
        lambda: panel.get_by_role("button", name="Measure", exact=True).click(),
        lambda: saved.or_(refused).wait_for(timeout=600_000),
    )
    if not saved.is_visible():
        expect(refused).to_contain_text("answered instead of asking")
        expect(refused).to_contain_text("try GAAP")
        assert [r for r in _runs(ctx) if r["kind"] == "inv_entropy"] == []
        close = page.locator(".toast-close")
        if close.count():
            close.first.click()
        panel.get_by_label("GAAP (genetic word substitutions)", exact=True).check()
        _timed(
            "inv_entropy_gaap_n3_r2",
            lambda: panel.get_by_role("button", name="Measure", exact=True).click(),
            lambda: saved.wait_for(timeout=600_000),
        )
    run = _latest_run(ctx, "inv_entropy")
    result = run["result"]
    assert result["inputs"][0] == QUESTION and len(result["inputs"]) >= 2
    answers = [a for row in result["responses"] for a in row]
    assert any("Paris" in a for a in answers)
    heatmaps = panel.locator(".js-plotly-plot").filter(has_text="S_x: similarity of inputs")
    heatmaps.wait_for()
    page.screenshot(path=str(screenshot_dir / "inv_entropy.png"), full_page=True)


def test_twenty_questions_auto_play_with_the_model_posterior(page, real_app, screenshot_dir):
    from store.games import get_game, list_games

    url, ctx = real_app
    panel = _open(page, url, "20 Questions")
    panel = page.get_by_role("tabpanel").filter(has_text="conformal information pursuit")
    assert panel.get_by_role("radio", name=re.compile("^Language model")).is_checked()
    panel.get_by_role("button", name="Calibration and game settings ▼").click()
    for label, value in (("calibration histories / length", 2), ("max questions L", 3)):
        box = panel.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Tab")
    panel.get_by_role("tab", name="Auto play").click()
    hidden = panel.get_by_label("Hidden animal")
    hidden.click()
    hidden.fill("lion")
    page.get_by_role("option", name="lion", exact=True).click()
    final = panel.get_by_role("heading", name=re.compile("^My final guess"))
    _timed(
        "twenty_questions_auto_play_llm_cal2_L3",
        lambda: panel.get_by_role("button", name="Play automatically", exact=True).click(),
        lambda: final.wait_for(timeout=600_000),
    )
    game = get_game(ctx.store, list_games(ctx.store)[0]["id"])
    assert game["mode"] == "auto" and game["status"] == "finished" and game["truth"] == "lion"
    assert 1 <= len(game["turns"]) <= 4  # the opening set, then at most L = 3 questions
    page.screenshot(path=str(screenshot_dir / "twenty_questions.png"), full_page=True)


def test_judge_scores_an_item_with_the_real_model(page, real_app, screenshot_dir):
    from store.judgements import list_judgements

    url, ctx = real_app
    panel = _open(page, url, "Judge")
    panel.get_by_label("Your name", exact=True).fill("real-model annotator")
    panel.get_by_text("Judge settings").click()
    panel.get_by_label("Direct score (no rationale)").check()
    panel.get_by_role("button", name="Load items", exact=True).click()
    panel.get_by_text("Loaded 50 single item(s)").wait_for()
    _timed(  # the judge scores the item while it is shown (hidden until the person saves)
        "judge_show_item_and_score",
        lambda: panel.get_by_role("button", name="Show item", exact=True).click(),
        lambda: panel.get_by_text("of 50").wait_for(timeout=300_000),
    )
    panel.get_by_role("radio", name="4", exact=True).check()
    panel.get_by_role("button", name="Save my judgement").click()
    panel.get_by_text("on item 1 (4 / 5)").wait_for(timeout=300_000)
    saved = list_judgements(ctx.store, annotator="real-model annotator")
    assert len(saved) == 1
    scores = json.loads(saved[0]["scores"])
    assert 1.0 <= scores["expectation"] <= 5.0
    chart = panel.locator(".js-plotly-plot").filter(has_text="Judge · 1..5")
    chart.wait_for()
    page.screenshot(path=str(screenshot_dir / "judge.png"), full_page=True)


def test_dataset_evaluation_calibrates_the_real_models_measures(page, real_app, screenshot_dir):
    """The bundled trivia set through the harness with the real model: the reliability
    diagram of a calibrated measure (the README's calibration screenshot)."""
    url, ctx = real_app
    panel = _open(page, url, "Semantic entropy", "Evaluate a dataset")
    panel.get_by_label("Questions (first N)").fill("30")
    panel.get_by_label("Questions (first N)").press("Tab")
    set_number(panel, "N answers", 4)
    set_number(panel, "Max new tokens", 24)
    panel.get_by_label("Embedding cosine similarity").check()
    _timed(
        "evaluate_30_questions_n4",
        lambda: panel.get_by_role("button", name="Evaluate", exact=True).click(),
        lambda: panel.get_by_text("questions · accuracy").wait_for(timeout=900_000),
    )
    status = panel.get_by_text("questions · accuracy").first.inner_text()
    accuracy = float(re.search(r"accuracy ([0-9.]+)", status).group(1))
    assert 0.0 < accuracy < 1.0  # a 135M model gets some trivia right and some wrong
    calibration = panel.get_by_role("grid", name="Calibration (held-out half)")
    calibration.get_by_text("isotonic").first.wait_for(state="attached")
    diagram = panel.locator(".js-plotly-plot").filter(has_text="Reliability:")
    diagram.wait_for()
    # Platt and isotonic each draw a line with at least one bin of held-out answers.
    expect(diagram.locator(".scatterlayer .trace")).to_have_count(3)
    # The screenshot: from the calibration table to the diagram.
    top = calibration.bounding_box()
    bottom = diagram.bounding_box()
    y = top["y"] + page.evaluate("window.scrollY") - 40
    height = bottom["y"] + bottom["height"] - top["y"] + 60
    page.screenshot(
        path=str(screenshot_dir / "calibration.png"),
        full_page=True,
        clip={"x": 0, "y": y, "width": page.viewport_size["width"], "height": height},
    )
