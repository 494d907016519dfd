"""The exact prompt sent to the model: recorded in every tab's result, stored with the run,
shown in the tab and in History, and old runs without it still reopen."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from backends.openai_compat import OpenAICompatLM
from backends.registry import BackendConfig, Backends
from judge.prompts import grading_prompt, pairwise_prompt
from store.db import Store
from store.games import get_game
from store.runs import get_run, list_runs, save_run
from ui.components.prompt import (
    CHAT_JSON_LABEL,
    EXACT_LABEL,
    NONE_STORED,
    prompt_update,
    stored_prompt_update,
)
from ui.context import AppContext
from ui.tabs.cip_handlers import CipHandlers
from ui.tabs.generate import GenerateHandlers, render_trace
from ui.tabs.history import HistoryHandlers
from ui.tabs.inv import InvHandlers, render_inv_entropy
from ui.tabs.judge import judge_prompt
from ui.tabs.judge_handlers import JudgeHandlers, render_judge_run
from ui.tabs.semantic_handlers import SemanticHandlers, render_semantic
from uq.cip.llm_posterior import LLMAnswerer, LLMPosterior
from uq.inv.pipeline import answer_prompt
from uq.semantic.pipeline import DEFAULT_PROMPT

QUESTION = "What is the capital of France?"


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir, tiny_nli_dir, minilm):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(tiny_nli_dir)))
    backends._objects["embedder"] = minilm  # share the session's loaded MiniLM
    return AppContext(
        backends=backends,
        store=Store(tmp_path / "app.db"),
        history_renderers={
            "trace": render_trace,
            "semantic_entropy": render_semantic,
            "inv_entropy": render_inv_entropy,
            "judge": render_judge_run,
        },
    )


def history_prompt(ctx, run_id: str) -> dict:
    return HistoryHandlers(ctx).open_prompt(run_id)


def test_generate_stores_the_templated_prompt_and_shows_it(ctx):
    outputs = list(GenerateHandlers(ctx).generate(QUESTION, 0.0, 1.0, 0, 4, 0, None))
    *_, shown, status = outputs[-1]
    expected = ctx.backends.generator().format_prompt(QUESTION)
    assert expected != QUESTION and "<|im_start|>assistant" in expected  # template applied
    assert shown["value"] == expected and shown["label"] == EXACT_LABEL
    (run,) = list_runs(ctx.store)
    assert get_run(ctx.store, run["id"])["result"]["prompt_sent"] == expected
    assert history_prompt(ctx, run["id"])["value"] == expected


def test_semantic_entropy_stores_its_own_prompt_with_the_brief_answer_instruction(ctx):
    out = SemanticHandlers(ctx).ask(QUESTION, 3, 1.0, 4, "NLI cross-encoder", True, True, 0.9,
                                    1, False, None, progress=lambda *a, **k: None)  # fmt: skip
    state = out[8]
    lm = ctx.backends.generator()
    expected = lm.format_prompt(DEFAULT_PROMPT.replace("{question}", QUESTION))
    assert state["prompt_sent"] == expected and "as briefly as possible" in expected
    assert expected != lm.format_prompt(QUESTION)  # not Generate's prompt, and it says so
    assert stored_prompt_update(state)["value"] == expected
    (run,) = list_runs(ctx.store)
    assert get_run(ctx.store, run["id"])["result"]["prompt_sent"] == expected
    assert history_prompt(ctx, run["id"])["value"] == expected


def test_inv_entropy_stores_every_answer_prompt_and_shows_the_first(ctx):
    own = "Which city is the capital of France?\nName the French capital."
    out = InvHandlers(ctx).measure(QUESTION, "given", own, 2, 2, "embedding", 4, 0, 0.7, 4)
    shown, status = out[-2], out[-1]
    lm = ctx.backends.generator()
    expected = [lm.format_prompt(answer_prompt(x)) for x in [QUESTION, *own.splitlines()]]
    assert "Saved as run" in status
    assert shown["value"] == expected[0] and "Prompt 1 of 3" in shown["label"]
    (run,) = list_runs(ctx.store)
    assert get_run(ctx.store, run["id"])["result"]["prompt_sent"] == expected
    assert history_prompt(ctx, run["id"])["value"] == expected[0]


def test_the_judge_records_its_grading_and_pairwise_prompts(ctx):
    h = JudgeHandlers(ctx)
    lm = ctx.backends.generator()
    items, _, _ = h.load_items("Demo set", None, "single")
    out = h.show_item(items, 1, 5, False, 4, True)  # blind: the prompt holds no judge number
    item, state = items[0], out[8]
    expected = lm.format_prompt(grading_prompt(item["question"], item["response"], 5, False))
    assert state["result"]["prompt_sent"] == expected
    assert judge_prompt(state)["value"] == expected
    h.submit(items, state, out[9], out[10], 4, None, "", "ada", None)
    (run,) = list_runs(ctx.store, kind="judge")
    assert history_prompt(ctx, run["id"])["value"] == expected

    items, _, _ = h.load_items("Demo set", None, "pairwise")
    state = h.show_item(items, 1, 5, False, 4, False)[8]
    q, a, b = (items[0][k] for k in ("question", "response_a", "response_b"))
    orders = [pairwise_prompt(q, a, b), pairwise_prompt(q, b, a)]
    sent = [state["result"][k]["prompt_sent"] for k in ("first", "second")]
    assert sent == [lm.format_prompt(p) for p in orders]
    shown = judge_prompt(state)
    assert shown["value"] == sent[0] and "Prompt 1 of 2" in shown["label"]


def test_20_questions_records_the_posterior_and_role_play_prompts_of_each_turn(ctx, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(
        "class,question,answer\ncat,Can it fly?,no\nowl,Can it fly?,yes\n"
        "cat,Does it purr?,yes\nowl,Does it purr?,no\n",
        encoding="utf-8",
    )
    h = CipHandlers(ctx)
    _, key, _ = h.upload(str(path))
    settings = [key, "llm", "ip", "uniform", 0.2, False, 2, 2, 0, 1, 0, 0]
    gid = list(h.auto_play(*settings, "owl", "llm"))[-1][0]
    game = get_game(ctx.store, gid)
    lm = ctx.backends.generator()
    posterior, answerer = LLMPosterior(lm, ["cat", "owl"]), LLMAnswerer(lm)
    history = []
    assert len(game["turns"]) >= 2
    for turn in game["turns"][1:]:
        history.append((turn["query"], turn["answer"]))
        assert turn["prompt_sent"] == posterior.prompt_text(history)
        assert turn["roleplay_prompt_sent"] == lm.format_prompt(
            answerer.prompt("owl", turn["query"])
        )
    shown_posterior, shown_roleplay = h.turn_prompts(gid)
    assert shown_posterior["value"] == game["turns"][-1]["prompt_sent"]
    assert shown_roleplay["value"] == game["turns"][-1]["roleplay_prompt_sent"]
    run = get_run(ctx.store, game["run_id"])
    assert stored_prompt_update(run["result"])["value"] == game["turns"][-1]["prompt_sent"]


def test_runs_stored_before_prompts_were_kept_still_reopen(ctx):
    list(GenerateHandlers(ctx).generate(QUESTION, 0.0, 1.0, 0, 3, 0, None))
    SemanticHandlers(ctx).ask(QUESTION, 3, 1.0, 3, "NLI cross-encoder", True, True, 0.9, 1,
                              False, None, progress=lambda *a, **k: None)  # fmt: skip
    InvHandlers(ctx).measure(QUESTION, "given", "Name the French capital.", 1, 2, "embedding", 4,
                             0, 0.7, 3)  # fmt: skip
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = h.show_item(items, 1, 5, False, 4, False)
    h.submit(items, out[8], out[9], out[10], 3, None, "", "ada", None)
    for run in list_runs(ctx.store):
        old = get_run(ctx.store, run["id"])
        result = json.loads(json.dumps(old["result"]))
        result.pop("prompt_sent", None)
        (result.get("judge") or {}).pop("prompt_sent", None)
        assert "prompt_sent" not in json.dumps(result)
        old_id = save_run(ctx.store, kind=old["kind"], model=old["model"], params=old["params"],
                          result=result, title="old")  # fmt: skip
        view = HistoryHandlers(ctx).run_view(old_id)
        assert view["markdown"] and "plot" in view
        shown = history_prompt(ctx, old_id)
        assert shown["value"] == "" and shown["label"] == NONE_STORED


def test_an_openai_compatible_chat_server_is_sent_the_messages_shown_as_json():
    lm = OpenAICompatLM("http://127.0.0.1:9", "served")
    text = 'Is <b>this</b> "bold"?'
    sent = lm.format_prompt(text)
    assert json.loads(sent) == [{"role": "user", "content": text}]
    assert lm.format_prompt(text, chat=False) == text
    assert prompt_update(sent)["label"] == CHAT_JSON_LABEL
    assert prompt_update(text)["label"] == EXACT_LABEL  # plain text is not mistaken for it


def test_the_accordion_is_closed_and_holds_plain_text():
    from ui.components.prompt import PROMPT_TITLE, prompt_accordion

    with gr.Blocks() as demo:
        box = prompt_accordion("note")
    accordion = next(b for b in demo.blocks.values() if isinstance(b, gr.Accordion))
    assert accordion.label == PROMPT_TITLE and accordion.open is False
    assert isinstance(box, gr.Code) and box.language is None and not box.interactive
