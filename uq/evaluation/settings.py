"""The parameters of a dataset evaluation and the cache key they make.

A question's cached row is found by (dataset hash, question id, :func:`params_hash`); the hash
covers every parameter that decides the row — the models, the entailment rule, the settings, the
reference answerer, the measure providers' names and versions and the batch size — but not the
metrics-only settings (bootstrap resamples, confidence level, bootstrap seed), so rescoring a
finished run reads every question back.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.semantic.measures import select_measures
from uq.semantic.pipeline import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_N,
    DEFAULT_TEMPERATURE,
    REFERENCE_TEMPERATURE,
)

CORRECTNESS_METHODS = {
    "contains": "contains",
    "squad_f1": "squad_f1",
    "em": "exact_match",
    "exact_match": "exact_match",
    "rougeL": "rouge_l",
    "rouge_l": "rouge_l",
    "judge": "judge",
}
# The CLI's, the app's and EvalSettings' correctness: chat models answer in sentences, which
# SQuAD F1 >= 0.5 against a short gold answer calls wrong (uq.evaluation.correctness).
DEFAULT_CORRECTNESS = "contains"
# The choices a user sees (the other keys of CORRECTNESS_METHODS are aliases).
CORRECTNESS_NAMES = ("contains", "squad_f1", "em", "rougeL", "judge")
DEFAULT_THRESHOLDS = {
    "contains": 0.5,
    "squad_f1": 0.5,
    "exact_match": 1.0,
    "rouge_l": 0.3,
    "judge": 0.5,
}
MAX_P_TRUE_FEWSHOT = 50
# Question/answer pairs in the answer prompt (Farquhar et al.'s code uses 5); the CLI's and the
# app's default. 0 (zero-shot) because on the embedded 135M model 5 examples made answers
# shorter (16.6 -> 10.2 tokens) but copied the examples' answers: `contains` accuracy fell from
# 0.56 to 0.30 on 50 trivia_small questions, and from 0.090 to 0.039 in the validation study.
DEFAULT_FEW_SHOT = 0
MAX_FEW_SHOT = 50
DEFAULT_METRICS_SEED = 41
# Settings that change only the metrics, not a question's row: left out of the cache key.
METRICS_ONLY = (
    "n_boot", "level", "metrics_seed", "calibration_fraction", "calibration_bins",
)  # fmt: skip


@dataclass
class EvalSettings:
    """Every parameter of an evaluation run; all but :data:`METRICS_ONLY` enter the cache key."""

    n: int = DEFAULT_N
    temperature: float = DEFAULT_TEMPERATURE
    reference_temperature: float = REFERENCE_TEMPERATURE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    seed: int = 0
    strict: bool = True
    correctness: str = DEFAULT_CORRECTNESS
    correctness_threshold: float | None = None  # None: the method's default
    measures: list[str] | None = None
    chat: bool = True
    p_true_fewshot: int = 0  # the first k questions become worked p(True) examples
    few_shot: int = 0  # the first K questions become the answer prompt's examples
    n_boot: int = 1000
    level: float = 0.95
    metrics_seed: int = DEFAULT_METRICS_SEED  # the bootstrap's resamples (and the split's)
    calibration_fraction: float = 0.5  # questions the calibrators are fitted on
    calibration_bins: int = 10  # ECE and reliability-diagram bins

    def validate(self) -> EvalSettings:
        """Check every field; raises :class:`ConfidantError` with a message a user can act on."""
        if self.correctness not in CORRECTNESS_METHODS:
            raise ConfidantError(
                f"unknown correctness {self.correctness!r}; use one of "
                + ", ".join(CORRECTNESS_NAMES)
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
        if not 0 < float(self.calibration_fraction) < 1:
            raise ConfidantError(
                f"the calibration split must be in (0, 1), got {self.calibration_fraction}"
            )
        if not 1 <= int(self.calibration_bins) <= 100:
            raise ConfidantError(f"calibration needs 1 to 100 bins, got {self.calibration_bins}")
        if not 0 <= int(self.p_true_fewshot) <= MAX_P_TRUE_FEWSHOT:
            raise ConfidantError(
                f"p(True) few-shot examples must be 0 to {MAX_P_TRUE_FEWSHOT}, "
                f"got {self.p_true_fewshot}"
            )
        if not 0 <= int(self.few_shot) <= MAX_FEW_SHOT:
            raise ConfidantError(
                f"few-shot answer examples must be 0 to {MAX_FEW_SHOT}, got {self.few_shot}"
            )
        select_measures(self.measures)
        if self.p_true_fewshot and self.measures is not None and "p_true" not in self.measures:
            raise ConfidantError("p(True) few-shot examples need the p_true measure")
        return self

    @property
    def method(self) -> str:
        """The correctness function's name in :mod:`uq.evaluation.correctness` (or "judge")."""
        return CORRECTNESS_METHODS[self.correctness]

    @property
    def threshold(self) -> float:
        """The score at or above which an answer counts as correct."""
        if self.correctness_threshold is not None:
            return float(self.correctness_threshold)
        return DEFAULT_THRESHOLDS[self.method]


def question_seed(seed: int, question_id: str) -> int:
    """The sampling seed of one question: fixed by the run's seed and the question id, so a
    resumed run samples exactly what an uninterrupted one would.

    seed_q = (seed · 1000003 + crc32(id)) mod 2³¹.
    """
    return (int(seed) * 1_000_003 + zlib.crc32(question_id.encode())) % 2**31


def run_params(
    lm: LanguageModel,
    entailment: Any,
    settings: EvalSettings,
    *,
    providers: Sequence[Any] = (),
    answerer: Any = None,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Everything that decides a question's row: the cache key hashes this.

    Keys that only some runs have are left out when unused, so caches written before they
    existed still match: the few-shot counts at zero-shot p(True) and at the zero-shot answer
    prompt (the few-shot prompt is fixed by the dataset hash and K), the reference answerer when
    the semantic-entropy pipeline gives the reference answer, the batch size at one question a
    batch. ``entailment`` is None when the run has no semantic-entropy pipeline.
    """
    fields = asdict(settings)
    for optional in ("p_true_fewshot", "few_shot"):
        if not fields[optional]:
            del fields[optional]
    described = entailment.describe() if entailment is not None else {"entailment": None}
    params = {
        "model": getattr(lm, "model_id", type(lm).__name__) if lm is not None else None,
        **described,
        **fields,
        "correctness_method": settings.method,
        "correctness_threshold": settings.threshold,
        "providers": {p.name: str(p.version) for p in providers},
    }
    if answerer is not None:
        params["reference_answer"] = answerer.describe()
    if int(batch_size) != 1:
        params["batch_size"] = int(batch_size)
    return params


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the row-deciding parameters (sorted JSON), first 20 hex digits."""
    row_params = {k: v for k, v in params.items() if k not in METRICS_ONLY}
    payload = json.dumps(row_params, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
