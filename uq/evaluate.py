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

    python -m uq.evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import roc_curve

from backends.base import ConfidantError, LanguageModel
from uq.cli import run_cli
from uq.correctness import correctness_score, judge_prompt
from uq.metrics import AURAC_FRACTIONS, evaluation_metrics, rejection_accuracy
from uq.semantic_pipeline import (
    DEFAULT_EMBEDDING_THRESHOLD,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_N,
    DEFAULT_TEMPERATURE,
    REFERENCE_TEMPERATURE,
    PTrueExample,
    SemanticEntropyResult,
    measures_without_pair_matrix,
    run_semantic_entropy,
    select_measures,
)

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
MAX_QUESTIONS = 100_000
MAX_P_TRUE_FEWSHOT = 50
MAX_FILE_BYTES = 50_000_000


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass
class EvalItem:
    """One question with its gold answers."""

    id: str
    question: str
    answers: list[str]


def _golds(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfidantError(
                    f"{where}: the answers look like JSON but do not parse"
                ) from None
        else:
            value = [a for a in text.split("|")]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ConfidantError(f"{where}: 'answers' must be a list of strings (or a|b|c in CSV)")
    value = [a.strip() for a in value if a.strip()]
    if not value:
        raise ConfidantError(f"{where}: no gold answer")
    return value


def parse_dataset(text: str, fmt: str, name: str = "dataset") -> list[EvalItem]:
    """Items from the text of a JSONL (``fmt="jsonl"``) or CSV (``fmt="csv"``) file.

    Fields: ``question`` (required), ``answers`` (a list; in CSV ``a|b|c`` or a JSON list;
    ``answer`` is accepted for one gold) and ``id`` (optional; default the 1-based row)."""
    if "\x00" in text:
        raise ConfidantError(f"{name} contains NUL characters; is it a text file?")
    records: list[tuple[str, dict]] = []
    if fmt == "jsonl":
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfidantError(f"{name} line {k} is not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise ConfidantError(f"{name} line {k} must be a JSON object")
            records.append((f"{name} line {k}", obj))
    elif fmt == "csv":
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
        except csv.Error as exc:
            raise ConfidantError(f"{name} is not valid CSV: {exc}") from None
        fields = {str(f).strip().lower() for f in (reader.fieldnames or [])}
        if "question" not in fields or not ({"answers", "answer"} & fields):
            raise ConfidantError(f"{name} needs the columns 'question' and 'answers'")
        for k, row in enumerate(rows, 2):
            records.append((f"{name} row {k}", {str(a).strip().lower(): b for a, b in row.items()}))
    else:
        raise ConfidantError(f"unknown dataset format {fmt!r}; use a .jsonl or .csv file")
    if not records:
        raise ConfidantError(f"{name} has no questions")
    if len(records) > MAX_QUESTIONS:
        raise ConfidantError(
            f"{name} has {len(records):,} questions; the limit is {MAX_QUESTIONS:,}"
        )
    items: list[EvalItem] = []
    seen: set[str] = set()
    for k, (where, obj) in enumerate(records, 1):
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ConfidantError(f"{where}: missing or empty 'question'")
        gold = obj.get("answers", obj.get("answer"))
        if gold is None:
            raise ConfidantError(f"{where}: missing 'answers'")
        qid = obj.get("id")
        qid = str(k) if qid in (None, "") else str(qid).strip()
        if qid in seen:
            raise ConfidantError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        items.append(EvalItem(id=qid, question=question.strip(), answers=_golds(gold, where)))
    return items


def load_dataset(path: str | Path) -> list[EvalItem]:
    """Items from a ``.jsonl`` or ``.csv`` file (see :func:`parse_dataset`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfidantError(f"no dataset file at {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfidantError(f"{path.name} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfidantError(f"{path.name} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix)
    if fmt is None:
        raise ConfidantError(f"give a .jsonl or .csv dataset, not {path.name}")
    return parse_dataset(text, fmt, path.name)


def dataset_hash(items: Sequence[EvalItem]) -> str:
    """A hash of the questions and gold answers (not of the file's formatting)."""
    payload = json.dumps([asdict(i) for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


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
        score = correctness_score(answer, item.answers, settings.method)
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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m uq.evaluate",
        description="Score every uncertainty measure on a dataset of questions with gold answers.",
    )
    ap.add_argument("--data", required=True, help="a .jsonl or .csv file (id, question, answers)")
    ap.add_argument("--model", required=True, help="hub id, local directory or tiny-random")
    ap.add_argument("--out", required=True, help="directory for the CSV and JSON results")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help="sampled answers per question")
    ap.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    ap.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nli", default=None, help="NLI model (default: deberta-large-mnli)")
    ap.add_argument("--entailment", choices=["nli", "embedding", "generator"], default="nli")
    ap.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_EMBEDDING_THRESHOLD,
        help="cosine threshold for --entailment embedding",
    )
    ap.add_argument("--lenient", action="store_true", help="lenient instead of strict rule")
    ap.add_argument(
        "--no-question", action="store_true", help="do not prepend the question to answers for NLI"
    )
    ap.add_argument(
        "--correctness", choices=["squad_f1", "em", "rougeL", "judge"], default="squad_f1"
    )
    ap.add_argument("--correctness-threshold", type=float, default=None)
    ap.add_argument("--measures", default=None, help="comma-separated measure keys (default all)")
    ap.add_argument(
        "--no-pair-measures",
        action="store_true",
        help="leave out EigV, Degree, Eccentricity and KLE, which need every ordered pair "
        "labelled; then only the clustering's pairs go to the entailment model",
    )
    ap.add_argument(
        "--p-true-fewshot",
        type=int,
        default=0,
        metavar="K",
        help="the first K questions become worked p(True) examples (Farquhar et al. use 20); "
        "the metrics cover the rest. Default 0: zero-shot p(True)",
    )
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--db", default=None, help="SQLite file for the resume cache")
    ap.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    ap.add_argument("--openai-base-url", default=None, help="an OpenAI-compatible server")
    ap.add_argument(
        "--inv-entropy",
        action="store_true",
        help="add Inv-Entropy and its variants (columns inv.*) beside semantic entropy",
    )
    ap.add_argument("--inv-n", type=int, default=9, help="perturbations per question")
    ap.add_argument("--inv-replicates", type=int, default=5, help="answers per perturbation")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _run_cli(_parser().parse_args(a)), argv)


def _run_cli(args: argparse.Namespace) -> int:
    # The CLI is an entry point: it wires the backends and the SQLite cache around the harness.
    from backends.registry import BackendConfig, Backends
    from store.db import Store
    from store.eval_cache import EvalCache, export_evaluation
    from uq.semantic_pipeline import make_entailment

    if args.limit is not None and args.limit < 1:
        raise ConfidantError(f"--limit must be at least 1, got {args.limit}")
    items = load_dataset(args.data)
    if args.limit:
        items = items[: args.limit]
    measures = [m.strip() for m in args.measures.split(",") if m.strip()] if args.measures else None
    if args.no_pair_measures:
        without = measures_without_pair_matrix()
        if measures is not None:
            select_measures(measures)  # an unknown key is still an error
        measures = [m for m in (measures or without) if m in without]
        if not measures:
            raise ConfidantError("--no-pair-measures leaves none of the --measures given")
    settings = EvalSettings(
        n=args.n,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        strict=not args.lenient,
        correctness=args.correctness,
        correctness_threshold=args.correctness_threshold,
        measures=measures,
        p_true_fewshot=args.p_true_fewshot,
        n_boot=args.bootstrap,
    ).validate()
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidantError(f"--out {out_dir} exists and is not a directory")
    backends = Backends(
        BackendConfig(model=args.model, openai_base_url=args.openai_base_url, nli_model=args.nli)
    )
    lm = backends.generator()
    entailment = make_entailment(
        args.entailment,
        nli=backends.nli() if args.entailment == "nli" else None,
        embedder=backends.embedder() if args.entailment == "embedding" else None,
        lm=lm,
        condition_on_question=not args.no_question,
        threshold=args.threshold,
    )
    if args.inv_entropy:
        from uq.inv_evaluate import register_inv_entropy

        register_inv_entropy(backends.embedder(), n=args.inv_n, replicates=args.inv_replicates)
    cache = None if args.no_cache else EvalCache(Store(args.db) if args.db else Store())
    print(f"evaluating {len(items)} questions from {args.data} with {lm.model_id}", flush=True)

    def progress(done: int, total: int, message: str) -> None:
        print(f"[{done}/{total}] {message}", flush=True)

    result = run_evaluation(items, lm, entailment, settings, cache=cache, progress=progress)
    paths = export_evaluation(result, out_dir)
    print(
        f"accuracy {result.accuracy:.3f} · {result.n_computed} computed, {result.n_cached} cached"
        f" · {result.duration:.1f} s"
    )
    for row in result.metric_table()[1]:
        auroc = row["auroc"]
        print(f"  {row['measure']:<32} AUROC {'—' if auroc is None else f'{auroc:.3f}'}")
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
