import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfidantError
from judge.prompts import (
    SCORE_MARKER,
    VERDICT_MARKER,
    grading_prompt,
    pairwise_prompt,
    parse_score,
    parse_verdict,
    rationale_of,
    score_prefix,
    score_values,
    verdict_prefix,
)

DEMO = Path(__file__).resolve().parents[2] / "data" / "judge" / "demo.jsonl"

# --- prompts ------------------------------------------------------------------------------------


def test_grading_prompt_holds_the_item_and_the_scale():
    text = grading_prompt("What is 2 + 2?", "It is 4.", scale=100)
    assert "What is 2 + 2?" in text and "It is 4." in text
    assert "1 (very poor) to 100 (excellent)" in text
    assert "Score: [X]" in text
    assert "assessment" in text
    assert text.index("What is 2 + 2?") < text.index("It is 4.")
    five = grading_prompt("What is 2 + 2?", "It is 4.")
    assert "to 5 (excellent)" in five


def test_direct_grading_asks_for_the_score_only():
    text = grading_prompt("Q?", "R.", direct=True)
    assert "score line only" in text
    assert "assessment" not in text


def test_pairwise_prompt_layout_and_order():
    text = pairwise_prompt("Which is bigger?", "First answer.", "Second answer.")
    assert (
        "[The Start of Assistant A's Answer]\nFirst answer.\n[The End of Assistant A's Answer]"
        in text
    )
    assert (
        "[The Start of Assistant B's Answer]\nSecond answer.\n[The End of Assistant B's Answer]"
        in text
    )
    for verdict in ("Verdict: [A]", "Verdict: [B]", "Verdict: [C]"):
        assert verdict in text
    swapped = pairwise_prompt("Which is bigger?", "Second answer.", "First answer.")
    assert swapped.index("Second answer.") < swapped.index("First answer.")
    assert "verdict line only" in pairwise_prompt("Q?", "a", "b", direct=True)


def test_prompt_input_errors():
    with pytest.raises(ConfidantError, match="question"):
        grading_prompt("  ", "R.")
    with pytest.raises(ConfidantError, match="response"):
        grading_prompt("Q?", "")
    with pytest.raises(ConfidantError, match="scale"):
        grading_prompt("Q?", "R.", scale=10)
    with pytest.raises(ConfidantError, match="second answer"):
        pairwise_prompt("Q?", "a", "")
    assert score_values(5) == [1, 2, 3, 4, 5]
    assert len(score_values(100)) == 100


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("Clear and correct.\nScore: [4]", 5, 4),
        ("Score: [85]", 100, 85),
        ("**Score:** [4]", 5, 4),
        ("Final score: [[2]]", 5, 2),
        ("score - [3/5]", 5, 3),
        ("Score: 4/5", 5, 4),
        ("Overall decent. Score: 3", 5, 3),
        ("4", 5, 4),
        (" [5] ", 5, 5),
        # The last score wins: a draft or a quoted score earlier in the rationale is ignored.
        ("I first thought Score: [2], but on reflection...\nScore: [4]", 5, 4),
        ("Cites [1] and [2] correctly.\nScore: [3]", 5, 3),
        # Nothing on the scale: unscored, never the worst score.
        ("Score: [7]", 5, None),
        ("Score: [0]", 100, None),
        ("A fine answer overall.", 5, None),
        ("", 5, None),
        ("Score: [X]", 5, None),
        ("Score: [4.5]", 5, None),
    ],
)
def test_parse_score(text, scale, expected):
    assert parse_score(text, scale) == expected


def test_parse_score_non_text_and_bad_scale():
    assert parse_score(None) is None
    with pytest.raises(ConfidantError):
        parse_score("Score: [4]", scale=7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A is more accurate.\nVerdict: [A]", "A"),
        ("Verdict: [b]", "B"),
        ("**Verdict:** [C]", "C"),
        ("My final verdict is [[B]]", "B"),
        ("Verdict: A", "A"),
        ("B", "B"),
        ("[C]", "C"),
        ("Verdict: [A] ... on second thoughts, Verdict: [B]", "B"),
        ("Verdict: a tie", None),  # a lower-case article is not a verdict
        ("Verdict: [D]", None),
        ("Both answers are fine.", None),
        (None, None),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


# --- prefixes -----------------------------------------------------------------------------------


def test_score_and_verdict_prefixes():
    assert score_prefix("Accurate but terse.") == "Accurate but terse.\nScore: ["
    assert score_prefix("") == SCORE_MARKER
    assert score_prefix("   ") == SCORE_MARKER
    assert verdict_prefix("B misses the point.") == "B misses the point.\nVerdict: ["
    assert verdict_prefix() == VERDICT_MARKER
    # A full judgement loses its own score line first.
    assert score_prefix("Good answer.\n**Final Score:** [4]") == "Good answer.\nScore: ["
    assert verdict_prefix("A is better.\nFinal verdict: [[A]]") == "A is better.\nVerdict: ["


def test_rationale_of():
    assert rationale_of("Good.\nScore: [4]") == "Good."
    assert rationale_of("Overall fine (3 issues).  Score: 4/5") == "Overall fine (3 issues)."
    assert rationale_of("It was *great*\n- **Score**: [4]") == "It was *great*"
    assert rationale_of("No score here.") == "No score here."
    with pytest.raises(ConfidantError):
        rationale_of(None)


@given(st.text(max_size=200), st.sampled_from([5, 100]), st.data())
def test_a_completed_prefix_parses_back(rationale, scale, data):
    value = data.draw(st.integers(1, scale))
    assert parse_score(score_prefix(rationale) + f"{value}]", scale) == value
    letter = data.draw(st.sampled_from("ABC"))
    assert parse_verdict(verdict_prefix(rationale) + f"{letter}]") == letter


# --- the demo set -------------------------------------------------------------------------------


def test_demo_set_is_well_formed_and_builds_prompts():
    items = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 8
    assert len({item["question_id"] for item in items}) == len(items)
    for item in items:
        candidates = item["candidates"]
        assert 4 <= len(candidates) <= 5
        ranks = sorted(c["quality_rank"] for c in candidates)
        assert ranks == list(range(1, len(candidates) + 1))
        # Candidates are shuffled: the list is not already in quality order.
        assert [c["quality_rank"] for c in candidates] != ranks
        assert len({c["candidate_id"] for c in candidates}) == len(candidates)
        for c in candidates:
            assert c["candidate_id"].startswith(item["question_id"] + "-")
            assert 1 <= c["intended_score"] <= 5
            assert c["text"].strip() and c["note"].strip()
            assert c["text"] in grading_prompt(item["question"], c["text"])
        best, worst = (
            min(candidates, key=lambda c: c["quality_rank"]),
            max(candidates, key=lambda c: c["quality_rank"]),
        )
        assert best["intended_score"] > worst["intended_score"]
        pairwise_prompt(item["question"], best["text"], worst["text"])


def test_module_examples_run():
    import doctest

    import judge.prompts

    result = doctest.testmod(judge.prompts)
    assert result.attempted > 0 and result.failed == 0
