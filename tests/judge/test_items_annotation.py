"""Item import and agreement over stored judgements (pure functions, no model)."""

from __future__ import annotations

import doctest
import json

import pytest

import judge.annotation
import judge.items
from core.errors import ConfidantError
from judge.annotation import agreement_report
from judge.items import demo_items, load_questions, parse_items


@pytest.mark.parametrize("module", [judge.items, judge.annotation])
def test_module_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_demo_set_expands_into_single_items_and_pairs():
    questions = load_questions()
    assert len(questions) == 10 and all(len(q["candidates"]) == 5 for q in questions)
    single, pairs = demo_items("single"), demo_items("pairwise")
    assert len(single) == 50 and len(pairs) == 100
    assert len({i["item_id"] for i in single}) == 50 and len({i["item_id"] for i in pairs}) == 100
    assert pairs[0]["response_a"] == questions[0]["candidates"][0]["text"]
    assert load_questions(limit=2)[1]["question_id"] == "discount"
    with pytest.raises(ConfidantError, match="kind"):
        demo_items("triples")


def test_jsonl_with_candidates_and_plain_rows():
    lines = [
        {"question": "Q1", "candidates": ["one", "two", {"text": "three", "candidate_id": "c"}]},
        {"item_id": "p1", "question": "Q2", "response_a": "x", "response_b": "y"},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    items = parse_items(data, "items.jsonl", "pairwise")
    assert len(items) == 4 and items[-1]["item_id"] == "p1"
    assert items[1]["response_b"] == "three" and items[1]["item_id"].endswith("|c")
    bom = "\ufeffquestion,response\nq,=1+1\n".encode()
    assert parse_items(bom, "x.CSV", "single")[0]["response"] == "=1+1"


def test_agreement_report_for_pairs_and_scales():
    rows = [
        {
            "item_id": f"p{i}",
            "kind": "pairwise",
            "annotator": who,
            "human_preference": pref,
            "scores": json.dumps({"relations": {"baseline": rel, "likelihood": rel, "ppl": 0}}),
        }
        for i, (rel, prefs) in enumerate([(1, "AA"), (-1, "BB"), (0, "CB"), (1, "AC")])
        for who, pref in zip(("ada", "bob"), prefs, strict=True)
    ]
    rows += [
        {
            "item_id": "s1",
            "kind": "single",
            "scale": 100,
            "annotator": "ada",
            "human_score": 80,
            "scores": {"emitted": 70},
        },
    ]
    report = agreement_report(rows)
    names = [g["name"] for g in report["groups"]]
    assert names == ["pairwise", "single, 1..100"]
    pairwise = report["groups"][0]
    pairs = {(p["rater_a"], p["rater_b"]): p for p in pairwise["pairs"]}
    assert pairs[("ada", "judge: likelihood")]["cohen_kappa"] == pytest.approx(1.0)
    assert pairs[("ada", "bob")]["items"] == 4
    assert pairs[("ada", "judge: PPL")]["spearman"] is None  # the PPL rater is constant
    assert pairwise["alpha_people"] is not None and pairwise["alpha_judge"] == "judge: baseline"
    single = report["groups"][1]
    assert single["items"] == 1 and all(p["spearman"] is None for p in single["pairs"])


def test_a_later_judgement_of_the_same_item_replaces_the_earlier():
    rows = [
        {
            "item_id": "a",
            "kind": "single",
            "scale": 5,
            "annotator": "ada",
            "human_score": s,
            "scores": {"emitted": e},
        }
        for s, e in [(1, 1), (2, 2), (3, 3)]
    ]
    rows[0] = {**rows[0], "item_id": "c"}
    rows.append({**rows[1], "human_score": 5})  # ada changes her mind on item "a"
    group = agreement_report(rows)["groups"][0]
    assert group["items"] == 2
    pair = group["pairs"][0]
    assert pair["items"] == 2 and pair["spearman"] == pytest.approx(1.0)
