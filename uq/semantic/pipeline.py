"""The semantic-entropy pipeline: sample, cluster by meaning, compute every measure once.

For one question: N answers at temperature T (default 10 at 1.0) and one reference answer at
0.1 from ONE batched generate call when the backend can mix temperatures in a batch (two calls
otherwise); the answers are clustered by bidirectional entailment; then every measure below is
computed from the same statistics — nothing heavy runs twice.

Entailment is pluggable (:func:`uq.semantic.entailment.make_entailment`: NLI, embeddings or
the generator itself).

How many pairs go to the model depends on the measures asked for. The spectral measures and
KLE need every ordered pair, so then the full matrix of distinct answers is labelled in ONE
batched pass and the clustering reads from it; otherwise the clustering asks only the pairs
the first-member walk compares (``uq.semantic.clustering.cluster_texts``). Identical normalised
strings are labelled once, and a pair cache can be shared between calls on the same question.

A measure is one function of ``AnswerStatistics`` plus one line in
:data:`uq.semantic.measures.MEASURES`.
Higher = more uncertain; entropies in nats, and those over the answers' distribution are also
reported divided by log N. Pasted answers (no model) get every measure that needs no model
internals: :func:`uq.semantic.pasted.score_pasted_answers`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict

from backends.base import (
    Generation,
    LanguageModel,
    SamplingParams,
    capabilities_of,
    prompt_sent,
)
from core.errors import ConfidantError
from uq.semantic.clustering import (
    normalise_answer_text,
)
from uq.semantic.cocoa import reference_similarity
from uq.semantic.measures import (
    NEEDS_GENERATOR,
    NEEDS_LIKELIHOODS,
    NEEDS_PAIRS,
    NEEDS_REFERENCE,
    NEEDS_REFERENCE_SIMILARITY,
    NEEDS_SIMILARITY,
    NEEDS_VERBALIZED,
    AnswerStatistics,
    Measure,
    compute_measures,
    select_measures,
)
from uq.semantic.p_true import PTrueExample, fitted_p_true_probability
from uq.semantic.pair_stats import pair_statistics
from uq.semantic.relevance import relevance_statistics
from uq.semantic.result import SemanticEntropyResult
from uq.semantic.verbalized import ask_one_stage, ask_two_stage
from uq.trace import clean_question

DEFAULT_N = 10
DEFAULT_TEMPERATURE = 1.0
REFERENCE_TEMPERATURE = 0.1
DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_STOP = ("\n",)

# Farquhar et al.'s brief-answer instruction, zero-shot.
DEFAULT_PROMPT = "Answer the following question as briefly as possible.\n{question}"
PROMPT_NOTE = (
    "Farquhar et al.'s brief-answer instruction (“Answer the following question as briefly as "
    "possible.”) goes before the question, in the model's chat template, and answers stop at "
    "the first line break: semantic entropy compares short answers. The Generate tab sends the "
    "question alone, so the same answer has another log-probability there."
)


# --------------------------------------------------------------------------------------------
# Sampling and p(True)
# --------------------------------------------------------------------------------------------


def sample_answers(
    lm: LanguageModel,
    prompt: str,
    params: SamplingParams,
    reference_temperature: float = REFERENCE_TEMPERATURE,
    *,
    chat: bool = True,
) -> tuple[list[Generation], Generation, int]:
    """``params.n`` samples and one reference answer at ``reference_temperature``.

    When the backend can mix temperatures in a batch and neither temperature is 0, all
    N + 1 answers come from ONE generate call (the reference is the last row); otherwise the
    N samples come from one ``sample`` call and the reference from a second. Returns
    (samples, reference, number of calls). ``params.seed`` is drawn when None and written
    back.
    """
    params.validate()
    if not (math.isfinite(reference_temperature) and 0.0 <= reference_temperature <= 5.0):
        raise ConfidantError(
            f"the reference temperature must be between 0 and 5, got {reference_temperature}"
        )
    n = params.n
    mixed = capabilities_of(lm).per_row_temperature
    if params.temperature > 0 and reference_temperature > 0 and mixed:
        one = SamplingParams(**{**asdict(params), "n": 1})
        out = lm.sample_batch(
            [prompt] * (n + 1),
            one,
            chat=chat,
            temperatures=[params.temperature] * n + [reference_temperature],
        )
        params.seed = one.seed
        return [row[0] for row in out[:n]], out[n][0], 1
    samples = lm.sample(prompt, params, chat=chat)
    ref_params = SamplingParams(
        **{**asdict(params), "n": 1, "temperature": reference_temperature, "seed": params.seed + 1}
    )
    reference = lm.sample(prompt, ref_params, chat=chat)[0]
    return samples, reference, 2


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def needed_statistics(measures: Sequence[Measure]) -> set[str]:
    return set().union(*(m.needs for m in measures)) if measures else set()


def _mean_logprob(gen: Generation, source: str) -> tuple[float, float]:
    """(mean, total) token log-probability under the raw or the sampling distribution."""
    if source == "raw":
        return gen.mean_logprob, gen.total_logprob
    values = [t.sampling_logprob for t in gen.tokens]
    if any(v is None for v in values):
        raise ConfidantError("this backend does not report sampling-distribution log-probs")
    total = float(sum(values))
    return (total / len(values) if values else 0.0), total


def _token_logprobs(gen: Generation, source: str) -> list[float]:
    """Per-token log-probabilities under the raw or the sampling distribution."""
    if source == "raw":
        return [t.logprob for t in gen.tokens]
    return [float(t.sampling_logprob) for t in gen.tokens]  # checked by _mean_logprob
def _confidence(replies: dict, stage: str) -> float | None:
    return replies[stage].confidence if stage in replies else None


def run_semantic_entropy(
    lm: LanguageModel,
    question: str,
    entailment,
    *,
    n: int = DEFAULT_N,
    temperature: float = DEFAULT_TEMPERATURE,
    reference_temperature: float = REFERENCE_TEMPERATURE,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
    stop: Sequence[str] = DEFAULT_STOP,
    strict: bool = True,
    measures: Sequence[str] | None = None,
    prompt_template: str = DEFAULT_PROMPT,
    chat: bool = True,
    likelihood: str = "raw",
    cache: MutableMapping[tuple[str, str], int] | None = None,
    progress: Callable[[float, str], None] | None = None,
    p_true_examples: Sequence[PTrueExample] = (),
) -> SemanticEntropyResult:
    """Sample, cluster and compute every measure for one question.

    ``entailment`` comes from :func:`make_entailment`. ``likelihood`` picks the token
    log-probabilities the likelihood measures use: "raw" (the model's own distribution, the
    default) or "sampling" (after temperature/top-k/top-p, as in Farquhar et al.'s code; the
    two agree at temperature 1 without truncation). ``measures`` limits what is computed (keys
    of :data:`MEASURES`; all by default) and with it the NLI work. ``progress(fraction,
    message)``, when given, hears of each stage as it starts. ``p_true_examples`` make p(True)
    few-shot (as many as fit the context window; ``params["p_true_examples"]`` records how
    many were used).
    """
    question = clean_question(question)
    if "{question}" not in prompt_template:
        raise ConfidantError("the prompt template must contain {question}")
    if likelihood not in ("raw", "sampling"):
        raise ConfidantError(f"likelihood must be 'raw' or 'sampling', got {likelihood!r}")
    chosen = select_measures(measures)
    needs = needed_statistics(chosen)
    params = SamplingParams(
        n=int(n),
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        max_new_tokens=int(max_new_tokens),
        seed=None if seed is None else int(seed),
        stop=list(stop),
    ).validate()
    prompt = prompt_template.replace("{question}", question)

    def stage(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    timings: dict[str, float] = {}
    stage(0.0, f"Sampling {params.n} answers and the reference answer")
    started = time.perf_counter()
    samples, reference, generate_calls = sample_answers(
        lm, prompt, params, float(reference_temperature), chat=chat
    )
    timings["sampling"] = time.perf_counter() - started
    texts = [g.text.strip() for g in samples]

    distinct = len({normalise_answer_text(t) for t in texts})
    stage(
        0.5,
        f"Comparing {distinct} distinct answers by entailment"
        + (f" (all {distinct * (distinct - 1)} ordered pairs)" if NEEDS_PAIRS in needs else ""),
    )
    started = time.perf_counter()
    pairs = pair_statistics(
        question, texts, entailment, strict=strict, full_matrix=NEEDS_PAIRS in needs, cache=cache
    )
    timings["entailment"] = time.perf_counter() - started

    ref_similarity, ref_similarity_work = None, 0
    if NEEDS_REFERENCE_SIMILARITY in needs:
        started = time.perf_counter()
        ref_similarity, ref_similarity_work = reference_similarity(
            question, reference.text.strip(), texts, entailment
        )
        timings["reference_similarity"] = time.perf_counter() - started

    p_true = None
    p_true_used = 0
    if NEEDS_GENERATOR in needs:
        stage(0.9, "Asking the generator p(True)")
        started = time.perf_counter()
        p_true, p_true_used = fitted_p_true_probability(
            lm, question, texts, reference.text, chat=chat, examples=p_true_examples
        )
        timings["p_true"] = time.perf_counter() - started

    verbalized = {}
    if NEEDS_VERBALIZED in needs:
        stage(0.92, "Asking the generator for its confidence")
        started = time.perf_counter()
        keys = {m.key for m in chosen}
        if "verbalized_one_stage" in keys:
            verbalized["one_stage"] = ask_one_stage(lm, question, chat=chat)
        if "verbalized_two_stage" in keys:
            verbalized["two_stage"] = ask_two_stage(lm, question, reference.text, chat=chat)
        generate_calls += len(verbalized)
        timings["verbalized"] = time.perf_counter() - started

    relevance = None
    if NEEDS_SIMILARITY in needs:
        stage(0.95, "Scoring token relevance and answer similarity")
        started = time.perf_counter()
        relevance = relevance_statistics(question, samples, reference, entailment)
        timings["relevance"] = time.perf_counter() - started

    means, totals = zip(*(_mean_logprob(g, likelihood) for g in samples), strict=True)
    stats = AnswerStatistics(
        texts=texts,
        cluster_ids=pairs.clustering.cluster_ids,
        log_likelihoods=list(means),
        total_log_likelihoods=list(totals),
        similarity=pairs.similarity,
        kernel_weights=pairs.kernel_weights,
        reference=reference,
        verbalized_one_stage=_confidence(verbalized, "one_stage"),
        verbalized_two_stage=_confidence(verbalized, "two_stage"),
        reference_similarity=ref_similarity,
        p_true=p_true,
    )
    available = {NEEDS_LIKELIHOODS, NEEDS_PAIRS, NEEDS_REFERENCE, NEEDS_GENERATOR}
    available |= {NEEDS_VERBALIZED, NEEDS_REFERENCE_SIMILARITY}
    if relevance is not None:
        available.add(NEEDS_SIMILARITY)
        stats.sample_token_logprobs = [_token_logprobs(g, likelihood) for g in samples]
        stats.sample_token_relevance = relevance.sample_token_relevance
        stats.reference_token_relevance = relevance.reference_token_relevance
        stats.answer_similarity = relevance.answer_similarity
        stats.reference_kernel = relevance.reference_kernel
    started = time.perf_counter()
    values = compute_measures(stats, chosen, available)
    timings["measures"] = time.perf_counter() - started

    notes = []
    if any(g.truncated for g in [*samples, reference]):
        notes.append("Token entropies come from the server's top-k alternatives (lower bounds).")
    return SemanticEntropyResult(
        question=question,
        source="model",
        model=getattr(lm, "model_id", None),
        params={
            **asdict(params),
            "reference_temperature": float(reference_temperature),
            "strict": bool(strict),
            "prompt_template": prompt_template,
            "chat": bool(chat),
            "likelihood": likelihood,
            "measures": [m.key for m in chosen],
            "p_true_examples": p_true_used,
            **entailment.describe(),
        },
        texts=texts,
        clustering=pairs.clustering,
        measures=values,
        samples=samples,
        reference=reference,
        log_likelihoods=list(means),
        likelihood_source=f"mean token log-probability ({likelihood} distribution)",
        similarity=pairs.similarity.tolist() if pairs.similarity is not None else None,
        p_true=p_true,
        reference_similarity=ref_similarity,
        verbalized={k: v.to_dict() for k, v in verbalized.items()} or None,
        work={
            "generate_calls": generate_calls,
            "entailment_pairs": pairs.model_pairs,
            "entailment_calls": pairs.model_calls,
            "cached_pairs": pairs.cached_pairs,
            "embedded_texts": pairs.embedded,
            "similarity_scored": relevance.scored if relevance is not None else 0,
            "reference_similarity_work": ref_similarity_work,
        },
        timings=timings,
        notes=notes,
        prompt_sent=prompt_sent(lm, prompt, chat=chat),
    )
