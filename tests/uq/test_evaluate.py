"""The evaluation harness on the authored dataset with the tiny model: rows, metrics,
resume from the SQLite cache, measure providers and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli.evaluate import main
from core.errors import ConfidantError
from store.db import Store
from store.eval_cache import EvalCache, export_evaluation
from uq.evaluation.calibration import calibrate_measure
from uq.evaluation.datasets import dataset_hash, load_dataset
from uq.evaluation.harness import (
    EvalSettings,
    EvaluationResult,
    QuestionContext,
    params_hash,
    run_evaluation,
    run_params,
)
from uq.evaluation.metrics import evaluation_metrics
from uq.evaluation.providers import measure_provider
from uq.semantic.entailment import NLIEntailment

DATA = "data/qa/trivia_small.jsonl"
FAST = dict(n=3, max_new_tokens=6, n_boot=50)


class RuleNLI:
    model_id = "rule-nli"

    def probs(self, pairs):
        out = np.zeros((len(pairs), 3))
        for k, (p, h) in enumerate(pairs):
            out[k, 2 if p[-1:] == h[-1:] else 1] = 1.0
        return out


def test_bundled_dataset_loads():
    items = load_dataset(DATA)
    assert len(items) == 55 and len({i.id for i in items}) == 55
    assert items[2].answers == ["Jane Austen", "Austen"]
    assert dataset_hash(items) == dataset_hash(load_dataset(DATA))
    assert dataset_hash(items[:3]) != dataset_hash(items[:4])


def test_csv_dataset_with_pipe_separated_golds(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,question,answers\na,Capital of France?,Paris|paris\n,Two?,"[""2""]"\n')
    items = load_dataset(path)
    assert [(i.id, i.answers) for i in items] == [("a", ["Paris", "paris"]), ("2", ["2"])]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.jsonl", "", "no questions"),
        ("d.jsonl", '{"question": "q", "answers": ["a"]}\n{oops\n', "line 2 is not JSON"),
        ("d.jsonl", '{"question": "", "answers": ["a"]}\n', "empty 'question'"),
        ("d.jsonl", '{"question": "q"}\n', "missing 'answers'"),
        ("d.jsonl", '{"question": "q", "answers": []}\n', "no gold"),
        ("d.jsonl", '{"question": "q", "answers": [1]}\n', "list of strings"),
        ("d.jsonl", '{"id": 1, "question": "q", "answers": ["a"]}\n' * 2, "duplicate id"),
        ("d.jsonl", '["q", "a"]\n', "JSON object"),
        ("d.jsonl", "\x00\x00", "NUL"),
        ("d.csv", "question,gold\nq,a\n", "columns 'question' and 'answers'"),
        ("d.txt", "q", ".jsonl or .csv"),
    ],
)
def test_bad_datasets_are_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfidantError, match=message):
        load_dataset(path)


def test_a_deeply_nested_answers_cell_is_a_clear_error(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answers\nq," + "[" * 5000 + "\n")  # json gives up: RecursionError
    with pytest.raises(ConfidantError, match="row 2: the answers cell is JSON nested more than"):
        load_dataset(path)


def test_harness_resumes_from_the_cache_and_scores_every_measure(tmp_path, tiny_lm, generate_calls):
    items = load_dataset(DATA)[:4]
    settings = EvalSettings(**FAST)
    ent = NLIEntailment(RuleNLI())
    # Gold answers that match the model's own reference answers for two questions, so both
    # classes are present and AUROC is defined.
    first = run_evaluation(items, tiny_lm, ent, settings)
    for k in (0, 2):
        if first.rows[k]["answer"]:
            items[k].answers = [first.rows[k]["answer"]]
    cache = EvalCache(Store(tmp_path / "e.db"))
    progress = []
    result = run_evaluation(
        items, tiny_lm, ent, settings, cache=cache, progress=lambda *a: progress.append(a)
    )
    assert result.n_computed == 4 and result.n_cached == 0
    assert [p[:2] for p in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [r["answer"] for r in result.rows] == [r["answer"] for r in first.rows]
    correct = np.array([r["correct"] for r in result.rows], dtype=float)
    name = "discrete_semantic_entropy"
    u = [r["measures"][name] for r in result.rows]
    expected = evaluation_metrics(u, correct, [r["score"] for r in result.rows], n_boot=50, seed=41)
    for metric, interval in expected.items():
        got = result.metrics[name][metric]
        assert (got is None) == (interval is None)
        if interval is not None:
            assert got["estimate"] == pytest.approx(interval.estimate)
            assert (got["low"], got["high"]) == pytest.approx((interval.low, interval.high))
    if 0 < correct.sum() < 4:
        assert result.metrics[name]["auroc"] is not None and "fpr" in result.curves[name]
    assert len(result.curves[name]["accuracy"]) == 20

    generate_calls.clear()
    again = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    assert generate_calls == [] and again.n_computed == 0 and again.n_cached == 4
    assert again.rows == result.rows and again.metrics == result.metrics
    # Another parameter means other cache entries.
    other = run_evaluation(items[:1], tiny_lm, ent, EvalSettings(**{**FAST, "n": 2}), cache=cache)
    # 2 samples + the reference, then one greedy reply per stage of verbalized confidence
    assert other.n_computed == 1 and generate_calls == [3, 1, 1]

    paths = export_evaluation(result, tmp_path / "out")
    names = ["questions.csv", "metrics.csv", "calibration.csv", "evaluation.json"]
    assert [p.name for p in paths] == names
    back = EvaluationResult.from_dict(json.loads(paths[3].read_text()))
    assert back.rows == result.rows and back.metric_table() == result.metric_table()
    assert back.calibration_table() == result.calibration_table()
    # Calibration on the same seeded split as calibrate_measure, for every calibrated measure.
    if name in result.calibration and "platt" in result.calibration[name]:
        report = calibrate_measure(name, u, correct, "platt", n_boot=50, seed=41)
        assert result.calibration[name]["platt"] == report.to_dict()
    assert "raw" in result.calibration.get("p_true", {"raw": None})
    # A result saved before calibration existed reads back without it.
    old = json.loads(paths[3].read_text())
    del old["calibration"]
    assert EvaluationResult.from_dict(old).calibration_table()[1] == []


def test_measure_providers_add_columns_and_enter_the_cache_key(tiny_lm):
    items = load_dataset(DATA)[:2]
    ent = NLIEntailment(RuleNLI())
    seen = []

    def answer_length(context: QuestionContext):
        seen.append(context.item.id)
        return {"answer_length": len(context.result.reference.text), "nothing": None}

    settings = EvalSettings(**FAST, measures=["discrete_semantic_entropy"])
    before = params_hash(run_params(tiny_lm, ent, settings))
    length = measure_provider("length", answer_length, version="2")
    result = run_evaluation(items, tiny_lm, ent, settings, providers=[length])
    after = params_hash(run_params(tiny_lm, ent, settings, providers=[length]))
    assert seen == ["trivia-001", "trivia-002"] and before != after
    assert set(result.metrics) == {
        "discrete_semantic_entropy",
        "length.answer_length",
        "length.nothing",
    }
    assert result.rows[0]["measures"]["length.answer_length"] == len(result.rows[0]["answer"])
    assert result.metrics["length.nothing"]["auroc"] is None
    assert result.params["providers"] == {"length": "2"}
    with pytest.raises(ConfidantError):
        measure_provider("a.b", answer_length)


def test_judge_correctness_reads_p_yes(tiny_lm):
    items = load_dataset(DATA)[:1]
    result = run_evaluation(
        items,
        tiny_lm,
        NLIEntailment(RuleNLI()),
        EvalSettings(**FAST, correctness="judge", measures=["number_of_semantic_sets"]),
    )
    row = result.rows[0]
    from uq.evaluation.correctness import judge_prompt

    p_yes = tiny_lm.choice_probs(
        judge_prompt(items[0].question, items[0].answers, row["answer"]), ["yes", "no"]
    )[0]
    assert row["score"] == pytest.approx(p_yes) and row["correct"] == (p_yes >= 0.5)


def test_bad_settings():
    with pytest.raises(ConfidantError, match="unknown correctness"):
        EvalSettings(correctness="vibes").validate()
    with pytest.raises(ConfidantError, match="threshold"):
        EvalSettings(correctness_threshold=1.5).validate()
    with pytest.raises(ConfidantError, match="unknown measure"):
        EvalSettings(measures=["nope"]).validate()


def test_cli_writes_results_resumes_and_exits_2_on_user_errors(tmp_path, capsys):
    args = [
        "--data", DATA, "--model", "tiny-random", "--out", str(tmp_path / "res"),
        "--limit", "2", "--n", "3", "--max-new-tokens", "6", "--bootstrap", "20",
        "--db", str(tmp_path / "c.db"), "--few-shot", "0",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[1/2]" in out and "[2/2]" in out and "2 computed, 0 cached" in out
    assert (tmp_path / "res" / "questions.csv").read_text().count("\n") == 3
    calibration = (tmp_path / "res" / "calibration.csv").read_text().splitlines()
    assert calibration[0].startswith("measure,method,n_calibration,n_test,split_seed,ece,")
    assert any(",isotonic,1,1," in line for line in calibration[1:])  # 2 questions: 1 + 1
    assert main(args) == 0
    assert "0 computed, 2 cached" in capsys.readouterr().out
    assert main([*args, "--calibration-split", "1.5"]) == 2
    assert "calibration split" in capsys.readouterr().err

    missing = ["--data", str(tmp_path / "missing.jsonl"), "--model", "tiny-random", "--out", "r"]
    assert main(missing) == 2
    assert "no dataset file" in capsys.readouterr().err
    assert main([*args, "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    assert main([*args, "--measures", "nope"]) == 2
    assert "unknown measure" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--correctness", "vibes"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err


def test_cli_without_pair_measures(tmp_path, capsys):
    import csv

    args = [
        "--data", DATA, "--model", "tiny-random", "--out", str(tmp_path / "res"),
        "--limit", "2", "--n", "3", "--max-new-tokens", "5", "--bootstrap", "10", "--no-cache",
        "--no-pair-measures", "--few-shot", "0",
    ]  # fmt: skip
    assert main(args) == 0
    with open(tmp_path / "res" / "metrics.csv", newline="", encoding="utf-8") as f:
        measures = {r["measure"] for r in csv.DictReader(f)}
    assert "discrete_semantic_entropy" in measures
    assert not measures & {"eigv", "degree", "eccentricity", "kernel_language_entropy"}
    assert main([*args, "--measures", "eigv,degree"]) == 2
    assert "leaves none" in capsys.readouterr().err
    assert main([*args, "--measures", "nope"]) == 2
    assert "unknown measure" in capsys.readouterr().err
    assert main([*args, "--measures", "eigv,semantic_entropy"]) == 0
    with open(tmp_path / "res" / "metrics.csv", newline="", encoding="utf-8") as f:
        assert {r["measure"] for r in csv.DictReader(f)} == {"semantic_entropy"}


def test_cli_puts_inv_entropy_beside_semantic_entropy(tmp_path, capsys):
    import csv

    args = [
        "--data", DATA, "--model", "tiny-random", "--out", str(tmp_path / "res"),
        "--limit", "2", "--n", "2", "--max-new-tokens", "4", "--bootstrap", "10",
        "--no-cache", "--inv-entropy", "--inv-n", "2", "--inv-replicates", "2", "--few-shot", "0",
    ]  # fmt: skip
    assert main(args) == 0
    with open(tmp_path / "res" / "questions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "inv.inv_entropy" in rows[0]
    with open(tmp_path / "res" / "metrics.csv", newline="", encoding="utf-8") as f:
        measures = {r["measure"] for r in csv.DictReader(f)}
    assert "inv.inv_entropy" in measures and "semantic_entropy" in measures
    # The tiny model's gibberish "paraphrases" may all be rejected: such a question has no
    # Inv-Entropy value and says why, and the evaluation goes on.
    stored = json.loads((tmp_path / "res" / "evaluation.json").read_text(encoding="utf-8"))
    for row, shown in zip(stored["rows"], rows, strict=True):
        inv = row["details"]["inv"]
        if shown["inv.inv_entropy"] == "":
            assert "no usable paraphrase" in inv["error"]
        else:
            assert len(inv["perturbations"]) == 2


def test_few_shot_p_true_uses_the_first_questions_as_worked_examples(
    tmp_path, tiny_lm, monkeypatch
):
    items = load_dataset(DATA)[:5]
    ent = NLIEntailment(RuleNLI())
    prompts: list[str] = []
    original = tiny_lm.choice_probs

    def spy(prompt, options, **kw):
        if options in (["A", "B"], [" A", " B"]):
            prompts.append(prompt)
        return original(prompt, options, **kw)

    monkeypatch.setattr(tiny_lm, "choice_probs", spy)
    cache = EvalCache(Store(tmp_path / "e.db"))
    settings = EvalSettings(**FAST, p_true_fewshot=2)
    result = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    assert [r["id"] for r in result.rows] == [it.id for it in items[2:]]
    assert result.params["p_true_example_ids"] == [items[0].id, items[1].id]
    assert all(r["p_true_examples"] == 2 for r in result.rows)
    # 2 zero-shot prompts for the examples, then 3 prompts that start with both examples.
    assert len(prompts) == 5
    assert all(p.count("Question:") == 1 for p in prompts[:2])
    for p in prompts[2:]:
        assert p.count("Question:") == 3
        first, second = p.split("\n\n")[:2]
        assert first.startswith(f"Question: {items[0].question}")
        assert second.startswith(f"Question: {items[1].question}")
        assert first.endswith((" A", " B")) and second.endswith((" A", " B"))
    again = run_evaluation(items, tiny_lm, ent, settings, cache=cache)
    assert again.n_cached == 5 and again.n_computed == 0 and again.rows == result.rows
    # The examples were answered with zero-shot settings and cached under them: a zero-shot
    # run over the same dataset reads them back and computes only the other three.
    zero = run_evaluation(items, tiny_lm, ent, EvalSettings(**FAST), cache=cache)
    assert zero.n_cached == 2 and zero.n_computed == 3
    assert all(r["p_true_examples"] == 0 for r in zero.rows)
    with pytest.raises(ConfidantError, match="leave none"):
        run_evaluation(items[:2], tiny_lm, ent, settings)
    with pytest.raises(ConfidantError, match="few-shot"):
        EvalSettings(p_true_fewshot=-1).validate()
    with pytest.raises(ConfidantError, match="need the p_true measure"):
        EvalSettings(p_true_fewshot=2, measures=["semantic_entropy"]).validate()


def test_few_shot_p_true_drops_examples_that_do_not_fit():
    from core.errors import PromptTooLongError
    from uq.semantic.p_true import PTrueExample, fitted_p_true_probability

    class SmallContext:
        def choice_probs(self, prompt, options, **kw):
            if prompt.count("Question:") > 2:
                raise PromptTooLongError(9999, 100, "small")
            return [0.25, 0.75]

    examples = [PTrueExample(f"q{i}?", ("a", "b"), "a", i % 2 == 0) for i in range(5)]
    value, used = fitted_p_true_probability(SmallContext(), "Q?", ["x"], "x", examples=examples)
    assert (value, used) == (0.25, 1)  # 5 → 2 → 1 example, the latest kept

    class NoRoom:
        def choice_probs(self, prompt, options, **kw):
            raise PromptTooLongError(9999, 100, "small")

    with pytest.raises(PromptTooLongError, match="takes at most 100"):
        fitted_p_true_probability(NoRoom(), "Q?", ["x"], "x", examples=examples)


def test_cli_few_shot_p_true(tmp_path, capsys):
    import csv

    args = [
        "--data", DATA, "--model", "tiny-random", "--out", str(tmp_path / "res"),
        "--limit", "3", "--n", "2", "--max-new-tokens", "4", "--bootstrap", "10", "--no-cache",
        "--few-shot", "0",
    ]  # fmt: skip
    assert main([*args, "--p-true-fewshot", "1"]) == 0
    with open(tmp_path / "res" / "questions.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 2
    params = json.loads((tmp_path / "res" / "evaluation.json").read_text())["params"]
    assert params["p_true_fewshot"] == 1 and len(params["p_true_example_ids"]) == 1
    assert main([*args, "--p-true-fewshot", "99"]) == 2
    assert "few-shot" in capsys.readouterr().err
    assert main([*args, "--p-true-fewshot", "3"]) == 2
    assert "leave none" in capsys.readouterr().err


def test_an_empty_reference_answer_is_wrong_even_against_golds_that_normalise_away():
    from uq.evaluation.datasets import EvalItem
    from uq.evaluation.harness import _correctness

    for method in ("contains", "squad_f1", "em", "rougeL"):
        item = EvalItem(id="1", question="Which letter?", answers=["A", "The"])
        assert _correctness(None, item, "", EvalSettings(correctness=method)) == (0.0, False)
