"""Stored HTML injection: every view built from user, model or file text shows a planted
``<form>``, remote ``<img>`` and ``javascript:`` link as the characters they are — rendered
through a CommonMark renderer with raw HTML on (as Gradio's Markdown keeps it), no element
comes out — and plotly labels carry no tag of theirs."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import gradio as gr
import pytest

from backends.registry import BackendConfig, Backends
from core.errors import ConfidantError
from core.text import html_text, md_text
from judge.config import JudgeConfig
from judge.items import parse_items
from store.db import Store
from store.games import get_game
from store.runs import list_runs, save_run
from tests.ui.planted import (
    FORM,
    IMG,
    LINK,
    NAMES,
    PAYLOAD,
    plant_game,
    planted_items,
    planted_trace,
    planted_turns,
)
from tests.ui.rendering import (
    assert_html_shows_text,
    assert_plotly_label_inert,
    assert_shown_as_text,
    figure_labels,
    markdown_elements,
    markdown_text,
)
from ui.context import AppContext, user_errors
from ui.plots.cip import game_figure, render_cip_game, review_markdown, set_markdown
from ui.plots.inv import heatmaps_figure
from ui.plots.judge import judge_markdown
from ui.plots.semantic import answers_markdown, cluster_figure, label_heatmap, measures_markdown
from ui.plots.trace import trace_figure
from ui.tabs.cip_handlers import CipHandlers
from ui.tabs.generate import render_trace
from ui.tabs.history import HistoryHandlers
from ui.tabs.inv import render_inv_entropy
from ui.tabs.judge_handlers import JudgeHandlers, render_judge_run
from ui.tabs.semantic_handlers import render_semantic
from uq.inv.offline import inv_entropy_offline
from uq.semantic.entailment import make_entailment
from uq.semantic.pasted import score_pasted_answers

RENDERERS = {
    "trace": render_trace,
    "semantic_entropy": render_semantic,
    "inv_entropy": render_inv_entropy,
    "judge": render_judge_run,
    "cip_game": render_cip_game,
}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "app.db")


def history(store) -> HistoryHandlers:
    return HistoryHandlers(AppContext(backends=None, store=store, history_renderers=RENDERERS))


def test_md_text_and_html_text_leave_no_markup():
    for text in (md_text(PAYLOAD), md_text(PAYLOAD, inline=False)):
        assert "<" not in text and "](" not in text and "javascript:" not in text
        assert_shown_as_text(text, PAYLOAD)
    assert_shown_as_text(f"| a |\n|---|\n| {md_text('x | y ' + PAYLOAD)} |", "x | y", PAYLOAD)
    assert "<" not in html_text(PAYLOAD) and '"' not in html_text('"')


def test_the_helpers_are_needed():
    """Without escaping the same payloads do render as a form, an input, an image and a link:
    the checks below would catch a view that forgot them."""
    assert {"form", "input", "img"} <= markdown_elements(PAYLOAD)
    assert "a" in markdown_elements("[click](http://127.0.0.1:9/x)")


def test_trace_run_in_history(store):
    result = planted_trace()
    gen = result.generation
    run_id = save_run(
        store, kind="trace", model=IMG, params={}, result=result.to_dict(), title=PAYLOAD,
        generations=[("answer", gen)],
    )  # fmt: skip
    view = history(store).run_view(run_id)
    assert_shown_as_text(view["markdown"], f"Question: {PAYLOAD}", f"Answer: {gen.text}", IMG)
    for label in figure_labels(view["plot"]) + figure_labels(trace_figure(gen)):
        assert_plotly_label_inert(label)


def test_unknown_kind_and_planted_model_in_history(store):
    run_id = save_run(store, kind=FORM, model=IMG, params={}, result={}, title=LINK)
    assert_shown_as_text(history(store).run_view(run_id)["markdown"], FORM, IMG)


def test_semantic_entropy_views(store, minilm):
    answers = [FORM, IMG, LINK, PAYLOAD]
    result = score_pasted_answers(
        answers, make_entailment("embedding", embedder=minilm), question=PAYLOAD,
        log_likelihoods=[-1.0, -2.0, -3.0, -4.0],
    )  # fmt: skip
    result.notes.append(FORM)
    assert_shown_as_text(answers_markdown(result), *answers)
    assert_shown_as_text(measures_markdown(result), FORM)
    for fig in (cluster_figure(result), label_heatmap(result)):
        for label in figure_labels(fig):
            assert_plotly_label_inert(label)
    run_id = save_run(
        store, kind="semantic_entropy", model="(pasted answers)", params=result.params,
        result=result.to_dict(), title=PAYLOAD,
    )  # fmt: skip
    view = history(store).run_view(run_id)
    assert_shown_as_text(view["markdown"], f"Question: {PAYLOAD}", *answers)


def test_inv_entropy_views(store, minilm):
    inputs = [PAYLOAD, FORM, IMG]
    run = inv_entropy_offline(inputs, [[LINK, IMG], [FORM, LINK], [IMG, FORM]], minilm,
                              bootstraps=2, seed=0)  # fmt: skip
    for label in figure_labels(heatmaps_figure(run)):
        assert_plotly_label_inert(label)
    run_id = save_run(store, kind="inv_entropy", model="x", params=run.params,
                      result=run.to_dict(), title=PAYLOAD)  # fmt: skip
    view = history(store).run_view(run_id)
    assert_shown_as_text(view["markdown"], f"Question: {PAYLOAD}", *inputs)


@pytest.fixture
def judge_ctx(store, tiny_lm_dir):
    return AppContext(
        backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=store,
        history_renderers=RENDERERS,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["single", "pairwise"])
def test_judge_item_position_save_agreement_and_history(judge_ctx, tmp_path, kind):
    h = JudgeHandlers(judge_ctx)
    items, loaded, _ = h.load_items("Import file", str(planted_items(tmp_path, kind)), kind)
    assert_shown_as_text(loaded, f"{kind}.csv")
    for name in NAMES:
        request = SimpleNamespace(username=None, session_hash=f"s-{len(name)}")
        out = h.show_item(items, 1, 5, True, 4, False, request)
        position, state, token, shown = out[0], out[8], out[9], out[10]
        assert_shown_as_text(position, items[0]["item_id"])
        assert_shown_as_text(out[7])  # the judge's markdown
        score, pref = (3, None) if kind == "single" else (None, "A")
        status, _, judge_md = h.submit(items, state, token, shown, score, pref, FORM, name, request)
        assert_shown_as_text(status, name)
    rows, summary = h.agreement()
    assert_shown_as_text(summary, *NAMES)
    assert {r[1] for r in rows} | {r[2] for r in rows} >= set(NAMES)  # plain-text table cells
    views = [history(judge_ctx.store).run_view(r["id"]) for r in list_runs(judge_ctx.store)]
    assert len(views) == 2
    shown_fields = [f"Question: {PAYLOAD}"]
    shown_fields += [LINK, FORM] if kind == "single" else [f"A: {FORM}", f"B: {LINK}"]
    for view, name in zip(views, reversed(NAMES), strict=True):
        assert_shown_as_text(view["markdown"], *shown_fields, f"Human ({name})")


def test_judge_rationale_and_emitted_text_are_text(judge_ctx, tmp_path):
    h = JudgeHandlers(judge_ctx)
    items = parse_items(planted_items(tmp_path).read_bytes(), "items.csv", "single")
    _, result = h._run_judge(items[0], JudgeConfig(scale=5, direct=True, max_new_tokens=4))
    result = {**result, "judgement": f"{PAYLOAD}\n> {IMG}\n# {LINK}", "notes": [FORM]}
    assert_shown_as_text(judge_markdown(result), FORM, IMG, LINK)


def test_stored_game_review_set_and_history(store):
    gid = plant_game(store)
    review = review_markdown(get_game(store, gid))
    assert_shown_as_text(review, f"posterior: {FORM}", f"class set {LINK}", PAYLOAD, IMG, LINK)
    assert_shown_as_text(set_markdown(planted_turns()[0], 3), FORM, IMG, LINK)
    for label in figure_labels(game_figure(planted_turns())):
        assert_plotly_label_inert(label)
    result = {"mode": FORM, "class_set": LINK, "truth": IMG, "turns": planted_turns()}
    run_id = save_run(store, kind="cip_game", model=IMG, params={}, result=result, title=FORM)
    assert_shown_as_text(history(store).run_view(run_id)["markdown"], FORM, LINK, IMG, PAYLOAD)


def test_uploaded_class_set_and_played_game(judge_ctx, tmp_path):
    classes, questions = [FORM, IMG, LINK, "plain"], [f"{LINK}?", f"{IMG}?"]
    bits = {FORM: "yy", IMG: "yn", LINK: "ny", "plain": "nn"}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["class", "question", "answer"])
    for c in classes:
        for q, b in zip(questions, bits[c], strict=True):
            writer.writerow([c, q, "yes" if b == "y" else "no"])
    path = tmp_path / "[x](javascript:y).csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    h = CipHandlers(judge_ctx)
    message, key, _ = h.upload(str(path))
    assert_shown_as_text(message, "[x](javascript:y)")
    settings = [key, "oracle", "cip", "posterior", 0.2, False, 5, 2, 0, 2, 0, 0]
    *_, (gid, question, set_md, fig, turns_md) = h.start_human(*settings)
    assert any(q in markdown_text(question) for q in questions)
    for view in (question, set_md, turns_md):
        assert_shown_as_text(view)
    while "final guess" not in question:
        gid, question, set_md, fig, turns_md = h.answer(gid, "yes")
        for view in (question, set_md, turns_md):
            assert_shown_as_text(view)
    assert_shown_as_text(question, f"My final guess: {FORM}")
    assert any(q in markdown_text(turns_md) for q in questions)
    for label in figure_labels(fig):
        assert_plotly_label_inert(label)


def test_error_messages_are_escaped_for_the_page():
    """Gradio shows a message as HTML: one that quotes a file or a name must not be markup."""

    @user_errors
    def fails(text):
        raise ConfidantError(f"No run with id {text!r}.")

    with pytest.raises(gr.Error) as caught:
        fails(PAYLOAD)
    assert "<" not in caught.value.message
    assert_html_shows_text(caught.value.message, f"No run with id '{PAYLOAD}'.")
