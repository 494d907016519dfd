"""The semantic-entropy pipeline: sample, cluster by meaning, compute every measure once.

For one question: N answers at temperature T (default 10 at 1.0) and one reference answer at
0.1 from ONE batched generate call when the backend can mix temperatures in a batch (two calls
otherwise); the answers are clustered by bidirectional entailment; then every measure below is
computed from the same statistics — nothing heavy runs twice.

Entailment is pluggable (:func:`make_entailment`):

- ``"nli"``: an NLI cross-encoder (``backends.nli.NLIModel``), the question prepended to each
  answer by default (Farquhar et al. 2024; Kuhn et al. 2023);
- ``"embedding"``: cosine similarity of sentence embeddings above a threshold (offline with
  MiniLM);
- ``"generator"``: the generator itself asked whether one answer entails the other
  (Farquhar et al.'s LLM entailment), read with ``choice_probs`` over the three labels.

How many pairs go to the model depends on the measures asked for. The spectral measures and
KLE need every ordered pair, so then the full matrix of distinct answers is labelled in ONE
batched pass and the clustering reads from it; otherwise the clustering asks only the pairs
the first-member walk compares (``uq.semantic_entropy.cluster_texts``). Identical normalised
strings are labelled once, and a pair cache can be shared between calls on the same question.

A measure is one function of :class:`AnswerStatistics` plus one line in :data:`MEASURES`.
Higher = more uncertain; entropies in nats, and those over the answers' distribution are also
reported divided by log N. Pasted answers (no model) get every measure that needs no model
internals: :func:`score_pasted_answers`.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import (
    ConfidantError,
    Generation,
    LanguageModel,
    PromptTooLongError,
    SamplingParams,
)
from uq.black_box import (
    degree,
    eccentricity,
    eigv,
    kernel_language_entropy,
    lexical_uncertainty,
    nli_graph_weights,
    nli_similarity_matrix,
)
from uq.semantic_entropy import (
    CONTRADICTION,
    ENTAILMENT,
    NEUTRAL,
    EntailmentClustering,
    cluster_probabilities,
    cluster_texts,
    discrete_semantic_entropy,
    kuhn_semantic_entropy,
    max_token_entropy,
    maximum_sequence_probability,
    mean_token_entropy,
    normalise_answer_text,
    normalise_by_log_n,
    number_of_semantic_sets,
    p_true_uncertainty,
    perplexity,
    predictive_entropy,
    semantic_entropy,
)
from uq.trace import clean_question

DEFAULT_N = 10
DEFAULT_TEMPERATURE = 1.0
REFERENCE_TEMPERATURE = 0.1
DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_STOP = ("\n",)
DEFAULT_EMBEDDING_THRESHOLD = 0.75
MAX_ANSWERS = 200
MAX_ANSWER_CHARS = 5_000

# Farquhar et al.'s brief-answer instruction, zero-shot.
DEFAULT_PROMPT = "Answer the following question as briefly as possible.\n{question}"

ENTAILMENT_METHODS = ("nli", "embedding", "generator")


# --------------------------------------------------------------------------------------------
# Entailment back-ends: each labels (premise, hypothesis) index pairs of a list of answers
# --------------------------------------------------------------------------------------------


def _with_question(question: str, answer: str, condition: bool) -> str:
    return f"{question} {answer}" if condition and question else answer


class NLIEntailment:
    """Labels pairs with an NLI cross-encoder, all pairs of a call in one ``probs`` call (which
    batches them by length, ``backends.nli``). Label order comes from the model's config."""

    method = "nli"

    def __init__(self, nli, *, condition_on_question: bool = True) -> None:
        self.nli = nli
        self.condition_on_question = bool(condition_on_question)
        self.model_id = getattr(nli, "model_id", type(nli).__name__)

    def describe(self) -> dict[str, Any]:
        return {
            "entailment": self.method,
            "nli_model": self.model_id,
            "condition_on_question": self.condition_on_question,
        }

    def label_pairs(
        self, question: str, texts: Sequence[str], pairs: Sequence[tuple[int, int]]
    ) -> list[int]:
        if not pairs:
            return []
        inputs = [
            (
                _with_question(question, texts[i], self.condition_on_question),
                _with_question(question, texts[j], self.condition_on_question),
            )
            for i, j in pairs
        ]
        return [int(k) for k in np.asarray(self.nli.probs(inputs)).argmax(1)]


class GeneratorEntailment:
    """Asks the generator whether answer 1 entails answer 2 (the prompt of Farquhar et al.'s
    LLM entailment, in our words) and takes the most probable of the three labels under
    ``choice_probs``. One scoring call per pair: prompts differ in their middle, so no
    cache is shared between pairs."""

    method = "generator"
    OPTIONS = ("entailment", "contradiction", "neutral")
    _LABEL = {"entailment": ENTAILMENT, "contradiction": CONTRADICTION, "neutral": NEUTRAL}

    def __init__(self, lm: LanguageModel, *, chat: bool = True) -> None:
        self.lm = lm
        self.chat = chat
        self.model_id = getattr(lm, "model_id", type(lm).__name__)

    def describe(self) -> dict[str, Any]:
        return {"entailment": self.method, "entailment_model": self.model_id}

    @staticmethod
    def prompt(question: str, premise: str, hypothesis: str) -> str:
        return (
            f"We are evaluating answers to the question: {question}\n"
            "Here are two possible answers.\n"
            f"Possible Answer 1: {premise}\n"
            f"Possible Answer 2: {hypothesis}\n"
            "Does Possible Answer 1 semantically entail Possible Answer 2? "
            "Respond with entailment, contradiction, or neutral."
        )

    def label_pairs(
        self, question: str, texts: Sequence[str], pairs: Sequence[tuple[int, int]]
    ) -> list[int]:
        options = list(self.OPTIONS) if self.chat else [" " + o for o in self.OPTIONS]
        labels = []
        for i, j in pairs:
            probs = self.lm.choice_probs(
                self.prompt(question, texts[i], texts[j]), options, chat=self.chat
            )
            labels.append(self._LABEL[self.OPTIONS[int(np.argmax(probs))]])
        return labels


class EmbeddingEntailment:
    """Two answers entail each other when the cosine similarity of their sentence embeddings
    is at least ``threshold`` (symmetric, so the strict and lenient rules agree); below it the
    pair counts as neutral. The spectral measures and KLE use the clipped cosine similarity
    itself. Embeddings of the distinct answers are computed once, in one batch."""

    method = "embedding"

    def __init__(
        self,
        embedder,
        *,
        threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
        condition_on_question: bool = False,
    ) -> None:
        threshold = float(threshold)
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise ConfidantError(f"the similarity threshold must be in [-1, 1], got {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.condition_on_question = bool(condition_on_question)
        self.model_id = getattr(embedder, "model_id", type(embedder).__name__)

    def describe(self) -> dict[str, Any]:
        return {
            "entailment": self.method,
            "embedding_model": self.model_id,
            "threshold": self.threshold,
            "condition_on_question": self.condition_on_question,
        }

    def cosine(self, question: str, texts: Sequence[str]) -> np.ndarray:
        vecs = np.asarray(
            self.embedder.embed(
                [_with_question(question, t, self.condition_on_question) for t in texts]
            ),
            dtype=float,
        )
        return np.clip(vecs @ vecs.T, -1.0, 1.0)


def make_entailment(
    method: str,
    *,
    nli=None,
    embedder=None,
    lm: LanguageModel | None = None,
    condition_on_question: bool = True,
    threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    chat: bool = True,
):
    """The entailment back-end for ``method`` ("nli", "embedding" or "generator") over the
    given backend object."""
    if method == "nli":
        if nli is None:
            raise ConfidantError("NLI entailment needs an NLI model")
        return NLIEntailment(nli, condition_on_question=condition_on_question)
    if method == "embedding":
        if embedder is None:
            raise ConfidantError("embedding entailment needs a sentence-embedding model")
        return EmbeddingEntailment(embedder, threshold=threshold)
    if method == "generator":
        if lm is None:
            raise ConfidantError("generator entailment needs the generator")
        return GeneratorEntailment(lm, chat=chat)
    raise ConfidantError(
        f"unknown entailment {method!r}; use one of {', '.join(ENTAILMENT_METHODS)}"
    )


# --------------------------------------------------------------------------------------------
# Pair statistics: clustering, label matrix, similarity — computed once
# --------------------------------------------------------------------------------------------


@dataclass
class PairStatistics:
    """What the entailment step produced for N answers.

    ``clustering.labels`` is the N×N NLI label matrix (−1 where no label was needed);
    ``similarity`` the N×N similarity in [0, 1] the spectral measures use and
    ``kernel_weights`` the semantic-graph weights of KLE (None when no measure needed them).
    ``model_pairs`` counts pairs sent to the entailment model, ``model_calls`` its calls,
    ``embedded`` texts embedded.
    """

    clustering: EntailmentClustering
    similarity: np.ndarray | None
    kernel_weights: np.ndarray | None
    model_pairs: int
    model_calls: int
    cached_pairs: int
    embedded: int


def _expand(distinct_matrix: np.ndarray, index_of: list[int]) -> np.ndarray:
    idx = np.asarray(index_of)
    return distinct_matrix[np.ix_(idx, idx)]


def pair_statistics(
    question: str,
    texts: Sequence[str],
    entailment,
    *,
    strict: bool = True,
    full_matrix: bool = True,
    cache: MutableMapping[tuple[str, str], int] | None = None,
) -> PairStatistics:
    """Cluster ``texts`` and, when ``full_matrix``, label every ordered pair of distinct answers.

    - Embedding entailment: the distinct answers are embedded once; labels, clusters,
      similarity and KLE weights all come from that one cosine matrix.
    - NLI / generator with ``full_matrix``: all D(D−1) ordered pairs of the D distinct answers
      not in ``cache`` go through ONE ``label_pairs`` call; the clustering reads from it.
      Similarity is the symmetrised entailment indicator (Lin et al. 2024) and the KLE weights
      are entailment + ½ neutral (Nikitin et al. 2024).
    - Without ``full_matrix``: the clustering asks only the pairs the first-member walk needs.
    ``cache`` maps (normalised premise, normalised hypothesis) to a label; share it only
    between calls on the same question with the same entailment model.
    """
    texts = list(texts)
    if not texts:
        raise ConfidantError("need at least one answer")
    keys = [normalise_answer_text(t) for t in texts]
    first: dict[str, int] = {}
    distinct: list[int] = []
    for i, key in enumerate(keys):
        if key not in first:
            first[key] = len(distinct)
            distinct.append(i)
    index_of = [first[k] for k in keys]  # answer -> position among the distinct answers
    d = len(distinct)
    model_pairs = model_calls = cached = embedded = 0

    if isinstance(entailment, EmbeddingEntailment):
        cos = entailment.cosine(question, [texts[i] for i in distinct])
        embedded = d
        dist_labels = np.where(cos >= entailment.threshold, ENTAILMENT, NEUTRAL)
        clustering = _cluster_from_matrix(texts, distinct, dist_labels, strict)
        clustering.labels = _full_labels(dist_labels, index_of).tolist()
        sim = np.clip(cos, 0.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        similarity = _expand(sim, index_of)
        weights = similarity.copy()
        np.fill_diagonal(weights, 0.0)
        return PairStatistics(clustering, similarity, weights, 0, 0, 0, embedded)

    if full_matrix:
        dist_labels = np.full((d, d), ENTAILMENT, dtype=int)
        wanted = [(a, b) for a in range(d) for b in range(d) if a != b]
        to_ask = []
        for a, b in wanted:
            key = (keys[distinct[a]], keys[distinct[b]])
            if cache is not None and key in cache:
                dist_labels[a, b] = cache[key]
                cached += 1
            else:
                to_ask.append((a, b))
        if to_ask:
            answers = entailment.label_pairs(
                question, texts, [(distinct[a], distinct[b]) for a, b in to_ask]
            )
            model_pairs, model_calls = len(to_ask), 1
            for (a, b), label in zip(to_ask, answers, strict=True):
                dist_labels[a, b] = label
                if cache is not None:
                    cache[(keys[distinct[a]], keys[distinct[b]])] = int(label)
        clustering = _cluster_from_matrix(texts, distinct, dist_labels, strict)
        full = _full_labels(dist_labels, index_of)
        clustering.labels = full.tolist()
        return PairStatistics(
            clustering,
            nli_similarity_matrix(full, "entail"),
            nli_graph_weights(full),
            model_pairs,
            model_calls,
            cached,
            0,
        )

    clustering = cluster_texts(
        texts,
        lambda pairs: entailment.label_pairs(question, texts, pairs),
        strict=strict,
        cache=cache,
    )
    return PairStatistics(
        clustering, None, None, clustering.n_pairs, clustering.n_calls, clustering.n_cached, 0
    )


def _full_labels(dist_labels: np.ndarray, index_of: list[int]) -> np.ndarray:
    """N×N labels from the distinct answers' matrix; identical answers entail each other."""
    full = _expand(dist_labels, index_of).copy()
    idx = np.asarray(index_of)
    full[idx[:, None] == idx[None, :]] = ENTAILMENT
    return full


def _cluster_from_matrix(
    texts: list[str], distinct: list[int], dist_labels: np.ndarray, strict: bool
) -> EntailmentClustering:
    """Run the clustering walk reading labels from an already computed matrix (no model)."""
    position = {answer: k for k, answer in enumerate(distinct)}
    clustering = cluster_texts(
        texts,
        lambda pairs: [int(dist_labels[position[i], position[j]]) for i, j in pairs],
        strict=strict,
    )
    # Those were lookups, not model calls: the model work is counted by the caller.
    clustering.n_pairs = clustering.n_calls = clustering.n_cached = 0
    return clustering


# --------------------------------------------------------------------------------------------
# Statistics every measure reads, and the measures
# --------------------------------------------------------------------------------------------


@dataclass
class AnswerStatistics:
    """The computed-once statistics of one question's answers.

    ``log_likelihoods`` are the per-answer values the likelihood measures use (the mean token
    log-probability for sampled answers), ``total_log_likelihoods`` the summed ones; both None
    for pasted answers without them. ``reference`` is the low-temperature answer;
    ``p_true`` the generator's probability that the reference answer is true.
    """

    texts: list[str]
    cluster_ids: list[int]
    log_likelihoods: list[float] | None = None
    total_log_likelihoods: list[float] | None = None
    similarity: np.ndarray | None = None
    kernel_weights: np.ndarray | None = None
    reference: Generation | None = None
    p_true: float | None = None

    @property
    def n(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Measure:
    """One uncertainty measure: ``compute(stats)`` → float (higher = more uncertain).

    ``needs`` names the statistics it reads beyond the clusters: "likelihoods" (per-answer
    log-likelihoods), "pairs" (every ordered pair labelled), "reference" (the low-temperature
    answer's tokens), "generator" (p(True)). ``per_log_n``: an entropy over the answers'
    distribution, also reported divided by log N.
    """

    key: str
    label: str
    explanation: str
    compute: Callable[[AnswerStatistics], float]
    needs: frozenset[str] = frozenset()
    per_log_n: bool = False


def _reference_tokens(stats: AnswerStatistics, what: str) -> list[float]:
    ref = stats.reference
    if ref is None or not ref.tokens:
        raise ConfidantError("the reference answer has no tokens")
    return [getattr(t, what) for t in ref.tokens]


_LL, _PAIRS, _REF, _GEN = "likelihoods", "pairs", "reference", "generator"

# One line per measure. The functions and their formulas live in uq.semantic_entropy and
# uq.black_box.
# fmt: off
MEASURES: tuple[Measure, ...] = (
    Measure("discrete_semantic_entropy", "Discrete semantic entropy", "Entropy of the share of answers in each meaning cluster; needs no likelihoods (Farquhar et al. 2024).", lambda s: discrete_semantic_entropy(s.cluster_ids), per_log_n=True),  # noqa: E501
    Measure("semantic_entropy", "Semantic entropy (likelihood)", "Entropy of the clusters' probability mass, each answer weighted by exp(mean token log-prob), normalised over the clusters seen (Farquhar et al. 2024).", lambda s: semantic_entropy(s.cluster_ids, s.log_likelihoods), frozenset({_LL}), per_log_n=True),  # noqa: E501
    Measure("kuhn_semantic_entropy", "Semantic entropy (Kuhn 2023 code)", "Mean over clusters of −log of the cluster's unnormalised likelihood mass (Kuhn et al. 2023).", lambda s: kuhn_semantic_entropy(s.cluster_ids, s.log_likelihoods), frozenset({_LL}), per_log_n=True),  # noqa: E501
    Measure("number_of_semantic_sets", "Number of semantic sets", "How many different meanings the answers have (Kuhn et al. 2023).", lambda s: float(number_of_semantic_sets(s.cluster_ids))),  # noqa: E501
    Measure("predictive_entropy", "Predictive entropy", "Minus the mean total log-likelihood of the sampled answers (Kuhn et al. 2023).", lambda s: predictive_entropy(s.total_log_likelihoods), frozenset({_LL}), per_log_n=True),  # noqa: E501
    Measure("ln_predictive_entropy", "Length-normalised predictive entropy", "Minus the mean of the answers' mean token log-probabilities; Farquhar et al.'s 'naive entropy' (Malinin & Gales 2021).", lambda s: predictive_entropy(s.log_likelihoods), frozenset({_LL}), per_log_n=True),  # noqa: E501
    Measure("maximum_sequence_probability", "Maximum sequence probability", "−log p of the reference (low-temperature) answer under the raw model.", lambda s: maximum_sequence_probability(_reference_tokens(s, "logprob")), frozenset({_REF})),  # noqa: E501
    Measure("perplexity", "Perplexity", "exp of the reference answer's mean token surprisal.", lambda s: perplexity(_reference_tokens(s, "logprob")), frozenset({_REF})),  # noqa: E501
    Measure("mean_token_entropy", "Mean token entropy", "Mean entropy of the raw next-token distribution over the reference answer (Malinin & Gales 2021).", lambda s: mean_token_entropy(_reference_tokens(s, "entropy")), frozenset({_REF})),  # noqa: E501
    Measure("max_token_entropy", "Max token entropy", "Largest raw next-token entropy in the reference answer.", lambda s: max_token_entropy(_reference_tokens(s, "entropy")), frozenset({_REF})),  # noqa: E501
    Measure("lexical_uncertainty", "Lexical similarity (1 − ROUGE-L)", "1 − the mean ROUGE-L between every two answers: answers that share few words are uncertain (Kuhn et al. 2023).", lambda s: lexical_uncertainty(s.texts)),  # noqa: E501
    Measure("p_true", "p(True)", "1 − the generator's probability that the reference answer is true, shown the sampled answers as brainstorm (Kadavath et al. 2022); zero-shot unless worked examples are given.", lambda s: p_true_uncertainty(_log(s.p_true), _log(1.0 - s.p_true)), frozenset({_GEN})),  # noqa: E501
    Measure("eigv", "EigV", "Sum of max(0, 1 − λ) over the normalised graph Laplacian of the answers' similarity: a soft count of meanings (Lin et al. 2024).", lambda s: eigv(s.similarity), frozenset({_PAIRS})),  # noqa: E501
    Measure("degree", "Degree", "1 − the mean pairwise similarity of the answers (Lin et al. 2024).", lambda s: degree(s.similarity), frozenset({_PAIRS})),  # noqa: E501
    Measure("eccentricity", "Eccentricity", "Spread of the answers' spectral embeddings around their centre (Lin et al. 2024).", lambda s: eccentricity(s.similarity), frozenset({_PAIRS})),  # noqa: E501
    Measure("kernel_language_entropy", "Kernel language entropy", "Von Neumann entropy of a heat kernel over the semantic graph (Nikitin et al. 2024).", lambda s: kernel_language_entropy(s.kernel_weights), frozenset({_PAIRS}), per_log_n=True),  # noqa: E501
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
    return [m.key for m in MEASURES if _PAIRS not in m.needs]


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


_MISSING = {
    _LL: "needs per-answer log-likelihoods",
    _PAIRS: "needs the pair matrix",
    _REF: "needs the reference answer's tokens",
    _GEN: "needs the generator",
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
            out[m.key] = {"value": None, "per_log_n": None, "note": _MISSING[missing[0]]}
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


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass
class SemanticEntropyResult:
    """One question's answers, clusters, label matrix and measures, with every parameter that
    produced them. Plain data: :meth:`to_dict` / :meth:`from_dict` round-trip through JSON."""

    question: str
    source: str  # "model" (sampled here) or "pasted"
    model: str | None
    params: dict[str, Any]
    texts: list[str]
    clustering: EntailmentClustering
    measures: dict[str, dict[str, Any]]
    samples: list[Generation] = field(default_factory=list)
    reference: Generation | None = None
    log_likelihoods: list[float] | None = None
    likelihood_source: str | None = None
    similarity: list[list[float]] | None = None
    p_true: float | None = None
    work: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.texts)

    def clusters(self) -> list[dict[str, Any]]:
        """Per cluster: id, member indices and texts, share of answers, and likelihood mass
        (normalised over the observed clusters; None without log-likelihoods)."""
        ids = self.clustering.cluster_ids
        share = cluster_probabilities(ids)
        mass = cluster_probabilities(ids, self.log_likelihoods) if self.log_likelihoods else None
        rows = []
        for c in sorted(share):
            members = [i for i, k in enumerate(ids) if k == c]
            rows.append(
                {
                    "cluster": c,
                    "members": members,
                    "texts": [self.texts[i] for i in members],
                    "share": share[c],
                    "likelihood_mass": mass[c] if mass else None,
                }
            )
        return rows

    def measure_value(self, key: str) -> float | None:
        entry = self.measures.get(key)
        return None if entry is None else entry.get("value")

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "source": self.source,
            "model": self.model,
            "params": self.params,
            "texts": self.texts,
            "clustering": self.clustering.to_dict(),
            "measures": self.measures,
            "samples": [g.to_dict() for g in self.samples],
            "reference": self.reference.to_dict() if self.reference else None,
            "log_likelihoods": self.log_likelihoods,
            "likelihood_source": self.likelihood_source,
            "similarity": self.similarity,
            "p_true": self.p_true,
            "work": self.work,
            "timings": self.timings,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SemanticEntropyResult:
        return cls(
            question=d["question"],
            source=d["source"],
            model=d.get("model"),
            params=dict(d.get("params", {})),
            texts=list(d["texts"]),
            clustering=EntailmentClustering(**d["clustering"]),
            measures={k: dict(v) for k, v in d["measures"].items()},
            samples=[Generation.from_dict(g) for g in d.get("samples", [])],
            reference=Generation.from_dict(d["reference"]) if d.get("reference") else None,
            log_likelihoods=d.get("log_likelihoods"),
            likelihood_source=d.get("likelihood_source"),
            similarity=d.get("similarity"),
            p_true=d.get("p_true"),
            work=dict(d.get("work", {})),
            timings=dict(d.get("timings", {})),
            notes=list(d.get("notes", [])),
        )


# --------------------------------------------------------------------------------------------
# Sampling and p(True)
# --------------------------------------------------------------------------------------------


def _supports_mixed_temperatures(lm) -> bool:
    try:
        return "temperatures" in inspect.signature(lm.sample_batch).parameters
    except (TypeError, ValueError):
        return False


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
    if params.temperature > 0 and reference_temperature > 0 and _supports_mixed_temperatures(lm):
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


@dataclass(frozen=True)
class PTrueExample:
    """A worked p(True) example for the few-shot prompt: a question, its brainstormed (sampled)
    answers, the proposed (reference) answer and whether that answer was right."""

    question: str
    brainstorm: tuple[str, ...]
    proposed: str
    true: bool


def _p_true_block(question: str, brainstorm: Sequence[str], proposed: str) -> str:
    ideas = "\n".join(a.strip() for a in brainstorm)
    return (
        f"Question: {question}\n"
        f"Brainstormed Answers: {ideas}\n"
        f"Possible answer: {proposed.strip()}\n"
        "Is the possible answer:\nA) True\nB) False\n"
        "The possible answer is:"
    )


def p_true_prompt(
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    examples: Sequence[PTrueExample] = (),
) -> str:
    """The p(True) prompt of Kadavath et al. 2022 with sampled answers as brainstorm, in the
    layout of Farquhar et al.'s code: each worked example's block ends with its answer (" A"
    for true, " B" for false), then the question's block. Zero-shot without ``examples``
    (Farquhar et al. use 20 from the training split: ``uq.evaluate --p-true-fewshot``)."""
    blocks = [
        _p_true_block(e.question, e.brainstorm, e.proposed) + (" A" if e.true else " B")
        for e in examples
    ]
    return "\n\n".join([*blocks, _p_true_block(question, brainstorm, proposed)])


def p_true_probability(
    lm: LanguageModel,
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    *,
    chat=True,
    examples: Sequence[PTrueExample] = (),
) -> float:
    """p(True) = p("A") / (p("A") + p("B")) under the generator (``choice_probs``)."""
    options = ["A", "B"] if chat else [" A", " B"]
    prompt = p_true_prompt(question, brainstorm, proposed, examples)
    probs = lm.choice_probs(prompt, options, chat=chat)
    return float(probs[0])


def fitted_p_true_probability(
    lm: LanguageModel,
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    *,
    chat=True,
    examples: Sequence[PTrueExample] = (),
) -> tuple[float, int]:
    """(p(True), examples used): as many of ``examples`` as fit the model's context window —
    when the prompt is too long the earliest examples are dropped (half at a time), as
    Farquhar et al. cut their few-shot prompt to fit."""
    examples = list(examples)
    while True:
        try:
            value = p_true_probability(
                lm, question, brainstorm, proposed, chat=chat, examples=examples
            )
            return value, len(examples)
        except PromptTooLongError:
            if not examples:
                raise
            examples = examples[len(examples) // 2 + len(examples) % 2 :]


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def _needs(measures: Sequence[Measure]) -> set[str]:
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
    needs = _needs(chosen)
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
        + (f" (all {distinct * (distinct - 1)} ordered pairs)" if _PAIRS in needs else ""),
    )
    started = time.perf_counter()
    pairs = pair_statistics(
        question, texts, entailment, strict=strict, full_matrix=_PAIRS in needs, cache=cache
    )
    timings["entailment"] = time.perf_counter() - started

    p_true = None
    p_true_used = 0
    if _GEN in needs:
        stage(0.9, "Asking the generator p(True)")
        started = time.perf_counter()
        p_true, p_true_used = fitted_p_true_probability(
            lm, question, texts, reference.text, chat=chat, examples=p_true_examples
        )
        timings["p_true"] = time.perf_counter() - started

    means, totals = zip(*(_mean_logprob(g, likelihood) for g in samples), strict=True)
    stats = AnswerStatistics(
        texts=texts,
        cluster_ids=pairs.clustering.cluster_ids,
        log_likelihoods=list(means),
        total_log_likelihoods=list(totals),
        similarity=pairs.similarity,
        kernel_weights=pairs.kernel_weights,
        reference=reference,
        p_true=p_true,
    )
    started = time.perf_counter()
    values = compute_measures(stats, chosen, {_LL, _PAIRS, _REF, _GEN})
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
        work={
            "generate_calls": generate_calls,
            "entailment_pairs": pairs.model_pairs,
            "entailment_calls": pairs.model_calls,
            "cached_pairs": pairs.cached_pairs,
            "embedded_texts": pairs.embedded,
        },
        timings=timings,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Pasted answers (black-box)
# --------------------------------------------------------------------------------------------


def _check_answers(answers: Sequence[Any]) -> list[str]:
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise ConfidantError("give the answers as a list of strings")
    out = []
    for k, a in enumerate(answers, 1):
        if not isinstance(a, str):
            raise ConfidantError(f"answer {k} is not text: {a!r}")
        if "\x00" in a:
            raise ConfidantError(f"answer {k} contains a NUL character")
        a = a.strip()
        if not a:
            raise ConfidantError(f"answer {k} is empty")
        if len(a) > MAX_ANSWER_CHARS:
            raise ConfidantError(
                f"answer {k} is {len(a):,} characters long; the limit is {MAX_ANSWER_CHARS:,}"
            )
        out.append(a)
    if len(out) < 2:
        raise ConfidantError(f"paste at least 2 answers to compare, got {len(out)}")
    if len(out) > MAX_ANSWERS:
        raise ConfidantError(f"at most {MAX_ANSWERS} answers, got {len(out)}")
    return out


def _check_log_likelihoods(values: Sequence[Any] | None, n: int) -> list[float] | None:
    if values is None:
        return None
    out = []
    for k, v in enumerate(values, 1):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ConfidantError(f"log-likelihood {k} is not a number: {v!r}") from None
        if not math.isfinite(x):
            raise ConfidantError(f"log-likelihood {k} must be finite, got {v!r}")
        if x > 1e-6:
            raise ConfidantError(f"log-likelihood {k} must be ≤ 0 (a log-probability), got {x}")
        out.append(min(x, 0.0))
    if len(out) != n:
        raise ConfidantError(f"got {len(out)} log-likelihoods for {n} answers; give one each")
    return out


def score_pasted_answers(
    answers: Sequence[str],
    entailment,
    *,
    question: str = "",
    log_likelihoods: Sequence[float] | None = None,
    strict: bool = True,
    measures: Sequence[str] | None = None,
    cache: MutableMapping[tuple[str, str], int] | None = None,
) -> SemanticEntropyResult:
    """Every measure that needs no model internals, for answers the user supplies.

    Discrete SE, number of sets, lexical similarity, EigV/Degree/Eccentricity and KLE always;
    likelihood SE, the Kuhn variant and (length-normalised) predictive entropy when
    ``log_likelihoods`` (one per answer, used as given for both the per-answer and the
    total log-likelihood) are supplied. ``question`` (optional) is prepended for NLI.
    """
    texts = _check_answers(answers)
    lls = _check_log_likelihoods(log_likelihoods, len(texts))
    question = clean_question(question) if question and str(question).strip() else ""
    if isinstance(entailment, GeneratorEntailment):
        raise ConfidantError("pasted answers are compared with NLI or embeddings")
    chosen = select_measures(measures)
    available = {_PAIRS} | ({_LL} if lls is not None else set())
    started = time.perf_counter()
    pairs = pair_statistics(
        question,
        texts,
        entailment,
        strict=strict,
        full_matrix=_PAIRS in _needs(chosen),
        cache=cache,
    )
    timings = {"entailment": time.perf_counter() - started}
    stats = AnswerStatistics(
        texts=texts,
        cluster_ids=pairs.clustering.cluster_ids,
        log_likelihoods=lls,
        total_log_likelihoods=lls,
        similarity=pairs.similarity,
        kernel_weights=pairs.kernel_weights,
    )
    values = compute_measures(stats, chosen, available)
    return SemanticEntropyResult(
        question=question,
        source="pasted",
        model=None,
        params={
            "n": len(texts),
            "strict": bool(strict),
            "measures": [m.key for m in chosen],
            **entailment.describe(),
        },
        texts=texts,
        clustering=pairs.clustering,
        measures=values,
        log_likelihoods=lls,
        likelihood_source="given" if lls is not None else None,
        similarity=pairs.similarity.tolist() if pairs.similarity is not None else None,
        work={
            "generate_calls": 0,
            "entailment_pairs": pairs.model_pairs,
            "entailment_calls": pairs.model_calls,
            "cached_pairs": pairs.cached_pairs,
            "embedded_texts": pairs.embedded,
        },
        timings=timings,
    )


_ANSWER_FIELDS = ("answer", "text", "response")
_LL_FIELDS = ("log_likelihood", "loglik", "logprob", "log_prob")


def _pick(row: dict, names: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _from_records(records: list[Any], where: str) -> tuple[list[str], list[float] | None]:
    if all(isinstance(r, str) for r in records):
        return list(records), None
    if not all(isinstance(r, dict) for r in records):
        raise ConfidantError(f"{where}: give strings, or objects with an 'answer' field")
    answers, lls = [], []
    for k, r in enumerate(records, 1):
        a = _pick(r, _ANSWER_FIELDS)
        if a is None:
            raise ConfidantError(f"{where}: item {k} has no 'answer' field")
        answers.append(a)
        lls.append(_pick(r, _LL_FIELDS))
    given = [v not in (None, "") for v in lls]
    if any(given) and not all(given):
        raise ConfidantError(f"{where}: give a log-likelihood for every answer or for none")
    return answers, (lls if all(given) else None)


def parse_answers_text(text: str | None) -> tuple[list[str], list[float] | None]:
    """Answers typed or pasted: a JSON list (of strings, or of objects with "answer" and an
    optional "log_likelihood"), else one answer per non-blank line. Returns the raw answers
    and log-likelihoods (None when not given); :func:`score_pasted_answers` validates them."""
    if text is None or not str(text).strip():
        raise ConfidantError("Paste some answers first (one per line, or a JSON list).")
    text = str(text)
    if "\x00" in text:
        raise ConfidantError("The answers contain a NUL character; remove it and try again.")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ConfidantError(
                f"the JSON list does not parse: {exc.msg} (line {exc.lineno})"
            ) from None
        if not isinstance(records, list):
            raise ConfidantError("give a JSON list of answers")
        return _from_records(records, "JSON list")
    return [line.strip() for line in text.splitlines() if line.strip()], None


def read_answers_file(path: str | Path) -> tuple[list[str], list[float] | None]:
    """Answers from a CSV (header with an "answer" column and an optional "log_likelihood")
    or a JSONL file (one object or string per line)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfidantError(f"cannot read {path.name}: {exc.strerror}") from None
    if len(raw) > 20_000_000:
        raise ConfidantError("the file is larger than 20 MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfidantError(f"{path.name} is not UTF-8 text") from None
    if "\x00" in text:
        raise ConfidantError(f"{path.name} contains NUL characters; is it a text file?")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        if suffix == ".json" and text.strip().startswith("["):
            return parse_answers_text(text)
        records = []
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfidantError(f"{path.name} line {k} is not JSON: {exc.msg}") from None
        if not records:
            raise ConfidantError(f"{path.name} has no answers")
        return _from_records(records, f"{path.name}")
    if suffix in (".csv", ".tsv", ".txt"):
        if suffix == ".txt":
            return parse_answers_text(text)
        try:
            rows = list(
                csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
            )
        except csv.Error as exc:
            raise ConfidantError(f"{path.name} is not valid CSV: {exc}") from None
        if not rows:
            raise ConfidantError(f"{path.name} has a header but no answers")
        if _pick(rows[0], _ANSWER_FIELDS) is None:
            raise ConfidantError(f"{path.name} needs an 'answer' column")
        return _from_records(rows, path.name)
    raise ConfidantError(
        f"upload a .csv, .tsv, .jsonl or .txt file, not {path.suffix or path.name}"
    )
