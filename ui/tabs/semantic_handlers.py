"""Handlers of the Semantic entropy tab: ask, pasted answers, dataset evaluation."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from backends.base import Generation, check_seed
from core.errors import ConfidantError
from core.reader import TOO_LARGE
from core.text import html_text, md_text
from store.eval_cache import EvalCache, export_evaluation
from store.export import export_dir
from store.runs import save_run
from ui.components.exports import offer
from ui.components.inputs import number, upload_path, whole_number
from ui.components.results import saved_note
from ui.context import AppContext, annotator_of, session_of, user_errors
from ui.plots.calibration import (
    CALIBRATION_HEADERS,
    calibration_rows,
    default_measure,
    reliability_figure,
)
from ui.plots.semantic import (
    answers_markdown,
    cluster_figure,
    label_heatmap,
    measures_markdown,
    metrics_rows,
    rejection_figure,
    roc_figure,
)
from ui.plots.trace import entropy_highlights, trace_figure
from uq.evaluation.datasets import MAX_FILE_BYTES, load_dataset
from uq.evaluation.external import load_parquet
from uq.evaluation.harness import (
    DEFAULT_CORRECTNESS,
    MAX_FEW_SHOT,
    MAX_P_TRUE_FEWSHOT,
    EvalSettings,
    run_evaluation,
)
from uq.evaluation.samples import load_samples
from uq.semantic.entailment import DEFAULT_EMBEDDING_THRESHOLD, make_entailment
from uq.semantic.measures import measures_without_pair_matrix
from uq.semantic.pasted import parse_answers_text, read_answers_file, score_pasted_answers
from uq.semantic.pipeline import run_semantic_entropy
from uq.semantic.result import SemanticEntropyResult
from uq.trace import clean_question

ENTAILMENT_CHOICES = {
    "NLI cross-encoder": "nli",
    "Embedding cosine similarity": "embedding",
    "The generator, prompted": "generator",
}
BUNDLED_DATASET = Path(__file__).resolve().parents[2] / "data" / "qa" / "trivia_small.jsonl"
CORRECTNESS_CHOICES = {
    "Contains a gold answer": "contains",
    "SQuAD F1 ≥ 0.5": "squad_f1",
    "Exact match": "em",
    "ROUGE-L ≥ 0.3": "rougeL",
    "LLM judge (the generator)": "judge",
}
DEFAULT_CORRECTNESS_CHOICE = next(
    k for k, v in CORRECTNESS_CHOICES.items() if v == DEFAULT_CORRECTNESS
)
MAX_UI_SAMPLES = 50
SOURCE_CHOICES = {"Generate with the model": "model", "My own samples (no generator)": "samples"}
DEFAULT_SOURCE = "Generate with the model"


def read_pasted_answers(answers_text, upload) -> tuple[list[str], list[float] | None]:
    """(answers, log-likelihoods) of the upload, else of the pasted text; each read stops at
    its byte and answer limits (``uq.semantic.pasted``)."""
    if upload:
        return read_answers_file(upload_path(upload))
    return parse_answers_text(answers_text)


def check_pasted(question, answers_text, upload, *rest) -> None:
    """The pasted-answers event's input checks, run before its job is queued."""
    read_pasted_answers(answers_text, upload)


def check_dataset_upload(upload, *rest) -> None:
    """The dataset event's size check (the file is not read), run before its job is queued."""
    path = Path(upload_path(upload) or "")
    if upload and path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        limit = f"{MAX_FILE_BYTES // 1_000_000} MB"
        raise ConfidantError(TOO_LARGE.format(name=path.name, limit=limit))


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
    title = f"Token trace of the {html_text(choice)}"  # the choice comes from the page
    return trace_figure(gen, title=title), entropy_highlights(gen)


class SemanticHandlers:
    """The Semantic entropy tab's event handlers (ask, pasted answers, dataset evaluation),
    callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _entailment(self, choice: str, condition: bool | None, threshold, *, allow_generator=True):
        method = ENTAILMENT_CHOICES.get(choice)
        if method is None:
            raise ConfidantError(f"unknown entailment choice {choice!r}")
        if method == "generator" and not allow_generator:
            raise ConfidantError("pasted answers are compared with NLI or embeddings")
        return make_entailment(
            method,
            nli=self.ctx.backends.nli() if method == "nli" else None,
            embedder=self.ctx.backends.embedder() if method == "embedding" else None,
            lm=self.ctx.backends.generator() if method == "generator" else None,
            condition_on_question=None if condition is None else bool(condition),
            threshold=number(threshold, "the similarity threshold"),
        )

    @user_errors
    def ask(
        self,
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
        """Sample N answers, cluster them by meaning, save the run; returns (measures, clusters,
        heatmap, answers, trace choices, trace, highlights, reference, state, status)."""
        question = clean_question(question)  # before any model loads: "type a question" first
        n = whole_number(n, "N", 2, MAX_UI_SAMPLES)
        max_new = whole_number(max_new_tokens, "max new tokens", 1, 1024)
        temperature = number(temperature, "temperature")
        seed = None if seed in (None, "") else check_seed(seed)
        lm = self.ctx.backends.generator()
        ent = self._entailment(entailment, condition, threshold)
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
            self.ctx.store,
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
            saved_note(run_id),
        )

    @user_errors
    def score_pasted(
        self,
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
        """Every measure the pasted or uploaded answers allow, saved as a run; returns (measures,
        clusters, heatmap, answers, status)."""
        answers, lls = read_pasted_answers(answers_text, upload)
        typed = (log_likelihoods_text or "").strip()
        if typed:
            if lls is not None:
                raise ConfidantError(
                    "log-likelihoods are given twice (in the answers and in their own box)"
                )
            lls = [line.strip() for line in typed.splitlines() if line.strip()]
        ent = self._entailment(entailment, condition, threshold, allow_generator=False)
        started = time.perf_counter()
        result = score_pasted_answers(
            answers, ent, question=question or "", log_likelihoods=lls, strict=bool(strict)
        )
        run_id = save_run(
            self.ctx.store,
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
        return md, clusters, heat, answers_md, saved_note(run_id)

    @user_errors
    def evaluate(
        self,
        upload,
        use_bundled,
        limit,
        n,
        max_new_tokens,
        entailment,
        correctness,
        seed,
        p_true_fewshot=0,
        few_shot=0,  # the page's box starts at DEFAULT_FEW_SHOT
        source=None,  # a SOURCE_CHOICES key; None: generate with the model
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
        request: gr.Request = None,
    ):
        """Every measure on a dataset (the harness, cached per question); returns (metrics, per
        question table, ROC, rejection curve, files, status)."""
        ctx = self.ctx
        own = SOURCE_CHOICES.get(source or DEFAULT_SOURCE)
        if own is None:
            raise ConfidantError(f"unknown source {source!r}")
        if own == "samples":  # the user's own generations: no generator is loaded
            if not upload:
                raise ConfidantError("Upload a samples file (.jsonl or .csv) first.")
            items = load_samples(upload_path(upload))
        elif upload:  # an uploaded file wins over the bundled set (ticked by default)
            path = upload_path(upload)
            parquet = str(path).lower().endswith(".parquet")
            items = load_parquet(path) if parquet else load_dataset(path)
        elif use_bundled:
            items = load_dataset(BUNDLED_DATASET)
        else:
            raise ConfidantError("Upload a dataset (.jsonl or .csv) or tick the bundled one.")
        limit = whole_number(limit, "the number of questions", 1, 100_000)
        items = items[:limit]
        method = CORRECTNESS_CHOICES.get(correctness)
        if method is None:
            raise ConfidantError(f"unknown correctness choice {correctness!r}")
        settings = EvalSettings(
            n=whole_number(n, "N", 2, MAX_UI_SAMPLES),
            max_new_tokens=whole_number(max_new_tokens, "max new tokens", 1, 1024),
            seed=check_seed(seed),
            correctness=method,
            p_true_fewshot=whole_number(
                p_true_fewshot or 0, "p(True) worked examples", 0, MAX_P_TRUE_FEWSHOT
            ),
            few_shot=whole_number(few_shot or 0, "few-shot answer examples", 0, MAX_FEW_SHOT),
        ).validate()
        lm = None if own == "samples" else ctx.backends.generator()
        ent = self._entailment(
            entailment, None, DEFAULT_EMBEDDING_THRESHOLD, allow_generator=lm is not None
        )  # each method's defaults
        progress(0, desc="Starting")

        def tick(done: int, total: int, message: str) -> None:
            # The harness's message ends with the throughput and the time left.
            progress((done, total), desc=message, unit="questions")

        result = run_evaluation(items, lm, ent, settings, cache=EvalCache(ctx.store), progress=tick)
        headers, rows = metrics_rows(result)
        q_cols, q_rows = result.question_table()
        owner = annotator_of(request)
        paths = [offer(p, owner) for p in export_evaluation(result, export_dir())]
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
            *calibration_views(result),
        )


def calibration_views(result):
    """(calibration table, measure dropdown, reliability diagram, calibration state) of an
    evaluation: the diagram shows the measure with the best AUROC until another is picked."""
    chosen = default_measure(result.calibration, result.metrics)
    return (
        gr.update(value=calibration_rows(result.calibration), headers=CALIBRATION_HEADERS),
        gr.update(choices=list(result.calibration), value=chosen),
        reliability_figure(result.calibration, chosen),
        result.calibration,
    )


def render_semantic(run: dict) -> dict:
    """History view of a stored semantic-entropy run, rebuilt without a model."""
    result = SemanticEntropyResult.from_dict(run["result"])
    md, clusters, heat, answers = result_views(result)
    question = md_text(result.question, inline=False, empty="(none)")
    head = f"**Question:** {question} · source: {md_text(result.source)}\n\n"
    return {
        "markdown": head + answers + "\n\n" + md,
        "plot": clusters,
        "plot2": heat,
        "highlights": entropy_highlights(result.reference) if result.reference else None,
    }
