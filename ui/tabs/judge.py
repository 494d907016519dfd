"""The Judge tab: annotate items beside the LLM judge, measure agreement, export, and run the
TrustJudge consistency diagnostics. This module lays out the page and wires the events to
:class:`ui.tabs.judge_handlers.JudgeHandlers`.

Blind mode: the judge runs when an item is shown, but its result stays in server-side state
(``gr.State`` is never sent to the browser) and nothing of it is returned until the person's own
judgement is saved.
"""

from __future__ import annotations

import gradio as gr

from core.text import md_text
from judge.annotation import stored_measures as judge_stored_measures
from judge.items import KINDS
from ui.components.prompt import (
    EXACT_LABEL,
    ORDERS_NOTE,
    prompt_accordion,
    prompt_update,
    stored_prompt,
)
from ui.context import AppContext
from ui.plots.judge import AGREEMENT_HEADERS, CONSISTENCY_HEADERS
from ui.plots.reliability import RUN_KIND as RELIABILITY_KIND
from ui.plots.reliability import render_reliability_run
from ui.tabs.judge_handlers import JudgeHandlers, render_judge_run
from ui.tabs.judge_reliability import create_reliability_section

PROMPT_NOTE = (
    "The grading prompt (for a pair, the comparison prompt; it is sent in both orders) in the "
    "model's chat template. The judge writes its rationale after it, then the score or verdict "
    "whose probabilities are read. It holds the item's text and the rubric, nothing of the "
    "judge's answer, so it is shown in blind mode too."
)


def judge_prompt(state: dict | None) -> dict:
    """The prompt of the judge's run on the item on screen (``judge_state``)."""
    result = (state or {}).get("result")
    sent = stored_prompt({"judge": result}) if result else None
    return prompt_update(sent, missing=EXACT_LABEL, several=ORDERS_NOTE)


def create_judge_tab(ctx: AppContext) -> None:
    """Lay out the Judge tab, wire its events to a :class:`JudgeHandlers` and register its
    History view."""
    h = JudgeHandlers(ctx)
    ctx.history_renderers["judge"] = render_judge_run
    ctx.history_renderers[RELIABILITY_KIND] = render_reliability_run
    ctx.run_measures["judge"] = judge_stored_measures
    with gr.Tab("Judge", id="judge"):
        gr.Markdown(
            "Judge answers beside the LLM judge. For each item the judge writes a short rationale, "
            "then Confidant reads its **exact probability for every score** (or for A / B / C "
            "in both presentation orders) by teacher forcing. With **blind mode** the judge "
            "stays hidden until you save your own judgement."
        )
        with gr.Row():
            name = gr.Textbox(
                label="Your name",
                placeholder="e.g. ada",
                visible=not ctx.auth_enabled,
                scale=2,
            )
            who_md = gr.Markdown(visible=ctx.auth_enabled)
            blind = gr.Checkbox(value=True, label="Blind mode (hide the judge until I answer)")
        with gr.Row():
            source = gr.Radio(["Demo set", "Import file"], value="Demo set", label="Items")
            kind = gr.Radio(list(KINDS), value="single", label="Task")
            upload = gr.File(
                label="CSV or JSONL (question, response | response_a, response_b)",
                file_types=[".csv", ".jsonl"],
                type="filepath",
            )
            load_btn = gr.Button("Load items", variant="primary", scale=0)
        load_md = gr.Markdown()
        with gr.Accordion("Judge settings", open=False):
            with gr.Row():
                scale = gr.Dropdown([5, 100], value=5, label="Scale (single items)")
                direct = gr.Checkbox(value=False, label="Direct score (no rationale)")
                max_new = gr.Slider(1, 1024, value=128, step=1, label="Rationale max new tokens")
        items = gr.State([])
        judge_state = gr.State(None)
        shown = gr.State("")
        with gr.Row():
            index = gr.Number(value=1, precision=0, label="Item number", scale=1)
            show_btn = gr.Button("Show item", scale=0)
            next_btn = gr.Button("Next item", scale=0)
        position = gr.Markdown()
        question = gr.Textbox(label="Question", interactive=False, lines=2)
        with gr.Row():
            response_a = gr.Textbox(label="Response (A)", interactive=False, lines=6)
            response_b = gr.Textbox(label="Response B", interactive=False, lines=6, visible=False)
        with gr.Row():
            # A radio has no preset value (a slider always shows one): no score until one is
            # picked, and Save refuses without it.
            human_score = gr.Radio(list(range(1, 6)), value=None, label="Your score")
            preference = gr.Radio(
                ["A", "B", "C (tie)"], label="Which answer is better?", visible=False
            )
        note = gr.Textbox(label="Note (optional)", lines=2)
        client_key = gr.Textbox(visible=False)
        submit_btn = gr.Button("Save my judgement", variant="primary")
        status = gr.Markdown()
        judge_plot = gr.Plot(label="Judge")
        judge_md = gr.Markdown()
        prompt = prompt_accordion(PROMPT_NOTE)
        judge_state.change(judge_prompt, [judge_state], [prompt], api_visibility="private")

        with gr.Accordion("Agreement and export", open=False):
            agree_btn = gr.Button("Compute agreement")
            agree_table = gr.Dataframe(headers=AGREEMENT_HEADERS, interactive=False, wrap=True)
            agree_md = gr.Markdown()
            with gr.Row():
                fmt = gr.Radio(["CSV", "JSONL"], value="CSV", label="Format")
                export_btn = gr.Button("Export judgements")
            export_file = gr.File(label="Download", interactive=False)

        with gr.Accordion("Consistency (TrustJudge CR and NTR_k on the demo set)", open=False):
            gr.Markdown(
                "Grades every candidate of each demo question and compares every pair in both "
                "orders, then reports the **Conflict Ratio** (single scores vs pairwise verdicts) "
                "and **NTR_k** (k-subsets with a cycle or a broken tie) for the baseline, G-Eval "
                "and TrustJudge. Slow with a real model: start with 1–2 questions and direct mode."
            )
            with gr.Row():
                n_q = gr.Slider(1, 10, value=2, step=1, label="Questions")
                c_direct = gr.Checkbox(value=True, label="Direct (no rationale)")
                c_max_new = gr.Slider(1, 512, value=64, step=1, label="Max new tokens")
                c_base = gr.Dropdown([5, 100], value=5, label="Baseline / G-Eval scale")
                c_tj = gr.Dropdown([5, 100], value=100, label="TrustJudge scale")
                c_tol = gr.Number(value=0.0, label="Tolerance δ (baseline points)")
            c_btn = gr.Button("Run consistency", variant="primary")
            c_status = gr.Markdown()
            c_table = gr.Dataframe(headers=CONSISTENCY_HEADERS, interactive=False, wrap=True)
            c_plot = gr.Plot(label="CR and NTR_k")
        create_reliability_section(ctx)

        show_outputs = [
            position,
            question,
            response_a,
            response_b,
            human_score,
            preference,
            judge_plot,
            judge_md,
            judge_state,
            client_key,
            shown,
        ]
        show_inputs = [items, index, scale, direct, max_new, blind]
        load_btn.click(
            h.load_items, [source, upload, kind], [items, load_md, index], api_name="judge_load"
        )

        # Save is disabled while an item loads (a save then would land on the item before).
        def lock():
            return gr.update(interactive=False)

        def unlock():
            return gr.update(interactive=True)

        def bump(i, its):
            return min(int(i or 0) + 1, max(1, len(its or []))), gr.update(interactive=False)

        show_btn.click(lock, None, [submit_btn], api_visibility="private", queue=False).then(
            h.show_item,
            show_inputs,
            show_outputs,
            api_name="judge_show",
            concurrency_id="model",
            concurrency_limit=1,
        ).then(unlock, None, [submit_btn], api_visibility="private", queue=False)
        next_btn.click(
            bump, [index, items], [index, submit_btn], api_visibility="private", queue=False
        ).then(
            h.show_item,
            show_inputs,
            show_outputs,
            api_visibility="private",
            concurrency_id="model",
            concurrency_limit=1,
        ).then(unlock, None, [submit_btn], api_visibility="private", queue=False)
        submit_btn.click(
            h.submit,
            [items, judge_state, client_key, shown, human_score, preference, note, name],
            [status, judge_plot, judge_md],
            api_name="judge_submit",
        )
        agree_btn.click(h.agreement, None, [agree_table, agree_md], api_name="judge_agreement")
        export_btn.click(h.export, [fmt, name], [export_file], api_name="judge_export")
        c_btn.click(
            h.consistency,
            [n_q, c_direct, c_max_new, c_base, c_tj, c_tol],
            [c_status, c_table, c_plot],
            api_name="judge_consistency",
            concurrency_id="model",
            concurrency_limit=1,
        )
        if ctx.auth_enabled:

            def whoami(request: gr.Request):
                user = getattr(request, "username", None)
                return f"Annotating as **{md_text(user)}**." if user else "Log in to annotate."

            ctx.on_load.append((whoami, None, [who_md]))
