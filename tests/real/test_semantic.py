"""Semantic entropy on the embedded real model, with the offline entailment (MiniLM embeddings):
a question it answers consistently is less uncertain than one nobody could answer."""

from __future__ import annotations

import pytest

from uq.semantic.entailment import make_entailment
from uq.semantic.pipeline import run_semantic_entropy

pytestmark = pytest.mark.real

KNOWN = "What is the capital of France?"
UNKNOWABLE = "What is the name of my neighbour's dog?"
MEASURES = ["semantic_entropy", "discrete_semantic_entropy", "number_of_semantic_sets"]


def _run(lm, entailment, question):
    return run_semantic_entropy(
        lm, question, entailment, n=6, temperature=1.0, max_new_tokens=14, seed=0,
        measures=MEASURES,
    )  # fmt: skip


def test_a_known_answer_has_lower_semantic_entropy_than_an_unknowable_one(real_lm, minilm):
    entailment = make_entailment("embedding", embedder=minilm)
    known = _run(real_lm, entailment, KNOWN)
    unknowable = _run(real_lm, entailment, UNKNOWABLE)
    assert known.work["generate_calls"] == 1  # N samples and the reference in one call
    # Most of its answers at temperature 1 say Paris, and they share one meaning cluster.
    paris = [i for i, t in enumerate(known.texts) if "Paris" in t]
    assert len(paris) >= len(known.texts) // 2
    assert len({known.clustering.cluster_ids[i] for i in paris}) == 1
    assert "Paris" in known.reference.text
    for key in MEASURES:
        assert known.measures[key]["value"] < unknowable.measures[key]["value"], key
