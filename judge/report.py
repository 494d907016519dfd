"""The judge reliability report: questions with candidate answers run through the judge
pipeline (every answer graded once exactly and k times at a sampling temperature, every pair
compared in both orders), then every measure of :data:`judge.reliability.RELIABILITY_MEASURES`
with bootstrap intervals, and the score methods side by side.

Questions are in the demo-set layout (:func:`judge.items.load_questions`); a candidate may carry
``humans`` (annotator → score) and ``intended_score`` (the author's score, counted as the
annotator "author"). A pair's human preference is read from the two answers' human scores.

The result is plain data (:meth:`ReliabilityReport.to_dict`): a stored report is reopened and
every view rebuilt without a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from backends.base import LanguageModel
from core.errors import ConfidantError
from judge.config import JudgeConfig, Progress
from judge.consistency import conflicting_pairs, non_transitivity_ratio
from judge.grading import grade_batch
from judge.pairwise import compare_batch
from judge.reliability import (
    PairObservation,
    ReliabilityStatistics,
    SingleObservation,
    majority,
    measure_rows,
    pair_disagreements,
    verdict_distribution,
)
from judge.scores import SCORE_BY_KEY
from judge.trustjudge import expected_score

# The score methods compared side by side, and how each turns one order's A/B/C probabilities
# into a verdict: the emitted letter, or a preference value e ∈ [−1, 1] (A = +1, C = 0, B = −1)
# with A when e > ⅓, B when e < −⅓, else a tie.
SIDE_BY_SIDE = ("emitted", "geval", "expectation", "trustjudge")
_VALUE = {"A": 1.0, "C": 0.0, "B": -1.0}
_SWAP = {"A": "B", "B": "A", "C": "C"}
_RELATION = {"A": 1, "B": -1, "C": 0}
RUN_KIND = "judge_reliability"  # the kind of a stored report in the runs table


@dataclass
class ReportConfig:
    """``judge`` grades and compares (its temperature is the one exact pass's, 0 = greedy);
    ``k`` runs at ``temperature`` (seeds seed, seed + 1, …) measure the spread; ``n_boot``
    bootstrap resamples give the intervals; NTR uses subsets of ``ntr_k`` candidates."""

    judge: JudgeConfig = field(default_factory=JudgeConfig)
    k: int = 3
    temperature: float = 1.0
    n_boot: int = 200
    ntr_k: int = 3

    def validate(self) -> ReportConfig:
        self.judge.validate()
        if not 1 <= int(self.k) <= 50:
            raise ConfidantError(f"k (runs per answer) must be 1..50, got {self.k}")
        JudgeConfig.from_dict({**self.judge.to_dict(), "temperature": self.temperature}).validate()
        if not 0 <= int(self.n_boot) <= 10_000:
            raise ConfidantError(f"bootstrap resamples must be 0..10000, got {self.n_boot}")
        if int(self.ntr_k) < 3:
            raise ConfidantError(f"the NTR subset size must be at least 3, got {self.ntr_k}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportConfig:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["judge"] = JudgeConfig.from_dict(d.get("judge", {}))
        return cls(**fields)


def order_verdict(method: str, emitted: str | None, probs: Mapping[str, float] | None, t: float):
    """One order's verdict by a score method: the emitted letter for ``emitted``; else the
    preference value e of the letter distribution (G-Eval unnormalised, the expectation
    renormalised, TrustJudge's sharpened weights at temperature ``t``) cut at ±⅓."""
    if method == "emitted":
        return emitted
    if not probs:
        return None
    if method == "geval":
        e = sum(_VALUE[k] * float(p) for k, p in probs.items() if k in _VALUE)
    else:
        norm = dict(zip(("A", "B", "C"), verdict_distribution(probs), strict=True))
        # Letters as the scale B = 1, C = 2, A = 3, shifted back to [−1, 1].
        dist = {int(_VALUE[k] + 2): p for k, p in norm.items() if p > 0}
        e = expected_score(dist, method, t) - 2.0
    return "A" if e > 1 / 3 else "B" if e < -1 / 3 else "C"


@dataclass
class ReliabilityReport:
    model: str
    config: ReportConfig
    statistics: ReliabilityStatistics
    measures: list[dict[str, Any]]
    methods: list[dict[str, Any]]
    disagreements: dict[str, list[str]]
    questions: list[dict[str, Any]]  # question_id, candidate ids, per-method scores, pair verdicts

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "reliability",
            "model": self.model,
            "config": self.config.to_dict(),
            "statistics": self.statistics.to_dict(),
            "measures": self.measures,
            "methods": self.methods,
            "disagreements": self.disagreements,
            "questions": self.questions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReliabilityReport:
        return cls(
            model=d["model"],
            config=ReportConfig.from_dict(d["config"]),
            statistics=ReliabilityStatistics.from_dict(d["statistics"]),
            measures=list(d["measures"]),
            methods=list(d["methods"]),
            disagreements=dict(d["disagreements"]),
            questions=list(d["questions"]),
        )


def _humans(candidate: Mapping[str, Any]) -> dict[str, float]:
    out = {str(k): float(v) for k, v in (candidate.get("humans") or {}).items()}
    if candidate.get("intended_score") is not None:
        out.setdefault("author", float(candidate["intended_score"]))
    return out


def _pair_humans(hx: Mapping[str, float], hy: Mapping[str, float]) -> dict[str, str]:
    return {a: ("A" if hx[a] > hy[a] else "B" if hx[a] < hy[a] else "C") for a in hx if a in hy}


def method_table(questions: Sequence[Mapping[str, Any]], ntr_k: int) -> list[dict[str, Any]]:
    """Each score method's Conflict Ratio (its single scores against the two-pass relations),
    NTR_k (of the relations its per-order verdicts give by the two-pass rule), position flip
    rate (of its per-order verdicts, pairs without a tie) and agreement with people (Spearman ρ
    with the mean human score; accuracy against the pairs' human majority)."""
    rows = []
    for method in SIDE_BY_SIDE:
        conflicts = compared = flips = strict = agree = judged = 0
        ntr = None
        judge_scores, human_scores = [], []
        for q in questions:
            scores = q["scores"][method]
            baseline = {(i, j): p["relation"] for i, j, p in q["pairs"]}
            found, n = conflicting_pairs(scores, baseline)
            conflicts, compared = conflicts + len(found), compared + n
            own = {}
            for i, j, p in q["pairs"]:
                v1, v2 = p["verdicts"][method]
                if v1 is None or v2 is None:
                    continue
                r1, r2 = _RELATION[v1], _RELATION[_SWAP[v2]]
                own[(i, j)] = r1 if r1 == r2 else 0
                if v1 != "C" and v2 != "C":
                    strict += 1
                    flips += v1 != _SWAP[v2]
                m = majority(p["humans"])
                if m is not None:
                    judged += 1
                    agree += own[(i, j)] == _RELATION[m]
            n_cands = len(q["candidate_ids"])
            if n_cands >= ntr_k:
                counts = non_transitivity_ratio(own, n_cands, ntr_k)
                ntr = counts if ntr is None else ntr + counts
            for s, h in zip(scores, q["human_means"], strict=True):
                if s is not None and h is not None:
                    judge_scores.append(s)
                    human_scores.append(h)
        rho = None
        if len(judge_scores) >= 3 and np.ptp(judge_scores) > 0 and np.ptp(human_scores) > 0:
            from scipy.stats import spearmanr

            rho = float(spearmanr(judge_scores, human_scores).statistic)
        rows.append(
            {
                "method": method,
                "label": SCORE_BY_KEY[method].label,
                "conflict_ratio": conflicts / compared if compared else None,
                f"ntr_{ntr_k}": ntr.ratio if ntr is not None else None,
                "flip_rate": flips / strict if strict else None,
                "human_rho": rho,
                "human_pair_accuracy": agree / judged if judged else None,
            }
        )
    return rows


def reliability_report(
    lm: LanguageModel,
    questions: Sequence[Mapping[str, Any]],
    config: ReportConfig | None = None,
    *,
    progress: Progress | None = None,
) -> ReliabilityReport:
    """Run the judge over ``questions`` and measure its reliability (see the module docstring):
    one exact grade per answer, ``k`` sampled grades, every pair in both orders."""
    config = (config or ReportConfig()).validate()
    if not questions:
        raise ConfidantError("a reliability report needs at least one question")
    answers = [(q, i, c) for q in questions for i, c in enumerate(q["candidates"])]
    inputs = [(q["question"], c["text"]) for q, _, c in answers]
    ids = [c["candidate_id"] for _, _, c in answers]
    if progress:
        progress(0.0, f"grading {len(inputs)} answer(s)")
    graded = grade_batch(lm, inputs, config.judge, item_ids=ids)
    runs: list[list[float]] = [[] for _ in inputs]
    for r in range(config.k):
        if progress:
            progress((r + 1) / (config.k + 2), f"run {r + 1}/{config.k} at T={config.temperature}")
        cfg = JudgeConfig.from_dict(
            {
                **config.judge.to_dict(),
                "temperature": config.temperature,
                "seed": config.judge.seed + r,
            }
        )
        for n, g in enumerate(grade_batch(lm, inputs, cfg, item_ids=ids)):
            if g.emitted is not None:
                runs[n].append(float(g.emitted))
    t = config.judge.trustjudge_temperature
    singles, by_question = [], []
    offset = 0
    for q in questions:
        cands = q["candidates"]
        grades = graded[offset : offset + len(cands)]
        humans = [_humans(c) for c in cands]
        for n, (c, g) in enumerate(zip(cands, grades, strict=True)):
            if g.summary is not None:
                singles.append(
                    SingleObservation(
                        scores=dict(g.summary.scores),
                        length=float(len(c["text"])),
                        entropy=g.summary.entropy,
                        runs=runs[offset + n],
                        humans=humans[n],
                        item_id=c["candidate_id"],
                    )
                )
        offset += len(cands)
        by_question.append((q, grades, humans))
    if progress:
        progress(config.k / (config.k + 2) + 0.01, "comparing every pair in both orders")
    pairs, summaries = [], []
    for q, grades, humans in by_question:
        cands = q["candidates"]
        index_pairs = list(combinations(range(len(cands)), 2))
        compared = compare_batch(
            lm,
            [(q["question"], cands[i]["text"], cands[j]["text"]) for i, j in index_pairs],
            config.judge,
        )
        rows = []
        for (i, j), p in zip(index_pairs, compared, strict=True):
            if p.first.emitted is None or p.second.emitted is None:
                continue
            obs = PairObservation(
                first=p.first.emitted,
                second=p.second.emitted,
                probs_first=dict(p.first.raw),
                probs_second=dict(p.second.raw),
                length_x=float(len(cands[i]["text"])),
                length_y=float(len(cands[j]["text"])),
                humans=_pair_humans(humans[i], humans[j]),
                item_id=f"{q['question_id']}:{cands[i]['candidate_id']}|{cands[j]['candidate_id']}",
            )
            pairs.append(obs)
            verdicts = {
                m: [
                    order_verdict(m, p.first.emitted, p.first.raw, t),
                    order_verdict(m, p.second.emitted, p.second.raw, t),
                ]
                for m in SIDE_BY_SIDE
            }
            rows.append(
                [i, j, {"relation": obs.relation, "verdicts": verdicts, "humans": obs.humans}]
            )
        summaries.append(
            {
                "question_id": q["question_id"],
                "candidate_ids": [c["candidate_id"] for c in cands],
                "scores": {m: [g.score(m) for g in grades] for m in SIDE_BY_SIDE},
                "human_means": [float(np.mean(list(h.values()))) if h else None for h in humans],
                "pairs": rows,
            }
        )
    stats = ReliabilityStatistics(pairs=pairs, singles=singles, scale=config.judge.scale)
    if progress:
        progress(0.95, "measuring, with bootstrap intervals")
    return ReliabilityReport(
        model=lm.model_id,
        config=config,
        statistics=stats,
        measures=measure_rows(stats, config.n_boot, config.judge.seed),
        methods=method_table(summaries, config.ntr_k),
        disagreements=pair_disagreements(pairs),
        questions=summaries,
    )
