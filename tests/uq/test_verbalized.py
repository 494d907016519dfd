"""Verbalized confidence: the parser (hand cases and property tests), the measures on
hand-built statistics, and the pipeline on the tiny random model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import Generation
from uq.semantic.entailment import NLIEntailment
from uq.semantic.measures import MEASURE_BY_KEY, AnswerStatistics, compute_measures
from uq.semantic.pipeline import run_semantic_entropy
from uq.semantic.result import SemanticEntropyResult
from uq.semantic.verbalized import (
    ONE_STAGE_PROMPT,
    confidence_uncertainty,
    parse_confidence,
    split_one_stage,
)

from .test_semantic_pipeline import QUESTION, RuleNLI

KEYS = ("verbalized_one_stage", "verbalized_two_stage")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("85", 85.0),
        ("85%", 85.0),
        ("85 %", 85.0),
        ("85 percent", 85.0),
        ("Confidence: 85/100", 85.0),
        ("Confidence: 85 / 100", 85.0),
        ("8 out of 10", 80.0),
        ("0.85", 85.0),
        (".9", 90.0),
        ("1.0", 100.0),
        ("1", 1.0),
        ("0", 0.0),
        ("100", 100.0),
        ("85.5", 85.5),
        ("I am 85% sure.", 85.0),
        ("My confidence is 70, maybe.", 70.0),
        ("Confidence - 85", 85.0),
        ("Confidence: 0.85.", 85.0),
        ("The answer is 1945. I am 90% confident.", 90.0),
        ("Paris (1 city). Confidence: 95", 95.0),
        ("Probability: 0.7", 70.0),
        ("**Confidence:** 60", 60.0),
    ],
)
def test_confidence_is_read_from_common_replies(text, expected):
    assert parse_confidence(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "high",
        "I am very confident.",
        "Confidence: 150",
        "200%",
        "-5",
        "Confidence: -20",
        "120/100",
        "5/0",
        "1.5e3",
    ],
)
def test_no_confidence_or_out_of_range_is_none(text):
    assert parse_confidence(text) is None


def test_one_stage_reply_splits_answer_from_confidence():
    assert split_one_stage("Answer: 1945\nConfidence: 90") == ("1945", 90.0)
    assert split_one_stage("Answer: Paris, confidence 95%") == ("Paris", 95.0)
    assert split_one_stage("Answer: 42") == ("42", None)  # the answer's number is not taken
    assert split_one_stage("Paris. 80") == (None, 80.0)
    assert split_one_stage("") == (None, None)


WORDS = st.lists(st.sampled_from(["I", "am", "about", "the", "answer", "is", "Paris", "so"]))


def _words(draw) -> str:
    return " ".join(draw(WORDS))


@settings(max_examples=200, deadline=None)
@given(k=st.integers(0, 100), form=st.sampled_from(["{}", "{}%", "{}/100", "Confidence: {}"]),
       data=st.data())  # fmt: skip
def test_a_whole_number_with_words_around_it_is_read(k, form, data):
    text = f"{_words(data.draw)} {form.format(k)} {_words(data.draw)}"
    assert parse_confidence(text) == k


@settings(max_examples=200, deadline=None)
@given(p=st.integers(0, 100), data=st.data())
def test_a_decimal_probability_is_read_as_a_percentage(p, data):
    text = f"{_words(data.draw)} {p / 100:.2f} {_words(data.draw)}"
    assert parse_confidence(text) == pytest.approx(p)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(101, 10**6), form=st.sampled_from(["{}", "{}%", "Confidence: {}"]))
def test_above_100_is_none(k, form):
    assert parse_confidence(form.format(k)) is None


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_text_gives_none_or_a_value_in_range(text):
    value = parse_confidence(text)
    assert value is None or 0.0 <= value <= 100.0
    answer, confidence = split_one_stage(text)
    assert confidence is None or 0.0 <= confidence <= 100.0


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Nd"])))
def test_text_without_digits_gives_none(text):
    assert parse_confidence(text) is None


# --------------------------------------------------------------------------- measures


def _stats(one: float | None, two: float | None, n: int = 3) -> AnswerStatistics:
    return AnswerStatistics(
        texts=["paris"] * n,
        cluster_ids=[0] * n,
        reference=Generation("paris", []),
        verbalized_one_stage=one,
        verbalized_two_stage=two,
    )


def _values(stats: AnswerStatistics) -> dict:
    return compute_measures(stats, [MEASURE_BY_KEY[k] for k in KEYS], {"verbalized"})


@pytest.mark.parametrize(("confidence", "uncertainty"), [(0, 1.0), (100, 0.0), (85, 0.15)])
def test_uncertainty_is_one_minus_confidence_over_100(confidence, uncertainty):
    assert confidence_uncertainty(confidence) == pytest.approx(uncertainty)
    out = _values(_stats(confidence, confidence))
    assert [out[k]["value"] for k in KEYS] == pytest.approx([uncertainty] * 2)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_the_measures_do_not_depend_on_the_answers(n):
    one = _values(_stats(30.0, 60.0, n))
    differing = AnswerStatistics(
        texts=[f"city {i}" for i in range(n)], cluster_ids=list(range(n)),
        verbalized_one_stage=30.0, verbalized_two_stage=60.0,
    )  # fmt: skip
    assert _values(differing) == one
    assert one["verbalized_one_stage"]["value"] == pytest.approx(0.7)
    assert one["verbalized_two_stage"]["value"] == pytest.approx(0.4)


def test_an_unreadable_reply_gives_none_with_a_note():
    out = _values(_stats(None, 50.0))
    assert out["verbalized_one_stage"]["value"] is None
    assert "confidence" in out["verbalized_one_stage"]["note"]
    assert out["verbalized_two_stage"]["value"] == pytest.approx(0.5)
    missing = compute_measures(_stats(50, 50), [MEASURE_BY_KEY[k] for k in KEYS], set())
    assert all(missing[k]["value"] is None and missing[k]["note"] for k in KEYS)


# --------------------------------------------------------------------------- pipeline


def _run(lm, measures, **kw):
    return run_semantic_entropy(
        lm, QUESTION, NLIEntailment(RuleNLI()), n=3, seed=1, max_new_tokens=6,
        measures=measures, **kw,
    )  # fmt: skip


def test_pipeline_keeps_the_raw_replies_and_notes_unreadable_ones(tiny_lm):
    result = _run(tiny_lm, ["discrete_semantic_entropy", *KEYS])
    assert set(result.verbalized) == {"one_stage", "two_stage"}
    for stage, key in zip(("one_stage", "two_stage"), KEYS, strict=True):
        reply = result.verbalized[stage]
        assert isinstance(reply["raw"], str) and reply["prompt"]
        entry = result.measures[key]
        if reply["confidence"] is None:  # the random model writes no number
            assert entry["value"] is None and "confidence" in entry["note"]
        else:
            assert entry["value"] == pytest.approx(1 - reply["confidence"] / 100)
    assert QUESTION in result.verbalized["one_stage"]["prompt"]
    assert result.reference.text.strip() in result.verbalized["two_stage"]["prompt"]
    assert result.timings["verbalized"] >= 0
    again = SemanticEntropyResult.from_dict(result.to_dict())
    assert again.verbalized == result.verbalized


def test_pipeline_asks_only_the_stages_wanted(tiny_lm, generate_calls):
    none = _run(tiny_lm, ["discrete_semantic_entropy"])
    assert none.verbalized is None and "verbalized" not in none.timings
    before = len(generate_calls)
    two = _run(tiny_lm, ["verbalized_two_stage"])
    assert set(two.verbalized) == {"two_stage"}
    assert "verbalized_one_stage" not in two.measures
    assert two.work["generate_calls"] == none.work["generate_calls"] + 1
    assert len(generate_calls) > before


def test_pipeline_reads_a_confident_reply(tiny_lm, monkeypatch):
    def greedy(prompt, max_new_tokens=64, *, stop=(), chat=True):
        one = prompt == ONE_STAGE_PROMPT.replace("{question}", QUESTION)
        text = "Answer: Paris\nConfidence: 80" if one else "65"
        return Generation(text, [])

    monkeypatch.setattr(tiny_lm, "greedy", greedy)
    result = _run(tiny_lm, list(KEYS))
    assert result.verbalized["one_stage"]["answer"] == "Paris"
    assert result.measure_value("verbalized_one_stage") == pytest.approx(0.2)
    assert result.measure_value("verbalized_two_stage") == pytest.approx(0.35)
    assert math.isclose(result.verbalized["two_stage"]["confidence"], 65.0)
