"""The measure names say what the value is (issue: "p(True) 0.173" was 1 − p(True))."""

from __future__ import annotations

import math

from backends.base import Generation, TokenRecord
from uq.semantic.measures import MEASURE_BY_KEY, AnswerStatistics


def _stats(p_true: float) -> AnswerStatistics:
    ref = Generation(
        text="Paris", tokens=[TokenRecord(text="Paris", logprob=-0.5, entropy=0.1, varentropy=0.0)]
    )
    return AnswerStatistics(
        texts=["Paris", "Paris"],
        cluster_ids=[0, 0],
        reference=ref,
        p_true=p_true,
        log_likelihoods=[-0.1, -0.1],
    )


def test_p_true_row_is_named_one_minus_p_true():
    m = MEASURE_BY_KEY["p_true"]
    assert m.label.startswith("1 − p(True)")
    assert math.isclose(m.compute(_stats(0.8)), 0.2, abs_tol=1e-9)


def test_sequence_probability_row_is_named_minus_log():
    m = MEASURE_BY_KEY["maximum_sequence_probability"]
    assert m.label.startswith("−log")
    assert math.isclose(m.compute(_stats(0.8)), 0.5, abs_tol=1e-9)


def test_kuhn_row_says_it_can_be_negative_and_why():
    m = MEASURE_BY_KEY["kuhn_semantic_entropy"]
    # two answers of likelihood e^-0.1 in one cluster: mass 1.81 > 1, so the value is < 0
    assert m.compute(_stats(0.8)) < 0
    assert "< 0" in m.label and "exceed 1" in m.explanation


def test_semantic_table_shows_each_measures_range():
    from types import SimpleNamespace

    from ui.plots.semantic import measures_markdown

    result = SimpleNamespace(
        n=5,
        clustering=SimpleNamespace(n_clusters=2),
        measures={
            "kuhn_semantic_entropy": {"value": -1.31, "per_log_n": -0.81},
            "p_true": {"value": 0.173},
            "discrete_semantic_entropy": {"value": 0.5, "per_log_n": 0.31},
        },
        work={},
        likelihood_source=None,
        notes=[],
    )
    rows = {r.split(" | ")[0].lstrip("| "): r for r in measures_markdown(result).splitlines()}
    assert "| range |" in rows["measure"]
    assert " | ≥ 0 | " not in rows["Semantic entropy (Kuhn 2023 code; can be < 0)"]
    assert " | unbounded | " in rows["Semantic entropy (Kuhn 2023 code; can be < 0)"]
    assert " | 0 … 1 | " in rows["1 − p(True)"]
    assert " | 0 … log N | " in rows["Discrete semantic entropy"]


def test_judge_table_gives_geval_its_unrenormalised_scale():
    from judge.grading import GradeResult
    from judge.scores import score_summary
    from ui.plots.judge import judge_markdown

    raw = {4: 0.1, 5: 0.05, 3: 0.01}  # mass 0.16: most probability is off the scale
    g = GradeResult(
        question="q", response="r", model="m", config={"scale": 5}, prompt="",
        judgement="Score: [4]", rationale="", raw=raw, emitted=4,
        summary=score_summary(raw, scale=5), source="exact", truncated=False,
    )  # fmt: skip
    table = judge_markdown(g.to_dict()).split("\n\n")[0].splitlines()
    heads = [c.strip() for c in table[0].strip("|").split("|")]
    scales = [c.strip() for c in table[3].strip("|").split("|")]
    geval = scales[heads.index("G-Eval")]
    assert "0 … 5·mass = 0.8" in geval and "not renormalised" in geval
    assert float(table[2].strip("|").split("|")[heads.index("G-Eval")]) < 0.8
    assert scales[heads.index("expectation")] == "*1 … 5*"
