"""The hand-written entailment pairs, the offline study's scoring, and the embedding defaults
that study chose (bench/entailment_threshold.py, data/entailment/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from uq.semantic.entailment import (
    DEFAULT_CONDITION_ON_QUESTION,
    DEFAULT_EMBEDDING_THRESHOLD,
    EmbeddingEntailment,
    make_entailment,
)

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "data" / "entailment" / "pairs.jsonl"
RESULTS = ROOT / "data" / "entailment" / "results.json"
KINDS = {
    "short_vs_sentence",
    "paraphrase",
    "extra_detail",
    "yes_no",
    "refusal_pair",
    "refusal",
    "repeats_question",
    "near_miss_entity",
    "near_miss_number",
    "different",
}


def _bench():
    spec = importlib.util.spec_from_file_location(
        "entailment_threshold", ROOT / "bench" / "entailment_threshold.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture(scope="module")
def pairs():
    return bench.load_pairs(PAIRS)


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


# -- the pairs file --------------------------------------------------------------------------


def test_pairs_file_is_large_and_balanced(pairs):
    assert len(pairs) >= 200
    same = sum(r["same"] for r in pairs)
    assert 0.4 <= same / len(pairs) <= 0.6, same


def test_every_pair_is_well_formed(pairs):
    for r in pairs:
        assert set(r) == set(bench.FIELDS), r
        assert all(isinstance(r[k], str) and r[k].strip() for k in ("question", "a", "b")), r
        assert r["a"] != r["b"], r
        assert r["kind"] in KINDS, r


def test_kinds_carry_one_label_each_and_near_misses_are_there(pairs):
    labels: dict[str, set] = {}
    for r in pairs:
        labels.setdefault(r["kind"], set()).add(r["same"])
    assert labels["near_miss_entity"] == {False} and labels["near_miss_number"] == {False}
    assert labels["paraphrase"] == {True} and labels["refusal_pair"] == {True}
    assert labels["repeats_question"] == {False}
    assert labels["yes_no"] == {True, False}
    near = [r for r in pairs if r["kind"] in bench.NEAR_MISS_KINDS]
    assert len(near) >= 50
    assert any("Skopje" in r["a"] + r["b"] and "Pristina" in r["a"] + r["b"] for r in near)
    assert any({r["a"], r["b"]} == {"1969", "1971"} for r in near)


def test_no_pair_is_written_twice(pairs):
    keys = [(r["question"], frozenset((r["a"], r["b"]))) for r in pairs]
    assert len(keys) == len(set(keys))


def test_load_pairs_rejects_a_label_that_is_not_a_boolean(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text(json.dumps({"question": "q", "a": "x", "b": "y", "same": 1, "kind": "k"}))
    with pytest.raises(ValueError, match="true or false"):
        bench.load_pairs(bad)


# -- the study's scoring ---------------------------------------------------------------------


def test_binary_scores_on_hand_built_inputs():
    gold = [True, True, True, False]
    s = bench.binary_scores([True, False, True, True], gold)
    assert s["n"] == 4
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["tpr"] == pytest.approx(2 / 3) and s["tnr"] == 0.0
    assert s["balanced_accuracy"] == pytest.approx(1 / 3)
    # saying "same" to everything: accuracy 3/4 but balanced accuracy chance
    always = bench.binary_scores([True] * 4, gold)
    assert always["accuracy"] == 0.75 and always["balanced_accuracy"] == 0.5
    only_same = bench.binary_scores([True, False], [True, True])
    assert only_same["tnr"] is None and only_same["balanced_accuracy"] == 0.5
    with pytest.raises(ValueError):
        bench.binary_scores([True], [True, False])


def test_sweep_per_kind_and_best_option():
    rows = [
        {"question": "q", "a": "a", "b": "b", "same": True, "kind": "paraphrase"},
        {"question": "q", "a": "a", "b": "c", "same": True, "kind": "paraphrase"},
        {"question": "q", "a": "a", "b": "d", "same": False, "kind": "near_miss_entity"},
        {"question": "q", "a": "a", "b": "e", "same": False, "kind": "different"},
    ]
    cosines = [0.93, 0.72, 0.81, 0.40]
    table = bench.sweep(cosines, rows, condition=False)
    assert [r["threshold"] for r in table] == list(bench.THRESHOLDS)
    at = {r["threshold"]: r for r in table}
    assert at[0.7]["accuracy"] == 0.75 and at[0.7]["near_miss_accuracy"] == 0.0
    assert at[0.85]["balanced_accuracy"] == 0.75 and at[0.85]["near_miss_accuracy"] == 1.0
    # balanced accuracy 0.75 at 0.50 … 0.70 and at 0.85, 0.90, accuracy 0.75 at all of them:
    # the lowest threshold wins the tie
    assert bench.best_option(table)["threshold"] == 0.5
    unique = bench.sweep([0.93, 0.88, 0.81, 0.40], rows, condition=True)
    assert bench.best_option(unique)["threshold"] == 0.85
    assert bench.best_option(unique)["balanced_accuracy"] == 1.0
    kinds = bench.per_kind([c >= 0.85 for c in cosines], rows)
    assert kinds["paraphrase"] == {"n": 2, "accuracy": 0.5, "same": True}
    assert kinds["near_miss_entity"]["accuracy"] == 1.0


def test_best_option_breaks_ties_towards_no_question():
    row = {"balanced_accuracy": 0.6, "accuracy": 0.6, "threshold": 0.8}
    with_q = {**row, "condition_on_question": True}
    without = {**row, "condition_on_question": False}
    assert bench.best_option([with_q, without]) is without
    assert bench.best_option([without, with_q]) is without


def test_separability_is_auroc_for_same_meaning():
    rows = [
        {"same": True, "kind": "paraphrase"},
        {"same": True, "kind": "paraphrase"},
        {"same": False, "kind": "near_miss_number"},
        {"same": False, "kind": "different"},
    ]
    assert bench.separability([0.9, 0.8, 0.1, 0.2], rows) == 1.0
    assert bench.separability([0.9, 0.1, 0.8, 0.0], rows) == 0.75
    # near misses only: the 'different' pair is left out
    assert bench.separability([0.9, 0.1, 0.5, 0.95], rows, bench.NEAR_MISS_KINDS) == 0.5


# -- the defaults are the study's choice -----------------------------------------------------


def test_results_were_computed_on_the_committed_pairs(results):
    assert results["pairs"]["sha256"] == bench.file_sha256(PAIRS)
    assert results["pairs"]["n"] == len(bench.load_pairs(PAIRS))


def test_results_best_is_the_best_of_their_sweep(results):
    sweep = results["embedding"]["sweep"]
    assert len(sweep) == 2 * len(bench.THRESHOLDS)
    best = bench.best_option(sweep)
    assert results["embedding"]["best"]["threshold"] == best["threshold"]
    assert results["embedding"]["best"]["condition_on_question"] == best["condition_on_question"]


def test_embedding_defaults_equal_the_study_best(results):
    best = results["embedding"]["best"]
    assert DEFAULT_EMBEDDING_THRESHOLD == best["threshold"]
    assert DEFAULT_CONDITION_ON_QUESTION["embedding"] == best["condition_on_question"]


def test_results_report_the_generator_with_both_rules(results):
    gen = results["generator"]
    for rule in ("strict", "lenient"):
        assert 0.0 <= gen[rule]["balanced_accuracy"] <= 1.0
        assert set(gen[rule]["per_kind"]) == set(results["pairs"]["kinds"])


# -- make_entailment passes the embedding defaults through -----------------------------------


class _RecordingEmbedder:
    model_id = "recording"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return np.eye(len(texts), dtype=np.float32)


@pytest.mark.parametrize("condition", [True, False])
def test_make_entailment_prepends_the_question_for_embeddings_when_asked(condition):
    emb = _RecordingEmbedder()
    ent = make_entailment("embedding", embedder=emb, condition_on_question=condition)
    ent.cosine("Capital of Kosovo?", ["Pristina"])
    assert emb.seen == ["Capital of Kosovo? Pristina" if condition else "Pristina"]
    assert ent.describe()["condition_on_question"] is condition


def test_make_entailment_defaults_follow_the_table():
    ent = make_entailment("embedding", embedder=_RecordingEmbedder())
    assert ent.threshold == DEFAULT_EMBEDDING_THRESHOLD
    assert ent.condition_on_question is DEFAULT_CONDITION_ON_QUESTION["embedding"]
    direct = EmbeddingEntailment(_RecordingEmbedder())
    assert direct.condition_on_question is DEFAULT_CONDITION_ON_QUESTION["embedding"]
    nli = make_entailment("nli", nli=object())
    assert nli.condition_on_question is DEFAULT_CONDITION_ON_QUESTION["nli"]
