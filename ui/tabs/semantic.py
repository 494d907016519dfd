"""The Semantic entropy tab: ask a question and see the meanings of N sampled answers; score
answers you paste; evaluate every measure on a dataset.
"""

from __future__ import annotations

import gradio as gr

from ui.components.prompt import prompt_accordion, stored_prompt_update
from ui.components.results import token_highlights
from ui.context import AppContext
from ui.plots.calibration import reliability_figure
from ui.tabs.semantic_handlers import (
    CORRECTNESS_CHOICES,
    DEFAULT_CORRECTNESS_CHOICE,
    DEFAULT_SOURCE,
    ENTAILMENT_CHOICES,
    MAX_UI_SAMPLES,
    SOURCE_CHOICES,
    SemanticHandlers,
    generation_view,
    render_semantic,
)
from uq.evaluation.settings import DEFAULT_FEW_SHOT
from uq.semantic.entailment import DEFAULT_CONDITION_ON_QUESTION, DEFAULT_EMBEDDING_THRESHOLD
from uq.semantic.measures import pair_matrix_measures
from uq.semantic.measures import stored_measures as semantic_stored_measures
from uq.semantic.pipeline import PROMPT_NOTE


def _question_default(choice: str) -> bool:
    return DEFAULT_CONDITION_ON_QUESTION.get(ENTAILMENT_CHOICES.get(choice, ""), True)


def _question_label() -> str:
    defaults = ", ".join(
        f"{m}: {'on' if on else 'off'}" for m, on in DEFAULT_CONDITION_ON_QUESTION.items()
    )
    return (
        "Prepend the question to each answer (NLI and embedding; the generator's prompt always "
        f"shows it). Default per method — {defaults}"
    )


def _entailment_controls(ctx: AppContext, with_generator: bool = True):
    choices = [
        c for c in ENTAILMENT_CHOICES if with_generator or ENTAILMENT_CHOICES[c] != "generator"
    ]
    nli_id = ctx.backends.describe()["nli"]
    default = ctx.backends.default_entailment()
    value = next(c for c in choices if ENTAILMENT_CHOICES[c] == default.method)
    with gr.Accordion("Entailment", open=False):
        if default.message:
            gr.Markdown(default.message)
        entailment = gr.Radio(
            choices, value=value, label=f"Compare meanings with (NLI model: {nli_id})"
        )
        strict = gr.Checkbox(
            value=True, label="Strict: entailment both ways (off: lenient — no contradiction)"
        )
        condition = gr.Checkbox(
            value=_question_default(value), label=_question_label(), interactive=True
        )
        threshold = gr.Slider(
            0.0,
            1.0,
            value=DEFAULT_EMBEDDING_THRESHOLD,
            step=0.01,
            label="Cosine threshold (embedding entailment)",
        )
    # each method has its own default (uq.semantic.entailment): picking one resets the box
    entailment.change(
        lambda c: gr.update(value=_question_default(c)), inputs=entailment, outputs=condition
    )
    return entailment, strict, condition, threshold


def create_semantic_tab(ctx: AppContext) -> None:
    """Lay out the Semantic entropy tab (ask, pasted answers, evaluate a dataset) and wire its
    buttons to ``SemanticHandlers``."""
    ctx.history_renderers["semantic_entropy"] = render_semantic
    ctx.run_measures["semantic_entropy"] = semantic_stored_measures
    handlers = SemanticHandlers(ctx)
    with gr.Tab("Semantic entropy", id="semantic_entropy"):
        gr.Markdown(
            "Sample several answers, group them by **meaning** (bidirectional entailment), and "
            "measure how spread the meanings are. One meaning = the model is sure; many = it is "
            "guessing. Higher values = more uncertain."
        )
        with gr.Tabs():
            with gr.Tab("Ask", id="semantic_ask"):
                with gr.Row():
                    with gr.Column(scale=3):
                        question = gr.Textbox(
                            label="Question",
                            lines=2,
                            placeholder="What is the capital of Australia?",
                        )
                        go_btn = gr.Button("Sample and measure", variant="primary")
                    with gr.Column(scale=2):
                        n = gr.Slider(2, MAX_UI_SAMPLES, value=10, step=1, label="N answers")
                        temperature = gr.Slider(
                            0.05, 2.0, value=1.0, step=0.05, label="Temperature"
                        )
                        max_new = gr.Slider(1, 256, value=64, step=1, label="Max new tokens")
                        seed = gr.Number(value=0, precision=0, label="Seed")
                        entailment, strict, condition, threshold = _entailment_controls(ctx)
                        pair_measures = gr.Checkbox(
                            value=True,
                            label="Pair-matrix measures "
                            f"({', '.join(m.label for m in pair_matrix_measures())})",
                            info="These need every ordered pair of distinct answers labelled, "
                            "N(N−1) pairs; without them only the pairs the clustering compares "
                            "go to the entailment model (much faster with NLI on a CPU).",
                        )
                status = gr.Markdown()
                measures = gr.Markdown()
                with gr.Row():
                    clusters = gr.Plot(label="Clusters")
                    heat = gr.Plot(label="Entailment label matrix")
                reference = gr.Textbox(
                    label="Reference answer (temperature 0.1)", interactive=False
                )
                answers = gr.Markdown()
                prompt = prompt_accordion(PROMPT_NOTE)
                state = gr.State()
                which = gr.Dropdown([], label="Token trace of", interactive=True)
                trace = gr.Plot(label="Per-token entropy (raw distribution) and surprisal")
                highlights = token_highlights()
                go_btn.click(
                    handlers.ask,
                    inputs=[
                        question,
                        n,
                        temperature,
                        max_new,
                        entailment,
                        strict,
                        condition,
                        threshold,
                        seed,
                        pair_measures,
                    ],  # fmt: skip
                    outputs=[
                        measures,
                        clusters,
                        heat,
                        answers,
                        which,
                        trace,
                        highlights,
                        reference,
                        state,
                        status,
                    ],  # fmt: skip
                    api_name="semantic_entropy",
                    concurrency_id="model",
                    concurrency_limit=1,
                )
                which.change(
                    generation_view, [state, which], [trace, highlights], api_visibility="private"
                )
                state.change(stored_prompt_update, [state], [prompt], api_visibility="private")

            with gr.Tab("Pasted answers", id="semantic_pasted"):
                gr.Markdown(
                    "Score answers you already have (any model, any API): one per line, or a "
                    'JSON list (`["Paris", …]` or `[{"answer": "Paris", "log_likelihood": '
                    "-0.3}, …]`), or upload a CSV (`answer`, optional `log_likelihood`) or "
                    "JSONL file. Without log-likelihoods you get every measure that needs "
                    "none."
                )
                with gr.Row():
                    with gr.Column(scale=3):
                        p_question = gr.Textbox(label="Question (optional)", lines=1)
                        p_answers = gr.Textbox(label="Answers", lines=8)
                        p_file = gr.File(
                            label="…or upload", file_types=[".csv", ".tsv", ".jsonl", ".txt"]
                        )
                    with gr.Column(scale=2):
                        p_lls = gr.Textbox(
                            label="Log-likelihoods, one per line (optional)", lines=8
                        )
                        p_ent, p_strict, p_cond, p_thr = _entailment_controls(ctx, False)
                        p_btn = gr.Button("Measure", variant="primary")
                p_status = gr.Markdown()
                p_measures = gr.Markdown()
                with gr.Row():
                    p_clusters = gr.Plot(label="Clusters")
                    p_heat = gr.Plot(label="Entailment label matrix")
                p_answers_md = gr.Markdown()
                p_btn.click(
                    handlers.score_pasted,
                    inputs=[p_question, p_answers, p_file, p_lls, p_ent, p_strict, p_cond, p_thr],
                    outputs=[p_measures, p_clusters, p_heat, p_answers_md, p_status],
                    api_name="score_answers",
                    concurrency_id="model",
                    concurrency_limit=1,
                )

            with gr.Tab("Evaluate a dataset", id="semantic_evaluate"):
                gr.Markdown(
                    "Which measure predicts wrong answers best? Each question's reference answer "
                    "is judged against the gold answers; every measure is scored by AUROC, "
                    "AURAC, accuracy when refusing the 5/10/20 % most uncertain, and PRR, with "
                    "95 % bootstrap intervals. Finished questions are cached: a rerun resumes."
                )
                with gr.Row():
                    with gr.Column():
                        e_file = gr.File(
                            label="Dataset (.jsonl, .csv or .parquet: question, answers), "
                            "or your samples file",
                            file_types=[".jsonl", ".csv", ".parquet"],
                        )
                        e_source = gr.Radio(
                            list(SOURCE_CHOICES),
                            value=DEFAULT_SOURCE,
                            label="Answers",
                            info="My own samples: upload a samples file (question, gold, "
                            "samples, optional token log-probs and reference; see the README's "
                            "'Score your own generations'); no generator runs, and measures "
                            "whose statistics are missing say 'needs model internals'.",
                        )
                        e_bundled = gr.Checkbox(
                            value=True,
                            label="Use the bundled trivia set (55 questions) when no file is "
                            "uploaded",
                        )
                    with gr.Column():
                        e_limit = gr.Number(value=10, precision=0, label="Questions (first N)")
                        e_n = gr.Slider(2, MAX_UI_SAMPLES, value=10, step=1, label="N answers")
                        e_max = gr.Slider(1, 256, value=32, step=1, label="Max new tokens")
                        e_seed = gr.Number(value=0, precision=0, label="Seed")
                        e_few = gr.Number(
                            value=DEFAULT_FEW_SHOT,
                            precision=0,
                            label="Few-shot answer examples",
                            info="The first K questions and their gold answers are shown to the "
                            "model as examples so it answers briefly (Farquhar et al. use 5); "
                            "the metrics cover the rest. 0 = the zero-shot prompt.",
                        )
                        e_shots = gr.Number(
                            value=0,
                            precision=0,
                            label="p(True) worked examples",
                            info="0 = zero-shot. K > 0: the first K questions are answered "
                            "first and become p(True)'s examples (Farquhar et al. use 20); the "
                            "metrics cover the rest.",
                        )
                    with gr.Column():
                        e_ent = gr.Radio(
                            list(ENTAILMENT_CHOICES), value="NLI cross-encoder", label="Entailment"
                        )
                        e_corr = gr.Radio(
                            list(CORRECTNESS_CHOICES),
                            value=DEFAULT_CORRECTNESS_CHOICE,
                            label="Correct when",
                        )
                        e_btn = gr.Button("Evaluate", variant="primary")
                e_status = gr.Markdown()
                e_metrics = gr.Dataframe(label="Metrics per measure", interactive=False, wrap=True)
                with gr.Row():
                    e_roc = gr.Plot(label="ROC")
                    e_rej = gr.Plot(label="Accuracy vs rejection")
                gr.Markdown(
                    "**Calibration.** Each measure is turned into P(correct) by Platt scaling "
                    "and by isotonic regression, fitted on a random half of the questions "
                    "(seeded) and scored on the other half: ECE (10 equal-width or equal-mass "
                    "bins), Brier score and log loss, lower is better, with 95 % bootstrap "
                    "intervals. 1 − p(True) is also scored as it stands."
                )
                e_cal = gr.Dataframe(label="Calibration (held-out half)", interactive=False)
                with gr.Row():
                    e_cal_measure = gr.Dropdown(label="Reliability diagram of", choices=[], scale=1)
                    e_cal_plot = gr.Plot(label="Reliability diagram")
                e_cal_state = gr.State()
                e_questions = gr.Dataframe(label="Per question", interactive=False, wrap=True)
                e_files = gr.File(label="Download CSV / JSON", file_count="multiple")
                e_btn.click(
                    handlers.evaluate,
                    inputs=[
                        e_file,
                        e_bundled,
                        e_limit,
                        e_n,
                        e_max,
                        e_ent,
                        e_corr,
                        e_seed,
                        e_shots,
                        e_few,
                        e_source,
                    ],  # fmt: skip
                    outputs=[e_metrics, e_questions, e_roc, e_rej, e_files, e_status,
                             e_cal, e_cal_measure, e_cal_plot, e_cal_state],
                    api_name="evaluate_dataset",
                    concurrency_id="model",
                    concurrency_limit=1,
                )  # fmt: skip
                e_cal_measure.change(
                    reliability_figure, [e_cal_state, e_cal_measure], [e_cal_plot],
                    api_visibility="private", queue=False,
                )  # fmt: skip
