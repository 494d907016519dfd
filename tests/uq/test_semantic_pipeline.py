"""The semantic-entropy pipeline on tiny random models: batching, the pair work, and measures
that agree with the maths functions applied to the stored statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.base import Capabilities, SamplingParams
from backends.nli import NLIModel
from core.errors import ConfidantError
from uq.semantic.black_box import (
    degree,
    eccentricity,
    eigv,
    kernel_language_entropy,
    lexical_uncertainty,
    nli_graph_weights,
    nli_similarity_matrix,
)
from uq.semantic.clustering import ENTAILMENT, NEUTRAL, cluster_by_entailment
from uq.semantic.entailment import EmbeddingEntailment, NLIEntailment, make_entailment
from uq.semantic.estimators import (
    discrete_semantic_entropy,
    kuhn_semantic_entropy,
    max_token_entropy,
    maximum_sequence_probability,
    mean_token_entropy,
    number_of_semantic_sets,
    predictive_entropy,
    semantic_entropy,
)
from uq.semantic.measures import MEASURES
from uq.semantic.p_true import p_true_prompt
from uq.semantic.pair_stats import pair_statistics
from uq.semantic.pasted import parse_answers_text, read_answers_file, score_pasted_answers
from uq.semantic.pipeline import run_semantic_entropy, sample_answers
from uq.semantic.result import SemanticEntropyResult
from uq.token_stats import perplexity

QUESTION = "What is the capital of France?"


class CountingNLI:
    """Wraps an NLI model and records every ``probs`` call."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = "counting"
        self.calls: list[list[tuple[str, str]]] = []

    def probs(self, pairs):
        self.calls.append(list(pairs))
        return self.inner.probs(pairs)


class RuleNLI:
    """Entailment when the answers' last words start with the same letter, else neutral
    (contradiction when one starts with 'x'): a deterministic NLI for checking mechanics."""

    model_id = "rule-nli"

    def __init__(self):
        self.calls: list[list[tuple[str, str]]] = []

    def label(self, premise: str, hypothesis: str) -> int:
        a, b = premise.split()[-1].lower(), hypothesis.split()[-1].lower()
        if "x" in (a[0], b[0]):
            return 0
        return ENTAILMENT if a[0] == b[0] else NEUTRAL

    def probs(self, pairs):
        self.calls.append(list(pairs))
        out = np.zeros((len(pairs), 3))
        for k, (p, h) in enumerate(pairs):
            out[k, self.label(p, h)] = 1.0
        return out


@pytest.fixture(scope="module")
def tiny_nli(tiny_nli_dir):
    return NLIModel(str(tiny_nli_dir)).load()


def test_one_generate_call_for_samples_and_reference_and_one_nli_pass(
    tiny_lm, tiny_nli, generate_calls
):
    nli = CountingNLI(tiny_nli)
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(nli), n=6, max_new_tokens=8, seed=3
    )
    # 6 samples + the reference in one batched generate; then one greedy reply per stage of
    # verbalized confidence.
    assert generate_calls == [7, 1, 1]
    assert len(result.samples) == 6 and result.reference is not None
    assert result.params["seed"] == 3 and result.params["reference_temperature"] == 0.1
    # Every ordered pair of distinct answers in ONE batched NLI call, question prepended; then
    # ONE call for the reference answer against the samples (CoCoA), unless all equal it; SAR
    # and Semantic Density send their pairs in one more.
    d = len({t.strip().casefold() for t in result.texts})
    assert len(nli.calls) == 2 + bool(result.work["reference_similarity_work"])
    assert len(nli.calls[0]) == result.work["entailment_pairs"]
    assert len(nli.calls[-1]) == result.work["similarity_scored"]
    assert result.work["entailment_pairs"] <= d * (d - 1)
    assert all(p.startswith(QUESTION) and h.startswith(QUESTION) for p, h in nli.calls[0])
    labels = np.array(result.clustering.labels)
    assert (labels >= 0).all()  # the full matrix is kept for display


def test_without_mixed_temperatures_samples_still_come_from_one_call(
    tiny_lm, tiny_nli, generate_calls
):
    class PlainLM:  # a backend whose sample_batch cannot mix temperatures
        model_id = "plain"
        capabilities = Capabilities(per_row_temperature=False)

        def sample(self, prompt, params, *, chat=True):
            return tiny_lm.sample(prompt, params, chat=chat)

        def sample_batch(self, prompts, params, *, chat=True):
            return tiny_lm.sample_batch(prompts, params, chat=chat)

    params = SamplingParams(n=5, max_new_tokens=4, seed=1)
    samples, reference, calls = sample_answers(PlainLM(), "hi", params, 0.1)
    assert generate_calls == [5, 1] and calls == 2 and len(samples) == 5
    assert reference.tokens is not None


def test_measures_equal_the_maths_functions_on_the_stored_statistics(tiny_lm, tiny_nli):
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(tiny_nli), n=5, seed=7, max_new_tokens=12
    )
    stored = SemanticEntropyResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert stored.to_dict() == result.to_dict()
    ids = stored.clustering.cluster_ids
    means = [g.mean_logprob for g in stored.samples]
    totals = [g.total_logprob for g in stored.samples]
    labels = np.array(stored.clustering.labels)
    ref_lp = [t.logprob for t in stored.reference.tokens]
    ref_h = [t.entropy for t in stored.reference.tokens]
    expected = {
        "discrete_semantic_entropy": discrete_semantic_entropy(ids),
        "semantic_entropy": semantic_entropy(ids, means),
        "kuhn_semantic_entropy": kuhn_semantic_entropy(ids, means),
        "number_of_semantic_sets": number_of_semantic_sets(ids),
        "predictive_entropy": predictive_entropy(totals),
        "ln_predictive_entropy": predictive_entropy(means),
        "lexical_uncertainty": lexical_uncertainty(stored.texts),
        "eigv": eigv(nli_similarity_matrix(labels)),
        "degree": degree(nli_similarity_matrix(labels)),
        "eccentricity": eccentricity(nli_similarity_matrix(labels)),
        "kernel_language_entropy": kernel_language_entropy(nli_graph_weights(labels)),
        "p_true": 1.0 - stored.p_true,
    }
    if ref_lp:
        expected |= {
            "maximum_sequence_probability": maximum_sequence_probability(ref_lp),
            "perplexity": perplexity(ref_lp),
            "mean_token_entropy": mean_token_entropy(ref_h),
            "max_token_entropy": max_token_entropy(ref_h),
        }
    for key, value in expected.items():
        assert stored.measures[key]["value"] == pytest.approx(value, abs=1e-9), key
    assert set(stored.measures) == {m.key for m in MEASURES}
    log5 = np.log(5)
    entry = stored.measures["discrete_semantic_entropy"]
    assert entry["per_log_n"] == pytest.approx(entry["value"] / log5)
    # p(True) is the generator's choice between A and B on the brainstorm prompt.
    probs = tiny_lm.choice_probs(
        p_true_prompt(QUESTION, stored.texts, stored.reference.text), ["A", "B"]
    )
    assert stored.p_true == pytest.approx(probs[0])


def test_cluster_measures_alone_ask_only_the_walk_pairs(tiny_lm):
    nli = RuleNLI()
    result = run_semantic_entropy(
        tiny_lm,
        QUESTION,
        NLIEntailment(nli),
        n=8,
        max_new_tokens=6,
        seed=5,
        measures=["discrete_semantic_entropy", "semantic_entropy"],
    )
    assert set(result.measures) == {"discrete_semantic_entropy", "semantic_entropy"}
    asked = [p for call in nli.calls for p in call]
    assert result.work["entailment_pairs"] == len(asked)
    assert result.work["entailment_calls"] == len(nli.calls) <= 2 * result.clustering.n_clusters
    d = len(set(result.clustering.duplicate_of))
    assert len(asked) <= d * (d - 1)


def _rule_table(texts):
    rule = RuleNLI()
    return lambda i, j: rule.label(texts[i], texts[j])


def test_full_matrix_clusters_equal_the_sequential_walk_and_dedupe():
    texts = ["Paris", "paris.", "Pau", "Lyon", "Lille", "PARIS", "xenon", "Pessac"]
    nli = RuleNLI()
    stats = pair_statistics("", texts, NLIEntailment(nli), full_matrix=True)
    distinct = [0, 2, 3, 4, 6, 7]
    assert len(nli.calls) == 1 and len(nli.calls[0]) == 6 * 5
    assert stats.model_pairs == 30 and stats.model_calls == 1
    expected = cluster_by_entailment(len(texts), _rule_table(texts))
    assert stats.clustering.cluster_ids == expected
    labels = np.array(stats.clustering.labels)
    assert labels[0, 1] == labels[1, 5] == ENTAILMENT  # duplicates entail each other
    assert labels[3, 6] == 0 and labels[2, 3] == NEUTRAL
    assert stats.similarity.shape == (8, 8) and stats.kernel_weights.shape == (8, 8)
    # The walk alone asks fewer pairs than the full matrix when the measures allow it.
    lazy = RuleNLI()
    walk = pair_statistics("", texts, NLIEntailment(lazy), full_matrix=False)
    assert walk.clustering.cluster_ids == expected
    assert 0 < walk.model_pairs < 30
    asked_texts = {t for call in lazy.calls for pair in call for t in pair}
    assert asked_texts <= {texts[i] for i in distinct}


def test_pair_cache_skips_the_model_on_a_repeat():
    texts = ["Paris", "Pau", "Lyon"]
    cache: dict = {}
    nli = RuleNLI()
    first = pair_statistics("q", texts, NLIEntailment(nli), cache=cache)
    second = pair_statistics("q", texts, NLIEntailment(nli), cache=cache)
    assert first.model_pairs == 6 and second.model_pairs == 0 and second.cached_pairs == 6
    assert len(nli.calls) == 1
    assert second.clustering.cluster_ids == first.clustering.cluster_ids


def test_embedding_entailment_with_minilm(minilm):
    ent = make_entailment("embedding", embedder=minilm)
    assert isinstance(ent, EmbeddingEntailment)
    result = score_pasted_answers(
        ["Paris", "It is Paris.", "London", "paris"], ent, question="Capital of France?"
    )
    assert result.clustering.cluster_ids == [0, 0, 1, 0]
    assert result.work["entailment_pairs"] == 0 and result.work["embedded_texts"] == 3
    sim = np.array(result.similarity)
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1.0)
    assert result.measures["eigv"]["value"] == pytest.approx(eigv(sim))
    assert result.measures["semantic_entropy"]["value"] is None  # no log-likelihoods given


def test_generator_entailment_uses_choice_probs_once_per_pair(tiny_lm, monkeypatch):
    calls = []
    original = tiny_lm.choice_probs
    monkeypatch.setattr(
        tiny_lm, "choice_probs", lambda p, o, **k: calls.append(o) or original(p, o, **k)
    )
    result = run_semantic_entropy(
        tiny_lm,
        "2 + 2?",
        make_entailment("generator", lm=tiny_lm),
        n=3,
        max_new_tokens=4,
        seed=2,
    )
    d = len(set(result.clustering.duplicate_of))
    pairs = result.work["entailment_pairs"]
    assert pairs == d * (d - 1)
    # The pair matrix, then the reference answer against the distinct samples both ways (CoCoA).
    reference_pairs = result.work["reference_similarity_work"]
    assert calls.count(["entailment", "contradiction", "neutral"]) == pairs + reference_pairs
    assert calls.count(["A", "B"]) == 1  # p(True)


def test_pasted_answers_with_log_likelihoods_get_every_black_box_measure():
    answers = ["Paris", "Pau", "Lyon", "Paris"]
    lls = [-0.5, -1.0, -2.0, -0.5]
    result = score_pasted_answers(answers, NLIEntailment(RuleNLI()), log_likelihoods=lls)
    ids = result.clustering.cluster_ids
    assert ids == [0, 0, 1, 0]
    assert result.measures["semantic_entropy"]["value"] == pytest.approx(semantic_entropy(ids, lls))
    assert result.measures["predictive_entropy"]["value"] == pytest.approx(1.0)
    for key in ("maximum_sequence_probability", "p_true", "mean_token_entropy"):
        assert result.measures[key]["value"] is None and result.measures[key]["note"]
    back = SemanticEntropyResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.clusters()[0]["texts"] == ["Paris", "Pau", "Paris"]
    assert back.clusters()[0]["likelihood_mass"] == pytest.approx(
        (2 * np.exp(-0.5) + np.exp(-1)) / (2 * np.exp(-0.5) + np.exp(-1) + np.exp(-2))
    )


def test_parse_answers_text_and_files(tmp_path):
    assert parse_answers_text("Paris\n\n  Lyon \n") == (["Paris", "Lyon"], None)
    assert parse_answers_text('["a", "b"]') == (["a", "b"], None)
    assert parse_answers_text(
        '[{"answer": "a", "log_likelihood": -1}, {"answer": "b", "log_likelihood": -2}]'
    ) == (["a", "b"], [-1, -2])
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('answer,log_likelihood\nParis,-0.1\n"Lyon, France",-2\n')
    assert read_answers_file(csv_path) == (["Paris", "Lyon, France"], ["-0.1", "-2"])
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"answer": "x"}\n\n{"answer": "y"}\n')
    assert read_answers_file(jl) == (["x", "y"], None)


@pytest.mark.parametrize(
    ("text", "lls", "message"),
    [
        ("", None, "Paste some answers"),
        ("   \n ", None, "Paste some answers"),
        ("only one", None, "at least 2"),
        ("a\x00\nb", None, "NUL"),
        ("[1, 2]", None, "strings"),
        ('["a", ""]', None, "answer 2 is empty"),
        ("[oops", None, "does not parse"),
        ("x" * 100_000 + "\nb", None, "limit"),
        ("\n".join(["a"] * 201), None, "at most"),
        ("a\nb", ["-1"], "2 answers"),
        ("a\nb", ["-1", "nan"], "finite"),
        ("a\nb", ["-1", "inf"], "finite"),
        ("a\nb", ["-1", "0.5"], "≤ 0"),
        ("a\nb", ["-1", "=cmd()"], "not a number"),
        ('[{"answer": "a", "log_likelihood": -1}, {"answer": "b"}]', None, "every answer"),
    ],
)
def test_bad_pasted_input_is_a_clear_error(text, lls, message):
    with pytest.raises(ConfidantError, match=message):
        answers, parsed = parse_answers_text(text)
        score_pasted_answers(answers, NLIEntailment(RuleNLI()), log_likelihoods=lls or parsed)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "text_only_header\nfoo\n", "'answer' column"),
        ("a.csv", "answer\n", "no answers"),
        ("a.jsonl", '{"answer": "a"}\nnot json\n', "line 2"),
        ("a.pdf", "whatever", "upload a"),
        ("a.jsonl", '{"reply": "a"}\n', "no 'answer' field"),
    ],
)
def test_bad_answer_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfidantError, match=message):
        read_answers_file(path)


def test_bad_pipeline_arguments(tiny_lm):
    ent = NLIEntailment(RuleNLI())
    with pytest.raises(ConfidantError, match="question"):
        run_semantic_entropy(tiny_lm, "  ", ent)
    with pytest.raises(ConfidantError, match="n must be"):
        run_semantic_entropy(tiny_lm, "q", ent, n=0)
    with pytest.raises(ConfidantError, match="unknown measure"):
        run_semantic_entropy(tiny_lm, "q", ent, measures=["nope"])
    with pytest.raises(ConfidantError, match="unknown entailment"):
        make_entailment("telepathy")
    with pytest.raises(ConfidantError, match="threshold"):
        make_entailment("embedding", embedder=object(), threshold=2.0)


def test_progress_hears_each_stage_in_order(tiny_lm, tiny_nli):
    heard: list[tuple[float, str]] = []
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(tiny_nli), n=4, seed=3, max_new_tokens=6,
        progress=lambda fraction, message: heard.append((fraction, message)),
    )  # fmt: skip
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] < 1.0
    assert heard[0][1] == "Sampling 4 answers and the reference answer"
    d = len(set(result.clustering.duplicate_of))
    assert f"Comparing {d} distinct answers by entailment (all {d * (d - 1)} ordered pairs)" in [
        m for _, m in heard
    ]
    assert [m for _, m in heard[-3:]] == [
        "Asking the generator p(True)",
        "Asking the generator for its confidence",
        "Scoring token relevance and answer similarity",
    ]
    heard.clear()
    run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(tiny_nli), n=4, seed=3, max_new_tokens=6,
        measures=["discrete_semantic_entropy"],
        progress=lambda fraction, message: heard.append((fraction, message)),
    )  # fmt: skip
    assert [m.split(" ")[0] for _, m in heard] == ["Sampling", "Comparing"]
    assert "ordered pairs" not in heard[1][1]
