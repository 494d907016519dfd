"""The Inv-Entropy pipeline: perturb the question, answer every input r times, measure.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy: A Fully Probabilistic Framework for
Uncertainty Quantification in Language Models", arXiv 2506.09684, Algorithm 1.

1. Perturb the question x_0 into n versions (default 9): LLM paraphrases (one ``generate``
   call, parsed to exactly n), GAAP (:func:`uq.inv.gaap.gaap`; WordNet substitutes when a
   database is installed, else the LLM's or the embedding model's), or the user's own list.
2. Answer all n+1 inputs r times each (default 5) — every input of every question in batched
   ``sample_batch`` calls, seeded.
3. Compute the heavy statistics once: S_x over the inputs and ONE similarity matrix over all
   (n+1)·r responses, from sentence embeddings ((1 + cos)/2 as in the paper, or |cos| as in the
   authors' code) or from NLI entailment probabilities averaged over both directions.
4. Every measure reads those statistics: B seeded bootstraps (default 20) index into the
   response matrix (:func:`uq.inv.measures.inv_entropy_from_responses`) for Inv-Entropy,
   NI-Entropy, NR-Inv-Entropy, WD-px-py and MAX-py-x; semantic entropy of the same responses
   clusters them with the same similarity (the NLI labels already computed, or an embedding
   cosine threshold) — no model is called again.

Offline, black-box use needs no generator: :func:`parse_offline_table` reads perturbed questions
and their responses (CSV or JSONL) and :func:`inv_entropy_offline` measures them.

Example (no generator; the bundled embedding model)::

    from backends.embeddings import SentenceEmbedder
    from uq.inv.pipeline import inv_entropy_offline, parse_offline_table

    inputs, responses = parse_offline_table(
        "input,response\n"
        "What is the capital of France?,Paris\n"
        "What is the capital of France?,Paris.\n"
        "Which city is France's capital?,Paris\n"
        "Which city is France's capital?,Lyon\n"
    )
    run = inv_entropy_offline(inputs, responses, SentenceEmbedder())
    run.measures.inv_entropy, run.semantic_entropy["discrete_all"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from backends.base import Generation, LanguageModel, SamplingParams, prompt_sent
from core.errors import ConfidantError
from uq.inv.options import (
    DEFAULT_ANSWER_INSTRUCTION,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_REPLICATES,
    DEFAULT_SE_COSINE_THRESHOLD,
    DEFAULT_SIMILARITY,
    MAX_BOOTSTRAPS,
    MAX_INPUTS,
    MAX_REPLICATES,
    SIMILARITIES,
    Embed,
    check_positive_int,
    check_seed,
    check_similarity,
    check_sizes,
    check_text,
    model_name_of,
    semantic_entropy_rule,
)
from uq.inv.paraphrase import (
    DEFAULT_N_PERTURBATIONS,
)
from uq.inv.perturbation import Perturbation, perturb_questions
from uq.inv.result import InvEntropyRun, measure_run
from uq.inv.similarity import similarity_statistics

PROMPT_NOTE = (
    "Each input — the question, then each perturbation — is followed by the answer "
    "instruction (“Answer concisely.”) and sent in the model's chat template; an answer keeps "
    "its first line. The question alone (the Generate tab) or with the Semantic entropy tab's "
    "instruction gives the same answer another log-probability."
)

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
    similarity: str = DEFAULT_SIMILARITY,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    seed: int = 0,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 32,
    instruction: str = DEFAULT_ANSWER_INSTRUCTION,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
    gaap_options: dict | None = None,
    paraphrase_max_new_tokens: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[InvEntropyRun]:
    """Inv-Entropy for several questions, every heavy step batched across them.

    One paraphrase ``sample_batch`` for all questions (or GAAP per question, or the given
    lists; ``perturbed`` reuses perturbations made earlier, e.g. across a temperature grid),
    ONE ``sample_batch`` answering every input of every question r times, one embedding call
    (or one NLI call) for all similarities, then every measure per question from those
    statistics. The same ``seed`` drives perturbation, generation and bootstraps; each run
    records it. Reproducing a run needs the same batch of questions. ``progress(fraction,
    message)`` is told before each step (the UI shows it while the user waits).
    """

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    questions = [check_text(q, "the question") for q in questions]
    if not questions:
        raise ConfidantError("give at least one question")
    similarity = check_similarity(similarity)
    replicates = check_positive_int(replicates, "r (replicates per input)", MAX_REPLICATES)
    bootstraps = check_positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS)
    seed = check_seed(seed)
    rule = "absolute" if similarity == "embedding_abs" else "shifted"
    if perturbed is None:
        if perturbation != "given":
            n = check_positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
        step(0.0, {"paraphrase": "Writing paraphrases", "gaap": "GAAP: evolving perturbations"}
             .get(perturbation, "Reading the given perturbations"))  # fmt: skip
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
        check_sizes(len(inputs), replicates, bootstraps)
    params = SamplingParams(
        n=replicates,
        temperature=float(temperature),
        top_p=float(top_p),
        max_new_tokens=int(max_new_tokens),
        seed=seed,
    ).validate()
    total = sum(len(inputs) for inputs in inputs_per_question) * replicates
    step(0.3, f"Answering every input {replicates} times ({total} answers)")
    generations = generate_responses(lm, inputs_per_question, replicates, params, instruction)
    step(0.8, "Comparing inputs and answers" + (" (NLI)" if similarity == "nli" else ""))
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
    step(0.9, f"Measures and {bootstraps} bootstraps")
    runs = []
    for question, p, gens, answers, stat, inputs in zip(
        questions, perturbed, generations, responses, stats, inputs_per_question, strict=True
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
            "se_rule": semantic_entropy_rule(similarity, se_cosine_threshold),
            "model": model_name_of(lm),
            "embedding_model": model_name_of(embed),
            "nli_model": model_name_of(nli) if similarity == "nli" else None,
            "batch_questions": len(questions),
            "gaap_options": dict(gaap_options or {}),
        }
        runs.append(
            measure_run(
                question,
                p,
                answers,
                stat,
                bootstraps=bootstraps,
                seed=seed,
                params=run_params,
                mean_logprobs=[[g.mean_logprob for g in row] for row in gens],
                generations=gens,
                prompt_sent=[prompt_sent(lm, answer_prompt(x, instruction)) for x in inputs],
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
    similarity = DEFAULT_SIMILARITY, bootstraps = 20, seed = 0, temperature = 0.7, ...).
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
