"""The reliability report on the tiny random model: every stage runs, and the result is plain
data that reopens without a model."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfidantError
from judge.config import JudgeConfig
from judge.items import load_questions
from judge.reliability import RELIABILITY_MEASURES, reliability_values
from judge.report import (
    SIDE_BY_SIDE,
    ReliabilityReport,
    ReportConfig,
    order_verdict,
    reliability_report,
)

DATA = "data/judge/reliability.jsonl"


@pytest.fixture(scope="module")
def report(tiny_lm):
    questions = load_questions(DATA, limit=2)
    config = ReportConfig(judge=JudgeConfig(max_new_tokens=4), k=3, temperature=1.0, n_boot=20)
    return reliability_report(tiny_lm, questions, config)


def test_the_report_judges_every_answer_and_pair(report):
    stats = report.statistics
    assert len(stats.singles) == 6 and len(stats.pairs) == 6
    assert all(len(s.runs) == 3 for s in stats.singles)
    assert all(s.humans == {"author": s.humans["author"]} for s in stats.singles)
    assert [r["key"] for r in report.measures] == [m.key for m in RELIABILITY_MEASURES]
    assert [r["method"] for r in report.methods] == list(SIDE_BY_SIDE)
    values = reliability_values(stats)
    for row in report.measures:
        assert row["value"] == values[row["key"]]
    assert values["flip_rate"] is not None or values["tie_flip_rate"] is not None
    assert values["score_spread"] is not None and values["changed_share"] is not None


def test_the_report_is_json_and_reopens_without_a_model(report):
    text = json.dumps(report.to_dict())
    back = ReliabilityReport.from_dict(json.loads(text))
    assert back.to_dict() == report.to_dict()
    assert reliability_values(back.statistics) == reliability_values(report.statistics)


def test_authored_pairs_carry_the_author_preference(report):
    by_id = {p.item_id: p for p in report.statistics.pairs}
    tie = by_id.get("capital-australia:capital-australia-short|capital-australia-padded")
    assert tie is not None and tie.humans == {"author": "C"}
    wrong = by_id["capital-australia:capital-australia-short|capital-australia-wrong"]
    assert wrong.humans == {"author": "A"} and wrong.length_x > 0


def test_order_verdicts_of_each_method():
    sure_a = {"A": 0.9, "B": 0.05, "C": 0.05}
    assert [order_verdict(m, "B", sure_a, 0.2) for m in SIDE_BY_SIDE] == ["B", "A", "A", "A"]
    # Little mass on the letters: G-Eval's unnormalised value is pulled to a tie.
    faint = {"A": 0.2, "B": 0.01, "C": 0.01}
    assert order_verdict("geval", "A", faint, 0.2) == "C"
    assert order_verdict("expectation", "A", faint, 0.2) == "A"


def test_bad_settings_and_no_questions_are_errors(tiny_lm):
    with pytest.raises(ConfidantError, match="k"):
        ReportConfig(k=0).validate()
    with pytest.raises(ConfidantError, match="question"):
        reliability_report(tiny_lm, [], ReportConfig(n_boot=0))
