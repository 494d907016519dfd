"""The Inv-Entropy tab: handlers called directly (tiny model, real MiniLM), bad input, the
History view rebuilt without a model, and the endpoints driven with gradio_client."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.runs import get_run, list_runs
from tests.helpers import serving
from tests.ui.rendering import markdown_text
from ui.context import AppContext
from ui.tabs.history import HistoryHandlers
from ui.tabs.inv import (
    OFFLINE_EXAMPLE,
    InvHandlers,
    create_inv_entropy_tab,
    render_inv_entropy,
)

OWN = "Which city is the capital of France?\nName the French capital."


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir, minilm):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir)))
    backends._objects["embedder"] = minilm  # share the session's loaded MiniLM
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def _args(**overrides):
    args = {
        "question": "What is the capital of France?",
        "method": "given",
        "own_list": OWN,
        "n": 9,
        "replicates": 2,
        "similarity": "embedding",
        "bootstraps": 6,
        "seed": 0,
        "temperature": 0.7,
        "max_new_tokens": 5,
        "delta": 0.7,
    }
    args.update(overrides)
    return list(args.values())


def test_handler_shows_everything_saves_and_history_rebuilds(ctx):
    inputs, responses, heatmaps, histogram, measures, prompt, status = InvHandlers(ctx).measure(
        *_args()
    )
    assert "Saved as run" in status
    assert [row[3] for row in inputs] == ["What is the capital of France?"] + OWN.splitlines()
    assert inputs[0][2] == 1.0 and all(0.0 <= row[2] <= 1.0 for row in inputs)
    assert len(responses) == 3 * 2
    assert len(heatmaps.data) == 3 and len(heatmaps.data[0].z) == 3
    assert sum(len(trace.x) for trace in histogram.data) == 2 * 6
    for label in ("Inv-Entropy", "NI-Entropy", "NR-Inv-Entropy", "WD-px-py", "MAX-py-x"):
        assert label in measures
    assert "Semantic entropy" in measures

    (run,) = list_runs(ctx.store)
    stored = get_run(ctx.store, run["id"])
    assert run["kind"] == "inv_entropy" and len(stored["generations"]) == 6
    offline_ctx = AppContext(
        backends=Backends(BackendConfig(model="no-such-model")),
        store=ctx.store,
        history_renderers={"inv_entropy": render_inv_entropy},
    )
    view = HistoryHandlers(offline_ctx).run_view(run["id"])
    for rebuilt, fresh in zip(view["plot"].data, heatmaps.data, strict=True):
        assert np.array_equal(np.asarray(rebuilt.z), np.asarray(fresh.z))
    assert [list(t.x) for t in view["plot2"].data] == [list(t.x) for t in histogram.data]
    shown = markdown_text(view["markdown"])  # what a person reads: the source is escaped
    assert "Inv-Entropy" in shown and "Name the French capital." in shown
    # Every stored answer is listed, and one cut at the token limit is flagged.
    gens = stored["generations"]
    assert all(f"{role}: " in shown for role, _ in gens)
    cut = [g for _, g in gens if g.finish_reason == "length" and g.tokens]
    assert cut and shown.count("cut at the") == len(cut)  # 5 tokens: the tiny model is cut


def test_paraphrase_handler_on_the_tiny_model(ctx):
    inputs, *_, status = InvHandlers(ctx).measure(
        *_args(method="paraphrase", own_list="", n=3, max_new_tokens=3)
    )
    assert len(inputs) == 4 and "Saved as run" in status


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"question": ""}, "type a question"),
        ({"question": "  \n "}, "type a question"),
        ({"question": "x" * 100_000}, "limit"),
        ({"question": "a\x00b"}, "NUL"),
        ({"n": 0}, "n \\(the number"),
        ({"n": float("nan")}, "whole number"),
        ({"replicates": 0}, "replicates"),
        ({"replicates": 51}, "between 1 and 50"),
        ({"bootstraps": -3}, "bootstraps"),
        ({"seed": -1}, "Seed must be a whole number from 0"),
        ({"seed": 1.5}, "Seed must be a whole number from 0"),
        ({"similarity": "jaccard"}, "unknown similarity"),
        ({"method": "shuffle"}, "unknown perturbation"),
        ({"own_list": "  \n  "}, "at least one perturbed"),
        ({"own_list": "ok\nno\x00"}, "NUL"),
        ({"temperature": float("inf")}, "finite"),
        ({"temperature": 9.0}, "temperature"),
        ({"max_new_tokens": 0}, "max new tokens"),
        ({"delta": 1.5}, "δ"),
        ({"method": "paraphrase", "n": 30, "replicates": 20}, "limit is"),
    ],
)
def test_bad_input_is_a_message_and_stores_nothing(ctx, overrides, message):
    with pytest.raises(gr.Error, match=message):
        InvHandlers(ctx).measure(*_args(**overrides))
    assert list_runs(ctx.store) == []


def test_offline_handler_with_pasted_text_and_with_a_file(ctx, tmp_path):
    handler = InvHandlers(ctx).measure_offline
    inputs, responses, heatmaps, histogram, measures, status = handler(
        OFFLINE_EXAMPLE, None, "embedding", 8, 1
    )
    assert len(inputs) == 3 and len(responses) == 6 and "Saved as run" in status
    path = tmp_path / "answers.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"input": q, "responses": a})
            for q, a in [("Who wrote Hamlet?", ["Shakespeare"]), ("Hamlet's author?", ["Marlowe"])]
        ),
        encoding="utf-8",
    )
    inputs, *_ = handler("", str(path), "embedding_abs", 3, 0)
    assert [row[3] for row in inputs] == ["Who wrote Hamlet?", "Hamlet's author?"]
    runs = list_runs(ctx.store)
    assert len(runs) == 2 and {r["model"] for r in runs} == {"black box (answers supplied)"}


@pytest.mark.parametrize(
    "table, similarity, bootstraps, message",
    [
        ("", "embedding", 5, "paste a CSV"),
        ("input,answer\nq,a\n", "embedding", 5, "two distinct inputs"),
        ("input,text\nq,a\np,b\n", "embedding", 5, "no response column"),
        ('{"input": "q"', "embedding", 5, "not valid JSON"),
        ("input,response\nq,a\nq,b\np,c\n", "embedding", 5, "same number"),
        (OFFLINE_EXAMPLE, "embedding", 0, "bootstraps"),
        (OFFLINE_EXAMPLE, "bag-of-words", 5, "unknown similarity"),
        ("input,response\nq,a\x00\np,b\n", "embedding", 5, "NUL"),
    ],
)
def test_offline_bad_input_is_a_message(ctx, table, similarity, bootstraps, message):
    with pytest.raises(gr.Error, match=message):
        InvHandlers(ctx).measure_offline(table, None, similarity, bootstraps, 0)
    assert list_runs(ctx.store) == []


def test_tab_endpoints_with_gradio_client(ctx):
    with gr.Blocks() as demo:
        create_inv_entropy_tab(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert {"/inv_entropy", "/inv_entropy_offline"} <= set(api)
        inputs, responses, heatmaps, histogram, measures, prompt, status = client.predict(
            *_args(), api_name="/inv_entropy"
        )
        assert len(inputs["data"]) == 3 and len(responses["data"]) == 6
        assert heatmaps["type"] == "plotly" and len(json.loads(heatmaps["plot"])["data"]) == 3
        assert "Inv-Entropy" in measures and "Saved as run" in status
        out = client.predict(
            OFFLINE_EXAMPLE, None, "embedding", 4, 0, api_name="/inv_entropy_offline"
        )
        assert len(out[0]["data"]) == 3
        with pytest.raises(Exception, match="two distinct inputs"):
            client.predict(
                "input,response\nq,a\n", None, "embedding", 4, 0, api_name="/inv_entropy_offline"
            )
