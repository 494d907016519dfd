"""Inv-Entropy on a dataset: the per-record function, the harness provider, metrics, resume
from the cache, the CLI."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from cli.inv_evaluate import main
from tests.uq.test_inv_pipeline import CharEmbedder, FakeLM
from uq.evaluation.harness import EvalSettings
from uq.evaluation.metrics import auroc, prr_normalised
from uq.inv.provider import (
    inv_entropy_record,
    make_inv_entropy_provider,
    reference_answers,
    score_rows,
)

MEASURES = {"inv_entropy", "ni_entropy", "nr_inv_entropy", "wd_px_py", "max_py_x"}


def test_one_record_gives_every_measure():
    lm = FakeLM(reply="1. Which city is France's capital?\n2. Name France's capital.")
    values = inv_entropy_record(
        {"id": "q1", "question": "What is the capital of France?", "answers": ["Paris"]},
        lm,
        CharEmbedder(),
        n=2,
        replicates=3,
        bootstraps=4,
        seed=2,
    )
    assert MEASURES <= set(values)
    assert all(np.isfinite(values[m]) for m in MEASURES)
    assert values["semantic_entropy_discrete_original"] >= 0.0
    assert lm.calls == [(1, 1), (3, 3)]


def test_provider_reads_the_harness_context():
    provider = make_inv_entropy_provider(CharEmbedder(), n=2, replicates=2, bootstraps=3)
    lm = FakeLM(reply="1. Who is the author of Hamlet?\n2. Hamlet was written by whom?")
    context = SimpleNamespace(item=SimpleNamespace(question="Who wrote Hamlet?"), lm=lm, seed=9)
    values = provider.measure_batch([context])[0].measures
    assert MEASURES <= set(values)
    assert lm.calls[-1] == (3, 2)


def test_the_provider_name_and_version_enter_the_harness_cache_key():
    from uq.evaluation.harness import run_params

    provider = make_inv_entropy_provider(CharEmbedder(), n=3)
    version = provider.version
    params = run_params(FakeLM(), None, EvalSettings(), providers=[provider])
    assert params["providers"]["inv"] == version
    assert make_inv_entropy_provider(CharEmbedder(), n=4).version != version


def test_reference_answers_are_greedy_first_lines():
    lm = FakeLM()
    answers = reference_answers(lm, ["q1?", "q2?"], max_new_tokens=5)
    assert len(answers) == 2 and all("\n" not in a for a in answers)
    assert lm.calls == [(2, 1)]


def test_score_rows_matches_the_metrics_module():
    rng = np.random.default_rng(0)
    rows = [
        {
            "measures": {"inv_entropy": float(u), "semantic_entropy_all": None},
            "correct": bool(c),
            "score": float(c),
        }
        for u, c in zip(rng.normal(size=30), rng.integers(0, 2, size=30), strict=True)
    ]
    table = score_rows(rows, n_boot=50)
    u = [r["measures"]["inv_entropy"] for r in rows]
    c = [r["correct"] for r in rows]
    assert table["inv_entropy"]["auroc"]["estimate"] == pytest.approx(auroc(u, c))
    assert table["inv_entropy"]["prr_normalised"]["estimate"] == pytest.approx(
        prr_normalised(u, [r["score"] for r in rows])
    )
    assert "semantic_entropy_all" not in table  # no values: no row


def test_cli_on_the_tiny_model(tmp_path, tiny_lm_dir, capsys):
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"id": f"q{i}", "question": q, "answers": [a]})
            for i, (q, a) in enumerate([("Who wrote Hamlet?", "Shakespeare"), ("2+2?", "4")])
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = main(
        [
            "--data", str(data), "--model", str(tiny_lm_dir), "--out", str(out),
            "--n", "2", "--r", "2", "--bootstraps", "3", "--max-new-tokens", "3",
            "--n-boot", "20", "--tsu", "--temperatures", "0.5,1.0",
            "--paraphrase-max-new-tokens", "16", "--db", str(tmp_path / "c.db"),
        ]
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in (out / "inv_entropy_rows.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1"]
    assert all(MEASURES <= set(r["measures"]) and len(r["perturbations"]) == 2 for r in rows)
    summary = json.loads((out / "inv_entropy_summary.json").read_text())
    assert summary["params"]["replicates"] == 2 and summary["params"]["seed"] == 0
    assert set(summary["tsu"]["summary"]["inv_entropy"]) == {"TSU(0.5,1.0)"}
    with open(out / "inv_entropy_metrics.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert {row["measure"] for row in table} >= MEASURES
    assert "inv_entropy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--r", "0"], "replicates"),
        (["--limit", "0"], "--limit"),
        (["--batch-size", "0"], "--batch-size"),
        (["--temperatures", "0.3,x"], "--temperatures"),
        (["--correctness-threshold", "2"], "threshold"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(tmp_path, extra, message, capsys):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "q?", "answers": ["a"]}\n', encoding="utf-8")
    code = main(["--data", str(data), "--model", "tiny-random", "--out", str(tmp_path), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_another_embedding_model_is_another_provider_version():
    class OtherEmbedder(CharEmbedder):
        model_id = "other-embedder"

    assert (
        make_inv_entropy_provider(CharEmbedder(), n=3).version
        != make_inv_entropy_provider(OtherEmbedder(), n=3).version
    )


# --------------------------------------------------------------------------- resume


class CountingProvider:
    """The Inv-Entropy provider, recording the question ids of every batch it is asked for."""

    def __init__(self, **options):
        self.inner = make_inv_entropy_provider(CharEmbedder(), **options)
        self.name, self.version = self.inner.name, self.inner.version
        self.batches: list[list[str]] = []

    def measure_batch(self, contexts):
        self.batches.append([c.item.id for c in contexts])
        return self.inner.measure_batch(contexts)


def _items(k):
    from uq.evaluation.datasets import EvalItem

    return [EvalItem(f"q{i}", f"What is the capital of country {i}?", ["Paris"]) for i in range(k)]


def _run(items, provider, cache, lm, batch_size=2):
    from uq.evaluation.harness import run_evaluation
    from uq.inv.provider import GreedyReference

    return run_evaluation(
        items,
        lm,
        None,
        EvalSettings(n_boot=20),
        providers=[provider],
        answerer=GreedyReference(max_new_tokens=4),
        batch_size=batch_size,
        cache=cache,
    )


@pytest.mark.parametrize("options", [{"seed": 3}, {}], ids=["batched", "per-question"])
def test_a_second_run_with_the_same_cache_calls_no_provider_and_no_model(tmp_path, options):
    from store.db import Store
    from store.eval_cache import EvalCache

    cache = EvalCache(Store(tmp_path / "e.db"))
    lm = FakeLM(reply="1. Which capital?\n2. Name the capital.")
    provider = CountingProvider(n=2, replicates=2, bootstraps=3, **options)
    first = _run(_items(3), provider, cache, lm)
    assert provider.batches == [["q0", "q1"], ["q2"]] and first.n_computed == 3
    assert all(MEASURES <= {m.split(".", 1)[1] for m in r["measures"]} for r in first.rows)
    provider.batches.clear()
    lm.calls.clear()
    again = _run(_items(3), provider, cache, lm)
    assert provider.batches == [] and lm.calls == []
    assert again.n_computed == 0 and again.n_cached == 3
    assert again.rows == first.rows and again.metrics == first.metrics


def test_a_partly_filled_cache_computes_only_the_missing_questions(tmp_path):
    from store.db import Store
    from store.eval_cache import EvalCache
    from uq.inv.provider import inv_perturbations

    class Interrupted(CountingProvider):
        def measure_batch(self, contexts):
            if len(self.batches) == 1:
                raise KeyboardInterrupt
            return super().measure_batch(contexts)

    cache = EvalCache(Store(tmp_path / "e.db"))
    lm = FakeLM(reply="1. Which capital?\n2. Name the capital.")
    options = dict(n=2, replicates=2, bootstraps=3, seed=0)
    with pytest.raises(KeyboardInterrupt):  # only the first batch finished
        _run(_items(5), Interrupted(**options), cache, lm)
    assert cache.count() == 2
    provider = CountingProvider(**options)
    resumed = _run(_items(5), provider, cache, lm)
    assert provider.batches == [["q2", "q3"], ["q4"]]
    assert resumed.n_computed == 3 and resumed.n_cached == 2
    # The resumed run has the rows of an uninterrupted run: the batches are the same.
    fresh = CountingProvider(**options)
    whole = _run(_items(5), fresh, None, lm)
    assert fresh.batches == [["q0", "q1"], ["q2", "q3"], ["q4"]] and resumed.rows == whole.rows
    # The cached rows keep the perturbations, so the TSU sweep can reuse them.
    assert [p.perturbations for p in inv_perturbations(resumed)] == [
        r["details"]["inv"]["perturbations"] for r in whole.rows
    ]


def test_cli_resumes_from_the_cache(tmp_path, tiny_lm_dir, capsys):
    import sqlite3

    data = tmp_path / "qa.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"id": f"q{i}", "question": f"Who wrote book {i}?", "answers": ["Ann"]})
            for i in range(3)
        ),
        encoding="utf-8",
    )
    db = tmp_path / "c.db"
    args = [
        "--data", str(data), "--model", str(tiny_lm_dir), "--n", "2", "--r", "2",
        "--bootstraps", "3", "--max-new-tokens", "3", "--n-boot", "10", "--batch-size", "2",
        "--paraphrase-max-new-tokens", "16", "--db", str(db),
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "3 computed, 0 cached" in capsys.readouterr().out
    # As if the run had stopped before the last batch: its question leaves the cache.
    with sqlite3.connect(db) as conn:
        assert conn.execute("DELETE FROM eval_cache WHERE question_id = 'q2'").rowcount == 1
    assert main([*args, "--out", str(tmp_path / "b"), "--tsu", "--temperatures", "0.5,1"]) == 0
    out = capsys.readouterr().out
    assert "1 computed, 2 cached" in out and "[1/3] q0: cached" in out and "TSU inv_entropy" in out
    first = (tmp_path / "a" / "inv_entropy_rows.jsonl").read_text()
    assert (tmp_path / "b" / "inv_entropy_rows.jsonl").read_text() == first
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    assert "0 computed, 3 cached" in capsys.readouterr().out
    assert (tmp_path / "c" / "inv_entropy_rows.jsonl").read_text() == first
