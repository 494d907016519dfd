"""Property checks over every entry of the judge's score table (``judge.scores.SCORE_METHODS``):
the value lies on the scale the entry names, it does not depend on the order of the
distribution's keys unless the entry says it reads the emission order, and a missing or empty
distribution is a clear ``ConfidantError`` (or None from a grade that could not be scored).
The README's list of score methods is the table's own rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from judge.annotation import SINGLE_JUDGE_RATERS
from judge.grading import GradeResult
from judge.pipeline import CONSISTENCY_METHODS, METHOD_LABELS
from judge.scores import (
    SCALE_KINDS,
    SCORE_BY_KEY,
    SCORE_METHODS,
    ScoreSummary,
    markdown_table,
    score_summary,
)

README = Path(__file__).resolve().parents[2] / "README.md"
IDS = [m.key for m in SCORE_METHODS]


@st.composite
def scale_and_distribution(draw):
    """A scale lo..hi and a distribution over some of its values: probabilities (some 0) that
    sum to a mass in (0, 1], in a random key order."""
    lo = draw(st.sampled_from([1, 0, -3]))
    hi = lo + draw(st.sampled_from([1, 4, 9, 99]))
    values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=12, unique=True))
    weights = draw(
        st.lists(st.floats(0.0, 1.0), min_size=len(values), max_size=len(values)).filter(
            lambda w: sum(w) > 1e-6
        )
    )
    mass = draw(st.floats(0.01, 1.0))
    total = sum(weights)
    return (lo, hi), {v: mass * w / total for v, w in zip(values, weights, strict=True)}


TEMPERATURES = st.sampled_from([0.05, 0.2, 1.0, 3.0])


def test_the_table_is_well_formed():
    assert len(SCORE_BY_KEY) == len(SCORE_METHODS)  # keys are unique
    for m in SCORE_METHODS:
        assert m.scale in SCALE_KINDS and m.label and m.description.strip()
        assert callable(m.compute)
    # The consistency run and the agreement report read scores by key from this table.
    for method in CONSISTENCY_METHODS:
        assert method.score is None or method.score in SCORE_BY_KEY
        assert method.scale in ("baseline", "trustjudge")
    assert list(METHOD_LABELS.values()) == ["Baseline", "G-Eval", "TrustJudge", "TrustJudge (PPL)"]
    assert {key for _, key, _ in SINGLE_JUDGE_RATERS} == {m.key for m in SCORE_METHODS if m.rater}


@pytest.mark.parametrize("method", SCORE_METHODS, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(case=scale_and_distribution(), temperature=TEMPERATURES)
def test_value_lies_on_the_scale_the_table_names(method, case, temperature):
    (lo, hi), dist = case
    value = method.compute(dist, temperature)
    low, high = method.bounds(lo, hi)
    slack = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert low - slack <= value <= high + slack
    if method.discrete:
        assert isinstance(value, int) and value in dist


@pytest.mark.parametrize("method", SCORE_METHODS, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(case=scale_and_distribution(), temperature=TEMPERATURES, data=st.data())
def test_value_does_not_depend_on_key_order(method, case, temperature, data):
    _, dist = case
    order = data.draw(st.permutations(list(dist)))
    shuffled = {k: dist[k] for k in order}
    value = method.compute(dist, temperature)
    if method.emission_order:  # it reads the value the judge wrote: the first key
        assert value == next(iter(dist)) and method.compute(shuffled, temperature) == order[0]
    else:
        assert method.compute(shuffled, temperature) == pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method", SCORE_METHODS, ids=IDS)
@pytest.mark.parametrize("dist", [{}, None, {3: 0.0}, {2: 0.0, 4: 0.0}, []], ids=repr)
def test_a_missing_or_empty_distribution_is_a_clear_error(method, dist):
    with pytest.raises(ConfidantError, match="distribution|probability"):
        method.compute(dist, 0.2)


def test_an_unscored_grade_gives_none_for_every_method():
    g = GradeResult(
        question="q",
        response="r",
        model="m",
        config={"scale": 5},
        prompt="",
        judgement="",
        rationale="",
        raw={},
        emitted=None,
        summary=None,
        source="top_logprobs",
        truncated=True,
    )
    assert all(g.score(m.key) is None for m in SCORE_METHODS)
    assert g.scores() == {"scale": 5, "scored": False}


def test_a_grade_stores_every_method_and_reads_back_each_score():
    summary = score_summary({4: 0.6, 5: 0.3, 2: 0.05}, scale=5)
    assert list(summary.scores) == [m.key for m in SCORE_METHODS]
    for m in SCORE_METHODS:
        assert getattr(summary, m.key) == summary.scores[m.key]
    with pytest.raises(AttributeError):
        summary.not_a_method  # noqa: B018


def test_a_summary_stored_before_a_method_existed_computes_it_on_load():
    summary = score_summary({4: 0.6, 5: 0.3, 2: 0.05}, temperature=0.2, scale=5)
    stored = json.loads(json.dumps(summary.to_dict()))
    assert stored["first"] == 4  # the stored name of the emitted score, as runs always had it
    del stored["trustjudge"]
    assert ScoreSummary.from_dict(stored) == summary


def _readme_section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- measures:{name} -->\n(.*?)<!-- /measures:{name} -->", text, re.S)
    assert found, f"README.md has no <!-- measures:{name} --> section"
    return found.group(1)


def test_readme_lists_the_score_methods_of_the_table():
    assert _readme_section("judge") == markdown_table(), (
        "README.md's judge score list differs from judge.scores.markdown_table(); paste its "
        "output between the <!-- measures:judge --> markers"
    )
