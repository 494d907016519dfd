"""CoCoA: the formulas on hand-built statistics (and LM-Polygraph's on the same numbers), the
reference-to-sample similarity with each entailment back-end, and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.semantic.clustering import ENTAILMENT, NEUTRAL
from uq.semantic.cocoa import cocoa, cocoa_msp, cocoa_mte, cocoa_ppl, reference_similarity
from uq.semantic.entailment import EmbeddingEntailment, GeneratorEntailment, NLIEntailment
from uq.semantic.pipeline import run_semantic_entropy

from .test_semantic_pipeline import QUESTION, RuleNLI

LOGPROBS = [-0.1, -0.7, -1.2]
ENTROPIES = [0.3, 1.2, 0.6]


def _polygraph(kind: str, values: list[float], similarity: list[float]) -> float:
    """LM-Polygraph's CocoaMSP / CocoaPPL / CocoaMTE as they read, for one item."""
    dissimilarity = np.mean(1 - np.asarray(similarity))
    term = {"msp": -np.sum(values), "ppl": -np.mean(values), "mte": np.mean(values)}[kind]
    return float(term * dissimilarity)


def test_known_values():
    sim = [1.0, 0.5, 0.0, 0.5]  # mean 0.5
    assert cocoa_msp(LOGPROBS, sim) == pytest.approx(2.0 * 0.5)
    assert cocoa_ppl(LOGPROBS, sim) == pytest.approx(2.0 / 3 * 0.5)
    assert cocoa_mte(ENTROPIES, sim) == pytest.approx(0.7 * 0.5)
    assert cocoa(3.0, [0.2]) == pytest.approx(2.4)


@settings(max_examples=100, deadline=None)
@given(
    lps=st.lists(st.floats(-10.0, 0.0), min_size=1, max_size=8),
    ents=st.lists(st.floats(0.0, 8.0), min_size=1, max_size=8),
    sim=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10),
)
def test_matches_lm_polygraph_numerically(lps, ents, sim):
    assert cocoa_msp(lps, sim) == pytest.approx(_polygraph("msp", lps, sim), abs=1e-9)
    assert cocoa_ppl(lps, sim) == pytest.approx(_polygraph("ppl", lps, sim), abs=1e-9)
    assert cocoa_mte(ents, sim) == pytest.approx(_polygraph("mte", ents, sim), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    lps=st.lists(st.floats(-10.0, 0.0), min_size=1, max_size=8),
    sim=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10),
    data=st.data(),
)
def test_bounds_and_order_invariance(lps, sim, data):
    value = cocoa_msp(lps, sim)
    assert 0.0 <= value <= -sum(lps) + 1e-9  # never above the confidence term alone
    assert cocoa_msp(lps, data.draw(st.permutations(sim))) == pytest.approx(value)
    assert cocoa_msp(lps, [1.0] * len(sim)) == 0.0  # every sample agrees: no uncertainty


def test_one_answer_and_degenerate_inputs():
    assert cocoa_msp(LOGPROBS, [0.0]) == pytest.approx(2.0)
    with pytest.raises(ConfidantError):
        cocoa_msp(LOGPROBS, [])
    with pytest.raises(ConfidantError):
        cocoa_ppl([], [0.5])
    with pytest.raises(ConfidantError):
        cocoa_msp(LOGPROBS, [1.5])


# --------------------------------------------------------------------------- similarity


def test_nli_similarity_averages_both_directions_in_one_call():
    nli = RuleNLI()
    texts = ["It is Paris", "Perhaps Lyon", "Paris", "Perhaps Lyon", "Paris."]
    sim, work = reference_similarity(QUESTION, "paris", texts, NLIEntailment(nli))
    # "Paris" and "Paris." equal the reference after normalisation: 1, not asked.
    assert sim == [1.0, 0.0, 1.0, 0.0, 1.0]  # RuleNLI: same first letter of the last word
    assert len(nli.calls) == 1 and work == len(nli.calls[0]) == 4  # 2 distinct × 2 ways
    assert all(p.startswith(QUESTION) for p, _ in nli.calls[0])


def test_nli_similarity_uses_the_entailment_probabilities():
    class HalfNLI:
        model_id = "half"

        def probs(self, pairs):  # p(entailment) 0.8 forward, 0.4 backward
            return np.array([[0.1, 0.1, 0.8] if p.endswith("ref") else [0.3, 0.3, 0.4]
                             for p, _ in pairs])  # fmt: skip

    sim, _ = reference_similarity("", "ref", ["a", "b"], NLIEntailment(HalfNLI()))
    assert sim == pytest.approx([0.6, 0.6])


def test_embedding_and_generator_similarity():
    class Embedder:
        model_id = "toy"

        def embed(self, texts):
            vecs = {"ref": [1.0, 0.0], "near": [0.6, 0.8], "far": [-1.0, 0.0]}
            return np.array([vecs[t] for t in texts])

    ent = EmbeddingEntailment(Embedder(), condition_on_question=False)
    sim, work = reference_similarity("q", "ref", ["near", "far", "ref"], ent)
    assert sim == pytest.approx([0.6, 0.0, 1.0]) and work == 3

    class Gen:
        def label_pairs(self, question, texts, pairs):
            return [ENTAILMENT if texts[i][0] == texts[j][0] or j == 0 else NEUTRAL
                    for i, j in pairs]  # fmt: skip

    gen = GeneratorEntailment.__new__(GeneratorEntailment)
    gen.label_pairs = Gen().label_pairs
    sim, work = reference_similarity("q", "rome", ["rio", "oslo"], gen)
    assert sim == pytest.approx([1.0, 0.5]) and work == 4


def test_all_identical_and_empty_answers():
    nli = RuleNLI()
    sim, work = reference_similarity(QUESTION, "Paris", ["Paris"] * 3, NLIEntailment(nli))
    assert sim == [1.0] * 3 and work == 0 and nli.calls == []
    sim, _ = reference_similarity(QUESTION, "", ["", ""], NLIEntailment(nli))
    assert sim == [1.0, 1.0]
    assert cocoa_msp(LOGPROBS, sim) == 0.0


# --------------------------------------------------------------------------- pipeline


def test_pipeline_computes_the_similarity_once_and_the_three_variants(tiny_lm):
    nli = RuleNLI()
    keys = ["cocoa_msp", "cocoa_ppl", "cocoa_mte"]
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(nli), n=4, seed=2, max_new_tokens=6, measures=keys
    )
    sim = result.reference_similarity
    assert len(sim) == 4 and all(0.0 <= s <= 1.0 for s in sim)
    expected, _ = reference_similarity(QUESTION, result.reference.text.strip(), result.texts,
                                       NLIEntailment(RuleNLI()))  # fmt: skip
    assert sim == expected
    lps = [t.logprob for t in result.reference.tokens]
    ents = [t.entropy for t in result.reference.tokens]
    if lps:
        assert result.measure_value("cocoa_msp") == pytest.approx(_polygraph("msp", lps, sim))
        assert result.measure_value("cocoa_ppl") == pytest.approx(_polygraph("ppl", lps, sim))
        assert result.measure_value("cocoa_mte") == pytest.approx(_polygraph("mte", ents, sim))
    assert "reference_similarity" in result.timings
    none = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(nli), n=4, seed=2, max_new_tokens=6,
        measures=["discrete_semantic_entropy"],
    )  # fmt: skip
    assert none.reference_similarity is None and none.work["reference_similarity_work"] == 0
