"""Your own generations through the harness with no generator: the samples-file schema, its
validation, and the round trip against the harness's own sampling."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from core.errors import ConfidantError
from uq.evaluation.datasets import load_dataset
from uq.evaluation.harness import EvalSettings, run_evaluation
from uq.evaluation.samples import (
    NEEDS_INTERNALS,
    load_samples,
    parse_samples,
    samples_record,
    write_samples_file,
)
from uq.evaluation.settings import question_seed
from uq.semantic.entailment import NLIEntailment
from uq.semantic.pipeline import run_semantic_entropy

DATA = "data/qa/trivia_small.jsonl"
EXAMPLE = "data/samples/example.jsonl"
FAST = dict(n=3, max_new_tokens=6, n_boot=50)


class RuleNLI:
    model_id = "rule-nli"

    def probs(self, pairs):
        out = np.zeros((len(pairs), 3))
        for k, (p, h) in enumerate(pairs):
            out[k, 2 if p[-1:] == h[-1:] else 1] = 1.0
        return out


def test_round_trip_gives_the_harness_own_measures(tiny_lm, tmp_path):
    items = load_dataset(DATA)[:6]
    ent = NLIEntailment(RuleNLI())
    settings = EvalSettings(**FAST, seed=3)
    own = run_evaluation(items, tiny_lm, ent, settings)
    records = []
    for item in items:
        result = run_semantic_entropy(
            tiny_lm, item.question, ent, n=settings.n, temperature=settings.temperature,
            reference_temperature=settings.reference_temperature,
            max_new_tokens=settings.max_new_tokens, seed=question_seed(settings.seed, item.id),
        )  # fmt: skip
        records.append(samples_record(item, result))
    path = write_samples_file(records, tmp_path / "mine.jsonl")
    given = run_evaluation(load_samples(path), None, ent, settings)
    assert len(given.rows) == len(own.rows)
    compared = 0
    for a, b in zip(own.rows, given.rows, strict=True):
        assert (a["answer"], a["correct"], a["samples"]) == (
            b["answer"],
            b["correct"],
            b["samples"],
        )
        assert a["cluster_ids"] == b["cluster_ids"]
        for key, value in a["measures"].items():
            if key in ("p_true", "verbalized_one_stage", "verbalized_two_stage"):
                assert b["measures"][key] is None
                assert b["notes"][key].startswith(NEEDS_INTERNALS)
                continue
            assert b["measures"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
            compared += 1
    assert compared >= 6 * 15
    table = {r["measure"]: r for r in given.metric_table()[1]}
    assert table["p_true"]["n"] == 0 and table["p_true"]["note"].startswith(NEEDS_INTERNALS)
    assert table["semantic_entropy"]["note"] is None
    assert given.params["model"] is None


def test_texts_only_give_the_black_box_measures(tmp_path):
    items = parse_samples(
        '{"question": "Capital of France?", "gold": "Paris", "samples": ["Paris", "Lyon", "Paris"]}\n'
        '{"question": "2+2?", "gold": ["4", "four"], "samples": ["4", "4"], "reference": "4"}\n'
        '{"question": "Sky?", "gold": "blue", "samples": ["red", "blue"]}\n',
        "jsonl",
    )
    result = run_evaluation(items, None, NLIEntailment(RuleNLI()), EvalSettings(n_boot=20))
    assert [r["answer"] for r in result.rows] == ["Paris", "4", "red"]
    assert [r["correct"] for r in result.rows] == [True, True, False]
    row = result.rows[0]
    assert row["measures"]["discrete_semantic_entropy"] == pytest.approx(
        -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    )
    for key in ("semantic_entropy", "perplexity", "mean_token_entropy", "p_true"):
        assert row["measures"][key] is None
        assert row["notes"][key].startswith(NEEDS_INTERNALS)


def test_reference_with_log_probs_but_no_entropies():
    line = {
        "question": "q?", "gold": "a",
        "samples": [{"text": "a", "token_logprobs": [-0.5]}, {"text": "b", "token_logprobs": [-1.0, -1.0]}],  # noqa: E501
        "reference": {"text": "a", "token_logprobs": [-0.2, -0.4]},
    }  # fmt: skip
    items = parse_samples(json.dumps(line) + "\n", "jsonl")
    row = run_evaluation(items, None, NLIEntailment(RuleNLI()), EvalSettings(n_boot=5)).rows[0]
    assert row["measures"]["maximum_sequence_probability"] == pytest.approx(0.6)
    assert row["measures"]["answer_length_tokens"] == 2
    assert row["measures"]["ln_predictive_entropy"] == pytest.approx(0.75)
    assert row["measures"]["mean_token_entropy"] is None
    assert row["notes"]["mean_token_entropy"].startswith(NEEDS_INTERNALS)


def test_the_example_file_loads():
    items = load_samples(EXAMPLE)
    assert len(items) >= 5
    assert any(i.reference and i.reference["token_entropies"] for i in items)


def test_csv_samples_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "id,question,gold,samples,reference\n"
        'a,Capital?,Paris|paris,"[""Paris"", ""Lyon""]",Paris\n'
        'b,Two?,"[""2""]","[{""text"": ""2"", ""token_logprobs"": [-0.1]}]",\n'
    )
    items = load_samples(path)
    assert [i.id for i in items] == ["a", "b"]
    assert items[0].answers == ["Paris", "paris"] and items[0].reference["text"] == "Paris"
    assert items[1].samples[0]["token_logprobs"] == [-0.1] and items[1].reference is None


def _line(**fields):
    base = {"question": "q?", "gold": ["a"], "samples": ["a", "b"]}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no questions"),
        ('{"question": "q", "gold": "a", "samples": ["a"]}\n{oops\n', "line 2 is not JSON"),
        (_line(question=...), "line 1: missing or empty 'question'"),
        (_line(gold=...), "missing 'gold'"),
        (_line(samples=...), "missing 'samples'"),
        (_line(samples=[]), "'samples' is empty"),
        (_line(samples="a"), "not JSON"),
        (_line(samples=[1]), r"samples\[0\] must be a text"),
        (_line(samples=[{"txt": "a"}]), "unknown field 'txt'"),
        (_line(samples=[{"token_logprobs": [-1]}]), "missing 'text'"),
        (
            _line(samples=[{"text": "a", "token_logprobs": [-1]}, "b"]),
            "for every sample or for none",
        ),  # noqa: E501
        (
            _line(samples=[{"text": "a", "token_logprobs": [0.5]}]),
            r"token_logprobs\[0\] = 0.5 is out of range",
        ),  # noqa: E501
        (_line(samples=[{"text": "a", "token_logprobs": ["x"]}]), "not a number"),
        (
            _line(samples=[{"text": "a", "token_logprobs": [-1], "tokens": ["a", "b"]}]),
            "one entry per token",
        ),  # noqa: E501
        (
            '{"question": "q", "gold": "a", "samples": [{"text": "a", "token_logprobs": [-1e999]}]}',
            "out of range",
        ),  # noqa: E501
        (
            '{"question": "q", "gold": "a", "samples": [{"text": "a", "token_logprobs": [-1e300]}]}',
            "out of range",
        ),  # noqa: E501
        (
            '{"question": "q", "gold": "a", "samples": [{"text": "a", "token_logprobs": ['
            + "9" * 5000
            + "]}]}",
            "number too long",
        ),  # noqa: E501
        (_line(reference={"text": "a", "token_entropies": [-3]}), "out of range"),
        (_line(id="x") + "\n" + _line(id="x"), "duplicate id"),
        (_line(samples=["a"] * 300), "limit is 256"),
    ],
)
def test_bad_samples_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "s.jsonl"
    path.write_text(content)
    with pytest.raises(ConfidantError, match=message):
        load_samples(path)


def test_a_csv_without_the_samples_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("question,gold\nq,a\n")
    with pytest.raises(ConfidantError, match="'question', 'gold' and 'samples'"):
        load_samples(path)


def test_what_a_run_without_generator_refuses():
    items = parse_samples(_line() + "\n", "jsonl")
    ent = NLIEntailment(RuleNLI())
    with pytest.raises(ConfidantError, match="judge needs a generator"):
        run_evaluation(items, None, ent, EvalSettings(correctness="judge"))
    with pytest.raises(ConfidantError, match="needs an answerer|NLI or embeddings"):
        run_evaluation(items, None, None, EvalSettings())


def test_the_cli_scores_a_samples_file_with_no_generator(tmp_path, capsys, monkeypatch):
    from backends.registry import Backends
    from cli.evaluate import main

    def no_generator(self):
        raise AssertionError("a samples run must not load a generator")

    monkeypatch.setattr(Backends, "generator", no_generator)
    out = tmp_path / "res"
    argv = ["--samples", EXAMPLE, "--out", str(out), "--no-cache", "--bootstrap", "20"]
    assert main([*argv, "--entailment", "embedding"]) == 0
    printed = capsys.readouterr().out
    assert "your own samples, no generator" in printed
    assert "p_true" in printed and "needs model internals: the generator" in printed
    with open(out / "metrics.csv", encoding="utf-8") as f:
        rows = {r["measure"]: r for r in csv.DictReader(f)}
    assert rows["p_true"]["n"] == "0" and rows["p_true"]["note"].startswith(NEEDS_INTERNALS)
    assert rows["semantic_entropy"]["auroc"] and not rows["semantic_entropy"]["note"]
    saved = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert len(saved["rows"]) == 6 and saved["params"]["model"] is None
    assert (out / "calibration.csv").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--inv-entropy"], "--inv-entropy needs a generator"),
        (["--entailment", "generator"], "nli or embedding"),
        (["--correctness", "judge", "--entailment", "embedding"], "judge needs a generator"),
    ],
)
def test_the_cli_refuses_what_needs_a_generator(tmp_path, capsys, extra, message):
    from cli.evaluate import main

    argv = ["--samples", EXAMPLE, "--out", str(tmp_path / "r"), "--no-cache", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_cli_reports_a_bad_samples_file(tmp_path, capsys):
    from cli.evaluate import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "gold": "a"}\n')
    assert main(["--samples", str(bad), "--out", str(tmp_path / "r"), "--no-cache"]) == 2
    assert "bad.jsonl, line 1: missing 'samples'" in capsys.readouterr().err
