"""The harness's few-shot answer prompt, its default correctness (contains a gold answer), the
cache keys of older settings, and the length baseline in every run's table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.base import Generation, TokenRecord
from cli.evaluate import _parser, main
from core.errors import ConfidantError
from store.db import Store
from store.eval_cache import EvalCache
from uq.evaluation.datasets import EvalItem, load_dataset
from uq.evaluation.few_shot import few_shot_prompt
from uq.evaluation.harness import (
    DEFAULT_CORRECTNESS,
    DEFAULT_FEW_SHOT,
    EvalSettings,
    params_hash,
    run_evaluation,
    run_params,
)
from uq.semantic.entailment import NLIEntailment
from uq.semantic.measures import MEASURES, AnswerStatistics, compute_measures
from uq.semantic.pipeline import DEFAULT_PROMPT

DATA = "data/qa/trivia_small.jsonl"
FAST = dict(n=2, max_new_tokens=4, n_boot=20)


class RuleNLI:
    model_id = "rule-nli"

    def probs(self, pairs):
        out = np.zeros((len(pairs), 3))
        for k, (p, h) in enumerate(pairs):
            out[k, 2 if p[-1:] == h[-1:] else 1] = 1.0
        return out


@pytest.fixture
def prompts(tiny_lm, monkeypatch) -> list[str]:
    """Every prompt the harness sends to ``tiny_lm`` for sampling answers (not the verbalized
    confidence questions, which are asked greedily of the bare question)."""
    seen: list[str] = []
    batch, single = tiny_lm.sample_batch, tiny_lm.sample

    def spy_batch(ps, *a, **kw):
        if kw.get("params", a[0] if a else None).temperature > 0:
            seen.extend(ps)
        return batch(ps, *a, **kw)

    def spy_single(p, *a, **kw):
        seen.append(p)
        return single(p, *a, **kw)

    monkeypatch.setattr(tiny_lm, "sample_batch", spy_batch)
    monkeypatch.setattr(tiny_lm, "sample", spy_single)
    return seen


def test_the_zero_shot_prompt_is_todays_prompt(tiny_lm, prompts):
    assert few_shot_prompt([]) == DEFAULT_PROMPT
    items = load_dataset(DATA)[:2]
    result = run_evaluation(
        items, tiny_lm, NLIEntailment(RuleNLI()), EvalSettings(**FAST, few_shot=0)
    )
    assert [r["id"] for r in result.rows] == [items[0].id, items[1].id]
    expected = {DEFAULT_PROMPT.replace("{question}", item.question) for item in items}
    assert prompts and set(prompts) == expected
    assert "few_shot" not in result.params and "few_shot_example_ids" not in result.params


def test_few_shot_examples_make_the_prompt_and_leave_the_rows(tiny_lm, prompts, tmp_path):
    items = load_dataset(DATA)[:5]
    ent = NLIEntailment(RuleNLI())
    cache = EvalCache(Store(tmp_path / "e.db"))
    settings = EvalSettings(**FAST, few_shot=2)
    result = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    # The examples are neither answered nor scored.
    assert [r["id"] for r in result.rows] == [it.id for it in items[2:]]
    assert result.params["few_shot"] == 2
    assert result.params["few_shot_example_ids"] == [items[0].id, items[1].id]
    head = (
        "Answer the following question as briefly as possible.\n"
        f"Question: {items[0].question}\nAnswer: {items[0].answers[0]}\n\n"
        f"Question: {items[1].question}\nAnswer: {items[1].answers[0]}\n\n"
    )
    assert result.params["answer_prompt"] == head + "Question: {question}\nAnswer:"
    sent = {p for p in prompts}
    assert sent == {f"{head}Question: {it.question}\nAnswer:" for it in items[2:]}
    # Recorded in the cache key: zero-shot rows are other rows, few-shot rows are read back.
    assert params_hash(result.params) != params_hash(run_params(tiny_lm, ent, EvalSettings(**FAST)))
    again = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    assert again.n_cached == 3 and again.n_computed == 0 and again.rows == result.rows
    zero = run_evaluation(items, tiny_lm, ent, EvalSettings(**FAST), cache=cache)
    assert zero.n_computed == 5


def test_few_shot_and_p_true_examples_come_one_after_the_other(tiny_lm):
    items = load_dataset(DATA)[:4]
    ent = NLIEntailment(RuleNLI())
    settings = EvalSettings(**FAST, few_shot=1, p_true_fewshot=1)
    result = run_evaluation(items, tiny_lm, ent, settings)
    assert result.params["few_shot_example_ids"] == [items[0].id]
    assert result.params["p_true_example_ids"] == [items[1].id]
    assert [r["id"] for r in result.rows] == [items[2].id, items[3].id]
    with pytest.raises(
        ConfidantError, match="2 few-shot answer examples and 2 p.True. examples leave"
    ):
        run_evaluation(items, tiny_lm, ent, EvalSettings(**FAST, few_shot=2, p_true_fewshot=2))
    with pytest.raises(ConfidantError, match="4 few-shot answer examples leave none of the 4"):
        run_evaluation(items, tiny_lm, ent, EvalSettings(**FAST, few_shot=4))


def test_few_shot_needs_the_pipeline_and_a_sane_count(tiny_lm):
    items = load_dataset(DATA)[:3]

    class Answerer:
        def describe(self):
            return {"kind": "fixed"}

        def answer(self, lm, questions):
            return ["x"] * len(questions)

    with pytest.raises(ConfidantError, match="few-shot answer prompt needs the semantic"):
        run_evaluation(items, tiny_lm, None, EvalSettings(few_shot=1), answerer=Answerer())
    with pytest.raises(ConfidantError, match="few-shot answer examples must be 0 to 50"):
        EvalSettings(few_shot=51).validate()
    with pytest.raises(ConfidantError, match="placeholder"):
        few_shot_prompt([EvalItem("1", "Say {question}?", ["no"])])
    # Newlines inside an example would break the format: they become spaces.
    prompt = few_shot_prompt([EvalItem("1", "Two\nlines?", ["a\nb", "c"])])
    assert "Question: Two lines?\nAnswer: a b\n\n" in prompt


def test_cache_keys_of_older_settings_did_not_change():
    # Hashes computed before contains, few-shot and the length measures existed: rows cached
    # under these settings are still found.
    class LM:
        model_id = "fixed-lm"

    def key(**kw):
        return params_hash(run_params(LM(), None, EvalSettings(**kw)))

    assert key(correctness="squad_f1") == "6f6591c678b9fa7edc12"
    assert key(correctness="squad_f1", n=3, p_true_fewshot=2) == "ec51fa79344a84c05773"
    assert key(correctness="em", measures=["semantic_entropy"]) == "260266bcbd7edf2b7b90"
    assert key(correctness="squad_f1", few_shot=0) == key(correctness="squad_f1")
    assert key(correctness="squad_f1", few_shot=5) != key(correctness="squad_f1")
    assert key() == key(correctness="contains") != key(correctness="squad_f1")


def test_a_cached_row_without_a_new_measure_is_computed_again(tiny_lm, tmp_path):
    items = load_dataset(DATA)[:2]
    ent = NLIEntailment(RuleNLI())
    cache = EvalCache(Store(tmp_path / "e.db"))
    settings = EvalSettings(**FAST)
    first = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    d_hash, p_hash = first.params["dataset_hash"], first.params["params_hash"]
    old = json.loads(json.dumps(first.rows[0]))
    del old["measures"]["answer_length_tokens"]  # as written before the measure existed
    cache.put(d_hash, items[0].id, p_hash, old)
    again = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    assert again.n_computed == 1 and again.n_cached == 1 and again.rows == first.rows


def test_defaults_contains_correctness_and_zero_shot_in_cli_ui_and_api(tmp_path):
    from ui.tabs.semantic_handlers import CORRECTNESS_CHOICES, DEFAULT_CORRECTNESS_CHOICE

    assert DEFAULT_CORRECTNESS == "contains" and DEFAULT_FEW_SHOT == 0
    args = _parser().parse_args(["--data", DATA, "--out", "r"])
    assert args.correctness == DEFAULT_CORRECTNESS and args.few_shot == DEFAULT_FEW_SHOT
    assert EvalSettings().correctness == DEFAULT_CORRECTNESS
    assert CORRECTNESS_CHOICES[DEFAULT_CORRECTNESS_CHOICE] == DEFAULT_CORRECTNESS
    assert CORRECTNESS_CHOICES["Contains a gold answer"] == "contains"
    out = tmp_path / "res"
    argv = [
        "--data", DATA, "--model", "tiny-random", "--out", str(out), "--limit", "6",
        "--n", "2", "--max-new-tokens", "4", "--bootstrap", "10", "--no-cache",
    ]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((out / "evaluation.json").read_text())
    params, rows = saved["params"], saved["rows"]
    assert params["correctness_method"] == "contains" and not params.get("few_shot")
    assert [r["id"] for r in rows] == [it.id for it in load_dataset(DATA)[:6]]
    assert main([*argv, "--few-shot", "5"]) == 0
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["params"]["few_shot"] == 5
    assert [r["id"] for r in saved["rows"]] == [load_dataset(DATA)[5].id]


def test_length_measures_on_known_answers():
    tokens = [TokenRecord(text=t, logprob=-0.5, entropy=1.0, varentropy=0.0) for t in "abc"]
    stats = AnswerStatistics(
        texts=["x", "y"], cluster_ids=[0, 1], reference=Generation(" Paris. ", tokens)
    )
    out = compute_measures(stats, list(MEASURES), {"reference"})
    assert out["answer_length_tokens"]["value"] == 3.0
    assert out["answer_length_chars"]["value"] == 6.0  # "Paris." without the spaces
    empty = AnswerStatistics(texts=["x"], cluster_ids=[0], reference=Generation("", []))
    out = compute_measures(empty, list(MEASURES), {"reference"})
    assert out["answer_length_tokens"]["value"] == 0.0
    assert out["answer_length_chars"]["value"] == 0.0
    missing = compute_measures(AnswerStatistics(["x"], [0]), list(MEASURES), set())
    assert missing["answer_length_tokens"]["value"] is None


def test_length_measures_are_columns_of_every_harness_run(tiny_lm):
    items = load_dataset(DATA)[:2]
    result = run_evaluation(items, tiny_lm, NLIEntailment(RuleNLI()), EvalSettings(**FAST))
    for row in result.rows:
        assert row["measures"]["answer_length_chars"] == len(row["answer"])
        assert row["measures"]["answer_length_tokens"] >= 0
    assert {"answer_length_tokens", "answer_length_chars"} <= set(result.metrics)
