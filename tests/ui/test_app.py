"""The app launched in-process on a free port and driven with gradio_client, and handlers
called directly."""

from __future__ import annotations

import csv
import json
import time

import gradio as gr
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.runs import get_run, list_runs
from tests.helpers import serving
from ui.app import build_app
from ui.context import AppContext
from ui.tabs.generate import GenerateHandlers, render_trace
from ui.tabs.history import HistoryHandlers


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def test_generate_handler_streams_then_saves_and_history_rebuilds(ctx):
    handler = GenerateHandlers(ctx).generate
    outputs = list(handler("What is the capital of France?", 0.0, 1.0, 0, 12, 0, None))
    assert len(outputs) >= 2
    text, fig, highlights, summary, prompt, status = outputs[-1]
    assert "Saved as run" in status
    assert len(highlights) == len(fig.data[0].y)
    assert all(0.0 <= s <= 1.0 for _, s in highlights)
    assert "".join(t for t, _ in highlights) == text
    runs = list_runs(ctx.store)
    assert len(runs) == 1 and runs[0]["kind"] == "trace"
    view = HistoryHandlers(
        AppContext(
            backends=Backends(BackendConfig(model="no-such-model")),
            store=ctx.store,
            history_renderers={"trace": render_trace},
        )
    ).run_view(runs[0]["id"])
    assert list(view["plot"].data[0].y) == list(fig.data[0].y)
    assert view["highlights"] == highlights


def test_a_page_closed_while_generating_keeps_the_answer(ctx):
    """A reload (Gradio closes the handler's generator) does not drop the run: it is saved when
    the generation ends, with a note saying the page was gone."""
    stream = GenerateHandlers(ctx).generate("Name a colour.", 0.0, 1.0, 0, 48, 0, None)
    assert next(stream)[3] == "Generating…"
    next(stream)  # the first streamed piece
    stream.close()  # what Gradio does when the browser goes away
    deadline = time.monotonic() + 120
    while not list_runs(ctx.store) and time.monotonic() < deadline:
        time.sleep(0.05)
    runs = list_runs(ctx.store)
    assert len(runs) == 1 and runs[0]["kind"] == "trace"
    run = get_run(ctx.store, runs[0]["id"])
    assert run["generations"][0][1].text == run["result"]["generation"]["text"]
    assert any("closed or reloaded" in n for n in run["result"]["notes"])
    assert (
        "closed or reloaded"
        in HistoryHandlers(
            AppContext(
                backends=ctx.backends, store=ctx.store, history_renderers={"trace": render_trace}
            )
        ).run_view(runs[0]["id"])["markdown"]
    )


@pytest.mark.parametrize(
    "question, temperature, max_new, message",
    [
        ("", 0.0, 10, "type a question"),
        ("   \n ", 0.0, 10, "type a question"),
        ("x" * 100_000, 0.0, 10, "limit"),
        ("a\x00b", 0.0, 10, "NUL"),
        ("ok", -1.0, 10, "temperature"),
        ("ok", 0.5, 0, "max new tokens"),
    ],
)
def test_bad_input_is_a_message_and_stores_nothing(ctx, question, temperature, max_new, message):
    handler = GenerateHandlers(ctx).generate
    with pytest.raises(gr.Error, match=message):
        list(handler(question, temperature, 1.0, 0, max_new, 0, None))
    assert list_runs(ctx.store) == []


def test_a_model_that_cannot_load_is_a_message_and_the_app_keeps_going(tmp_path):
    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tmp_path / "missing"))),
        store=Store(tmp_path / "a.db"),
    )
    with pytest.raises(gr.Error, match="Could not load model"):
        list(GenerateHandlers(ctx).generate("hi", 0.0, 1.0, 0, 5, 0, None))


def test_app_in_process_with_gradio_client(ctx):
    demo = build_app(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for name in ("/generate", "/list_runs", "/open_run", "/export_runs"):
            assert name in api
        text, plot, highlights, summary, prompt, status = client.predict(
            "Who wrote Hamlet?", 0.0, 1.0, 0, 10, 0, api_name="/generate"
        )
        assert plot["type"] == "plotly" and json.loads(plot["plot"])["data"]
        assert highlights and {"token", "class_or_confidence"} <= set(highlights[0])
        table = client.predict("all", api_name="/list_runs")
        run_id = table["data"][0][0]
        md, hl, plot1, plot2, raw = client.predict(run_id, api_name="/open_run")
        assert "trace" in md and raw["result"]["generation"]["text"] == text
        with pytest.raises(Exception, match="No run"):
            client.predict("not-a-run", api_name="/open_run")
        wide, long = client.predict(api_name="/export_runs")
        with open(wide, encoding="utf-8") as f:
            row = next(r for r in csv.DictReader(f) if r["id"] == run_id)
        assert row["answer_1"] == text and row["n_answers"] == "1"
        assert float(row["measure_mean_entropy"]) >= 0 and row["measure_n_tokens"]
        with open(long, encoding="utf-8") as f:
            answers = [r for r in csv.DictReader(f) if r["run_id"] == run_id]
        assert [(a["role"], a["text"]) for a in answers] == [("answer", text)]
        assert float(answers[0]["total_logprob"]) <= 0


def test_login_required_and_runs_belong_to_the_logged_in_user(ctx):
    import httpx

    demo = build_app(ctx)
    with serving(demo, auth=[("alice", "pw-a"), ("bob", "pw-b")]) as url:
        assert httpx.get(url + "config").status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own auth error type
            Client(url, verbose=False)
        with pytest.raises(Exception):  # noqa: B017
            Client(url, auth=("alice", "wrong"), verbose=False)
        client = Client(url, auth=("alice", "pw-a"), verbose=False)
        client.predict("hi", 0.0, 1.0, 0, 4, 0, api_name="/generate")
        assert [r["annotator"] for r in list_runs(ctx.store)] == ["alice"]


def test_parse_auth():
    from app import parse_auth

    assert parse_auth("a:1, b:x:y") == [("a", "1"), ("b", "x:y")]
    assert parse_auth("") is None
    with pytest.raises(SystemExit):
        parse_auth("nocolon")


def _markdown_values(demo) -> list[str]:
    return [
        str(c.get("props", {}).get("value") or "")
        for c in demo.config["components"]
        if c.get("type") == "markdown"
    ]


def test_embedded_default_page_names_the_model_and_the_offline_entailment(tmp_path, monkeypatch):
    """The default config (nothing loaded to build the page): the header names the generator,
    the banner says what the embedded model is, and with no NLI model offline the Semantic
    entropy tab starts on embedding entailment and says why."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ctx = AppContext(backends=Backends(BackendConfig()), store=Store(tmp_path / "a.db"))
    assert ctx.backends.config.model == "smollm2-135m"
    demo = build_app(ctx)
    texts = _markdown_values(demo)
    assert any("generator `smollm2-135m`" in t and "embedding similarity" in t for t in texts)
    assert any(t.startswith("**Embedded real model.**") for t in texts)
    assert not any("Offline demo model" in t for t in texts)
    assert any("deberta-large-mnli" in t and "--nli-model" in t for t in texts)
    radios = [c["props"] for c in demo.config["components"] if c.get("type") == "radio"]
    meaning = [r for r in radios if str(r.get("label", "")).startswith("Compare meanings")]
    assert meaning and all(r["value"] == "Embedding cosine similarity" for r in meaning)


def test_empty_question_is_refused_before_any_model_loads(tmp_path):
    """No model exists at this path: the empty question must be the message, not the load."""
    from ui.tabs.semantic_handlers import SemanticHandlers

    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tmp_path / "missing"))),
        store=Store(tmp_path / "a.db"),
    )
    with pytest.raises(gr.Error, match="type a question"):
        SemanticHandlers(ctx).ask("  ", 4, 1.0, 8, "NLI cross-encoder", True, True, 0.9, 0)
    with pytest.raises(gr.Error, match="type a question"):
        list(GenerateHandlers(ctx).generate("", 0.0, 1.0, 0, 5, 0, None))
