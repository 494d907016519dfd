"""Which measure predicts errors best on my data? The dataset evaluation harness.

For every question of a CSV or JSONL file (``id``, ``question``, ``answers``): run the semantic
entropy pipeline, judge the reference (low-temperature) answer against the gold answers
(SQuAD F1 ≥ 0.5 by default; exact match, ROUGE-L or an LLM judge), then score every measure
with AUROC, AURAC, rejection accuracy at 80/90/95 % answered and PRR (raw and normalised),
each with a bootstrap interval, plus ROC and accuracy-versus-rejection curves.

Finished questions go to a cache (``get``/``put``; the app and the CLI use
``store.eval_cache.EvalCache``) keyed by the dataset hash, the question id and a hash of every
parameter, so a repeated or interrupted run computes only what is missing.

Other methods add columns through :func:`register_measure_provider`: a provider receives each
question's :class:`QuestionContext` (the item, the generator, the settings and the
semantic-entropy result with its samples and reference answer) and returns
``{measure name: value}``; its name and version enter the cache key.

    python -m cli evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import roc_curve

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.evaluation.correctness import correctness_score, judge_prompt
from uq.evaluation.datasets import EvalItem, dataset_hash
from uq.evaluation.metrics import AURAC_FRACTIONS, evaluation_metrics, rejection_accuracy
from uq.semantic.measures import select_measures
from uq.semantic.p_true import PTrueExample
from uq.semantic.pipeline import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_N,
    DEFAULT_TEMPERATURE,
    REFERENCE_TEMPERATURE,
    run_semantic_entropy,
)
from uq.semantic.result import SemanticEntropyResult

CORRECTNESS_METHODS = {
    "squad_f1": "squad_f1",
    "em": "exact_match",
    "exact_match": "exact_match",
    "rougeL": "rouge_l",
    "rouge_l": "rouge_l",
    "judge": "judge",
}
DEFAULT_THRESHOLDS = {"squad_f1": 0.5, "exact_match": 1.0, "rouge_l": 0.3, "judge": 0.5}
METRIC_NAMES = (
    "auroc",
    "aurac",
    "rejection_accuracy_80",
    "rejection_accuracy_90",
    "rejection_accuracy_95",
    "prr",
    "prr_normalised",
)
MAX_P_TRUE_FEWSHOT = 50


# --------------------------------------------------------------------------------------------
# Settings, providers, cache
# --------------------------------------------------------------------------------------------


@dataclass
class EvalSettings:
    """Every parameter of an evaluation run; all of them enter the cache key."""

    n: int = DEFAULT_N
    temperature: float = DEFAULT_TEMPERATURE
    reference_temperature: float = REFERENCE_TEMPERATURE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    seed: int = 0
    strict: bool = True
    correctness: str = "squad_f1"
    correctness_threshold: float | None = None  # None: the method's default
    measures: list[str] | None = None
    chat: bool = True
    p_true_fewshot: int = 0  # the first k questions become worked p(True) examples
    n_boot: int = 1000
    level: float = 0.95

    def validate(self) -> EvalSettings:
        if self.correctness not in CORRECTNESS_METHODS:
            raise ConfidantError(
                f"unknown correctness {self.correctness!r}; use one of "
                + ", ".join(
                    k for k in CORRECTNESS_METHODS if k in ("squad_f1", "em", "rougeL", "judge")
                )
            )
        threshold = self.threshold
        if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
            raise ConfidantError(f"the correctness threshold must be in [0, 1], got {threshold}")
        if not 1 <= int(self.n) <= 256:
            raise ConfidantError(f"n must be between 1 and 256, got {self.n}")
        if not 1 <= int(self.n_boot) <= 100_000:
            raise ConfidantError(f"the bootstrap needs 1 to 100000 resamples, got {self.n_boot}")
        if not 0 < float(self.level) < 1:
            raise ConfidantError(f"the confidence level must be in (0, 1), got {self.level}")
        if not 0 <= int(self.p_true_fewshot) <= MAX_P_TRUE_FEWSHOT:
            raise ConfidantError(
                f"p(True) few-shot examples must be 0 to {MAX_P_TRUE_FEWSHOT}, "
                f"got {self.p_true_fewshot}"
            )
        select_measures(self.measures)
        if self.p_true_fewshot and self.measures is not None and "p_true" not in self.measures:
            raise ConfidantError("p(True) few-shot examples need the p_true measure")
        return self

    @property
    def method(self) -> str:
        return CORRECTNESS_METHODS[self.correctness]

    @property
    def threshold(self) -> float:
        if self.correctness_threshold is not None:
            return float(self.correctness_threshold)
        return DEFAULT_THRESHOLDS[self.method]


@dataclass
class QuestionContext:
    """What a measure provider sees for one question."""

    item: EvalItem
    lm: LanguageModel
    settings: EvalSettings
    result: SemanticEntropyResult
    seed: int


class MeasureProvider(Protocol):
    def __call__(self, context: QuestionContext) -> dict[str, float | None]: ...


_PROVIDERS: dict[str, tuple[str, MeasureProvider]] = {}


def register_measure_provider(name: str, provider: MeasureProvider, *, version: str = "1") -> None:
    """Add measures to every evaluation: ``provider(context)`` → ``{measure: value or None}``.

    Columns are named ``"{name}.{measure}"``. Bump ``version`` when the provider's output
    changes so cached questions are recomputed. Registering a name again replaces it."""
    if not name or not isinstance(name, str) or "." in name:
        raise ConfidantError("a provider name must be a non-empty string without dots")
    _PROVIDERS[name] = (str(version), provider)


def unregister_measure_provider(name: str) -> None:
    _PROVIDERS.pop(name, None)


def registered_providers() -> dict[str, str]:
    """Name → version of the registered measure providers."""
    return {name: version for name, (version, _) in _PROVIDERS.items()}


class QuestionCache(Protocol):
    def get(self, dataset_hash: str, question_id: str, params_hash: str) -> dict | None: ...

    def put(self, dataset_hash: str, question_id: str, params_hash: str, row: dict) -> None: ...


def question_seed(seed: int, question_id: str) -> int:
    """The sampling seed of one question: fixed by the run's seed and the question id, so a
    resumed run samples exactly what an uninterrupted one would."""
    return (int(seed) * 1_000_003 + zlib.crc32(question_id.encode())) % 2**31


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Per-question rows, per-measure metrics with bootstrap intervals, curves, parameters."""

    params: dict[str, Any]
    dataset_hash: str
    rows: list[dict[str, Any]]
    metrics: dict[str, dict[str, dict[str, Any] | None]]
    curves: dict[str, dict[str, Any]]
    n_computed: int = 0
    n_cached: int = 0
    duration: float = 0.0

    @property
    def measure_names(self) -> list[str]:
        return list(self.metrics)

    @property
    def accuracy(self) -> float:
        return float(np.mean([r["correct"] for r in self.rows])) if self.rows else math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationResult:
        return cls(**d)

    def question_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows) of the per-question table: one column per measure."""
        columns = ["id", "question", "answer", "golds", "score", "correct", "seed"]
        columns += self.measure_names
        out = []
        for r in self.rows:
            row = {c: r.get(c) for c in columns[:7]}
            row["golds"] = " | ".join(r["golds"])
            row.update({m: r["measures"].get(m) for m in self.measure_names})
            out.append(row)
        return columns, out

    def metric_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows): per measure, each metric's estimate and interval."""
        columns = ["measure", "n"]
        for m in METRIC_NAMES:
            columns += [m, f"{m}_low", f"{m}_high"]
        out = []
        for measure, metrics in self.metrics.items():
            row: dict[str, Any] = {
                "measure": measure,
                "n": sum(r["measures"].get(measure) is not None for r in self.rows),
            }
            for m in METRIC_NAMES:
                interval = metrics.get(m)
                row[m] = interval["estimate"] if interval else None
                row[f"{m}_low"] = interval["low"] if interval else None
                row[f"{m}_high"] = interval["high"] if interval else None
            out.append(row)
        return columns, out


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


def evaluate_question(
    item: EvalItem,
    lm: LanguageModel,
    entailment,
    settings: EvalSettings,
    p_true_examples: Sequence[PTrueExample] = (),
) -> dict[str, Any]:
    """One question's row: the reference answer, its correctness score and label, the sampled
    answers, and every measure (semantic-entropy family, then registered providers)."""
    seed = question_seed(settings.seed, item.id)
    result = run_semantic_entropy(
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
    )
    answer = result.reference.text.strip() if result.reference else ""
    score, correct = _correctness(lm, item, answer, settings)
    measures = {k: v["value"] for k, v in result.measures.items()}
    context = QuestionContext(item=item, lm=lm, settings=settings, result=result, seed=seed)
    for name, (_, provider) in _PROVIDERS.items():
        for key, value in dict(provider(context)).items():
            value = None if value is None else float(value)
            measures[f"{name}.{key}"] = value if value is None or math.isfinite(value) else None
    return {
        "id": item.id,
        "question": item.question,
        "golds": item.answers,
        "answer": answer,
        "score": score,
        "correct": correct,
        "seed": seed,
        "samples": result.texts,
        "cluster_ids": result.clustering.cluster_ids,
        "p_true_examples": result.params.get("p_true_examples", 0),
        "measures": measures,
    }


def run_params(lm: LanguageModel, entailment, settings: EvalSettings) -> dict[str, Any]:
    """Everything that decides a question's row: the cache key hashes this (zero-shot p(True)
    leaves the few-shot count out, so caches from before that option still match)."""
    fields = asdict(settings)
    if not fields["p_true_fewshot"]:
        del fields["p_true_fewshot"]
    return {
        "model": getattr(lm, "model_id", type(lm).__name__),
        **entailment.describe(),
        **fields,
        "correctness_method": settings.method,
        "correctness_threshold": settings.threshold,
        "providers": registered_providers(),
    }


def params_hash(params: dict[str, Any]) -> str:
    row_params = {k: v for k, v in params.items() if k not in ("n_boot", "level")}
    payload = json.dumps(row_params, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def run_evaluation(
    items: Sequence[EvalItem],
    lm: LanguageModel,
    entailment,
    settings: EvalSettings | None = None,
    *,
    cache: QuestionCache | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> EvaluationResult:
    """Evaluate every item (cached questions are read, not recomputed), then the metrics.

    With ``settings.p_true_fewshot`` = k the first k items are answered first (as with
    zero-shot settings) and become the worked examples of the p(True) prompt — their sampled
    answers, reference answer and correctness label — and the metrics cover the other items.
    ``progress(done, total, message)`` is called after each question."""
    settings = (settings or EvalSettings()).validate()
    items = list(items)
    if not items:
        raise ConfidantError("the dataset has no questions")
    k_shot = int(settings.p_true_fewshot)
    if k_shot >= len(items):
        raise ConfidantError(
            f"{k_shot} p(True) examples leave none of the {len(items)} questions to evaluate"
        )
    started = time.perf_counter()
    d_hash = dataset_hash(items)
    params = run_params(lm, entailment, settings)
    p_hash = params_hash(params)
    computed = cached = 0

    def answer(item: EvalItem, the_settings, the_hash, examples, k: int, kind: str) -> dict:
        nonlocal computed, cached
        row = cache.get(d_hash, item.id, the_hash) if cache is not None else None
        if row is None:
            t0 = time.perf_counter()
            row = evaluate_question(item, lm, entailment, the_settings, examples)
            computed += 1
            if cache is not None:
                cache.put(d_hash, item.id, the_hash, row)
            note = f"{time.perf_counter() - t0:.1f} s"
        else:
            cached += 1
            note = "cached"
        if progress is not None:
            progress(k, len(items), f"{kind}{item.id}: {note}, correct={row['correct']}")
        return row

    examples: list[PTrueExample] = []
    if k_shot:
        shot_settings = replace(settings, p_true_fewshot=0)
        shot_hash = params_hash(run_params(lm, entailment, shot_settings))
        for k, item in enumerate(items[:k_shot], 1):
            row = answer(item, shot_settings, shot_hash, (), k, "p(True) example ")
            examples.append(
                PTrueExample(
                    row["question"], tuple(row["samples"]), row["answer"], bool(row["correct"])
                )
            )
    rows = [
        answer(item, settings, p_hash, examples, k, "")
        for k, item in enumerate(items[k_shot:], k_shot + 1)
    ]
    metrics, curves = score_measures(rows, settings)
    shots = {"p_true_example_ids": [item.id for item in items[:k_shot]]} if k_shot else {}
    return EvaluationResult(
        params={**params, **shots, "dataset_hash": d_hash, "params_hash": p_hash},
        dataset_hash=d_hash,
        rows=rows,
        metrics=metrics,
        curves=curves,
        n_computed=computed,
        n_cached=cached,
        duration=time.perf_counter() - started,
    )


def score_measures(
    rows: Sequence[dict[str, Any]], settings: EvalSettings
) -> tuple[dict[str, dict[str, dict | None]], dict[str, dict[str, Any]]]:
    """Metrics with bootstrap intervals and plot curves for every measure column, over the
    questions where the measure has a value."""
    names: list[str] = []
    for r in rows:
        names += [m for m in r["measures"] if m not in names]
    metrics: dict[str, dict[str, dict | None]] = {}
    curves: dict[str, dict[str, Any]] = {}
    for name in names:
        used = [r for r in rows if r["measures"].get(name) is not None]
        if not used:
            metrics[name] = {m: None for m in METRIC_NAMES}
            continue
        u = np.array([r["measures"][name] for r in used], dtype=float)
        c = np.array([r["correct"] for r in used], dtype=float)
        q = np.array([r["score"] for r in used], dtype=float)
        out = evaluation_metrics(u, c, q, n_boot=settings.n_boot, level=settings.level, seed=41)
        metrics[name] = {m: (v.to_dict() if v else None) for m, v in out.items()}
        curve: dict[str, Any] = {
            "fraction": [float(f) for f in AURAC_FRACTIONS],
            "accuracy": [rejection_accuracy(u, c, f) for f in AURAC_FRACTIONS],
        }
        if 0 < c.sum() < c.size:
            fpr, tpr, _ = roc_curve(1 - c, u)
            curve["fpr"], curve["tpr"] = fpr.tolist(), tpr.tolist()
        curves[name] = curve
    return metrics, curves
