"""The Inv-Entropy pipeline: perturb the question, answer every input r times, measure.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy: A Fully Probabilistic Framework for
Uncertainty Quantification in Language Models", arXiv 2506.09684, Algorithm 1.

1. Perturb the question x_0 into n versions (default 9): LLM paraphrases (one ``generate``
   call, parsed to exactly n), GAAP (:func:`uq.perturb.gaap`; WordNet substitutes when a
   database is installed, else the LLM's or the embedding model's), or the user's own list.
2. Answer all n+1 inputs r times each (default 5) — every input of every question in batched
   ``sample_batch`` calls, seeded.
3. Compute the heavy statistics once: S_x over the inputs and ONE similarity matrix over all
   (n+1)·r responses, from sentence embeddings ((1 + cos)/2 as in the paper, or |cos| as in the
   authors' code) or from NLI entailment probabilities averaged over both directions.
4. Every measure reads those statistics: B seeded bootstraps (default 20) index into the
   response matrix (:func:`uq.inv_entropy.inv_entropy_from_responses`) for Inv-Entropy,
   NI-Entropy, NR-Inv-Entropy, WD-px-py and MAX-py-x; semantic entropy of the same responses
   clusters them with the same similarity (the NLI labels already computed, or an embedding
   cosine threshold) — no model is called again.

Offline, black-box use needs no generator: :func:`parse_offline_table` reads perturbed questions
and their responses (CSV or JSONL) and :func:`inv_entropy_offline` measures them.

Example (no generator; the bundled embedding model)::

    from backends.embeddings import SentenceEmbedder
    from uq.inv_pipeline import inv_entropy_offline, parse_offline_table

    inputs, responses = parse_offline_table(
        "input,response\\n"
        "What is the capital of France?,Paris\\n"
        "What is the capital of France?,Paris.\\n"
        "Which city is France's capital?,Paris\\n"
        "Which city is France's capital?,Lyon\\n"
    )
    run = inv_entropy_offline(inputs, responses, SentenceEmbedder())
    run.measures.inv_entropy, run.semantic_entropy["discrete_all"]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import ConfidantError, Generation, LanguageModel, SamplingParams
from uq.inv_entropy import (
    InvEntropyResult,
    absolute_cosine_similarity,
    bootstrap_output_similarities,
    draw_bootstrap_indices,
    dual_random_walk,
    entailment_similarity,
    inv_entropy_from_responses,
    shifted_cosine_similarity,
)
from uq.perturb import (
    DEFAULT_N_PERTURBATIONS,
    PARAPHRASE_SYSTEM_PROMPT,
    gaap,
    paraphrase_prompt,
    parse_paraphrases,
)
from uq.semantic_entropy import (
    ENTAILMENT,
    NEUTRAL,
    cluster_texts,
    discrete_semantic_entropy,
    number_of_semantic_sets,
    semantic_entropy,
)
from uq.tsu import DEFAULT_TSU_TEMPERATURES, TsuSweep, temperature_sweep

__all__ = [
    "DEFAULT_ANSWER_INSTRUCTION",
    "DEFAULT_BOOTSTRAPS",
    "DEFAULT_REPLICATES",
    "DEFAULT_SE_COSINE_THRESHOLD",
    "MEASURE_DESCRIPTIONS",
    "PERTURBATION_METHODS",
    "SIMILARITIES",
    "InvEntropyRun",
    "Perturbation",
    "answer_prompt",
    "check_options",
    "clean_response",
    "gaap_perturbation",
    "generate_responses",
    "given_perturbation",
    "inv_entropy_offline",
    "inv_entropy_tsu",
    "llm_substitutes",
    "measure_values",
    "paraphrase_questions",
    "parse_offline_table",
    "perturb_questions",
    "run_inv_entropy",
    "run_inv_entropy_batch",
    "similarity_statistics",
]

DEFAULT_REPLICATES = 5
DEFAULT_BOOTSTRAPS = 20
DEFAULT_ANSWER_INSTRUCTION = "Answer concisely."
DEFAULT_SE_COSINE_THRESHOLD = 0.85
PARAPHRASE_TEMPERATURE = 0.7  # the authors' paraphrasing call (gpt-3.5-turbo, T = 0.7)

SIMILARITIES = {
    "embedding": "sentence-embedding cosine mapped to (1 + cos)/2 (the paper)",
    "embedding_abs": "sentence-embedding |cos| (the authors' code and package)",
    "nli": "NLI entailment probability averaged over both directions",
}
PERTURBATION_METHODS = ("paraphrase", "gaap", "given")

MEASURE_DESCRIPTIONS = {
    "inv_entropy": "Inv-Entropy: mean over bootstraps of −Σ p(x_i|y_i) ln p(x_i|y_i); "
    "higher when the answers do not point back to their own inputs.",
    "ni_entropy": "NI-Entropy: the same entropy of the forward conditional p(y_i|x_i) "
    "(by Bayes), the non-inverse variant.",
    "nr_inv_entropy": "NR-Inv-Entropy: Inv-Entropy from one response per input "
    "(replicate 1), no bootstrap.",
    "wd_px_py": "WD-px-py: Wasserstein distance between the values of p(X) and p(Y).",
    "max_py_x": "MAX-py-x: max_i p(y_i|x_i), the paper's definition (a confidence: higher "
    "means the best input-answer pair is more certain).",
}

MAX_TEXT_CHARS = 20_000
MAX_INPUTS = 51
MAX_REPLICATES = 50
MAX_BOOTSTRAPS = 10_000
MAX_RESPONSES = 600
MAX_NLI_DISTINCT_RESPONSES = 150
MAX_OFFLINE_BYTES = 5_000_000

Embed = Callable[[list[str]], np.ndarray]


# --------------------------------------------------------------------------- validation


def _positive_int(value: Any, name: str, upper: int) -> int:
    if isinstance(value, bool):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= int(number) <= upper:
        raise ConfidantError(f"{name} must be between 1 and {upper}, got {int(number)}")
    return int(number)


def _seed(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ConfidantError(f"the seed must be a whole number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"the seed must be a whole number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number) or not 0 <= number < 2**32:
        raise ConfidantError(f"the seed must be a whole number in [0, 2³²), got {value!r}")
    return int(number)


def _text(value: Any, what: str) -> str:
    if value is None or not isinstance(value, str):
        raise ConfidantError(f"{what} must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise ConfidantError(f"{what} contains a NUL character; remove it and try again")
    text = "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()
    if not text:
        raise ConfidantError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ConfidantError(
            f"{what} is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}"
        )
    return text


def _similarity_name(similarity: str) -> str:
    if similarity not in SIMILARITIES:
        raise ConfidantError(
            f"unknown similarity {similarity!r}; use one of {', '.join(SIMILARITIES)}"
        )
    return similarity


# --------------------------------------------------------------------------- perturbations


@dataclass
class Perturbation:
    """The n perturbed versions of one question and how they were made.

    ``method`` is "paraphrase", "gaap" or "given"; ``source`` says where the words came from
    ("llm" for paraphrases; "wordnet", "embedding", "llm" or "custom" for GAAP substitutes;
    "user" for a given list). ``details`` holds the paraphrase prompt and raw reply, or the
    whole GAAP record (:class:`uq.perturb.GaapResult`).
    """

    method: str
    perturbations: list[str]
    source: str
    seed: int | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Perturbation:
        return cls(
            method=data["method"],
            perturbations=list(data["perturbations"]),
            source=data["source"],
            seed=data.get("seed"),
            details=dict(data.get("details", {})),
        )


def paraphrase_questions(
    lm: LanguageModel,
    questions: Sequence[str],
    n: int = DEFAULT_N_PERTURBATIONS,
    *,
    seed: int = 0,
    temperature: float = PARAPHRASE_TEMPERATURE,
    max_new_tokens: int | None = None,
) -> list[Perturbation]:
    """n LLM paraphrases of every question, from ONE batched ``sample_batch`` call.

    The prompt is :data:`uq.perturb.PARAPHRASE_SYSTEM_PROMPT` followed by
    :func:`uq.perturb.paraphrase_prompt` (Song et al. 2025, Appendix); each reply is read by
    :func:`uq.perturb.parse_paraphrases`, which forces exactly n (random duplication if fewer,
    seeded sampling if more). ``max_new_tokens`` defaults to 24 per paraphrase plus 32.
    """
    n = _positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
    if max_new_tokens is None:
        max_new_tokens = 24 * n + 32
    seed = _seed(seed)
    questions = list(questions)
    prompts = [f"{PARAPHRASE_SYSTEM_PROMPT}\n\n{paraphrase_prompt(q, n)}" for q in questions]
    params = SamplingParams(
        n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    ).validate()
    replies = lm.sample_batch(prompts, params)
    out = []
    for index, (question, prompt, reply) in enumerate(
        zip(questions, prompts, replies, strict=True)
    ):
        text = reply[0].text
        try:
            items = parse_paraphrases(text, n, seed=seed, question=question)
        except ConfidantError as exc:
            where = f" for question {index + 1}" if len(questions) > 1 else ""
            raise ConfidantError(
                f"the model's paraphrase reply{where} held no usable paraphrase ({exc}); "
                "try GAAP or give your own perturbations"
            ) from exc
        out.append(
            Perturbation(
                method="paraphrase",
                perturbations=items,
                source="llm",
                seed=seed,
                details={
                    "prompt": prompt,
                    "reply": text,
                    "n_distinct": len(dict.fromkeys(items)),
                    "temperature": temperature,
                    "max_new_tokens": max_new_tokens,
                    "generation_seed": params.seed,
                },
            )
        )
    return out


def llm_substitutes(
    lm: LanguageModel, *, k: int = 8, max_new_tokens: int = 48
) -> Callable[[str], list[str]]:
    """GAAP substitution sets from an LLM: one greedy call per key word, parsed as a list.

    The fallback of Song et al. (2025, §2.6) when no WordNet database is installed: the model
    is asked for synonyms, broader and narrower terms; lines longer than three words are
    dropped. Results are cached per word.
    """
    cache: dict[str, list[str]] = {}

    def substitutes(word: str) -> list[str]:
        if word not in cache:
            prompt = (
                f"List {k} single words or short phrases that could replace the word "
                f"'{word}' in a question: synonyms, broader terms and narrower terms. "
                "One per line, no other text."
            )
            reply = lm.greedy(prompt, max_new_tokens=max_new_tokens).text
            try:
                items = parse_paraphrases(reply, k, seed=0, question=word)
            except ConfidantError:
                items = []
            cache[word] = [i for i in dict.fromkeys(items) if 0 < len(i.split()) <= 3][:k]
        return cache[word]

    return substitutes


def gaap_perturbation(
    question: str,
    embed: Embed,
    n: int = DEFAULT_N_PERTURBATIONS,
    *,
    seed: int = 0,
    lm: LanguageModel | None = None,
    similarity_rule: str = "shifted",
    **options: Any,
) -> Perturbation:
    """n GAAP perturbations (:func:`uq.perturb.gaap`, Song et al. 2025, §2.6 and App. C).

    Fitness and the δ rule use the embedding model with ``similarity_rule`` ("shifted" =
    (1 + cos)/2, "absolute" = |cos|). Substitutes: WordNet when installed, else the LLM's
    (when ``lm`` is given), else the embedding model's nearest words; ``options`` go to
    :func:`uq.perturb.gaap` (``delta``, ``max_generations``, ``source``, ...).
    """
    n = _positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
    seed = _seed(seed)
    result = gaap(
        question,
        embed,
        n,
        seed=seed,
        llm_substitutes=llm_substitutes(lm) if lm is not None else None,
        similarity_rule=similarity_rule,
        **options,
    )
    return Perturbation(
        method="gaap",
        perturbations=list(result.perturbations),
        source=result.substitution_source,
        seed=seed,
        details=result.to_dict(),
    )


def given_perturbation(perturbations: Sequence[str] | str) -> Perturbation:
    """The user's own perturbations, used as given (a list, or text with one per line)."""
    if isinstance(perturbations, str):
        if "\x00" in perturbations:
            raise ConfidantError("the perturbations contain a NUL character; remove it")
        perturbations = perturbations.splitlines()
    kept = [p for p in perturbations or [] if not (isinstance(p, str) and not p.strip())]
    items = [_text(p, f"perturbation {i + 1}") for i, p in enumerate(kept)]
    if not items:
        raise ConfidantError("give at least one perturbed question (one per line)")
    if len(items) > MAX_INPUTS - 1:
        raise ConfidantError(f"at most {MAX_INPUTS - 1} perturbations, got {len(items)}")
    return Perturbation(method="given", perturbations=items, source="user")


def perturb_questions(
    questions: Sequence[str],
    method: str = "paraphrase",
    *,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int = 0,
    lm: LanguageModel | None = None,
    embed: Embed | None = None,
    perturbations: Sequence[Sequence[str] | str] | None = None,
    similarity_rule: str = "shifted",
    gaap_options: dict | None = None,
    paraphrase_max_new_tokens: int | None = None,
) -> list[Perturbation]:
    """Perturbations of every question by ``method`` ("paraphrase", "gaap" or "given").

    ``perturbations`` (for "given") holds one list (or newline-separated text) per question.
    Paraphrases of all questions come from one batched call; GAAP runs per question.
    """
    if method not in PERTURBATION_METHODS:
        raise ConfidantError(
            f"unknown perturbation method {method!r}; use one of {', '.join(PERTURBATION_METHODS)}"
        )
    if method == "given":
        if perturbations is None or len(perturbations) != len(questions):
            raise ConfidantError("give one list of perturbations per question")
        return [given_perturbation(p) for p in perturbations]
    if method == "paraphrase":
        if lm is None:
            raise ConfidantError("paraphrasing needs a generator model")
        return paraphrase_questions(
            lm, questions, n, seed=seed, max_new_tokens=paraphrase_max_new_tokens
        )
    if embed is None:
        raise ConfidantError("GAAP needs an embedding model")
    return [
        gaap_perturbation(
            q, embed, n, seed=seed, lm=lm, similarity_rule=similarity_rule, **(gaap_options or {})
        )
        for q in questions
    ]


# --------------------------------------------------------------------------- responses


def answer_prompt(question: str, instruction: str = DEFAULT_ANSWER_INSTRUCTION) -> str:
    """The prompt an input is answered with: the question, then a short instruction.

    The authors append "Answer concisely and return only the name." for TriviaQA
    (``respond.py``); the default here is the general "Answer concisely.".
    """
    return f"{question.strip()} {instruction.strip()}".strip()


def clean_response(text: str) -> str:
    """The first non-empty line of an answer, stripped (the paper's output cleaning)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def generate_responses(
    lm: LanguageModel,
    inputs_per_question: Sequence[Sequence[str]],
    replicates: int,
    params: SamplingParams,
    instruction: str = DEFAULT_ANSWER_INSTRUCTION,
) -> list[list[list[Generation]]]:
    """r answers to every input of every question in batched ``sample_batch`` calls.

    All (questions × inputs) prompts go to ONE ``sample_batch`` with ``n = replicates``; the
    backend splits it into generate calls of at most its batch size. Returns
    ``[question][input][replicate]``. ``params.seed`` is written back when it was None.
    """
    flat = [answer_prompt(x, instruction) for inputs in inputs_per_question for x in inputs]
    params.n = replicates
    params.validate()
    answers = lm.sample_batch(flat, params)
    out: list[list[list[Generation]]] = []
    at = 0
    for inputs in inputs_per_question:
        out.append([list(answers[at + i]) for i in range(len(inputs))])
        at += len(inputs)
    return out


# --------------------------------------------------------------------------- similarities


def _nli_probability(nli: Any) -> Callable[[list[tuple[str, str]]], np.ndarray]:
    if hasattr(nli, "probs"):
        return nli.probs
    if callable(nli):
        return nli
    raise ConfidantError("the NLI model must have a probs(pairs) method or be callable")


def _embeddings(embed: Embed, texts: list[str]) -> dict[str, np.ndarray]:
    distinct = list(dict.fromkeys(texts))
    vectors = np.asarray(embed(distinct), dtype=float)
    if vectors.ndim != 2 or vectors.shape[0] != len(distinct):
        raise ConfidantError(
            f"the embedding model returned shape {vectors.shape} for {len(distinct)} texts"
        )
    if not np.all(np.isfinite(vectors)):
        raise ConfidantError("the embedding model returned NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ConfidantError("the embedding model returned a zero vector")
    return dict(zip(distinct, vectors / norms, strict=True))


def _cosine(vectors: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
    matrix = np.stack([vectors[t] for t in texts])
    cosine = np.clip(matrix @ matrix.T, -1.0, 1.0)
    np.fill_diagonal(cosine, 1.0)
    return cosine


def similarity_statistics(
    groups: Sequence[tuple[Sequence[str], Sequence[str]]],
    similarity: str = "embedding",
    *,
    embed: Embed | None = None,
    nli: Any = None,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
) -> list[dict[str, np.ndarray]]:
    """S_x, the full response-similarity matrix and the same-meaning labels, per question.

    ``groups`` holds (inputs, responses flattened input-major) per question. Embeddings: ONE
    ``embed`` call over every distinct text of every question; Sim = (1 + cos)/2
    ("embedding", the paper) or |cos| ("embedding_abs", the authors' code). NLI: ONE call over
    every ordered pair of distinct texts within each question; Sim = (E + Eᵀ)/2 with
    E[i, j] = p(i entails j) (Song et al. 2025, §3); identical strings count as E = 1.

    ``labels`` (responses × responses, 0/1/2) feed semantic-entropy clustering: the NLI argmax,
    or for embeddings ENTAILMENT where cos ≥ ``se_cosine_threshold`` and NEUTRAL elsewhere.
    """
    similarity = _similarity_name(similarity)
    if not 0.0 < float(se_cosine_threshold) <= 1.0:
        raise ConfidantError(
            f"the clustering cosine threshold must be in (0, 1], got {se_cosine_threshold}"
        )
    stats: list[dict[str, np.ndarray]] = []
    if similarity in ("embedding", "embedding_abs"):
        if embed is None:
            raise ConfidantError("embedding similarity needs an embedding model")
        every = [t for inputs, responses in groups for t in list(inputs) + list(responses)]
        vectors = _embeddings(embed, every)
        rule = (
            shifted_cosine_similarity if similarity == "embedding" else absolute_cosine_similarity
        )
        for inputs, responses in groups:
            response_cosine = _cosine(vectors, list(responses))
            labels = np.where(response_cosine >= se_cosine_threshold, ENTAILMENT, NEUTRAL)
            stats.append(
                {
                    "sim_x": rule(_cosine(vectors, list(inputs))),
                    "response_similarity": rule(response_cosine),
                    "labels": labels,
                }
            )
        return stats

    if nli is None:
        raise ConfidantError("NLI similarity needs an NLI model")
    probability = _nli_probability(nli)
    pair_index: dict[tuple[str, str], int] = {}
    for inputs, responses in groups:
        for texts in (inputs, responses):
            distinct = list(dict.fromkeys(texts))
            if len(distinct) > MAX_NLI_DISTINCT_RESPONSES:
                raise ConfidantError(
                    f"NLI similarity over {len(distinct)} distinct texts needs "
                    f"{len(distinct) * (len(distinct) - 1):,} model calls; the limit is "
                    f"{MAX_NLI_DISTINCT_RESPONSES} texts — use embedding similarity"
                )
            for a in distinct:
                for b in distinct:
                    if a != b:
                        pair_index.setdefault((a, b), len(pair_index))
    pairs = list(pair_index)
    probs = np.asarray(probability(pairs), dtype=float) if pairs else np.zeros((0, 3))
    if probs.shape != (len(pairs), 3) or not np.all(np.isfinite(probs)):
        raise ConfidantError(f"the NLI model returned shape {probs.shape} for {len(pairs)} pairs")

    def matrices(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        size = len(texts)
        entail = np.ones((size, size))
        labels = np.full((size, size), ENTAILMENT)
        for i, a in enumerate(texts):
            for j, b in enumerate(texts):
                if a != b:
                    row = probs[pair_index[(a, b)]]
                    entail[i, j] = row[ENTAILMENT]
                    labels[i, j] = int(np.argmax(row))
        return entailment_similarity(np.clip(entail, 0.0, 1.0)), labels

    for inputs, responses in groups:
        sim_x, _ = matrices(list(inputs))
        response_similarity, labels = matrices(list(responses))
        stats.append({"sim_x": sim_x, "response_similarity": response_similarity, "labels": labels})
    return stats


def _semantic_entropy(
    responses: list[str],
    labels: np.ndarray,
    replicates: int,
    mean_logprobs: list[float] | None,
) -> dict[str, Any]:
    """Semantic entropy of the same responses, clustered from labels already computed."""

    def clustering(indices: list[int]) -> list[int]:
        texts = [responses[i] for i in indices]
        return cluster_texts(
            texts, lambda pairs: [int(labels[indices[a], indices[b]]) for a, b in pairs]
        ).cluster_ids

    everything = list(range(len(responses)))
    original = list(range(replicates))
    ids_all, ids_original = clustering(everything), clustering(original)
    out: dict[str, Any] = {
        "cluster_ids_all": ids_all,
        "cluster_ids_original": ids_original,
        "n_clusters_all": number_of_semantic_sets(ids_all),
        "n_clusters_original": number_of_semantic_sets(ids_original),
        "discrete_all": discrete_semantic_entropy(ids_all),
        "discrete_original": discrete_semantic_entropy(ids_original),
        "likelihood_all": None,
        "likelihood_original": None,
    }
    if mean_logprobs is not None:
        out["likelihood_all"] = semantic_entropy(ids_all, mean_logprobs)
        out["likelihood_original"] = semantic_entropy(ids_original, mean_logprobs[:replicates])
    return out


# --------------------------------------------------------------------------- result


@dataclass
class InvEntropyRun:
    """Everything one question's Inv-Entropy run produced, and every parameter behind it.

    ``inputs[0]`` is the question, ``inputs[1:]`` its perturbations; ``responses[i][k]`` is
    replicate k for input i. ``sim_x`` is S_x; ``response_similarity`` is the one matrix over all
    responses (input-major); ``mean_sim_y`` and ``mean_p_x_given_y`` average S_y⁽ᵇ⁾ and
    p(x_i|y_j) (row j, column i) over the bootstraps. ``semantic_entropy`` holds semantic
    entropy of the same responses: over the r answers to the original question (``*_original``)
    and over all (n+1)·r answers (``*_all``), discrete and, with likelihoods, weighted.
    ``generations`` (the raw answers with token records) is kept out of :meth:`to_dict` unless
    asked for, since the store saves generations separately.
    """

    question: str
    inputs: list[str]
    responses: list[list[str]]
    sim_x: list[list[float]]
    response_similarity: list[list[float]]
    mean_sim_y: list[list[float]]
    mean_p_x_given_y: list[list[float]]
    measures: InvEntropyResult
    semantic_entropy: dict
    perturbation: Perturbation
    params: dict
    response_mean_logprobs: list[list[float]] | None = None
    generations: list[list[Generation]] | None = None

    @property
    def similarity_to_original(self) -> list[float]:
        """S_x[0, i]: how close each input is to the original question."""
        return list(self.sim_x[0])

    def to_dict(self, with_generations: bool = False) -> dict:
        out = {
            "question": self.question,
            "inputs": self.inputs,
            "responses": self.responses,
            "sim_x": self.sim_x,
            "response_similarity": self.response_similarity,
            "mean_sim_y": self.mean_sim_y,
            "mean_p_x_given_y": self.mean_p_x_given_y,
            "measures": self.measures.to_dict(),
            "semantic_entropy": self.semantic_entropy,
            "perturbation": self.perturbation.to_dict(),
            "params": self.params,
            "response_mean_logprobs": self.response_mean_logprobs,
        }
        if with_generations and self.generations is not None:
            out["generations"] = [[g.to_dict() for g in row] for row in self.generations]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> InvEntropyRun:
        generations = data.get("generations")
        return cls(
            question=data["question"],
            inputs=list(data["inputs"]),
            responses=[list(r) for r in data["responses"]],
            sim_x=data["sim_x"],
            response_similarity=data["response_similarity"],
            mean_sim_y=data["mean_sim_y"],
            mean_p_x_given_y=data["mean_p_x_given_y"],
            measures=InvEntropyResult.from_dict(data["measures"]),
            semantic_entropy=dict(data["semantic_entropy"]),
            perturbation=Perturbation.from_dict(data["perturbation"]),
            params=dict(data["params"]),
            response_mean_logprobs=data.get("response_mean_logprobs"),
            generations=(
                [[Generation.from_dict(g) for g in row] for row in generations]
                if generations
                else None
            ),
        )


def measure_values(run: InvEntropyRun) -> dict[str, float | None]:
    """Every uncertainty value of a run by name (Inv-Entropy family, then semantic entropy)."""
    m = run.measures
    se = run.semantic_entropy
    return {
        "inv_entropy": m.inv_entropy,
        "ni_entropy": m.ni_entropy,
        "nr_inv_entropy": m.nr_inv_entropy,
        "wd_px_py": m.wd_px_py,
        "max_py_x": m.max_py_x,
        "semantic_entropy_discrete_original": se["discrete_original"],
        "semantic_entropy_discrete_all": se["discrete_all"],
        "semantic_entropy_original": se["likelihood_original"],
        "semantic_entropy_all": se["likelihood_all"],
    }


def _measure(
    question: str,
    perturbation: Perturbation,
    responses: list[list[str]],
    stats: dict[str, np.ndarray],
    *,
    bootstraps: int,
    seed: int,
    params: dict,
    mean_logprobs: list[list[float]] | None = None,
    generations: list[list[Generation]] | None = None,
) -> InvEntropyRun:
    inputs = [question] + list(perturbation.perturbations)
    replicates = len(responses[0])
    flat = [text for row in responses for text in row]
    measures = inv_entropy_from_responses(
        stats["sim_x"], stats["response_similarity"], replicates, bootstraps, seed
    )
    indices = np.asarray(measures.bootstrap_indices)
    walks = [
        dual_random_walk(stats["sim_x"], s)
        for s in bootstrap_output_similarities(stats["response_similarity"], indices)
    ]
    flat_logprobs = [v for row in mean_logprobs for v in row] if mean_logprobs else None
    return InvEntropyRun(
        question=question,
        inputs=inputs,
        responses=responses,
        sim_x=stats["sim_x"].tolist(),
        response_similarity=stats["response_similarity"].tolist(),
        mean_sim_y=np.mean(
            bootstrap_output_similarities(stats["response_similarity"], indices), axis=0
        ).tolist(),
        mean_p_x_given_y=np.mean([w.p_x_given_y for w in walks], axis=0).tolist(),
        measures=measures,
        semantic_entropy=_semantic_entropy(flat, stats["labels"], replicates, flat_logprobs),
        perturbation=perturbation,
        params=params,
        response_mean_logprobs=mean_logprobs,
        generations=generations,
    )


def _check_sizes(n_inputs: int, replicates: int, bootstraps: int) -> None:
    if n_inputs * replicates > MAX_RESPONSES:
        raise ConfidantError(
            f"{n_inputs} inputs × {replicates} replicates = {n_inputs * replicates} responses; "
            f"the limit is {MAX_RESPONSES}"
        )
    draw_bootstrap_indices(n_inputs, replicates, bootstraps, 0)  # validates the counts


def _se_rule(similarity: str, threshold: float) -> str:
    if similarity == "nli":
        return "NLI labels, entailment both ways"
    return f"embedding cosine ≥ {threshold}"


def check_options(
    *,
    perturbation: str = "paraphrase",
    n: Any = DEFAULT_N_PERTURBATIONS,
    replicates: Any = DEFAULT_REPLICATES,
    similarity: str = "embedding",
    bootstraps: Any = DEFAULT_BOOTSTRAPS,
    seed: Any = 0,
) -> dict[str, Any]:
    """The run options validated and normalised, before any model is loaded.

    Raises :class:`ConfidantError` naming the first option a user typed wrong.
    """
    if perturbation not in PERTURBATION_METHODS:
        raise ConfidantError(
            f"unknown perturbation method {perturbation!r}; use one of "
            f"{', '.join(PERTURBATION_METHODS)}"
        )
    options = {
        "perturbation": perturbation,
        "n": _positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1),
        "replicates": _positive_int(replicates, "r (replicates per input)", MAX_REPLICATES),
        "similarity": _similarity_name(similarity),
        "bootstraps": _positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS),
        "seed": _seed(seed),
    }
    if perturbation != "given":
        _check_sizes(options["n"] + 1, options["replicates"], options["bootstraps"])
    return options


def _model_name(obj: Any) -> str | None:
    return getattr(obj, "model_id", None) if obj is not None else None


def run_inv_entropy_batch(
    questions: Sequence[str],
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    perturbation: str = "paraphrase",
    perturbations: Sequence[Sequence[str] | str] | None = None,
    perturbed: Sequence[Perturbation] | None = None,
    n: int = DEFAULT_N_PERTURBATIONS,
    replicates: int = DEFAULT_REPLICATES,
    similarity: str = "embedding",
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    seed: int = 0,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 32,
    instruction: str = DEFAULT_ANSWER_INSTRUCTION,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
    gaap_options: dict | None = None,
    paraphrase_max_new_tokens: int | None = None,
) -> list[InvEntropyRun]:
    """Inv-Entropy for several questions, every heavy step batched across them.

    One paraphrase ``sample_batch`` for all questions (or GAAP per question, or the given
    lists; ``perturbed`` reuses perturbations made earlier, e.g. across a temperature grid),
    ONE ``sample_batch`` answering every input of every question r times, one embedding call
    (or one NLI call) for all similarities, then every measure per question from those
    statistics. The same ``seed`` drives perturbation, generation and bootstraps; each run
    records it. Reproducing a run needs the same batch of questions.
    """
    questions = [_text(q, "the question") for q in questions]
    if not questions:
        raise ConfidantError("give at least one question")
    similarity = _similarity_name(similarity)
    replicates = _positive_int(replicates, "r (replicates per input)", MAX_REPLICATES)
    bootstraps = _positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS)
    seed = _seed(seed)
    rule = "absolute" if similarity == "embedding_abs" else "shifted"
    if perturbed is None:
        if perturbation != "given":
            n = _positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
        perturbed = perturb_questions(
            questions,
            perturbation,
            n=n,
            seed=seed,
            lm=lm,
            embed=embed,
            perturbations=perturbations,
            similarity_rule=rule,
            gaap_options=gaap_options,
            paraphrase_max_new_tokens=paraphrase_max_new_tokens,
        )
    perturbed = list(perturbed)
    if len(perturbed) != len(questions):
        raise ConfidantError("give one perturbation set per question")
    inputs_per_question = [
        [q] + list(p.perturbations) for q, p in zip(questions, perturbed, strict=True)
    ]
    for inputs in inputs_per_question:
        _check_sizes(len(inputs), replicates, bootstraps)
    params = SamplingParams(
        n=replicates,
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=int(max_new_tokens),
        seed=seed,
    ).validate()
    generations = generate_responses(lm, inputs_per_question, replicates, params, instruction)
    responses = [[[clean_response(g.text) for g in row] for row in q] for q in generations]
    stats = similarity_statistics(
        [
            (inputs, [t for row in answers for t in row])
            for inputs, answers in zip(inputs_per_question, responses, strict=True)
        ],
        similarity,
        embed=embed,
        nli=nli,
        se_cosine_threshold=se_cosine_threshold,
    )
    runs = []
    for question, p, gens, answers, stat in zip(
        questions, perturbed, generations, responses, stats, strict=True
    ):
        run_params = {
            "mode": "generate",
            "perturbation": p.method,
            "perturbation_source": p.source,
            "n": len(p.perturbations),
            "replicates": replicates,
            "similarity": similarity,
            "similarity_rule": SIMILARITIES[similarity],
            "bootstraps": bootstraps,
            "seed": seed,
            "perturbation_seed": p.seed,
            "generation_seed": params.seed,
            "bootstrap_seed": seed,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_new_tokens": params.max_new_tokens,
            "instruction": instruction,
            "se_cosine_threshold": se_cosine_threshold if similarity != "nli" else None,
            "se_rule": _se_rule(similarity, se_cosine_threshold),
            "model": _model_name(lm),
            "embedding_model": _model_name(embed),
            "nli_model": _model_name(nli) if similarity == "nli" else None,
            "batch_questions": len(questions),
            "gaap_options": dict(gaap_options or {}),
        }
        runs.append(
            _measure(
                question,
                p,
                answers,
                stat,
                bootstraps=bootstraps,
                seed=seed,
                params=run_params,
                mean_logprobs=[[g.mean_logprob for g in row] for row in gens],
                generations=gens,
            )
        )
    return runs


def run_inv_entropy(
    question: str,
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    perturbation: str = "paraphrase",
    perturbations: Sequence[str] | str | None = None,
    **options: Any,
) -> InvEntropyRun:
    """Inv-Entropy and its variants for one question (Song et al. 2025, Algorithm 1).

    ``perturbation``: "paraphrase" (default, n = 9 LLM paraphrases), "gaap" or "given" (with
    ``perturbations``). Options as in :func:`run_inv_entropy_batch` (n, replicates = 5,
    similarity = "embedding", bootstraps = 20, seed = 0, temperature = 0.7, ...).
    """
    return run_inv_entropy_batch(
        [question],
        lm,
        embed,
        nli,
        perturbation=perturbation,
        perturbations=[perturbations] if perturbation == "given" else None,
        **options,
    )[0]


# --------------------------------------------------------------------------- black box


_INPUT_COLUMNS = ("input", "question", "perturbation", "prompt")
_RESPONSE_COLUMNS = ("response", "answer", "output")


def _column(names: Sequence[str], wanted: Sequence[str], what: str) -> str:
    lowered = {str(n).strip().lower(): n for n in names if n is not None}
    for name in wanted:
        if name in lowered:
            return lowered[name]
    raise ConfidantError(
        f"no {what} column; name one of: {', '.join(wanted)} (found: "
        f"{', '.join(str(n) for n in names if n) or 'none'})"
    )


def _rows_from_jsonl(text: str) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ConfidantError(f"line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ConfidantError(f"line {number} must be a JSON object")
        key = _column(list(record), _INPUT_COLUMNS, f"input field on line {number}")
        if "responses" in record:
            answers = record["responses"]
            if not isinstance(answers, list) or not answers:
                raise ConfidantError(f"line {number}: 'responses' must be a non-empty list")
        else:
            answers = [
                record[_column(list(record), _RESPONSE_COLUMNS, f"response field on line {number}")]
            ]
        rows.append(
            (
                _text(record[key], f"the input on line {number}"),
                [_text(a, f"a response on line {number}") for a in answers],
            )
        )
    return rows


def _rows_from_csv(text: str) -> list[tuple[str, list[str]]]:
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, strict=True)
        fields = reader.fieldnames or []
        input_key = _column(fields, _INPUT_COLUMNS, "input")
        response_key = _column(fields, _RESPONSE_COLUMNS, "response")
        rows = []
        for number, record in enumerate(reader, start=2):
            if None in record:
                raise ConfidantError(f"row {number} has more cells than the header")
            rows.append(
                (
                    _text(record.get(input_key), f"the input on row {number}"),
                    [_text(record.get(response_key), f"the response on row {number}")],
                )
            )
    except csv.Error as exc:
        raise ConfidantError(f"the CSV could not be read: {exc}") from None
    return rows


def parse_offline_table(
    text: str | None = None, path: str | Path | None = None
) -> tuple[list[str], list[list[str]]]:
    """Perturbed questions and their responses from CSV or JSONL (pasted text or a file).

    CSV: a header with an input column (``input``, ``question``, ``perturbation`` or
    ``prompt``) and a response column (``response``, ``answer`` or ``output``), one response
    per row. JSONL: one object per line with an input field and ``response`` (one) or
    ``responses`` (a list). The first input listed is the original question; rows of the same
    input are its replicates, and every input needs the same number of them (at least two
    inputs). Returns (inputs, responses[input][replicate]); bad input raises
    :class:`ConfidantError` naming the line.
    """
    if (text is None or not str(text).strip()) and path is None:
        raise ConfidantError("paste a CSV or JSONL table, or upload a file")
    if path is not None and (text is None or not str(text).strip()):
        file = Path(path)
        if not file.is_file():
            raise ConfidantError(f"no file at {file}")
        if file.stat().st_size > MAX_OFFLINE_BYTES:
            raise ConfidantError(f"the file is larger than {MAX_OFFLINE_BYTES // 1_000_000} MB")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ConfidantError("the file is not UTF-8 text") from None
    text = str(text)
    if len(text.encode("utf-8", errors="replace")) > MAX_OFFLINE_BYTES:
        raise ConfidantError(f"the table is larger than {MAX_OFFLINE_BYTES // 1_000_000} MB")
    if "\x00" in text:
        raise ConfidantError("the table contains a NUL character; remove it")
    text = text.lstrip("\ufeff").strip()
    rows = _rows_from_jsonl(text) if text.startswith("{") else _rows_from_csv(text)
    grouped: dict[str, list[str]] = {}
    for question, answers in rows:
        grouped.setdefault(question, []).extend(answers)
    if len(grouped) < 2:
        raise ConfidantError(
            "need the original question and at least one perturbation (two distinct inputs)"
        )
    if len(grouped) > MAX_INPUTS:
        raise ConfidantError(f"at most {MAX_INPUTS} distinct inputs, got {len(grouped)}")
    counts = {len(a) for a in grouped.values()}
    if len(counts) != 1:
        detail = ", ".join(f"{q[:40]!r}: {len(a)}" for q, a in grouped.items())
        raise ConfidantError(
            f"every input needs the same number of responses (replicates); got {detail}"
        )
    inputs, responses = list(grouped), list(grouped.values())
    if len(inputs) * len(responses[0]) > MAX_RESPONSES:
        raise ConfidantError(f"at most {MAX_RESPONSES} responses in all")
    return inputs, responses


def inv_entropy_offline(
    inputs: Sequence[str],
    responses: Sequence[Sequence[str]],
    embed: Embed | None = None,
    nli: Any = None,
    *,
    similarity: str = "embedding",
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    seed: int = 0,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
) -> InvEntropyRun:
    """Every measure from user-supplied perturbed questions and responses; no generator.

    ``inputs[0]`` is the original question; ``responses[i]`` are input i's replicates (equal
    counts). Same statistics and measures as :func:`run_inv_entropy`; semantic entropy is the
    discrete (count-based) one, since black-box answers carry no likelihoods (§5 of the issue;
    Song et al. 2025 run GPT-3.5 as a black box the same way).
    """
    inputs = [_text(x, f"input {i + 1}") for i, x in enumerate(inputs)]
    if len(inputs) < 2:
        raise ConfidantError("need the original question and at least one perturbation")
    if len(responses) != len(inputs):
        raise ConfidantError(f"{len(inputs)} inputs but {len(responses)} response lists")
    rows = [
        [_text(a, f"response {k + 1} of input {i + 1}") for k, a in enumerate(row)]
        for i, row in enumerate(responses)
    ]
    if not rows[0] or len({len(r) for r in rows}) != 1:
        raise ConfidantError("every input needs the same, non-zero number of responses")
    similarity = _similarity_name(similarity)
    bootstraps = _positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS)
    seed = _seed(seed)
    _check_sizes(len(inputs), len(rows[0]), bootstraps)
    stats = similarity_statistics(
        [(inputs, [t for row in rows for t in row])],
        similarity,
        embed=embed,
        nli=nli,
        se_cosine_threshold=se_cosine_threshold,
    )[0]
    params = {
        "mode": "offline",
        "perturbation": "given",
        "perturbation_source": "user",
        "n": len(inputs) - 1,
        "replicates": len(rows[0]),
        "similarity": similarity,
        "similarity_rule": SIMILARITIES[similarity],
        "bootstraps": bootstraps,
        "seed": seed,
        "bootstrap_seed": seed,
        "se_cosine_threshold": se_cosine_threshold if similarity != "nli" else None,
        "se_rule": _se_rule(similarity, se_cosine_threshold),
        "model": None,
        "embedding_model": _model_name(embed),
        "nli_model": _model_name(nli) if similarity == "nli" else None,
    }
    return _measure(
        inputs[0],
        Perturbation(method="given", perturbations=inputs[1:], source="user"),
        rows,
        stats,
        bootstraps=bootstraps,
        seed=seed,
        params=params,
    )


# --------------------------------------------------------------------------- TSU


def inv_entropy_tsu(
    questions: Sequence[str],
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    temperatures: Sequence[float] = DEFAULT_TSU_TEMPERATURES,
    perturbation: str = "paraphrase",
    perturbations: Sequence[Sequence[str] | str] | None = None,
    perturbed: Sequence[Perturbation] | None = None,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int = 0,
    batch_size: int | None = None,
    **options: Any,
) -> TsuSweep:
    """TSU of every Inv-Entropy measure and of semantic entropy over a temperature grid.

    The perturbations are made once per question (or taken from ``perturbed``) and reused at
    every temperature, so only the answering temperature changes; each temperature answers the
    questions in batches of ``batch_size`` (default: all at once) with the same seed
    (Song et al. 2025, eq. 7, Table 2). No labels needed.
    """
    questions = [_text(q, "the question") for q in questions]
    if perturbed is None:
        perturbed = perturb_questions(
            questions,
            perturbation,
            n=n,
            seed=_seed(seed),
            lm=lm,
            embed=embed,
            perturbations=perturbations,
            similarity_rule="absolute"
            if options.get("similarity") == "embedding_abs"
            else "shifted",
            gaap_options=options.get("gaap_options"),
            paraphrase_max_new_tokens=options.get("paraphrase_max_new_tokens"),
        )
    perturbed = list(perturbed)
    if len(perturbed) != len(questions):
        raise ConfidantError("give one perturbation set per question")
    size = len(questions) if batch_size is None else _positive_int(batch_size, "batch size", 10**6)
    rest = {k: v for k, v in options.items() if k not in ("temperature", "perturbed")}

    def measure(batch: Sequence[str], temperature: float) -> list[dict[str, float]]:
        values: list[dict[str, float]] = []
        for start in range(0, len(batch), size):
            runs = run_inv_entropy_batch(
                batch[start : start + size],
                lm,
                embed,
                nli,
                perturbed=perturbed[start : start + size],
                temperature=temperature,
                seed=seed,
                **rest,
            )
            values += [{k: v for k, v in measure_values(r).items() if v is not None} for r in runs]
        return values

    return temperature_sweep(
        questions,
        measure,
        temperatures,
        params={
            "perturbation": perturbed[0].method if perturbed else perturbation,
            "n": len(perturbed[0].perturbations) if perturbed else n,
            "seed": seed,
            "batch_size": size,
            "model": _model_name(lm),
            "embedding_model": _model_name(embed),
            **{k: v for k, v in rest.items() if isinstance(v, (int, float, str))},
        },
    )
