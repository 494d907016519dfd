"""The TrustJudge consistency run (Wang, Song et al., arXiv 2509.21117): every question's
candidate answers graded and compared in both orders, then the Conflict Ratio and the
Non-Transitivity Ratios of each score method side by side.

``grade``, ``grade_batch`` (:mod:`judge.grading`) and ``compare``, ``compare_batch``
(:mod:`judge.pairwise`) are importable from here too, as the judge's entry points; how the
judge's probabilities are read is described in :mod:`judge`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

from backends.base import LanguageModel
from core.errors import ConfidantError
from judge.config import NTR_SIZES, JudgeConfig, Progress
from judge.consistency import conflicting_pairs, non_transitivity_ratio
from judge.grading import GradeResult, grade_batch
from judge.grading import grade as grade  # re-exported: every judging entry point is here
from judge.pairwise import PairwiseResult, compare_batch
from judge.pairwise import compare as compare
from judge.prompts import SCALES
from judge.scores import SCORE_BY_KEY
from judge.trustjudge import rescale_score

# ----------------------------------------------------------------------------------------------
# Consistency run
# ----------------------------------------------------------------------------------------------


@dataclass
class ConsistencyConfig:
    """A consistency run: baseline and G-Eval scores on ``baseline_scale`` (5 points in
    TrustJudge), TrustJudge scores on ``trustjudge_scale`` (100 points) rescaled to the baseline
    scale; ``tolerance`` δ in baseline-scale points; NTR_k for every k in ``ks``."""

    judge: JudgeConfig = field(default_factory=JudgeConfig)
    baseline_scale: int = 5
    trustjudge_scale: int = 100
    tolerance: float = 0.0
    likelihood_tolerance: float = 0.0
    ppl_tolerance: float = 0.0
    ks: tuple[int, ...] = NTR_SIZES

    def validate(self) -> ConsistencyConfig:
        self.judge.validate()
        for scale in (self.baseline_scale, self.trustjudge_scale):
            if scale not in SCALES:
                raise ConfidantError(f"scales must be one of {SCALES}, got {scale!r}")
        for name in ("tolerance", "likelihood_tolerance", "ppl_tolerance"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0.0):
                raise ConfidantError(f"{name.replace('_', ' ')} must be non-negative, got {v!r}")
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or any(k < 3 for k in self.ks):
            raise ConfidantError(f"NTR sizes must be at least 3, got {self.ks!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ks"] = list(self.ks)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyConfig:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["judge"] = JudgeConfig.from_dict(d["judge"])
        fields["ks"] = tuple(d.get("ks", NTR_SIZES))
        return cls(**fields)


@dataclass
class QuestionRun:
    """One question's candidates, their grades on each scale and every pair in both orders."""

    question_id: str
    category: str
    question: str
    candidate_ids: list[str]
    grades: dict[int, list[GradeResult]]  # scale → one grade per candidate
    pairs: list[tuple[int, int, PairwiseResult]]

    def relations(self, rule: str) -> dict[tuple[int, int], int]:
        return {
            (i, j): p.relations[rule] for i, j, p in self.pairs if p.relations[rule] is not None
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "category": self.category,
            "question": self.question,
            "candidate_ids": self.candidate_ids,
            "grades": {str(s): [g.to_dict() for g in gs] for s, gs in self.grades.items()},
            "pairs": [[i, j, p.to_dict()] for i, j, p in self.pairs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuestionRun:
        return cls(
            question_id=d["question_id"],
            category=d.get("category", ""),
            question=d["question"],
            candidate_ids=list(d["candidate_ids"]),
            grades={
                int(s): [GradeResult.from_dict(g) for g in gs] for s, gs in d["grades"].items()
            },
            pairs=[(int(i), int(j), PairwiseResult.from_dict(p)) for i, j, p in d["pairs"]],
        )


@dataclass(frozen=True)
class ConsistencyMethod:
    """One row of the consistency table: the single score (a key of
    :data:`judge.scores.SCORE_METHODS`) its Conflict Ratio uses, the pairwise rule its NTR_k
    uses (None where it has none), and which of the run's scales its grades come from
    (``"baseline"`` or ``"trustjudge"``). ``label`` defaults to the score method's label."""

    key: str
    score: str | None
    relation: str | None
    scale: str = "baseline"
    label: str | None = None

    @property
    def display_label(self) -> str:
        if self.label is not None:
            return self.label
        return SCORE_BY_KEY[self.score].label if self.score else self.key


CONSISTENCY_METHODS: tuple[ConsistencyMethod, ...] = (
    ConsistencyMethod("baseline", "emitted", "baseline", label="Baseline"),
    ConsistencyMethod("geval", "geval", None),
    ConsistencyMethod("trustjudge", "trustjudge", "likelihood", scale="trustjudge"),
    ConsistencyMethod("trustjudge_ppl", None, "ppl", label="TrustJudge (PPL)"),
)
METHOD_LABELS = {m.key: m.display_label for m in CONSISTENCY_METHODS}


@dataclass
class ConsistencyRow:
    """One method's Conflict Ratio and NTR_k (pooled over questions); None where the method
    has no score or no pairwise rule."""

    method: str
    score: str | None
    relation: str | None
    conflict_ratio: float | None
    conflicts: int
    compared: int
    ntr: dict[int, dict[str, Any]]  # k → NonTransitivity.to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ntr"] = {str(k): v for k, v in self.ntr.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyRow:
        return cls(**{**d, "ntr": {int(k): v for k, v in d["ntr"].items()}})


@dataclass
class ConsistencyResult:
    model: str
    config: ConsistencyConfig
    questions: list[QuestionRun]
    table: list[ConsistencyRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "consistency",
            "model": self.model,
            "config": self.config.to_dict(),
            "questions": [q.to_dict() for q in self.questions],
            "table": [r.to_dict() for r in self.table],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyResult:
        return cls(
            model=d["model"],
            config=ConsistencyConfig.from_dict(d["config"]),
            questions=[QuestionRun.from_dict(q) for q in d["questions"]],
            table=[ConsistencyRow.from_dict(r) for r in d["table"]],
        )


def _single_scores(
    run: QuestionRun, method: ConsistencyMethod, config: ConsistencyConfig
) -> list[float | None]:
    scale = config.trustjudge_scale if method.scale == "trustjudge" else config.baseline_scale
    out: list[float | None] = []
    for g in run.grades[scale]:
        value = g.score(method.score)
        if value is not None and scale != config.baseline_scale:
            value = rescale_score(value, scale, config.baseline_scale)
        out.append(value)
    return out


def consistency_table(
    questions: Sequence[QuestionRun], config: ConsistencyConfig
) -> list[ConsistencyRow]:
    """Conflict Ratio and NTR_k per method, pooled over questions (TrustJudge, arXiv
    2509.21117, Defs. 2.1 and 2.2).

    CR compares each method's single scores with the baseline two-pass pairwise relations, as
    the reference code does (only the scoring method varies); TrustJudge's scores are on its
    own scale rescaled to the baseline scale, so δ is in baseline points. NTR_k counts k-subsets
    with a violating triple under each pairwise rule (baseline; likelihood for TrustJudge; PPL),
    circular and equivalence violations counted separately.
    """
    rows = []
    for method in CONSISTENCY_METHODS:
        rule = method.relation
        conflicts = compared = 0
        if method.score is not None:
            for run in questions:
                found, n = conflicting_pairs(
                    _single_scores(run, method, config),
                    run.relations("baseline"),
                    config.tolerance,
                )
                conflicts += len(found)
                compared += n
        ntr: dict[int, dict[str, Any]] = {}
        if rule is not None:
            for k in config.ks:
                pooled = None
                for run in questions:
                    n = len(run.candidate_ids)
                    if n < k:
                        continue
                    counts = non_transitivity_ratio(run.relations(rule), n, k)
                    pooled = counts if pooled is None else pooled + counts
                if pooled is not None:
                    ntr[k] = pooled.to_dict()
        rows.append(
            ConsistencyRow(
                method=method.key,
                score=method.score,
                relation=rule,
                conflict_ratio=conflicts / compared if compared else None,
                conflicts=conflicts,
                compared=compared,
                ntr=ntr,
            )
        )
    return rows


def run_consistency(
    lm: LanguageModel,
    questions: Sequence[Mapping[str, Any]],
    config: ConsistencyConfig | None = None,
    *,
    progress: Progress | None = None,
) -> ConsistencyResult:
    """The consistency run on questions with several candidates (demo-set layout): every
    candidate graded on each scale, every pair i < j compared in both orders, then
    :func:`consistency_table`."""
    config = (config or ConsistencyConfig()).validate()
    if not questions:
        raise ConfidantError("a consistency run needs at least one question")
    scales = sorted({config.baseline_scale, config.trustjudge_scale})
    runs = []
    steps = len(questions) * (len(scales) + 1)
    step = 0
    for q in questions:
        cands = q["candidates"]
        if len(cands) < 3:
            raise ConfidantError(
                f"question {q.get('question_id')!r} has {len(cands)} candidates; NTR needs 3"
            )
        texts = [c["text"] for c in cands]
        grades = {}
        for scale in scales:
            if progress:
                progress(step / steps, f"{q['question_id']}: grading on 1..{scale}")
            step += 1
            cfg = JudgeConfig.from_dict({**config.judge.to_dict(), "scale": scale})
            grades[scale] = grade_batch(
                lm,
                [(q["question"], t) for t in texts],
                cfg,
                item_ids=[c["candidate_id"] for c in cands],
            )
        if progress:
            progress(step / steps, f"{q['question_id']}: comparing pairs in both orders")
        step += 1
        index_pairs = list(combinations(range(len(cands)), 2))
        compared = compare_batch(
            lm,
            [(q["question"], texts[i], texts[j]) for i, j in index_pairs],
            config.judge,
            likelihood_tolerance=config.likelihood_tolerance,
            ppl_tolerance=config.ppl_tolerance,
            item_ids=[
                f"{cands[i]['candidate_id']}|{cands[j]['candidate_id']}" for i, j in index_pairs
            ],
        )
        runs.append(
            QuestionRun(
                question_id=str(q["question_id"]),
                category=str(q.get("category", "")),
                question=q["question"],
                candidate_ids=[c["candidate_id"] for c in cands],
                grades=grades,
                pairs=[(i, j, p) for (i, j), p in zip(index_pairs, compared, strict=True)],
            )
        )
    if progress:
        progress(1.0, "computing Conflict Ratio and NTR_k")
    return ConsistencyResult(
        model=lm.model_id, config=config, questions=runs, table=consistency_table(runs, config)
    )
