"""The Inv-Entropy pipeline: perturbations, batched answers, one similarity matrix, every measure.

Mechanics run on the tiny random model (gibberish text, exact counts) and on small fakes; the
black-box mode and GAAP run with the real MiniLM embedding model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.base import Capabilities, Generation, SamplingParams, TokenRecord
from core.errors import ConfidantError
from uq.inv.maths import inv_entropy
from uq.inv.measures import inv_entropy_from_responses
from uq.inv.offline import inv_entropy_offline, parse_offline_table
from uq.inv.perturbation import MAX_PARAPHRASE_ROUNDS, paraphrase_questions
from uq.inv.pipeline import run_inv_entropy, run_inv_entropy_batch
from uq.inv.result import InvEntropyRun, measure_values
from uq.inv.similarity import similarity_statistics
from uq.inv.tsu_sweep import inv_entropy_tsu
from uq.semantic.estimators import discrete_semantic_entropy

QUESTION = "What is the capital of France?"
OWN = [
    "Which city is the capital of France?",
    "France's capital is which city?",
    "Name the French capital.",
]


class CharEmbedder:
    """Bag of letters: deterministic, instant, enough to exercise the pipeline."""

    model_id = "char-bag"

    def __init__(self):
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        out = np.full((len(texts), 27), 1e-3)
        for row, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[row, ord(ch) - 97] += 1
                elif ch.isdigit():
                    out[row, 26] += 1
        return out


class FakeLM:
    """Answers from a fixed pool, chosen by a seeded rng; paraphrase prompts get ``reply``."""

    model_id = "fake-lm"
    capabilities = Capabilities()

    def __init__(self, reply="1. A\n2. B", pool=("Paris", "Lyon", "Paris.", "Marseille")):
        self.reply = reply
        self.pool = pool
        self.calls: list[tuple[int, int]] = []

    def sample_batch(self, prompts, params: SamplingParams, *, chat=True):
        params.validate()
        if params.seed is None:
            params.seed = 7
        self.calls.append((len(prompts), params.n))
        rng = np.random.default_rng([params.seed, int(params.temperature * 100)])
        out = []
        for prompt in prompts:
            if "paraphrases" in prompt:
                out.append([Generation(text=self.reply, tokens=[])] * params.n)
                continue
            row = []
            for _ in range(params.n):
                k = int(rng.integers(len(self.pool)))
                token = TokenRecord(text="t", logprob=-0.1 * (k + 1), entropy=0.5, varentropy=0.1)
                row.append(Generation(text=self.pool[k] + "\nextra line", tokens=[token]))
            out.append(row)
        return out

    def greedy(self, prompt, max_new_tokens=64, *, stop=(), chat=True):
        return Generation(text="1. city\n2. town\n3. metropolis", tokens=[])


class CountingNLI:
    model_id = "fake-nli"

    def __init__(self):
        self.calls = 0
        self.pairs = 0

    def probs(self, pairs):
        self.calls += 1
        self.pairs += len(pairs)
        out = []
        for a, b in pairs:
            same = a.lower().strip(".") == b.lower().strip(".")
            out.append([0.05, 0.15, 0.8] if same else [0.6, 0.3, 0.1])
        return np.array(out)


# --------------------------------------------------------------------------- tiny model


def test_all_inputs_and_replicates_in_one_generate_call(tiny_lm, generate_calls):
    embed = CharEmbedder()
    run = run_inv_entropy(
        QUESTION, tiny_lm, embed, perturbation="given", perturbations=OWN,
        replicates=5, bootstraps=7, seed=1, max_new_tokens=6,
    )  # fmt: skip
    assert generate_calls == [4 * 5]  # one generate call holding every (input, replicate)
    assert embed.calls == 1  # inputs and responses embedded together, once
    assert run.inputs == [QUESTION] + OWN
    assert [len(r) for r in run.responses] == [5] * 4
    assert np.array(run.response_similarity).shape == (20, 20)
    assert np.array(run.sim_x).shape == (4, 4)
    assert run.params["generation_seed"] == 1 and run.params["model"] == tiny_lm.model_id
    assert len(run.generations) == 4 and all(len(row) == 5 for row in run.generations)


def test_paraphrase_run_is_one_call_per_round_and_one_for_answers(tiny_lm, generate_calls):
    run = run_inv_entropy(
        QUESTION, tiny_lm, CharEmbedder(), n=9, replicates=5, bootstraps=5, seed=0,
        max_new_tokens=4, paraphrase_max_new_tokens=24,
    )  # fmt: skip
    # One batched call per paraphrase round (another only when some were rejected), then one
    # for every answer.
    rounds = run.perturbation.details["rounds"]
    assert 1 <= rounds <= MAX_PARAPHRASE_ROUNDS
    assert generate_calls == [1] * rounds + [10 * 5]
    assert len(run.inputs) == 10 and len(run.perturbation.perturbations) == 9
    assert run.perturbation.method == "paraphrase" and run.perturbation.source == "llm"
    assert run.perturbation.details["reply"]
    assert all(p.isprintable() for p in run.perturbation.perturbations)


@pytest.mark.parametrize("n", [1, 9])
def test_tiny_model_paraphrases_are_exactly_n(tiny_lm, n):
    (perturbation,) = paraphrase_questions(tiny_lm, [QUESTION], n, seed=2, max_new_tokens=24)
    assert len(perturbation.perturbations) == n
    assert QUESTION not in perturbation.perturbations


def test_seeds_reproduce_and_differ(tiny_lm):
    kwargs = dict(
        perturbation="given", perturbations=OWN, replicates=3, bootstraps=6, max_new_tokens=5
    )
    first = run_inv_entropy(QUESTION, tiny_lm, CharEmbedder(), seed=11, **kwargs)
    again = run_inv_entropy(QUESTION, tiny_lm, CharEmbedder(), seed=11, **kwargs)
    other = run_inv_entropy(QUESTION, tiny_lm, CharEmbedder(), seed=12, **kwargs)
    assert first.to_dict() == again.to_dict()
    assert first.measures.bootstrap_indices != other.measures.bootstrap_indices
    assert first.responses != other.responses


def test_progress_is_told_each_step_in_order(tiny_lm):
    told: list[tuple[float, str]] = []
    run_inv_entropy(
        QUESTION, tiny_lm, CharEmbedder(), n=3, replicates=2, bootstraps=3, seed=0,
        max_new_tokens=4, paraphrase_max_new_tokens=16,
        progress=lambda fraction, message: told.append((fraction, message)),
    )  # fmt: skip
    fractions = [f for f, _ in told]
    assert fractions == sorted(fractions) and all(0.0 <= f < 1.0 for f in fractions)
    messages = " | ".join(m for _, m in told)
    assert messages.startswith("Writing paraphrases")
    assert "(8 answers)" in messages  # (1 + 3 inputs) x 2 replicates
    assert "3 bootstraps" in messages


# --------------------------------------------------------------------------- fakes


def test_paraphrase_counts_are_forced_to_n():
    few = FakeLM(reply="Here are some:\n1. Which city is France's capital?\n2. Name it.")
    many = FakeLM(reply="\n".join(f"{i}. Variant number {i} of it?" for i in range(1, 15)))
    for lm in (few, many):
        (p,) = paraphrase_questions(lm, [QUESTION], 9, seed=4)
        assert len(p.perturbations) == 9
        assert lm.calls == [(1, 1)]
    (p,) = paraphrase_questions(many, [QUESTION], 9, seed=4)
    assert len(set(p.perturbations)) == 9  # sampled without repetition from 14
    with pytest.raises(ConfidantError, match="no usable paraphrase"):
        paraphrase_questions(FakeLM(reply="..."), [QUESTION], 3)


def test_measures_come_from_the_one_response_matrix():
    run = run_inv_entropy(
        QUESTION, FakeLM(), CharEmbedder(), perturbation="given", perturbations=OWN,
        replicates=4, bootstraps=9, seed=5,
    )  # fmt: skip
    again = inv_entropy_from_responses(run.sim_x, run.response_similarity, 4, 9, 5)
    assert run.measures.to_dict() == again.to_dict()
    s = np.array(run.response_similarity)
    matrices = [s[np.ix_(idx, idx)] for idx in run.measures.bootstrap_indices]
    assert run.measures.inv_entropy == pytest.approx(inv_entropy(run.sim_x, matrices))
    assert np.allclose(np.array(run.mean_sim_y), np.mean(matrices, axis=0))
    p = np.array(run.mean_p_x_given_y)
    assert np.allclose(p.sum(axis=1), 1.0)
    # answers are cleaned to their first line, the raw text is kept in the generations
    assert all("\n" not in r for row in run.responses for r in row)
    assert "extra line" in run.generations[0][0].text


def test_semantic_entropy_of_the_same_responses():
    run = run_inv_entropy(
        QUESTION, FakeLM(), CharEmbedder(), perturbation="given", perturbations=OWN,
        replicates=5, bootstraps=3, seed=0, se_cosine_threshold=0.999,
    )  # fmt: skip
    se = run.semantic_entropy
    flat = [r for row in run.responses for r in row]
    assert len(se["cluster_ids_all"]) == len(flat) and len(se["cluster_ids_original"]) == 5
    # "Paris" and "Paris." share a cluster (same letters), "Lyon" does not
    for i, a in enumerate(flat):
        for j, b in enumerate(flat):
            same = a.strip(".") == b.strip(".")
            assert (se["cluster_ids_all"][i] == se["cluster_ids_all"][j]) == same
    assert se["discrete_all"] == pytest.approx(discrete_semantic_entropy(se["cluster_ids_all"]))
    assert se["likelihood_original"] is not None
    values = measure_values(run)
    assert values["semantic_entropy_discrete_original"] == se["discrete_original"]


def test_nli_similarity_is_one_batched_call_symmetric_with_unit_diagonal():
    nli = CountingNLI()
    run = run_inv_entropy(
        QUESTION, FakeLM(), None, nli, perturbation="given", perturbations=OWN,
        replicates=5, bootstraps=4, similarity="nli",
    )  # fmt: skip
    assert nli.calls == 1
    flat = [r for row in run.responses for r in row]
    distinct_inputs, distinct_answers = 4, len(set(flat))
    assert nli.pairs == distinct_inputs * 3 + distinct_answers * (distinct_answers - 1)
    s = np.array(run.response_similarity)
    assert np.allclose(s, s.T) and np.allclose(np.diag(s), 1.0)
    for i, a in enumerate(flat):
        for j, b in enumerate(flat):
            # identical strings count as entailment 1; "Paris" vs "Paris." get the model's 0.8
            expected = 1.0 if a == b else 0.8 if a.strip(".") == b.strip(".") else 0.1
            assert s[i, j] == pytest.approx(expected)
    assert run.params["similarity"] == "nli" and run.params["nli_model"] == "fake-nli"


def test_embedding_rules_paper_and_authors_code():
    groups = [(["a b", "c d"], ["abc", "xyz", "abc"])]
    embed = CharEmbedder()
    paper = similarity_statistics(groups, "embedding", embed=embed)[0]
    code = similarity_statistics(groups, "embedding_abs", embed=embed)[0]
    vectors = embed(["abc", "xyz"])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = float(unit[0] @ unit[1])
    assert paper["response_similarity"][0, 1] == pytest.approx((1 + cos) / 2)
    assert code["response_similarity"][0, 1] == pytest.approx(abs(cos))
    assert paper["response_similarity"][0, 2] == pytest.approx(1.0)
    assert np.allclose(np.diag(paper["sim_x"]), 1.0)


def test_result_round_trips_through_json():
    run = run_inv_entropy(
        QUESTION, FakeLM(), CharEmbedder(), perturbation="given", perturbations=OWN,
        replicates=2, bootstraps=3,
    )  # fmt: skip
    data = json.loads(json.dumps(run.to_dict(with_generations=True), allow_nan=False))
    back = InvEntropyRun.from_dict(data)
    assert back.to_dict() == run.to_dict()
    assert back.generations[0][0].text == run.generations[0][0].text
    assert "generations" not in run.to_dict()
    for key in ("n", "replicates", "similarity", "bootstraps", "seed", "temperature", "model"):
        assert key in back.params


def test_batch_of_questions_shares_one_answer_call():
    lm = FakeLM(reply="1. One way to ask?\n2. Another way to ask?\n3. A third way?")
    runs = run_inv_entropy_batch(
        ["Who wrote Hamlet?", QUESTION], lm, CharEmbedder(), n=3, replicates=2, bootstraps=2
    )
    assert lm.calls == [(2, 1), (8, 2)]
    assert [r.question for r in runs] == ["Who wrote Hamlet?", QUESTION]
    assert all(len(r.inputs) == 4 for r in runs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"replicates": 0}, "replicates"),
        ({"replicates": 2.5}, "whole number"),
        ({"bootstraps": 0}, "bootstraps"),
        ({"similarity": "cosine"}, "unknown similarity"),
        ({"perturbation": "shuffle"}, "unknown perturbation"),
        ({"seed": -1}, "Seed must be a whole number from 0"),
        ({"n": 0}, "n \\(the number"),
        ({"replicates": 50, "n": 20}, "limit is"),
        ({"perturbation": "given"}, "one list of perturbations"),
        ({"perturbation": "given", "perturbations": ["", " "]}, "at least one perturbed"),
        ({"perturbation": "given", "perturbations": "ok\nbad\x00"}, "NUL"),
        ({"temperature": -0.5}, "temperature"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, message):
    options = {"replicates": 2, "bootstraps": 2, **kwargs}
    perturbation = options.pop("perturbation", "paraphrase")
    with pytest.raises(ConfidantError, match=message):
        run_inv_entropy_batch(
            [QUESTION],
            FakeLM(reply="1. x y?\n2. y z?"),
            CharEmbedder(),
            perturbation=perturbation,
            perturbations=[options.pop("perturbations")] if "perturbations" in options else None,
            **options,
        )


# --------------------------------------------------------------------------- TSU


def test_tsu_reuses_perturbations_across_the_grid():
    lm = FakeLM(reply="1. One way to ask?\n2. Another way to ask?")
    sweep = inv_entropy_tsu(
        ["Who wrote Hamlet?", QUESTION], lm, CharEmbedder(), temperatures=(0.3, 0.7, 1.4),
        n=2, replicates=3, bootstraps=4, seed=1,
    )  # fmt: skip
    assert lm.calls == [(2, 1)] + [(6, 3)] * 3  # one paraphrase call, one answer call per T
    assert set(sweep.summary["inv_entropy"]) == {"TSU(0.3,1.4)", "TSU(0.7,1.4)", "TSU(0.3-1.4)"}
    assert np.array(sweep.values["inv_entropy"]).shape == (2, 3)
    assert all(0.0 <= v <= 100.0 for v in sweep.summary["semantic_entropy_discrete_all"].values())
    assert sweep.params["seed"] == 1


# --------------------------------------------------------------------------- black box


CSV_TABLE = """input,response
What is the capital of France?,Paris
What is the capital of France?,It is Paris.
Which city is the capital of France?,Paris
Which city is the capital of France?,The capital is Paris.
Name the French capital.,Paris
Name the French capital.,Paris
"""


def test_offline_table_formats_agree():
    rows = [
        {"input": "What is the capital of France?", "responses": ["Paris", "It is Paris."]},
        {"input": "Which city is the capital of France?", "response": "Paris"},
        {"input": "Which city is the capital of France?", "response": "The capital is Paris."},
        {"question": "Name the French capital.", "answer": "Paris"},
        {"question": "Name the French capital.", "answer": "Paris"},
    ]
    jsonl = "\n".join(json.dumps(r) for r in rows)
    tsv = CSV_TABLE.replace(",", "\t")
    expected = parse_offline_table(CSV_TABLE)
    assert parse_offline_table(jsonl) == expected == parse_offline_table(tsv)
    inputs, responses = expected
    assert inputs[0] == "What is the capital of France?" and len(inputs) == 3
    assert responses[1] == ["Paris", "The capital is Paris."]


def test_offline_table_from_a_file(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("\ufeff" + CSV_TABLE, encoding="utf-8")
    assert parse_offline_table(path=path) == parse_offline_table(CSV_TABLE)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "paste a CSV"),
        ("   \n", "paste a CSV"),
        ("input,reply\nq,a\nq2,b\n", "no response column"),
        ("prompt\nq\n", "no response column"),
        ('{"input": "q", "response": "a"}\n{broken', "line 2 is not valid JSON"),
        ("[1, 2]", "no input column"),
        ('{"input": "q", "responses": []}', "non-empty list"),
        ('{"input": "q", "response": 3}', "must be text"),
        ("input,response\nq,a\n", "two distinct inputs"),
        ("input,response\nq,a\nq,b\np,c\n", "same number of responses"),
        ("input,response\nq,a\np,\n", "response on row 3 is empty"),
        ("input,response\nq,a\np,b,c\n", "more cells"),
        ("input,response\nq,a\x00\np,b\n", "NUL"),
        ("input,response\nq," + "x" * 20_001 + "\np,b\n", "limit is"),
        ('input,response\nq,"unterminated\np,b\n', "same number|CSV"),
    ],
)
def test_offline_table_bad_input_is_a_clear_error(text, message):
    with pytest.raises(ConfidantError, match=message):
        parse_offline_table(text)


def test_formula_like_text_is_kept_as_plain_text():
    inputs, responses = parse_offline_table("input,response\n=1+1,=cmd|' /C calc'!A0\nq,b\n")
    assert inputs[0] == "=1+1" and responses[0] == ["=cmd|' /C calc'!A0"]


def test_black_box_mode_with_minilm(minilm):
    inputs, responses = parse_offline_table(CSV_TABLE)
    consistent = inv_entropy_offline(inputs, responses, minilm, bootstraps=10, seed=0)
    scattered = inv_entropy_offline(
        inputs,
        [["Paris", "Berlin"], ["A banana", "1945"], ["Blue whales", "Mount Everest"]],
        minilm,
        bootstraps=10,
        seed=0,
    )
    assert consistent.params["mode"] == "offline" and consistent.params["model"] is None
    assert consistent.params["embedding_model"] == minilm.model_id
    assert consistent.measures.inv_entropy < scattered.measures.inv_entropy
    assert scattered.semantic_entropy["discrete_all"] > consistent.semantic_entropy["discrete_all"]
    assert consistent.semantic_entropy["likelihood_all"] is None  # black box: no likelihoods
    assert len(consistent.measures.inv_entropy_per_bootstrap) == 10
    # the paraphrases of one question are close to it under (1 + cos)/2
    assert min(consistent.similarity_to_original) > 0.75
    with pytest.raises(ConfidantError, match="same, non-zero"):
        inv_entropy_offline(inputs, [["a"], ["b", "c"], ["d"]], minilm)


# --------------------------------------------------------------------------- GAAP


@pytest.mark.parametrize("source", ["auto", "embedding"])
def test_gaap_through_the_pipeline_gives_exactly_n_within_the_rule(minilm, source):
    options = {"max_generations": 2, "population_size": 10, "source": source, "delta": 0.7}
    run = run_inv_entropy(
        QUESTION, FakeLM(), minilm, perturbation="gaap", n=6, replicates=2, bootstraps=3,
        seed=3, gaap_options=options,
    )  # fmt: skip
    details = run.perturbation.details
    assert run.perturbation.method == "gaap" and len(run.perturbation.perturbations) == 6
    assert len(run.inputs) == 7
    assert all(s >= 0.7 for s in details["similarities"])
    # the pipeline's own S_x uses the same rule, (1 + cos)/2, on the same embedding model
    assert min(run.similarity_to_original[1:]) >= 0.7 - 1e-4
    assert run.perturbation.source == details["substitution_source"]
    assert run.params["perturbation_source"] == run.perturbation.source
    if source == "auto":
        return
    assert run.perturbation.source == "embedding"
    again = run_inv_entropy(
        QUESTION, FakeLM(), minilm, perturbation="gaap", n=6, replicates=2, bootstraps=3,
        seed=3, gaap_options=options,
    )  # fmt: skip
    assert again.perturbation.perturbations == run.perturbation.perturbations


def test_gaap_falls_back_to_llm_substitutes(minilm, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIDANT_WORDNET_DIR", str(tmp_path))
    monkeypatch.setattr("uq.inv.wordnet._WORDNET_CANDIDATES", ())
    run = run_inv_entropy(
        QUESTION, FakeLM(), minilm, perturbation="gaap", n=3, replicates=2, bootstraps=2,
        gaap_options={"max_generations": 2, "population_size": 8},
    )  # fmt: skip
    assert run.perturbation.source == "llm"
    assert len(run.perturbation.perturbations) == 3
