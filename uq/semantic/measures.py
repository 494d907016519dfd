"""The semantic-entropy family as ONE table: each measure is a function of
:class:`AnswerStatistics` plus one :class:`Measure` line in :data:`MEASURES`. Higher = more
uncertain; entropies in nats, and those over the answers' distribution are also reported
divided by log N. The pipeline, the harness, the UI and the exports iterate this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.base import Generation
from core.errors import ConfidantError
from uq.semantic.black_box import (
    degree,
    eccentricity,
    eigv,
    kernel_language_entropy,
    lexical_uncertainty,
)
from uq.semantic.cocoa import cocoa_msp, cocoa_mte, cocoa_ppl
from uq.semantic.estimators import (
    discrete_semantic_entropy,
    kuhn_semantic_entropy,
    label_uncertainty,
    max_token_entropy,
    maximum_sequence_probability,
    mean_token_entropy,
    normalise_by_log_n,
    number_of_semantic_sets,
    p_true_uncertainty,
    predictive_entropy,
    semantic_entropy,
)
from uq.semantic.sar import sar, sentence_sar, token_sar
from uq.semantic.semantic_density import semantic_density_uncertainty
from uq.semantic.verbalized import confidence_uncertainty
from uq.token_stats import perplexity

# --------------------------------------------------------------------------------------------
# Statistics every measure reads, and the measures
# --------------------------------------------------------------------------------------------


@dataclass
class AnswerStatistics:
    """The computed-once statistics of one question's answers.

    ``log_likelihoods`` are the per-answer values the likelihood measures use (the mean token
    log-probability for sampled answers), ``total_log_likelihoods`` the summed ones; both None
    for pasted answers without them. ``reference`` is the low-temperature answer;
    ``verbalized_one_stage`` / ``verbalized_two_stage`` the confidence 0–100 the generator
    stated (None when its reply had none); ``reference_similarity`` the similarity in [0, 1] of
    the reference answer to each sampled answer; ``p_true`` the generator's probability that
    the reference answer is true.
    """

    texts: list[str]
    cluster_ids: list[int]
    log_likelihoods: list[float] | None = None
    total_log_likelihoods: list[float] | None = None
    similarity: np.ndarray | None = None
    kernel_weights: np.ndarray | None = None
    reference: Generation | None = None
    verbalized_one_stage: float | None = None
    verbalized_two_stage: float | None = None
    reference_similarity: list[float] | None = None
    p_true: float | None = None
    # From the similarity model (uq.semantic.relevance), for SAR and Semantic Density: the
    # sampled answers' token log-probabilities (the distribution of ``log_likelihoods``), token
    # relevances 1 − g(s, s without token k), the graded answer similarity g and the kernel of
    # the reference answer to each sample.
    sample_token_logprobs: list[list[float]] | None = None
    sample_token_relevance: list[list[float]] | None = None
    reference_token_relevance: list[float] | None = None
    answer_similarity: np.ndarray | None = None
    reference_kernel: list[float] | None = None

    @property
    def n(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Bound:
    """An upper bound of a measure: ``text`` for the docs (e.g. "log N"), ``value(stats)`` the
    number for these statistics."""

    text: str
    value: Callable[[Any], float]


LOG_N = Bound("log N", lambda s: math.log(s.n))
N_ANSWERS = Bound("N", lambda s: float(s.n))
ONE = Bound("1", lambda s: 1.0)
ROOT_N_MINUS_1 = Bound("√(N−1)", lambda s: math.sqrt(s.n - 1))


@dataclass(frozen=True)
class Measure:
    """One uncertainty measure: ``compute(stats)`` → float (higher = more uncertain).

    ``needs`` names the statistics it reads beyond the clusters: "likelihoods" (per-answer
    log-likelihoods), "pairs" (every ordered pair labelled), "reference" (the low-temperature
    answer's tokens), "generator" (p(True)), "similarity" (token relevances and graded
    similarities from the similarity model, ``uq.semantic.relevance``). ``per_log_n``: an entropy over the answers'
    distribution, also reported divided by log N. ``lower`` / ``upper``: the range every value
    lies in (None: unbounded on that side); N is the number of answers.
    """

    key: str
    label: str
    explanation: str
    compute: Callable[[AnswerStatistics], float]
    needs: frozenset[str] = frozenset()
    per_log_n: bool = False
    lower: float | None = 0.0
    upper: Bound | None = None
    higher_is_uncertain: bool = True


def _reference_tokens(stats: AnswerStatistics, what: str) -> list[float]:
    ref = stats.reference
    if ref is None or not ref.tokens:
        raise ConfidantError("the reference answer has no tokens")
    return [getattr(t, what) for t in ref.tokens]


def _reference_length(stats: AnswerStatistics, unit: str) -> float:
    """Length of the reference answer in generated tokens or in characters (stripped text).

    A length baseline, not an uncertainty estimate: longer answers are more often wrong (a
    model that knows says "Paris"; one that does not hedges or rambles), and the metrics reward
    this, so length alone can rival semantic entropy (Santilli et al. 2025). Reporting it beside
    the other measures shows how much of their AUROC length explains."""
    ref = stats.reference
    if ref is None:
        raise ConfidantError("no reference answer")
    return float(len(ref.tokens) if unit == "tokens" else len(ref.text.strip()))


def _likelihoods(stats: AnswerStatistics) -> list[float]:
    # semantic_entropy(ids, None) is the discrete entropy: never let a missing statistic
    # pass for it.
    if stats.log_likelihoods is None:
        raise ConfidantError("no per-answer log-likelihoods")
    return stats.log_likelihoods


NEEDS_LIKELIHOODS, NEEDS_PAIRS, NEEDS_REFERENCE, NEEDS_GENERATOR = (
    "likelihoods",
    "pairs",
    "reference",
    "generator",
)
NEEDS_SIMILARITY = "similarity"


def _present(value, what: str):
    if value is None:
        raise ConfidantError(f"no {what}")
    return value


def _token_sar(stats: AnswerStatistics) -> float:
    relevance = _present(stats.reference_token_relevance, "token relevances")
    return token_sar(_reference_tokens(stats, "logprob"), relevance)


def _sentence_sar(stats: AnswerStatistics) -> float:
    similarity = _present(stats.answer_similarity, "answer similarity")
    return sentence_sar(_present(stats.total_log_likelihoods, "log-likelihoods"), similarity)


def _sar(stats: AnswerStatistics) -> float:
    return sar(
        _present(stats.sample_token_logprobs, "token log-probabilities"),
        _present(stats.sample_token_relevance, "token relevances"),
        _present(stats.answer_similarity, "answer similarity"),
    )


def _semantic_density(stats: AnswerStatistics) -> float:
    ref = _reference_tokens(stats, "logprob")
    return semantic_density_uncertainty(
        stats.texts,
        _likelihoods(stats),
        _present(stats.reference_kernel, "reference kernel"),
        sum(ref) / len(ref),
    )
# The generator asked for its confidence in words (one generate call per stage asked for).
NEEDS_VERBALIZED = "verbalized"
# The reference answer's similarity to each sample (one batched call to the entailment model).
NEEDS_REFERENCE_SIMILARITY = "reference_similarity"


def _verbalized(stats: AnswerStatistics, stage: str) -> float:
    confidence = getattr(stats, f"verbalized_{stage}")
    if confidence is None:
        raise ConfidantError("no confidence 0–100 could be read from the generator's reply")
    return confidence_uncertainty(confidence)


def _ref_similarity(stats: AnswerStatistics) -> list[float]:
    if stats.reference_similarity is None:
        raise ConfidantError("the reference answer's similarity to the samples was not computed")
    return stats.reference_similarity


# One line per measure. The functions and their formulas live in uq.semantic.estimators and
# uq.semantic.black_box.
# fmt: off
MEASURES: tuple[Measure, ...] = (
    Measure("discrete_semantic_entropy", "Discrete semantic entropy", "Entropy of the share of answers in each meaning cluster; needs no likelihoods (Farquhar et al. 2024).", lambda s: discrete_semantic_entropy(s.cluster_ids), per_log_n=True, upper=LOG_N),  # noqa: E501
    Measure("semantic_entropy", "Semantic entropy (likelihood)", "Entropy of the clusters' probability mass, each answer weighted by exp(mean token log-prob), normalised over the clusters seen (Farquhar et al. 2024).", lambda s: semantic_entropy(s.cluster_ids, _likelihoods(s)), frozenset({NEEDS_LIKELIHOODS}), per_log_n=True, upper=LOG_N),  # noqa: E501
    Measure("kuhn_semantic_entropy", "Semantic entropy (Kuhn 2023 code; can be < 0)", "Mean over clusters of −log of the cluster's unnormalised likelihood mass Σ exp(mean token log-prob) (Kuhn et al. 2023). Negative when a cluster's summed likelihoods exceed 1, which the reference code allows: it does not normalise over clusters.", lambda s: kuhn_semantic_entropy(s.cluster_ids, s.log_likelihoods), frozenset({NEEDS_LIKELIHOODS}), per_log_n=True, lower=None),  # noqa: E501
    Measure("label_probability", "1 − largest meaning's share", "1 − the share of answers in the largest meaning cluster: the label probability of the most common meaning, as an uncertainty; needs no likelihoods.", lambda s: label_uncertainty(s.cluster_ids), upper=ONE),  # noqa: E501
    Measure("number_of_semantic_sets", "Number of semantic sets", "How many different meanings the answers have (Kuhn et al. 2023).", lambda s: float(number_of_semantic_sets(s.cluster_ids)), lower=1.0, upper=N_ANSWERS),  # noqa: E501
    Measure("predictive_entropy", "Predictive entropy", "Minus the mean total log-likelihood of the sampled answers (Kuhn et al. 2023).", lambda s: predictive_entropy(s.total_log_likelihoods), frozenset({NEEDS_LIKELIHOODS}), per_log_n=True),  # noqa: E501
    Measure("ln_predictive_entropy", "Length-normalised predictive entropy", "Minus the mean of the answers' mean token log-probabilities; Farquhar et al.'s 'naive entropy' (Malinin & Gales 2021).", lambda s: predictive_entropy(s.log_likelihoods), frozenset({NEEDS_LIKELIHOODS}), per_log_n=True),  # noqa: E501
    Measure("maximum_sequence_probability", "−log max sequence probability", "−log p of the reference (low-temperature) answer under the raw model: 0 when the model is certain of it; p itself is exp(−value) (maximum sequence probability, Malinin & Gales 2021).", lambda s: maximum_sequence_probability(_reference_tokens(s, "logprob")), frozenset({NEEDS_REFERENCE})),  # noqa: E501
    Measure("perplexity", "Perplexity", "exp of the reference answer's mean token surprisal.", lambda s: perplexity(_reference_tokens(s, "logprob")), frozenset({NEEDS_REFERENCE}), lower=1.0),  # noqa: E501
    Measure("mean_token_entropy", "Mean token entropy", "Mean entropy of the raw next-token distribution over the reference answer (Malinin & Gales 2021).", lambda s: mean_token_entropy(_reference_tokens(s, "entropy")), frozenset({NEEDS_REFERENCE})),  # noqa: E501
    Measure("max_token_entropy", "Max token entropy", "Largest raw next-token entropy in the reference answer.", lambda s: max_token_entropy(_reference_tokens(s, "entropy")), frozenset({NEEDS_REFERENCE})),  # noqa: E501
    Measure("answer_length_tokens", "Answer length (tokens)", "Baseline: the number of tokens of the reference answer; longer answers are more often wrong, so length alone can rival semantic entropy (Santilli et al. 2025).", lambda s: _reference_length(s, "tokens"), frozenset({NEEDS_REFERENCE})),  # noqa: E501
    Measure("answer_length_chars", "Answer length (characters)", "Baseline: the number of characters of the reference answer (stripped).", lambda s: _reference_length(s, "chars"), frozenset({NEEDS_REFERENCE})),  # noqa: E501
    Measure("lexical_uncertainty", "1 − lexical similarity (ROUGE-L)", "1 − the mean ROUGE-L between every two answers: answers that share few words are uncertain (Kuhn et al. 2023).", lambda s: lexical_uncertainty(s.texts), upper=ONE),  # noqa: E501
    Measure("p_true", "1 − p(True)", "1 − the generator's probability that the reference answer is true, shown the sampled answers as brainstorm (Kadavath et al. 2022); zero-shot unless worked examples are given.", lambda s: p_true_uncertainty(_log(s.p_true), _log(1.0 - s.p_true)), frozenset({NEEDS_GENERATOR}), upper=ONE),  # noqa: E501
    Measure("verbalized_one_stage", "1 − verbalized confidence (one-stage)", "1 − confidence/100, the confidence 0–100 the generator states in the same reply as its answer (Tian et al. 2023); about the answer in that reply, which may differ from the reference answer.", lambda s: _verbalized(s, "one_stage"), frozenset({NEEDS_VERBALIZED}), upper=ONE),  # noqa: E501
    Measure("verbalized_two_stage", "1 − verbalized confidence (two-stage)", "1 − confidence/100, the confidence 0–100 the generator states when asked, in a second prompt, how sure it is of the reference answer (Tian et al. 2023).", lambda s: _verbalized(s, "two_stage"), frozenset({NEEDS_VERBALIZED}), upper=ONE),  # noqa: E501
    Measure("cocoa_msp", "CoCoA (MSP)", "−log p of the reference answer × (1 − its mean similarity to the samples): confidence times consistency (Vashurin et al. 2025; LM-Polygraph's CocoaMSP).", lambda s: cocoa_msp(_reference_tokens(s, "logprob"), _ref_similarity(s)), frozenset({NEEDS_REFERENCE, NEEDS_REFERENCE_SIMILARITY})),  # noqa: E501
    Measure("cocoa_ppl", "CoCoA (PPL)", "The reference answer's mean token surprisal (log perplexity) × (1 − its mean similarity to the samples) (Vashurin et al. 2025; LM-Polygraph's CocoaPPL).", lambda s: cocoa_ppl(_reference_tokens(s, "logprob"), _ref_similarity(s)), frozenset({NEEDS_REFERENCE, NEEDS_REFERENCE_SIMILARITY})),  # noqa: E501
    Measure("cocoa_mte", "CoCoA (mean token entropy)", "The reference answer's mean raw token entropy × (1 − its mean similarity to the samples) (Vashurin et al. 2025; LM-Polygraph's CocoaMTE).", lambda s: cocoa_mte(_reference_tokens(s, "entropy"), _ref_similarity(s)), frozenset({NEEDS_REFERENCE, NEEDS_REFERENCE_SIMILARITY})),  # noqa: E501
    Measure("eigv", "EigV", "Sum of max(0, 1 − λ) over the normalised graph Laplacian of the answers' similarity: a soft count of meanings (Lin et al. 2024).", lambda s: eigv(s.similarity), frozenset({NEEDS_PAIRS}), upper=N_ANSWERS),  # noqa: E501
    Measure("degree", "1 − degree (mean similarity)", "1 − the mean pairwise similarity of the answers (Lin et al. 2024).", lambda s: degree(s.similarity), frozenset({NEEDS_PAIRS}), upper=ONE),  # noqa: E501
    Measure("eccentricity", "Eccentricity", "Spread of the answers' spectral embeddings around their centre (Lin et al. 2024).", lambda s: eccentricity(s.similarity), frozenset({NEEDS_PAIRS}), upper=ROOT_N_MINUS_1),  # noqa: E501
    Measure("kernel_language_entropy", "Kernel language entropy", "Von Neumann entropy of a heat kernel over the semantic graph (Nikitin et al. 2024).", lambda s: kernel_language_entropy(s.kernel_weights), frozenset({NEEDS_PAIRS}), per_log_n=True, upper=LOG_N),  # noqa: E501
    Measure("token_sar", "TokenSAR", "Relevance-weighted mean token surprisal of the reference answer, each token weighted by 1 − similarity(answer, answer without it) (Duan et al. 2024).", _token_sar, frozenset({NEEDS_REFERENCE, NEEDS_SIMILARITY})),  # noqa: E501
    Measure("sentence_sar", "SentSAR", "Mean over answers of −log(p + (1/t)·Σ similarity × p of the others), p the sequence probability, t = 0.001: probable answers backed by similar ones are certain (Duan et al. 2024).", _sentence_sar, frozenset({NEEDS_LIKELIHOODS, NEEDS_SIMILARITY}), lower=None),  # noqa: E501
    Measure("sar", "SAR", "SentSAR over the TokenSAR probabilities exp(−TokenSAR) of the answers: relevance at the token and the sentence level (Duan et al. 2024).", _sar, frozenset({NEEDS_LIKELIHOODS, NEEDS_SIMILARITY}), lower=None),  # noqa: E501
    Measure("semantic_density", "1 − semantic density", "1 − the kernel density of the reference answer among the distinct samples, weighted by exp(mean token log-prob); kernel 1 − (p_contradiction + ½ p_neutral) by NLI, or the cosine by embeddings (Qiu & Miikkulainen 2024).", _semantic_density, frozenset({NEEDS_LIKELIHOODS, NEEDS_REFERENCE, NEEDS_SIMILARITY}), upper=ONE),  # noqa: E501
)
# fmt: on

MEASURE_BY_KEY: dict[str, Measure] = {m.key: m for m in MEASURES}


def _log(p: float | None) -> float:
    if p is None:
        raise ConfidantError("p(True) was not computed")
    return math.log(p) if p > 0 else -math.inf


def measures_without_pair_matrix() -> list[str]:
    """Keys of every measure that needs no pair matrix: with these alone the NLI model labels
    only the pairs the clustering walk compares (often far fewer than N(N−1))."""
    return [m.key for m in MEASURES if NEEDS_PAIRS not in m.needs]


def pair_matrix_measures() -> list[Measure]:
    """The measures that read every ordered pair's label (the complement of
    :func:`measures_without_pair_matrix`)."""
    return [m for m in MEASURES if NEEDS_PAIRS in m.needs]


def select_measures(keys: Sequence[str] | None) -> list[Measure]:
    """The measures for ``keys`` (all when None), in the order of :data:`MEASURES`."""
    if keys is None:
        return list(MEASURES)
    unknown = [k for k in keys if k not in MEASURE_BY_KEY]
    if unknown:
        raise ConfidantError(
            f"unknown measure(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(MEASURE_BY_KEY)}"
        )
    wanted = set(keys)
    return [m for m in MEASURES if m.key in wanted]


MISSING_NOTES = {
    NEEDS_LIKELIHOODS: "needs per-answer log-likelihoods",
    NEEDS_PAIRS: "needs the pair matrix",
    NEEDS_REFERENCE: "needs the reference answer's tokens",
    NEEDS_GENERATOR: "needs the generator",
    NEEDS_SIMILARITY: "needs a similarity model (NLI or embedding entailment)",
    NEEDS_VERBALIZED: "needs the generator asked for its confidence",
    NEEDS_REFERENCE_SIMILARITY: "needs the reference answer's similarity to the samples",
}


def compute_measures(
    stats: AnswerStatistics, measures: Sequence[Measure], available: set[str]
) -> dict[str, dict[str, Any]]:
    """Every measure from the same statistics: ``{key: {"value", "per_log_n", "note"}}``.

    A measure whose needs are not ``available``, or which is undefined on these statistics
    (e.g. a reference answer with no tokens), gets value None and a note saying why."""
    out: dict[str, dict[str, Any]] = {}
    for m in measures:
        missing = sorted(m.needs - available)
        if missing:
            out[m.key] = {"value": None, "per_log_n": None, "note": MISSING_NOTES[missing[0]]}
            continue
        try:
            value = float(m.compute(stats))
        except ConfidantError as exc:
            out[m.key] = {"value": None, "per_log_n": None, "note": str(exc)}
            continue
        if not math.isfinite(value):
            out[m.key] = {"value": None, "per_log_n": None, "note": "not finite"}
            continue
        per = normalise_by_log_n(value, stats.n) if m.per_log_n else None
        out[m.key] = {"value": value, "per_log_n": per, "note": None}
    return out


def stored_measures(result: Mapping[str, Any]) -> dict[str, float | None]:
    """Every measure of a stored semantic-entropy result (``SemanticEntropyResult.to_dict()``),
    one entry per entry of :data:`MEASURES` in table order (None where it was not computed),
    each followed by its other stored numbers (``<key>_per_log_n``: the value over log N)."""
    values = result.get("measures") or {}
    out: dict[str, float | None] = {}
    for m in MEASURES:
        stored = values.get(m.key)
        if not isinstance(stored, Mapping):
            out[m.key] = stored
            continue
        out[m.key] = stored.get("value")
        for name, number in stored.items():
            if name != "value" and (number is None or isinstance(number, int | float)):
                out[f"{m.key}_{name}"] = number
    return out
