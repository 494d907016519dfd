"""Which measure predicts errors best on my data? The dataset evaluation harness.

For every question of a CSV or JSONL file (``id``, ``question``, ``answers``): answer it — the
semantic entropy pipeline's low-temperature reference answer with every measure of that family,
or, run without an entailment model, the answer of the ``answerer`` the caller passes — judge
the answer against the gold answers (by default: does it contain a gold answer; or SQuAD F1,
exact match, ROUGE-L, an LLM judge), add the columns of the measure ``providers`` the caller
passes (:mod:`uq.evaluation.providers`; Inv-Entropy is :class:`uq.inv.provider.InvEntropyProvider`),
then score every measure with AUROC, AURAC, rejection accuracy at 80/90/95 % answered and PRR
(raw and normalised), each with a bootstrap interval, plus ROC and accuracy-versus-rejection
curves.

Finished questions go to a cache (``get``/``put``; the app and the CLI use
``store.eval_cache.EvalCache``) keyed by the dataset hash, the question id and a hash of every
parameter (:func:`uq.evaluation.settings.run_params`), so a repeated or interrupted run computes
only what is missing. Questions are computed in batches of ``batch_size`` at fixed positions of
the dataset and a batch is cached only when it is finished, so an interrupted run resumes with
the same batches an uninterrupted one would have had. Against a server several batches are in
flight at once (:mod:`uq.evaluation.concurrency`), with the same rows as a serial run.

    python -m cli evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.evaluation.concurrency import Throughput, in_flight_width, run_in_flight
from uq.evaluation.correctness import correctness_score, judge_prompt
from uq.evaluation.datasets import EvalItem, dataset_hash
from uq.evaluation.few_shot import few_shot_prompt
from uq.evaluation.providers import (
    MeasureProvider,
    QuestionContext,
    ReferenceAnswerer,
    check_providers,
    provided_columns,
)
from uq.evaluation.result import METRIC_NAMES, EvaluationResult
from uq.evaluation.samples import check_samples_run, given_answer, score_given_samples
from uq.evaluation.scoring import calibrate_measures, score_measures
from uq.evaluation.settings import (
    CORRECTNESS_METHODS,
    DEFAULT_CORRECTNESS,
    DEFAULT_FEW_SHOT,
    DEFAULT_THRESHOLDS,
    MAX_FEW_SHOT,
    MAX_P_TRUE_FEWSHOT,
    EvalSettings,
    params_hash,
    question_seed,
    run_params,
)
from uq.semantic.measures import select_measures
from uq.semantic.p_true import PTrueExample
from uq.semantic.pipeline import DEFAULT_PROMPT, run_semantic_entropy

__all__ = [
    "CORRECTNESS_METHODS",
    "DEFAULT_CORRECTNESS",
    "DEFAULT_FEW_SHOT",
    "DEFAULT_THRESHOLDS",
    "MAX_FEW_SHOT",
    "MAX_P_TRUE_FEWSHOT",
    "METRIC_NAMES",
    "EvalSettings",
    "EvaluationResult",
    "MeasureProvider",
    "QuestionCache",
    "QuestionContext",
    "ReferenceAnswerer",
    "evaluate_batch",
    "evaluate_question",
    "params_hash",
    "question_seed",
    "run_evaluation",
    "run_params",
    "score_measures",
]


class QuestionCache(Protocol):
    def get(self, dataset_hash: str, question_id: str, params_hash: str) -> dict | None: ...

    def put(self, dataset_hash: str, question_id: str, params_hash: str, row: dict) -> None: ...


# --------------------------------------------------------------------------------------------
# One batch of questions
# --------------------------------------------------------------------------------------------


def _correctness(
    lm: LanguageModel, item: EvalItem, answer: str, settings: EvalSettings
) -> tuple[float, bool]:
    if settings.method == "judge":
        options = ["yes", "no"] if settings.chat else [" yes", " no"]
        prompt = judge_prompt(item.question, item.answers, answer)
        score = float(lm.choice_probs(prompt, options, chat=settings.chat)[0])
    else:
        # An empty answer is wrong: SQuAD normalisation maps golds such as "A" or "The" to the
        # empty string, which the overlap scores would count as a perfect match.
        score = correctness_score(answer, item.answers, settings.method) if answer else 0.0
    return score, bool(score >= settings.threshold)


def _reference_answers(
    items: Sequence[EvalItem], lm: LanguageModel, answerer: ReferenceAnswerer
) -> list[str]:
    answers = list(answerer.answer(lm, [item.question for item in items]))
    if len(answers) != len(items) or not all(isinstance(a, str) for a in answers):
        raise ConfidantError(f"the reference answerer must return {len(items)} strings")
    return [a.strip() for a in answers]


def evaluate_batch(
    items: Sequence[EvalItem],
    lm: LanguageModel,
    entailment: Any,
    settings: EvalSettings,
    p_true_examples: Sequence[PTrueExample] = (),
    *,
    providers: Sequence[MeasureProvider] = (),
    answerer: ReferenceAnswerer | None = None,
    prompt_template: str = DEFAULT_PROMPT,
) -> list[dict[str, Any]]:
    """The rows of a batch of questions: each question's reference answer, its correctness
    score and label, and every measure — the semantic-entropy family (with ``entailment``; also
    the sampled answers and their clusters; the answers to ``prompt_template``), then each
    provider's columns (one ``measure_batch`` call per provider for the whole batch).

    With ``entailment`` None there is no semantic-entropy pipeline and ``answerer`` gives the
    reference answers, in one call for the batch."""
    seeds = [question_seed(settings.seed, item.id) for item in items]
    rows: list[dict[str, Any]] = []
    contexts: list[QuestionContext] = []
    if entailment is None:
        if answerer is None:
            raise ConfidantError("without an entailment model the harness needs an answerer")
        results: list[Any] = [None] * len(items)
        answers = _reference_answers(items, lm, answerer)
    elif lm is None:  # the user's own samples (uq.evaluation.samples): no generator
        results = [score_given_samples(item, entailment, settings) for item in items]
        answers = [given_answer(item) for item in items]
    else:
        results = [
            run_semantic_entropy(
                lm,
                item.question,
                entailment,
                n=settings.n,
                temperature=settings.temperature,
                reference_temperature=settings.reference_temperature,
                max_new_tokens=settings.max_new_tokens,
                seed=seed,
                strict=settings.strict,
                measures=settings.measures,
                chat=settings.chat,
                p_true_examples=p_true_examples,
                prompt_template=prompt_template,
            )
            for item, seed in zip(items, seeds, strict=True)
        ]
        answers = [r.reference.text.strip() if r.reference else "" for r in results]
    for item, seed, result, answer in zip(items, seeds, results, answers, strict=True):
        score, correct = _correctness(lm, item, answer, settings)
        row: dict[str, Any] = {
            "id": item.id,
            "question": item.question,
            "golds": item.answers,
            "answer": answer,
            "score": score,
            "correct": correct,
            "seed": seed,
        }
        if result is not None:
            row["samples"] = result.texts
            row["cluster_ids"] = result.clustering.cluster_ids
            row["p_true_examples"] = result.params.get("p_true_examples", 0)
            row["measures"] = {k: v["value"] for k, v in result.measures.items()}
            if result.source == "samples":
                row["notes"] = {k: v["note"] for k, v in result.measures.items() if v["note"]}
        else:
            row["measures"] = {}
        rows.append(row)
        contexts.append(QuestionContext(item, lm, settings, result, seed, answer))
    for provider in providers:
        for row, (measures, details) in zip(
            rows, provided_columns(provider, contexts), strict=True
        ):
            row["measures"].update(measures)
            if details:
                row.setdefault("details", {})[provider.name] = details
    return rows


def evaluate_question(
    item: EvalItem,
    lm: LanguageModel,
    entailment: Any,
    settings: EvalSettings,
    p_true_examples: Sequence[PTrueExample] = (),
    *,
    providers: Sequence[MeasureProvider] = (),
    answerer: ReferenceAnswerer | None = None,
    prompt_template: str = DEFAULT_PROMPT,
) -> dict[str, Any]:
    """One question's row (:func:`evaluate_batch` of one question)."""
    return evaluate_batch(
        [item], lm, entailment, settings, p_true_examples, providers=providers,
        answerer=answerer, prompt_template=prompt_template,
    )[0]  # fmt: skip


# --------------------------------------------------------------------------------------------
# A dataset
# --------------------------------------------------------------------------------------------


def run_evaluation(
    items: Sequence[EvalItem],
    lm: LanguageModel,
    entailment: Any,
    settings: EvalSettings | None = None,
    *,
    providers: Sequence[MeasureProvider] = (),
    answerer: ReferenceAnswerer | None = None,
    batch_size: int = 1,
    cache: QuestionCache | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    questions_in_flight: int | None = None,
) -> EvaluationResult:
    """Evaluate every item (cached questions are read, not recomputed), then the metrics.

    ``providers`` add columns ``"{name}.{measure}"`` (:mod:`uq.evaluation.providers`); their
    names and versions enter the cache key. ``entailment`` None runs no semantic-entropy
    pipeline: ``answerer`` then gives each question's reference answer. The questions are
    computed ``batch_size`` at a time — batches at fixed positions of ``items``, only the
    uncached questions of each — and cached when their batch is done.

    With ``settings.few_shot`` = K the first K items are not answered: they become the
    examples of the answer prompt (:func:`uq.evaluation.few_shot.few_shot_prompt`; their ids
    are ``params["few_shot_example_ids"]``). With ``settings.p_true_fewshot`` = k the next k
    items are answered first (as with zero-shot p(True)) and become the worked examples of the
    p(True) prompt — their sampled answers, reference answer and correctness label. The rows
    and metrics cover the other items. ``progress(done, total, message)`` is called after each
    question answered (cached ones first); the message ends with the throughput and the time
    left.

    Against a backend that declares ``concurrent_calls`` (a server) ``questions_in_flight``
    batches are computed at once (default: the backend's ``concurrency``;
    :mod:`uq.evaluation.concurrency`), each cached as it finishes; the rows are the same as a
    serial run's and in dataset order. On an error or Ctrl-C the batches already running
    finish and are cached before it is raised."""
    settings = (settings or EvalSettings()).validate()
    providers = check_providers(providers)
    items = list(items)
    if not items:
        raise ConfidantError("the dataset has no questions")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfidantError(f"the batch size must be a positive integer, got {batch_size!r}")
    if entailment is None and answerer is None:
        raise ConfidantError("without an entailment model the harness needs an answerer")
    if entailment is not None and answerer is not None:
        raise ConfidantError(
            "the semantic-entropy pipeline gives the reference answer: no answerer"
        )
    if lm is None:
        check_samples_run(entailment, settings, providers)
    k_shot, n_few = int(settings.p_true_fewshot), int(settings.few_shot)
    if k_shot and entailment is None:
        raise ConfidantError("few-shot p(True) needs the semantic-entropy pipeline")
    if n_few and entailment is None:
        raise ConfidantError("a few-shot answer prompt needs the semantic-entropy pipeline")
    if k_shot + n_few >= len(items):
        taken = " and ".join(
            f"{k} {what} examples"
            for k, what in ((n_few, "few-shot answer"), (k_shot, "p(True)"))
            if k
        )
        raise ConfidantError(f"{taken} leave none of the {len(items)} questions to evaluate")
    started = time.perf_counter()
    d_hash = dataset_hash(items)  # of every item: the few-shot examples make the prompt
    prompt = few_shot_prompt(items[:n_few])
    pool = items[n_few:]
    keyed = dict(providers=providers, answerer=answerer, batch_size=batch_size)
    params = run_params(lm, entailment, settings, **keyed)
    p_hash = params_hash(params)
    counts = {"computed": 0, "cached": 0}
    width, clock = in_flight_width(lm, questions_in_flight), Throughput()
    # A row cached before a measure joined the table lacks its column: compute it again.
    wanted = [m.key for m in select_measures(settings.measures)] if entailment else []

    def cached(item: EvalItem, the_hash: str) -> dict | None:
        row = cache.get(d_hash, item.id, the_hash) if cache else None
        return row if row is not None and all(k in row["measures"] for k in wanted) else None

    def answer_all(
        part: list[EvalItem], the_settings, the_hash, examples, first: int, kind: str
    ) -> list[dict]:
        batches = [part[s : s + batch_size] for s in range(0, len(part), batch_size)]
        found = [[cached(item, the_hash) for item in batch] for batch in batches]
        missing = [
            [item for item, row in zip(batch, rows, strict=True) if row is None]
            for batch, rows in zip(batches, found, strict=True)
        ]
        done = first - 1

        def report(item: EvalItem, row: dict, note: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                left = clock.text(len(pool) - done)
                progress(
                    done,
                    len(pool),
                    f"{kind}{item.id}: {note}, correct={row['correct']}"
                    + (f" · {left}" if left else ""),
                )

        for batch, rows in zip(batches, found, strict=True):
            for item, row in zip(batch, rows, strict=True):
                if row is not None:
                    counts["cached"] += 1
                    report(item, row, "cached")

        def compute(b: int) -> tuple[list[dict], float]:
            t0 = time.perf_counter()
            new = evaluate_batch(
                missing[b], lm, entailment, the_settings, examples, providers=providers,
                answerer=answerer, prompt_template=prompt,
            )  # fmt: skip
            return new, time.perf_counter() - t0

        def finished(b: int, out: tuple[list[dict], float]) -> None:
            new, took = out
            note = f"{took:.1f} s" + (f" (a batch of {len(new)})" if len(new) > 1 else "")
            for item, row in zip(missing[b], new, strict=True):
                if cache is not None:
                    cache.put(d_hash, item.id, the_hash, row)
                counts["computed"] += 1
            clock.add(len(new))
            it = iter(new)
            found[b] = [row if row is not None else next(it) for row in found[b]]
            for item, row in zip(missing[b], new, strict=True):
                report(item, row, note)

        jobs = [b for b in range(len(batches)) if missing[b]]
        run_in_flight(compute, jobs, width, finished)
        return [row for rows in found for row in rows]

    examples: list[PTrueExample] = []
    if k_shot:
        shot_settings = replace(settings, p_true_fewshot=0)
        shot_hash = params_hash(run_params(lm, entailment, shot_settings, **keyed))
        for row in answer_all(pool[:k_shot], shot_settings, shot_hash, (), 1, "p(True) example "):
            examples.append(
                PTrueExample(
                    row["question"], tuple(row["samples"]), row["answer"], bool(row["correct"])
                )
            )
    rows = answer_all(pool[k_shot:], settings, p_hash, examples, k_shot + 1, "")
    metrics, curves = score_measures(rows, settings)
    calibration = calibrate_measures(rows, settings)
    shots = {"p_true_example_ids": [item.id for item in pool[:k_shot]]} if k_shot else {}
    if n_few:
        shots["few_shot_example_ids"] = [item.id for item in items[:n_few]]
        shots["answer_prompt"] = prompt
    return EvaluationResult(
        params={
            **params,
            **shots,
            "dataset_hash": d_hash,
            "params_hash": p_hash,
            "questions_in_flight": width,
        },  # fmt: skip
        dataset_hash=d_hash,
        rows=rows,
        metrics=metrics,
        curves=curves,
        calibration=calibration,
        n_computed=counts["computed"],
        n_cached=counts["cached"],
        duration=time.perf_counter() - started,
    )
