"""Inv-Entropy on a dataset: the per-record function, the harness provider, metrics, the CLI."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from cli.inv_evaluate import main
from tests.uq.test_inv_pipeline import CharEmbedder, FakeLM
from uq.evaluation.metrics import auroc, prr_normalised
from uq.inv.provider import (
    inv_entropy_record,
    make_inv_entropy_provider,
    reference_answers,
    register_inv_entropy,
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
    values = provider(context)
    assert MEASURES <= set(values)
    assert lm.calls[-1] == (3, 2)


def test_register_with_the_evaluation_harness():
    from uq.evaluation.harness import registered_providers, unregister_measure_provider

    try:
        version = register_inv_entropy(CharEmbedder(), n=3)
        assert registered_providers()["inv"] == version
        assert register_inv_entropy(CharEmbedder(), n=4) != version
    finally:
        unregister_measure_provider("inv")


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
            "--paraphrase-max-new-tokens", "16",
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
    from uq.evaluation.harness import unregister_measure_provider

    class OtherEmbedder(CharEmbedder):
        model_id = "other-embedder"

    try:
        assert register_inv_entropy(CharEmbedder(), n=3) != register_inv_entropy(OtherEmbedder(), n=3)
    finally:
        unregister_measure_provider("inv")
