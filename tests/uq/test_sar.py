"""SAR (TokenSAR, SentSAR, SAR): known values, properties, and the pipeline on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import Generation, TokenRecord
from backends.nli import NLIModel
from core.errors import ConfidantError
from uq.semantic.entailment import EmbeddingEntailment, GeneratorEntailment, NLIEntailment
from uq.semantic.pipeline import run_semantic_entropy
from uq.semantic.relevance import relevance_statistics
from uq.semantic.sar import sar, sentence_sar, token_relevance_weights, token_sar

QUESTION = "What is the capital of France?"


def test_token_sar_is_the_relevance_weighted_mean_surprisal():
    # weights 0.1/1.0, 0.9/1.0 -> 0.1 * 2 + 0.9 * 0.5
    assert token_sar([-2.0, -0.5], [0.1, 0.9]) == pytest.approx(0.65)
    assert token_sar([-1.0], [0.3]) == pytest.approx(1.0)  # one token: weight 1
    assert token_sar([], []) == 0.0
    # every relevance 0: the plain mean surprisal (LM-Polygraph gives 0)
    assert token_sar([-1.0, -3.0], [0.0, 0.0]) == pytest.approx(2.0)
    with pytest.raises(ConfidantError):
        token_sar([-1.0], [0.1, 0.2])


def test_sentence_sar_matches_the_formula_with_t():
    lp = [math.log(0.5), math.log(0.2), math.log(0.1)]
    g = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    t = 1e-3
    p = np.exp(lp)
    want = np.mean(
        [-math.log(p[i] + sum(g[i, j] * p[j] for j in range(3) if j != i) / t) for i in range(3)]
    )
    assert sentence_sar(lp, g) == pytest.approx(want)
    # no similarity: minus the mean log-probability
    assert sentence_sar(lp, np.eye(3)) == pytest.approx(-np.mean(lp))


def test_sentence_sar_is_finite_when_probabilities_underflow():
    assert math.isfinite(sentence_sar([-2000.0, -2100.0], np.eye(2)))
    assert sentence_sar([-2000.0], np.ones((1, 1))) == pytest.approx(2000.0)


def test_sar_is_sentence_sar_of_token_sar_probabilities():
    lps = [[-0.2, -1.0], [-3.0], []]
    rel = [[0.5, 0.5], [1.0], []]
    g = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, 0.0], [0.2, 0.0, 1.0]])
    corrected = [-token_sar(a, b) for a, b in zip(lps, rel, strict=True)]
    assert sar(lps, rel, g) == pytest.approx(sentence_sar(corrected, g))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-30.0, 0.0), min_size=1, max_size=6),
    st.data(),
)
def test_sentence_sar_order_invariant_and_similar_answers_lower_it(lp, data):
    n = len(lp)
    upper = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=n * n, max_size=n * n)))
    g = np.triu(upper.reshape(n, n), 1)
    g = g + g.T + np.eye(n)
    order = data.draw(st.permutations(range(n)))
    value = sentence_sar(lp, g)
    assert value == pytest.approx(sentence_sar([lp[i] for i in order], g[np.ix_(order, order)]))
    # similarity only adds mass: never above the no-similarity value −mean log p
    assert value <= -np.mean(lp) + 1e-9


def test_all_identical_answers_are_more_certain_than_all_different():
    lp = [-1.0] * 4
    assert sentence_sar(lp, np.ones((4, 4))) < sentence_sar(lp, np.eye(4))


def test_token_relevance_weights_sum_to_one():
    assert token_relevance_weights([0.2, 0.6]).sum() == pytest.approx(1.0)
    assert token_relevance_weights([]).size == 0


# ------------------------------------------------------------------ statistics and pipeline


def _gen(pieces: list[str], lp: float = -0.5) -> Generation:
    return Generation(
        text="".join(pieces),
        tokens=[TokenRecord(text=p, logprob=lp, entropy=0.1, varentropy=0.0) for p in pieces],
    )


class WordEmbedder:
    """A bag-of-words embedder: one dimension per known word."""

    model_id = "words"
    WORDS = ["what", "is", "the", "capital", "of", "france?", "paris", "lyon", "city"]

    def __init__(self):
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), len(self.WORDS) + 1))
        for k, t in enumerate(texts):
            for w in t.lower().split():
                out[k, self.WORDS.index(w) if w in self.WORDS else -1] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def test_relevance_statistics_in_one_embedding_call():
    embedder = WordEmbedder()
    entail = EmbeddingEntailment(embedder, condition_on_question=False)
    samples = [_gen(["Paris", " city"]), _gen(["Lyon"]), _gen(["Paris", " city"]), _gen([])]
    reference = _gen(["Paris", "", " city"])
    stats = relevance_statistics(QUESTION, samples, reference, entail)
    assert len(embedder.calls) == 1
    assert stats.sample_token_relevance[1] == [1.0] and stats.sample_token_relevance[3] == []
    assert stats.reference_token_relevance[1] == 0.0  # an empty piece changes nothing
    assert stats.answer_similarity.shape == (4, 4)
    assert stats.answer_similarity[0, 2] == 1.0 and stats.answer_similarity[0, 1] == 0.0
    assert stats.reference_kernel[0] == 1.0 and stats.reference_kernel[1] == 0.0


def test_generator_entailment_has_no_similarity_model():
    assert (
        relevance_statistics(QUESTION, [_gen(["a"])], _gen(["a"]), GeneratorEntailment(None))
        is None
    )


@pytest.fixture(scope="module")
def tiny_nli(tiny_nli_dir):
    return NLIModel(str(tiny_nli_dir)).load()


def test_pipeline_computes_sar_from_the_stored_statistics(tiny_lm, tiny_nli):
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(tiny_nli), n=4, max_new_tokens=6, seed=5
    )
    for key in ("token_sar", "sentence_sar", "sar"):
        entry = result.measures[key]
        assert entry["note"] is None and math.isfinite(entry["value"]), (key, entry)
    assert result.measures["token_sar"]["value"] >= 0.0
    assert result.work["similarity_scored"] > 0
    # SentSAR from the stored totals: at least −log(1 + (N−1)/t) and at most −mean log p
    totals = [g.total_logprob for g in result.samples]
    assert result.measures["sentence_sar"]["value"] <= -np.mean(totals) + 1e-6


def test_pipeline_without_a_similarity_model_notes_why(tiny_lm):
    result = run_semantic_entropy(
        tiny_lm, QUESTION, GeneratorEntailment(tiny_lm), n=2, max_new_tokens=3, seed=1,
        measures=["sar", "token_sar"],
    )  # fmt: skip
    assert result.measures["sar"]["value"] is None
    assert "similarity model" in result.measures["sar"]["note"]


def test_pipeline_with_embeddings_and_the_tab_table_shows_the_measures(tiny_lm):
    from ui.plots.semantic import measures_markdown

    embedder = WordEmbedder()
    result = run_semantic_entropy(
        tiny_lm, QUESTION, EmbeddingEntailment(embedder), n=3, max_new_tokens=4, seed=7,
        measures=["token_sar", "sentence_sar", "sar", "semantic_density"],
    )  # fmt: skip
    assert len(embedder.calls) == 2  # the clustering's embeddings, then the relevance texts
    for key in ("token_sar", "sentence_sar", "sar", "semantic_density"):
        assert result.measures[key]["note"] is None, key
    table = measures_markdown(result)
    assert all(label in table for label in ("TokenSAR", "SentSAR", "| SAR |", "semantic density"))


class ConstantNLI:
    """p(contradiction, neutral, entailment) = (0.1, 0.3, 0.6) for every pair."""

    model_id = "constant"

    def __init__(self):
        self.calls: list[list[tuple[str, str]]] = []

    def probs(self, pairs):
        self.calls.append(list(pairs))
        return np.tile([0.1, 0.3, 0.6], (len(pairs), 1))


def test_nli_similarity_kernel_and_relevance_in_one_call():
    nli = ConstantNLI()
    samples = [_gen(["Paris", " city"]), _gen(["Lyon"])]
    stats = relevance_statistics(QUESTION, samples, _gen(["Paris"]), NLIEntailment(nli))
    assert len(nli.calls) == 1
    assert all(p.startswith(QUESTION) and h.startswith(QUESTION) for p, h in nli.calls[0])
    assert stats.sample_token_relevance[0] == pytest.approx([0.4, 0.4])  # 1 − 0.6
    assert stats.answer_similarity[0, 1] == pytest.approx(0.6)
    assert stats.reference_kernel == pytest.approx([0.75, 0.75])  # 1 − (0.1 + 0.3 / 2)
