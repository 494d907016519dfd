"""The Inv-Entropy flows a person follows, in a real browser: perturb a question (LLM paraphrases
or GAAP), read the perturbed inputs with their similarity, the answers, the S_x / S_y / p(x|y)
heatmaps and the bootstrap histogram; then measure answers collected elsewhere (black box) and
reopen that run from the History tab."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.widgets import set_number

pytestmark = pytest.mark.browser

QUESTION = "What is the capital city of France?"


def _open(page, url: str):
    page.goto(url)
    page.get_by_text("Offline demo model").wait_for()
    page.get_by_role("tab", name="Inv-Entropy", exact=True).click()
    return page.get_by_role("tabpanel").last


def _latest_run(ctx) -> dict:
    from store.runs import get_run, list_runs

    return get_run(ctx.store, list_runs(ctx.store, kind="inv_entropy")[0]["id"])


def _check_results(panel, run: dict, *, first: bool) -> None:
    """What the person sees matches the stored run: every input with its similarity, every
    answer, three heatmaps of the right size, the histogram and the measures."""
    pick = (lambda loc: loc.first) if first else (lambda loc: loc.last)
    result = run["result"]
    n_inputs = len(result["inputs"])
    inputs_grid = pick(panel.get_by_role("grid", name="Inputs and their similarity"))
    inputs_grid.get_by_role("gridcell", name=result["inputs"][0], exact=True).wait_for()
    assert inputs_grid.get_attribute("aria-rowcount") == str(1 + n_inputs)  # header + rows
    # Row 0 is the original (similarity 1); every other input is a perturbation.
    assert inputs_grid.locator('[data-testid="cell-0-1"]').inner_text() == "original"
    assert inputs_grid.locator('[data-testid="cell-0-2"]').inner_text() == "1"
    kinds = inputs_grid.get_by_role("gridcell", name="perturbation", exact=True)
    assert kinds.count() == min(n_inputs - 1, 10)  # rows beyond the viewport are virtualised
    answers_grid = pick(panel.get_by_role("grid", name="Answers"))
    n_answers = sum(len(r) for r in result["responses"])
    assert answers_grid.get_attribute("aria-rowcount") == str(1 + n_answers)
    first_answer = " ".join(result["responses"][0][0].split())
    if first_answer:
        answers_grid.get_by_role("gridcell", name=first_answer, exact=True).first.wait_for()

    heatmaps = pick(panel.locator(".js-plotly-plot").filter(has_text="S_x: similarity of inputs"))
    heatmaps.wait_for()
    for title in ("S_y: similarity of answers", "p(x_i | y_j)"):
        assert heatmaps.get_by_text(title).count() == 1
    expect(heatmaps.locator(".hm")).to_have_count(3)
    # Each heatmap is n_inputs × n_inputs: every x-axis has the ticks x0..x{n-1} (y0..).
    for axis in ("xtick", "x2tick", "x3tick"):
        expect(heatmaps.locator(f".{axis}")).to_have_count(n_inputs)
    histogram = pick(panel.locator(".js-plotly-plot").filter(has_text="Per-bootstrap values ("))
    histogram.wait_for()
    expect(histogram.get_by_text("Inv-Entropy mean")).to_have_count(1)
    expect(histogram.locator(".barlayer .trace")).to_have_count(2)  # Inv- and NI-Entropy
    inv = result["measures"]["inv_entropy"]
    assert pick(panel.get_by_text(f"{inv:.4f}", exact=True)).is_visible()


@pytest.mark.parametrize(
    "method, shot",
    [("LLM paraphrases", "inv_entropy.png"), ("GAAP (genetic word substitutions)", None)],
)
def test_perturbed_question_shows_inputs_answers_heatmaps_and_histogram(
    page, live_app, screenshot_dir, method, shot
):
    url, ctx = live_app
    panel = _open(page, url)
    panel.get_by_label("Question", exact=True).fill(QUESTION)
    panel.get_by_label(method, exact=True).check()
    set_number(panel, "n perturbations", 3)
    set_number(panel, "r answers per input", 2)
    set_number(panel, "B bootstraps", 5)
    panel.get_by_role("button", name="Sampling and GAAP ▼").click()
    set_number(panel, "Max new tokens per answer", 4)
    panel.get_by_role("button", name="Measure", exact=True).click()
    panel.get_by_text("Saved as run").first.wait_for()
    run = _latest_run(ctx)
    expected = {"LLM paraphrases": "paraphrase", "GAAP (genetic word substitutions)": "gaap"}
    assert run["result"]["perturbation"]["method"] == expected[method]
    assert run["result"]["inputs"][0] == QUESTION
    assert [len(r) for r in run["result"]["responses"]] == [2] * len(run["result"]["inputs"])
    _check_results(panel, run, first=True)
    assert panel.get_by_text("5 bootstraps · seed 0").first.is_visible()
    if shot:
        page.screenshot(path=str(screenshot_dir / shot), full_page=True)


def test_offline_black_box_answers(page, live_app, screenshot_dir):
    url, ctx = live_app
    panel = _open(page, url)
    panel.get_by_role("button", name="Offline: answers you already have").click()
    # The example table is already filled in: the person only presses the button.
    panel.get_by_role("button", name="Measure my answers", exact=True).click()
    panel.get_by_text("Saved as run").last.wait_for()
    run = _latest_run(ctx)
    assert run["model"] == "black box (answers supplied)"
    assert run["result"]["inputs"] == [
        "What is the capital of France?",
        "Which city is the capital of France?",
        "Name the French capital.",
    ]
    assert run["result"]["responses"] == [
        ["Paris", "Paris."],
        ["Paris", "Lyon"],
        ["Paris", "It is Paris."],
    ]
    _check_results(panel, run, first=False)
    # The explanation of Inv-Entropy stays whole in its cell (a raw "|" would end the cell), and
    # each heatmap has its own colour scale with a title.
    cell = panel.get_by_role("cell", name="mean over bootstraps of").last
    assert "−Σ p(x_i|y_i) ln p(x_i|y_i); higher when" in " ".join(cell.inner_text().split())
    heatmaps = panel.locator(".js-plotly-plot").filter(has_text="S_x: similarity of inputs").last
    expect(heatmaps.locator("g.colorbar")).to_have_count(3)
    titles = [
        " ".join(t.split()) for t in heatmaps.locator("g.colorbar .cbtitle").all_text_contents()
    ]
    assert titles == ["S_x", "S_y", "p(x|y)"]
    heatmaps.screenshot(path=str(screenshot_dir / "inv_heatmaps.png"))

    # The History tab reopens the run from the database: the same heatmaps and histogram.
    page.get_by_role("tab", name="History", exact=True).click()
    history = page.get_by_role("tabpanel").filter(has_text="Every run is saved")
    history.get_by_label("Run id").fill(run["id"])
    history.get_by_role("button", name="Open", exact=True).click()
    history.get_by_text("inv_entropy ·").wait_for()
    heatmaps = history.locator(".js-plotly-plot").filter(has_text="S_x: similarity of inputs")
    expect(heatmaps.locator(".hm")).to_have_count(3)
    histogram = history.locator(".js-plotly-plot").filter(has_text="Per-bootstrap values (")
    expect(histogram.locator(".barlayer .trace")).to_have_count(2)
