"""What the Inv-Entropy views show: explanations whole in their table cells, a titled colour
scale on every heatmap, and the paraphrases rejected for answering instead of asking."""

from __future__ import annotations

import json
import re

import pytest

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.runs import get_run, list_runs
from tests.ui.rendering import assert_shown_as_text, markdown_html, markdown_text
from tests.uq.test_inv_pipeline import CharEmbedder, FakeLM
from ui.context import AppContext
from ui.plots.inv import heatmaps_figure, measures_markdown
from ui.tabs.inv import InvHandlers
from uq.inv.measures import MEASURES
from uq.inv.offline import inv_entropy_offline
from uq.inv.result import InvEntropyRun

QUESTION = "What is the capital of Australia?"


@pytest.fixture(scope="module")
def run():
    inputs = [QUESTION, "Which city is Australia's capital?", "Name the capital of Australia."]
    responses = [["Canberra", "Sydney"], ["Canberra", "Canberra."], ["Sydney", "Canberra"]]
    return inv_entropy_offline(inputs, responses, CharEmbedder(), bootstraps=4, seed=0)


def test_every_explanation_is_whole_in_its_table_cell(run):
    page = markdown_html(measures_markdown(run))
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    assert len(rows) == 1 + len(MEASURES)
    assert all(row.count("<td>") == 3 for row in rows[1:])  # a "|" would split a cell
    shown = markdown_text(measures_markdown(run))
    assert "−Σ p(x_i|y_i) ln p(x_i|y_i)" in shown
    assert "p(y_i|x_i)" in shown


def test_every_heatmap_has_a_titled_colour_scale_of_its_own(run):
    fig = heatmaps_figure(run)
    assert len(fig.data) == 3
    titles, places = [], []
    for trace in fig.data:
        assert trace.showscale is not False
        titles.append(trace.colorbar.title.text)
        places.append(trace.colorbar.x)
    assert titles == ["S_x", "S_y", "p(x|y)"]
    assert places == sorted(places) and len(set(places)) == 3
    domains = [fig.layout[name].domain for name in ("xaxis", "xaxis2", "xaxis3")]
    for x, domain, following in zip(places, domains, domains[1:] + [(1.1, 1.1)], strict=True):
        assert domain[1] <= x < following[0]  # right of its own panel, left of the next


class Loaded:
    """A fake model as the shared backends hand it out (``load()`` returns it)."""

    def load(self):
        return self


class LoadedLM(Loaded, FakeLM):
    pass


class LoadedEmbedder(Loaded, CharEmbedder):
    pass


REPLY = (
    "1. The capital of Australia is <b>Sydney</b>.\n"
    "2. Which city is Australia's capital?\n"
    "3. What is the capital of Australia? It is Canberra.\n"
    "4. Name the capital of Australia."
)


def test_handler_shows_and_stores_the_rejected_paraphrases(tmp_path):
    backends = Backends(BackendConfig(model="fake-lm"))
    backends._objects["generator"] = LoadedLM(reply=REPLY)
    backends._objects["embedder"] = LoadedEmbedder()
    ctx = AppContext(backends=backends, store=Store(tmp_path / "app.db"))
    args = [QUESTION, "paraphrase", "", 2, 2, "embedding", 4, 0, 0.7, 5, 0.7]
    inputs, _, _, _, measures, _prompt, status = InvHandlers(ctx).measure(*args)
    assert "Saved as run" in status
    kept = {row[3] for row in inputs[1:]}
    assert kept == {"Which city is Australia's capital?", "Name the capital of Australia."}
    shown = markdown_text(measures)
    assert "Rejected paraphrases: 2" in shown
    assert "The capital of Australia is <b>Sydney</b>." in shown
    assert "a statement about the question" in shown and "answers after asking" in shown
    assert_shown_as_text(measures, "<b>Sydney</b>")

    (listed,) = list_runs(ctx.store)
    stored = InvEntropyRun.from_dict(get_run(ctx.store, listed["id"])["result"])
    rejected = stored.perturbation.details["rejected"]
    assert [r["text"] for r in rejected] == [
        "The capital of Australia is <b>Sydney</b>.",
        "What is the capital of Australia? It is Canberra.",
    ]
    assert "Rejected paraphrases: 2" in markdown_text(measures_markdown(stored))


def test_the_default_similarity_is_the_one_that_separated_and_the_tab_says_why(run):
    from pathlib import Path

    from ui.tabs.inv import SIMILARITY_CHOICES
    from uq.inv.options import DEFAULT_SIMILARITY, SIMILARITY_DEFAULT_WHY, check_options

    study = Path(__file__).resolve().parents[2] / "bench" / "results" / "inv_similarity.json"
    summary = json.loads(study.read_text())["summary"]
    spread = {name: s["std"] for name, s in summary.items()}
    assert DEFAULT_SIMILARITY == max(spread, key=spread.get)
    for s in summary.values():  # the measured numbers are the ones on screen
        assert f"{s['std']:.3f}" in SIMILARITY_DEFAULT_WHY
    assert (
        SIMILARITY_CHOICES[0][1] == DEFAULT_SIMILARITY and "(default)" in SIMILARITY_CHOICES[0][0]
    )
    assert check_options()["similarity"] == DEFAULT_SIMILARITY
    assert "ln(n+1) = 1.0986" in markdown_text(measures_markdown(run))  # 3 inputs
