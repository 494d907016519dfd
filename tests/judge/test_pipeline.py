"""Judging pipelines on the tiny random model: exact distributions, both orders, consistency."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from core.errors import ConfidantError
from judge.config import JudgeConfig
from judge.consistency import conflict_ratio, non_transitivity_ratio
from judge.grading import GradeResult, grade, grade_batch
from judge.items import load_questions
from judge.pairwise import PairwiseResult, compare
from judge.pipeline import ConsistencyConfig, ConsistencyResult, run_consistency
from judge.prompts import score_prefix, verdict_prefix
from judge.trustjudge import expected_score, rescale_score
from judge.verdicts import pairwise_relation, ppl_relation
from store.db import Store
from store.judgements import export_judgements, list_judgements, save_judgement

QUESTION = "Why is the sky blue?"
RESPONSE = "Because air scatters blue light more than red light."


def _teacher_forced_many(
    lm, prompt: str, prefix: str, continuations: list[str]
) -> list[list[float]]:
    """log p of each token of each continuation after prompt + prefix: every sequence written
    out in full and run through a plain forward (right-padded batches; causal attention keeps
    the padding from touching the real positions)."""
    head = lm._prompt_ids(prompt, True) + lm._encode(prefix)
    n_prefix = len(lm._encode(prefix))
    tails = []
    for c in continuations:
        both = lm._encode(prefix + c)
        assert both[:n_prefix] == lm._encode(prefix)
        tails.append(both[n_prefix:])
    out = []
    for start in range(0, len(tails), 25):
        chunk = tails[start : start + 25]
        width = max(len(t) for t in chunk)
        ids = torch.tensor([head + t + [0] * (width - len(t)) for t in chunk])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=ids).logits.double(), -1)
        for b, t in enumerate(chunk):
            out.append([float(logp[b, len(head) - 1 + j, tok]) for j, tok in enumerate(t)])
    return out


def _teacher_forced(lm, prompt: str, prefix: str, continuation: str) -> list[float]:
    return _teacher_forced_many(lm, prompt, prefix, [continuation])[0]


@pytest.fixture(scope="module")
def graded(tiny_lm):
    return grade(tiny_lm, QUESTION, RESPONSE, JudgeConfig(scale=100, max_new_tokens=6))


def test_100_point_distribution_is_exact_teacher_forcing_of_every_value(tiny_lm, graded):
    prefix = score_prefix(graded.rationale)
    forced = _teacher_forced_many(tiny_lm, graded.prompt, prefix, [f"{v}]" for v in range(1, 101)])
    lengths = [len(lps) for lps in forced]
    for value, lps in zip(range(1, 101), forced, strict=True):
        assert graded.raw[value] == pytest.approx(math.exp(sum(lps)), rel=2e-3)
    assert max(lengths) >= 3  # "100]" is several tokens: the digits are scored one by one
    dist = graded.distribution
    assert list(dist) == list(range(1, 101))
    assert sum(dist.values()) == pytest.approx(1.0)
    assert graded.summary.mass == pytest.approx(sum(graded.raw.values()))
    assert 0.0 < graded.summary.mass <= 1.0


def test_every_score_comes_from_the_same_distribution(graded):
    s = graded.summary
    assert graded.emitted == s.first == s.argmax  # greedy rationale: the most likely value
    assert next(iter(graded.raw)) == graded.emitted
    assert s.geval == pytest.approx(sum(v * p for v, p in graded.raw.items()))
    assert s.expectation == pytest.approx(sum(v * p for v, p in graded.distribution.items()))
    assert s.trustjudge == pytest.approx(expected_score(graded.raw, "trustjudge", 0.2))
    assert s.entropy >= 0.0 and s.temperature == 0.2
    assert graded.source == "exact" and not graded.truncated
    scores = graded.scores()
    assert scores["expectation"] == s.expectation and scores["scale"] == 100


def test_grade_result_round_trips_through_json(graded):
    back = GradeResult.from_dict(json.loads(json.dumps(graded.to_dict())))
    assert back.raw == graded.raw and list(back.raw) == list(graded.raw)
    assert back.summary == graded.summary and back.config == graded.config
    assert back.to_dict() == graded.to_dict()


def test_sampled_rationale_is_seeded_and_the_emitted_score_a_seeded_draw(tiny_lm):
    cfg = JudgeConfig(scale=5, temperature=1.0, seed=7, max_new_tokens=6)
    a = grade(tiny_lm, QUESTION, RESPONSE, cfg)
    b = grade(tiny_lm, QUESTION, RESPONSE, JudgeConfig(**cfg.to_dict()))
    assert a.judgement == b.judgement and a.emitted == b.emitted and a.raw == b.raw
    assert a.config["seed"] == 7 and a.emitted in range(1, 6)


def test_direct_grading_scores_right_after_the_marker(tiny_lm):
    r = grade(tiny_lm, QUESTION, RESPONSE, JudgeConfig(scale=5, direct=True))
    assert r.rationale == "" and r.judgement_tokens == 0
    for value in (1, 5):
        lps = _teacher_forced(tiny_lm, r.prompt, "Score: [", f"{value}]")
        assert r.raw[value] == pytest.approx(math.exp(sum(lps)), rel=2e-3)


def test_batch_grading_matches_one_by_one(tiny_lm):
    cfg = JudgeConfig(scale=5, direct=True)
    items = [(QUESTION, RESPONSE), ("What is 2 + 2?", "4")]
    batch = grade_batch(tiny_lm, items, cfg, item_ids=["a", "b"])
    single = grade(tiny_lm, "What is 2 + 2?", "4", cfg)
    assert [r.item_id for r in batch] == ["a", "b"]
    assert batch[1].raw == pytest.approx(single.raw, rel=1e-4)


@pytest.mark.parametrize(
    "config, match",
    [
        (JudgeConfig(scale=7), "scale"),
        (JudgeConfig(temperature=-1.0), "temperature"),
        (JudgeConfig(temperature=float("nan")), "temperature"),
        (JudgeConfig(max_new_tokens=0), "max new tokens"),
        (JudgeConfig(trustjudge_temperature=0.0), "TrustJudge temperature"),
        (JudgeConfig(top_logprobs=50), "top log-probabilities"),
    ],
)
def test_bad_configs_are_clear_errors(tiny_lm, config, match):
    with pytest.raises(ConfidantError, match=match):
        grade(tiny_lm, QUESTION, RESPONSE, config)


def test_empty_item_is_a_clear_error(tiny_lm):
    with pytest.raises(ConfidantError, match="response is empty"):
        grade(tiny_lm, QUESTION, "   ", JudgeConfig(direct=True))


# --- pairwise ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tiny_lm):
    return compare(
        tiny_lm,
        QUESTION,
        "Rayleigh scattering.",
        "It reflects the ocean.",
        JudgeConfig(max_new_tokens=6),
    )


def test_pairwise_runs_both_orders_with_exact_verdict_probabilities(tiny_lm, pair):
    first, second = pair.first, pair.second
    assert first.prompt.index("Rayleigh") < first.prompt.index("ocean")
    assert second.prompt.index("ocean") < second.prompt.index("Rayleigh")
    for read in (first, second):
        prefix = verdict_prefix(read.rationale)
        forced = _teacher_forced_many(tiny_lm, read.prompt, prefix, ["A]", "B]", "C]"])
        for letter, lps in zip("ABC", forced, strict=True):
            assert read.raw[letter] == pytest.approx(math.exp(sum(lps)), rel=2e-3)
        assert sum(read.probs.values()) == pytest.approx(1.0)
        assert read.emitted == max(read.raw, key=read.raw.get) == next(iter(read.raw))
        # PPL over the judgement as written: rationale, marker, verdict letter and bracket.
        head = _teacher_forced(tiny_lm, read.prompt, "", prefix)
        tail = _teacher_forced(tiny_lm, read.prompt, prefix, f"{read.emitted}]")
        expected = math.exp(-(sum(head) + sum(tail)) / (len(head) + len(tail)))
        assert read.perplexity == pytest.approx(expected, rel=1e-3)
        assert read.judgement_tokens == len(head) + len(tail)


def test_pairwise_relations_follow_each_rule(pair):
    first, second = pair.first, pair.second
    assert pair.relations == {
        "baseline": pairwise_relation(first.raw, second.raw, "baseline"),
        "likelihood": pairwise_relation(first.raw, second.raw, "likelihood"),
        "ppl": ppl_relation(first.emitted, first.perplexity, second.emitted, second.perplexity),
    }
    view = pair.judge_view()
    assert view["second_order_swapped"]["A"] == pytest.approx(second.probs["B"])
    back = PairwiseResult.from_dict(json.loads(json.dumps(pair.to_dict())))
    assert back.to_dict() == pair.to_dict()
    assert list(back.first.raw) == list(first.raw)


# --- consistency -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consistency(tiny_lm):
    config = ConsistencyConfig(judge=JudgeConfig(max_new_tokens=3))
    return run_consistency(tiny_lm, load_questions(limit=2), config)


def test_consistency_run_on_two_demo_questions(consistency):
    res = consistency
    assert [q.question_id for q in res.questions] == ["sky-blue", "discount"]
    for q in res.questions:
        assert sorted(q.grades) == [5, 100]
        assert all(len(g) == 5 for g in q.grades.values())
        assert len(q.pairs) == 10 and all(i < j for i, j, _ in q.pairs)
    table = {row.method: row for row in res.table}
    assert list(table) == ["baseline", "geval", "trustjudge", "trustjudge_ppl"]
    assert table["geval"].ntr == {} and table["trustjudge_ppl"].conflict_ratio is None
    for method, score in (
        ("baseline", "emitted"),
        ("geval", "geval"),
        ("trustjudge", "trustjudge"),
    ):
        scores, relations = [], {}
        for q in res.questions:
            offset = len(scores)
            scale = 100 if score == "trustjudge" else 5
            for g in q.grades[scale]:
                value = g.score(score)
                scores.append(rescale_score(value, 100, 5) if scale == 100 else value)
            relations.update(
                {(offset + i, offset + j): r for (i, j), r in q.relations("baseline").items()}
            )
        assert table[method].conflict_ratio == pytest.approx(conflict_ratio(scores, relations))
        assert table[method].compared == 20
    for method, rule in (
        ("baseline", "baseline"),
        ("trustjudge", "likelihood"),
        ("trustjudge_ppl", "ppl"),
    ):
        for k in (3, 4, 5):
            counts = [non_transitivity_ratio(q.relations(rule), 5, k) for q in res.questions]
            row = table[method].ntr[k]
            assert row["subsets"] == sum(c.subsets for c in counts)
            assert row["violating"] == sum(c.violating for c in counts)
            assert row["circular"] == sum(c.circular for c in counts)
            assert row["equivalence"] == sum(c.equivalence for c in counts)


def test_consistency_result_round_trips(consistency):
    back = ConsistencyResult.from_dict(json.loads(json.dumps(consistency.to_dict())))
    assert back.to_dict() == consistency.to_dict()
    assert back.config.ks == (3, 4, 5) and back.config.trustjudge_scale == 100


def test_consistency_refuses_bad_input(tiny_lm):
    with pytest.raises(ConfidantError, match="at least one question"):
        run_consistency(tiny_lm, [])
    q = load_questions(limit=1)[0]
    with pytest.raises(ConfidantError, match="NTR needs 3"):
        run_consistency(tiny_lm, [{**q, "candidates": q["candidates"][:2]}])
    with pytest.raises(ConfidantError, match="tolerance"):
        run_consistency(tiny_lm, [q], ConsistencyConfig(tolerance=-1))


# --- through the store and the CSV -------------------------------------------------------------


def test_a_judging_run_goes_through_the_store_and_the_csv(tmp_path, graded):
    store = Store(tmp_path / "j.db")
    row = {
        "client_key": "k-1",
        "item_id": "sky-1",
        "kind": "single",
        "annotator": "ada",
        "question": graded.question,
        "response": '=HYPERLINK("http://x")',
        "human_score": 70,
        "note": "+1 for brevity",
        "judge": {"distribution": {str(k): v for k, v in graded.distribution.items()}},
        "scores": graded.scores(),
    }
    first = save_judgement(store, row)
    assert save_judgement(store, row) == first  # a retried submit stores one row
    assert len(list_judgements(store)) == 1
    path = export_judgements(store, fmt="csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert rows[0]["response"].startswith("'=") and rows[0]["note"].startswith("'+")
    stored = json.loads(rows[0]["judge"])["distribution"]
    assert {int(k): v for k, v in stored.items()} == pytest.approx(graded.distribution)
    assert float(rows[0]["score_trustjudge"]) == pytest.approx(graded.summary.trustjudge)
    assert float(rows[0]["human_score"]) == 70
