import json
from pathlib import Path

import pytest

from core.errors import ConfidantError
from uq.evaluation.correctness import (
    contains_gold,
    correctness_score,
    exact_match,
    is_correct,
    normalise_squad,
    rouge_l_score,
    squad_f1,
)

DATASET = Path(__file__).resolve().parents[2] / "data" / "qa" / "trivia_small.jsonl"


def test_squad_normalisation():
    assert normalise_squad("The  Eiffel Tower!") == "eiffel tower"
    assert normalise_squad("An apple, a day") == "apple day"
    assert normalise_squad("1,440") == "1440"
    # Articles go only as whole words.
    assert normalise_squad("Theatre and another") == "theatre and another"


def test_exact_match_examples():
    assert exact_match("the Pacific Ocean.", ["Pacific Ocean"]) == 1.0
    assert exact_match("Pacific", ["Pacific Ocean"]) == 0.0
    assert exact_match("Pacific", ["Pacific Ocean", "Pacific"]) == 1.0
    assert exact_match("Paris", "paris") == 1.0


def test_squad_f1_examples():
    # Prediction tokens [albert, einstein, physicist], gold [albert, einstein]:
    # P = 2/3, R = 1, F1 = 0.8.
    assert squad_f1("Albert Einstein, the physicist", ["Albert Einstein"]) == pytest.approx(0.8)
    # Max over golds.
    assert squad_f1("Einstein", ["Albert Einstein", "Einstein"]) == 1.0
    assert squad_f1("Einstein", ["Albert Einstein"]) == pytest.approx(2 / 3)
    # Repeated tokens count as a multiset: pred [new, new, york], gold [new, york].
    assert squad_f1("new new york", ["New York"]) == pytest.approx(0.8)
    assert squad_f1("London", ["Paris"]) == 0.0
    # Only articles/punctuation left: an empty answer matches only an empty one.
    assert squad_f1("The.", ["a"]) == 1.0
    assert squad_f1("The.", ["Paris"]) == 0.0


def test_contains_gold_matches_whole_words_only():
    assert contains_gold("The capital is Paris", ["Paris"]) == 1.0
    assert contains_gold("paris", ["Paris"]) == 1.0
    # Token boundaries: a gold inside a longer word is no match.
    assert contains_gold("Romeo", ["Rome"]) == 0.0
    assert contains_gold("It is in the Romeo and Juliet play", ["Rome"]) == 0.0
    assert contains_gold("Parisian", ["Paris"]) == 0.0
    # A multi-word gold must appear as a contiguous sequence.
    assert contains_gold("He was George Washington, the first one.", ["George Washington"]) == 1.0
    assert contains_gold("Washington, George", ["George Washington"]) == 0.0
    assert contains_gold("new york new", ["New York"]) == 1.0


def test_contains_gold_normalises_articles_punctuation_and_case():
    # Articles and punctuation go from both sides before matching.
    assert contains_gold("The capital of Romania is Bucharest.", ["Bucharest"]) == 1.0
    assert contains_gold("It is the Pacific Ocean!", ["The Pacific Ocean"]) == 1.0
    assert contains_gold("There were 1,440 of them", ["1440"]) == 1.0
    assert contains_gold("It was Jane-Austen", ["Jane Austen"]) == 0.0  # "janeausten"
    # Any alias may match; no alias matches an unrelated answer.
    assert contains_gold("Austen wrote it", ["Jane Austen", "Austen"]) == 1.0
    assert contains_gold("Charlotte Bronte wrote it", ["Jane Austen", "Austen"]) == 0.0
    # A gold that normalises to nothing matches nothing (not even the empty answer).
    assert contains_gold("The", ["The"]) == 0.0
    assert contains_gold("", ["A", "The"]) == 0.0
    # SQuAD F1 misses the sentence answer that contains gets right.
    assert squad_f1("The capital of Romania is Bucharest.", ["Bucharest"]) == pytest.approx(1 / 3)
    assert is_correct("The capital of Romania is Bucharest.", ["Bucharest"], method="contains")
    assert correctness_score("Bucharest, I think", "Bucharest", "contains") == 1.0


def test_rouge_l_score_is_max_over_golds():
    assert rouge_l_score("the blue whale", ["whale shark", "blue whale"]) == pytest.approx(0.8)


def test_is_correct_thresholds_and_methods():
    golds = ["George Washington", "Washington"]
    assert is_correct("It was George Washington.", golds)
    assert not is_correct("Abraham Lincoln", golds)
    assert is_correct("Washington", golds, method="exact_match")
    assert not is_correct("President Washington", golds, method="exact_match")
    # F1 of "george" against "george washington" is 2/3.
    assert is_correct("George", golds, threshold=0.6)
    assert not is_correct("George", golds, threshold=0.7)
    assert correctness_score("George", golds, "rouge_l") == pytest.approx(2 / 3)
    assert is_correct("George", golds, method="rouge_l", threshold=0.3)


def test_bad_input():
    with pytest.raises(ConfidantError, match="unknown correctness method"):
        is_correct("x", ["x"], method="bleu")
    with pytest.raises(ConfidantError, match="at least one gold"):
        squad_f1("x", [])
    with pytest.raises(ConfidantError, match="threshold"):
        is_correct("x", ["x"], threshold=1.5)
    with pytest.raises(ConfidantError, match="string"):
        exact_match(None, ["x"])


def test_authored_dataset_is_well_formed_and_self_consistent():
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 40
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == {"id", "question", "answers"}
        assert row["question"].strip().endswith("?")
        assert row["answers"] and all(isinstance(a, str) and a.strip() for a in row["answers"])
        # Every gold answer counts as correct against the list, under every method.
        for answer in row["answers"]:
            for method in ("contains", "squad_f1", "exact_match", "rouge_l"):
                assert is_correct(answer, row["answers"], method=method)
