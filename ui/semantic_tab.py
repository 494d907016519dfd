"""The Semantic entropy tab: ask a question and see the meanings of N sampled answers; score
answers you paste; evaluate every measure on a dataset."""

from __future__ import annotations

import math
import time
from pathlib import Path

import gradio as gr

from backends.base import ConfidantError, Generation
from store.eval_cache import EvalCache, export_evaluation
from store.export import export_dir
from store.runs import save_run
from ui.context import AppContext, annotator_of, session_of, user_errors
from ui.plots import entropy_highlights, trace_figure
from ui.plots_semantic import (
    answers_markdown,
    cluster_figure,
    label_heatmap,
    measures_markdown,
    metrics_rows,
    rejection_figure,
    roc_figure,
)
from uq import evaluate as ev
from uq.semantic_pipeline import (
    DEFAULT_EMBEDDING_THRESHOLD,
    SemanticEntropyResult,
    make_entailment,
    measures_without_pair_matrix,
    parse_answers_text,
    read_answers_file,
    run_semantic_entropy,
    score_pasted_answers,
)

ENTAILMENT_CHOICES = {
    "NLI cross-encoder": "nli",
    "Embedding cosine similarity": "embedding",
    "The generator, prompted": "generator",
}
BUNDLED_DATASET = Path(__file__).resolve().parents[1] / "data" / "qa" / "trivia_small.jsonl"
CORRECTNESS_CHOICES = {
    "SQuAD F1 ≥ 0.5": "squad_f1",
    "Exact match": "em",
    "ROUGE-L ≥ 0.3": "rougeL",
    "LLM judge (the generator)": "judge",
}
MAX_UI_SAMPLES = 50


def _int(value, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a whole number") from None
    if not math.isfinite(number) or number != int(number):
        raise ConfidantError(f"{name} must be a whole number, got {value}")
    if not low <= int(number) <= high:
        raise ConfidantError(f"{name} must be between {low} and {high}, got {int(number)}")
    return int(number)


def _float(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfidantError(f"{name} must be a finite number")
    return number


def _entailment(ctx: AppContext, choice: str, condition: bool, threshold, *, allow_generator=True):
    method = ENTAILMENT_CHOICES.get(choice)
    if method is None:
        raise ConfidantError(f"unknown entailment choice {choice!r}")
    if method == "generator" and not allow_generator:
        raise ConfidantError("pasted answers are compared with NLI or embeddings")
    return make_entailment(
        method,
        nli=ctx.backends.nli() if method == "nli" else None,
        embedder=ctx.backends.embedder() if method == "embedding" else None,
        lm=ctx.backends.generator() if method == "generator" else None,
        condition_on_question=bool(condition),
        threshold=_float(threshold, "the similarity threshold"),
    )


def result_views(result: SemanticEntropyResult):
    """(measures markdown, cluster figure, label heatmap, answers markdown)."""
    return (
        measures_markdown(result),
        cluster_figure(result),
        label_heatmap(result),
        answers_markdown(result),
    )


def _generation_choices(result: SemanticEntropyResult) -> list[str]:
    names = [f"sample #{i}" for i in range(len(result.samples))]
    return (["reference"] if result.reference is not None else []) + names


def generation_view(result_dict: dict | None, choice: str | None):
    """Token trace figure and highlights of the reference answer or one sample."""
    if not result_dict or not choice:
        return None, None
    result = SemanticEntropyResult.from_dict(result_dict)
    gen: Generation | None
    if choice == "reference":
        gen = result.reference
    else:
        try:
            gen = result.samples[int(choice.split("#")[-1])]
        except (ValueError, IndexError):
            return None, None
    if gen is None:
        return None, None
    return trace_figure(gen, title=f"Token trace of the {choice}"), entropy_highlights(gen)


def make_semantic_handler(ctx: AppContext):
    @user_errors
    def ask(
        question,
        n,
        temperature,
        max_new_tokens,
        entailment,
        strict,
        condition,
        threshold,
        seed,
        pair_measures=True,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ):
        n = _int(n, "N", 2, MAX_UI_SAMPLES)
        max_new = _int(max_new_tokens, "max new tokens", 1, 1024)
        temperature = _float(temperature, "temperature")
        seed = None if seed in (None, "") else _int(seed, "the seed", 0, 2**31 - 1)
        lm = ctx.backends.generator()
        ent = _entailment(ctx, entailment, condition, threshold)
        started = time.perf_counter()
        result = run_semantic_entropy(
            lm,
            question,
            ent,
            n=n,
            temperature=temperature,
            max_new_tokens=max_new,
            seed=seed,
            strict=bool(strict),
            measures=None if pair_measures else measures_without_pair_matrix(),
            progress=lambda fraction, message: progress(fraction, desc=message),
        )
        run_id = save_run(
            ctx.store,
            kind="semantic_entropy",
            model=result.model or "",
            params=result.params,
            seed=result.params.get("seed"),
            result=result.to_dict(),
            generations=[("sample", g) for g in result.samples]
            + ([("reference", result.reference)] if result.reference else []),
            title=result.question[:200],
            annotator=annotator_of(request),
            session_id=session_of(request),
            duration=time.perf_counter() - started,
        )
        md, clusters, heat, answers = result_views(result)
        state = result.to_dict()
        choices = _generation_choices(result)
        trace, highlights = generation_view(state, choices[0])
        return (
            md,
            clusters,
            heat,
            answers,
            gr.update(choices=choices, value=choices[0]),
            trace,
            highlights,
            result.reference.text if result.reference else "",
            state,
            f"Saved as run `{run_id}` (History tab).",
        )

    return ask


def make_pasted_handler(ctx: AppContext):
    @user_errors
    def score(
        question,
        answers_text,
        upload,
        log_likelihoods_text,
        entailment,
        strict,
        condition,
        threshold,
        request: gr.Request = None,
    ):
        if upload:
            path = upload if isinstance(upload, str) else getattr(upload, "name", str(upload))
            answers, lls = read_answers_file(path)
        else:
            answers, lls = parse_answers_text(answers_text)
        typed = (log_likelihoods_text or "").strip()
        if typed:
            if lls is not None:
                raise ConfidantError(
                    "log-likelihoods are given twice (in the answers and in their own box)"
                )
            lls = [line.strip() for line in typed.splitlines() if line.strip()]
        ent = _entailment(ctx, entailment, condition, threshold, allow_generator=False)
        started = time.perf_counter()
        result = score_pasted_answers(
            answers, ent, question=question or "", log_likelihoods=lls, strict=bool(strict)
        )
        run_id = save_run(
            ctx.store,
            kind="semantic_entropy",
            model="(pasted answers)",
            params=result.params,
            result=result.to_dict(),
            generations=[],
            title=(result.question or result.texts[0])[:200],
            annotator=annotator_of(request),
            session_id=session_of(request),
            duration=time.perf_counter() - started,
        )
        md, clusters, heat, answers_md = result_views(result)
        return md, clusters, heat, answers_md, f"Saved as run `{run_id}` (History tab)."

    return score


def make_evaluate_handler(ctx: AppContext):
    @user_errors
    def evaluate(
        upload,
        use_bundled,
        limit,
        n,
        max_new_tokens,
        entailment,
        correctness,
        seed,
        p_true_fewshot=0,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ):
        if upload:  # an uploaded file wins over the bundled set (ticked by default)
            path = upload if isinstance(upload, str) else getattr(upload, "name", str(upload))
            items = ev.load_dataset(path)
        elif use_bundled:
            items = ev.load_dataset(BUNDLED_DATASET)
        else:
            raise ConfidantError("Upload a dataset (.jsonl or .csv) or tick the bundled one.")
        limit = _int(limit, "the number of questions", 1, 100_000)
        items = items[:limit]
        method = CORRECTNESS_CHOICES.get(correctness)
        if method is None:
            raise ConfidantError(f"unknown correctness choice {correctness!r}")
        settings = ev.EvalSettings(
            n=_int(n, "N", 2, MAX_UI_SAMPLES),
            max_new_tokens=_int(max_new_tokens, "max new tokens", 1, 1024),
            seed=_int(seed, "the seed", 0, 2**31 - 1),
            correctness=method,
            p_true_fewshot=_int(
                p_true_fewshot or 0, "p(True) worked examples", 0, ev.MAX_P_TRUE_FEWSHOT
            ),
        ).validate()
        lm = ctx.backends.generator()
        ent = _entailment(ctx, entailment, True, DEFAULT_EMBEDDING_THRESHOLD)
        progress(0, desc="Starting")

        def tick(done: int, total: int, message: str) -> None:
            progress((done, total), desc=message, unit="questions")

        result = ev.run_evaluation(
            items, lm, ent, settings, cache=EvalCache(ctx.store), progress=tick
        )
        headers, rows = metrics_rows(result)
        q_cols, q_rows = result.question_table()
        paths = export_evaluation(result, export_dir())
        status = (
            f"{len(result.rows)} questions · accuracy {result.accuracy:.3f} · "
            f"{result.n_computed} computed, {result.n_cached} from the cache · "
            f"{result.duration:.1f} s"
        )
        return (
            gr.update(value=rows, headers=headers),
            gr.update(value=[[r.get(c) for c in q_cols] for r in q_rows], headers=q_cols),
            roc_figure(result),
            rejection_figure(result),
            [str(p) for p in paths],
            status,
        )

    return evaluate


def render_semantic(run: dict) -> dict:
    """History view of a stored semantic-entropy run, rebuilt without a model."""
    result = SemanticEntropyResult.from_dict(run["result"])
    md, clusters, heat, answers = result_views(result)
    head = f"**Question:** {result.question or '(none)'} · source: {result.source}\n\n"
    return {
        "markdown": head + answers + "\n\n" + md,
        "plot": clusters,
        "plot2": heat,
        "highlights": entropy_highlights(result.reference) if result.reference else None,
    }


def _entailment_controls(ctx: AppContext, with_generator: bool = True):
    choices = [
        c for c in ENTAILMENT_CHOICES if with_generator or ENTAILMENT_CHOICES[c] != "generator"
    ]
    nli_id = ctx.backends.describe()["nli"]
    with gr.Accordion("Entailment", open=False):
        entailment = gr.Radio(
            choices, value=choices[0], label=f"Compare meanings with (NLI model: {nli_id})"
        )
        strict = gr.Checkbox(
            value=True, label="Strict: entailment both ways (off: lenient — no contradiction)"
        )
        condition = gr.Checkbox(value=True, label="Prepend the question to each answer (NLI)")
        threshold = gr.Slider(
            0.0,
            1.0,
            value=DEFAULT_EMBEDDING_THRESHOLD,
            step=0.01,
            label="Cosine threshold (embedding entailment)",
        )
    return entailment, strict, condition, threshold


def create_semantic_tab(ctx: AppContext) -> None:
    ctx.history_renderers["semantic_entropy"] = render_semantic
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
                            label="Pair-matrix measures (EigV, Degree, Eccentricity, KLE)",
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
                state = gr.State()
                which = gr.Dropdown([], label="Token trace of", interactive=True)
                trace = gr.Plot(label="Per-token entropy (raw distribution) and surprisal")
                highlights = gr.HighlightedText(
                    label="Tokens coloured by entropy", combine_adjacent=False, show_legend=True
                )
                go_btn.click(
                    make_semantic_handler(ctx),
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
                    make_pasted_handler(ctx),
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
                            label="Dataset (.jsonl or .csv)", file_types=[".jsonl", ".csv"]
                        )
                        e_bundled = gr.Checkbox(
                            value=True,
                            label="Use the bundled trivia set (55 questions) when no file is uploaded",
                        )
                    with gr.Column():
                        e_limit = gr.Number(value=10, precision=0, label="Questions (first N)")
                        e_n = gr.Slider(2, MAX_UI_SAMPLES, value=10, step=1, label="N answers")
                        e_max = gr.Slider(1, 256, value=32, step=1, label="Max new tokens")
                        e_seed = gr.Number(value=0, precision=0, label="Seed")
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
                            value="SQuAD F1 ≥ 0.5",
                            label="Correct when",
                        )
                        e_btn = gr.Button("Evaluate", variant="primary")
                e_status = gr.Markdown()
                e_metrics = gr.Dataframe(label="Metrics per measure", interactive=False, wrap=True)
                with gr.Row():
                    e_roc = gr.Plot(label="ROC")
                    e_rej = gr.Plot(label="Accuracy vs rejection")
                e_questions = gr.Dataframe(label="Per question", interactive=False, wrap=True)
                e_files = gr.File(label="Download CSV / JSON", file_count="multiple")
                e_btn.click(
                    make_evaluate_handler(ctx),
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
                    ],  # fmt: skip
                    outputs=[e_metrics, e_questions, e_roc, e_rej, e_files, e_status],
                    api_name="evaluate_dataset",
                    concurrency_id="model",
                    concurrency_limit=1,
                )
