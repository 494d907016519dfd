"""The Judge tab's reliability report: the handler called directly on the tiny random model,
its errors, the saved run, and the History view rebuilt from it."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.runs import get_run, list_runs
from ui.context import AppContext
from ui.plots.reliability import report_markdown
from ui.tabs.history import HistoryHandlers
from ui.tabs.judge import create_judge_tab
from ui.tabs.judge_reliability import ReliabilityHandlers


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def test_the_report_runs_shows_plots_and_is_saved(ctx):
    text, flips, lengths, spread = ReliabilityHandlers(ctx).run(
        "reliability set", None, 1, 2, 1.0, 3
    )
    assert "position flip rate" in text and "Saved as run" in text
    assert [t.name for t in flips.data] == ["position flip rate", "Conflict Ratio"]
    assert [t.name for t in lengths.data] == ["answers", "fit"]
    assert len(spread.data[0].x) == 3  # three answers, each run twice
    runs = list_runs(ctx.store, kind="judge_reliability")
    assert len(runs) == 1
    with gr.Blocks():
        create_judge_tab(ctx)
    view = HistoryHandlers(ctx).run_view(runs[0]["id"])
    assert "Score methods side by side" in view["markdown"]


def test_an_uploaded_set_is_used_and_its_text_is_escaped(ctx, tmp_path):
    path = tmp_path / "q.jsonl"
    cands = [{"candidate_id": f"<b>c{i}</b>", "text": f"answer {'x' * i}"} for i in range(3)]
    path.write_text(json.dumps({"question": "Why?", "candidates": cands}) + "\n", "utf-8")
    text, *_ = ReliabilityHandlers(ctx).run("upload", str(path), 1, 1, 1.0, 2)
    assert "<b>" not in text
    stored = list_runs(ctx.store, kind="judge_reliability")[0]
    result = get_run(ctx.store, stored["id"])["result"]
    assert result["questions"][0]["candidate_ids"][0] == "<b>c0</b>"
    result["disagreements"] = {"humans_disagree": ["<b>c0</b>"], "judge_disagrees": []}
    result["model"] = "<script>m</script>"
    shown = report_markdown(result)
    assert "<b>" not in shown and "<script>" not in shown and "c0" in shown


@pytest.mark.parametrize(
    "args, message",
    [
        (("upload", None, 1, 2, 1.0, 3), "Upload"),
        (("nowhere", None, 1, 2, 1.0, 3), "Pick the items"),
        (("demo set", None, 1, 0, 1.0, 3), "k"),
        (("demo set", None, 1, 2, 9.0, 3), "temperature"),
    ],
)
def test_bad_choices_are_messages(ctx, args, message):
    with pytest.raises(gr.Error, match=message):
        ReliabilityHandlers(ctx).run(*args)
    assert list_runs(ctx.store, kind="judge_reliability") == []
