"""Semantic entropy and the sequence-level white-box measures that sit beside it.

Everything here is a plain function of numbers: cluster ids, per-answer log-likelihoods,
per-token log-probabilities and entropies, and an NLI callable that labels (premise,
hypothesis) pairs by index. No model object is touched; the pipeline computes the statistics
once and passes them in. Higher means more uncertain; entropies are in nats.

Sources: Kuhn, Gal & Farquhar, "Semantic Uncertainty" (ICLR 2023); Farquhar, Kossen, Kuhn &
Gal, "Detecting hallucinations in large language models using semantic entropy" (Nature 2024);
Kadavath et al., "Language Models (Mostly) Know What They Know" (2022) for p(True);
Malinin & Gales, "Uncertainty Estimation in Autoregressive Structured Prediction" (ICLR 2021)
for the predictive-entropy and token-entropy baselines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp

from backends.base import ConfidantError
from uq.token_stats import LOGPROB_TOLERANCE, perplexity  # noqa: F401  (perplexity: re-exported)

CONTRADICTION, NEUTRAL, ENTAILMENT = 0, 1, 2
NOT_COMPUTED = -1


# --------------------------------------------------------------------------------------------
# Entailment clustering
# --------------------------------------------------------------------------------------------


def _check_label(label: Any, where: str) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise ConfidantError(
            f"NLI must return an integer label 0, 1 or 2 for {where}, got {label!r}"
        )
    if label not in (CONTRADICTION, NEUTRAL, ENTAILMENT):
        raise ConfidantError(f"NLI label for {where} must be 0, 1 or 2, got {label}")
    return int(label)


def entailment_equivalent(forward: int, backward: int, strict: bool = True) -> bool:
    """Whether two answers mean the same, from the NLI labels in both directions.

    ``forward`` is the label for (premise a, hypothesis b), ``backward`` for (b, a); labels are
    0 contradiction, 1 neutral, 2 entailment.

    - strict (Farquhar et al. 2024, the default of their code): entailment both ways.
    - lenient (the non-strict rule of Farquhar et al.'s code): no contradiction either way,
      and not neutral both ways.
    """
    forward = _check_label(forward, "the forward direction")
    backward = _check_label(backward, "the backward direction")
    if strict:
        return forward == ENTAILMENT and backward == ENTAILMENT
    if CONTRADICTION in (forward, backward):
        return False
    return not (forward == NEUTRAL and backward == NEUTRAL)


def _forward_may_match(forward: int, strict: bool) -> bool:
    """Whether the backward label can still make the pair equivalent."""
    return forward == ENTAILMENT if strict else forward != CONTRADICTION


def cluster_by_entailment(n: int, nli: Callable[[int, int], int], strict: bool = True) -> list[int]:
    """Cluster ``n`` answers by bidirectional entailment; return a cluster id per answer.

    ``nli(i, j)`` labels premise i, hypothesis j: 0 contradiction, 1 neutral, 2 entailment.
    Answers are visited in order; each is compared with the *first member* of every existing
    cluster, in the order the clusters were opened, and joins the first one it is equivalent to
    (:func:`entailment_equivalent`); otherwise it opens a new cluster. Ids are 0, 1, ... in
    order of first appearance. The representative is the premise of the first call
    (``nli(rep, i)``); the reverse call is skipped when the first already decides the rule.

    This is the walk of LM-Polygraph's semantic classes and of TruthTorchLM (first member,
    first match); Farquhar et al.'s code lets later representatives overwrite earlier ones,
    which can split a cluster that this walk keeps whole.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfidantError(f"need at least one answer to cluster, got n={n!r}")
    cluster_ids: list[int] = []
    representatives: list[int] = []
    for i in range(n):
        for cluster, rep in enumerate(representatives):
            forward = _check_label(nli(rep, i), f"premise {rep}, hypothesis {i}")
            if strict and forward != ENTAILMENT:
                continue
            if not strict and forward == CONTRADICTION:
                continue
            backward = _check_label(nli(i, rep), f"premise {i}, hypothesis {rep}")
            if entailment_equivalent(forward, backward, strict):
                cluster_ids.append(cluster)
                break
        else:
            cluster_ids.append(len(representatives))
            representatives.append(i)
    return cluster_ids


def normalise_answer_text(text: str) -> str:
    """The key two answers must share to count as the same string: case-folded, surrounding
    whitespace and trailing sentence punctuation removed, inner whitespace collapsed."""
    text = " ".join(str(text).split()).casefold()
    return re.sub(r"[\s.!?;:,]+$", "", text)


@dataclass
class EntailmentClustering:
    """Result of :func:`cluster_texts`; plain data, JSON-serialisable via :meth:`to_dict`.

    ``labels[i][j]`` is the NLI label for premise i, hypothesis j (0 contradiction, 1 neutral,
    2 entailment), filled for every pair whose label is known (including through identical
    normalised strings) and −1 where no label was computed. ``duplicate_of[i]`` is the first
    answer with the same normalised string as answer i (i itself when it is the first).
    ``representatives[c]`` is the answer that opened cluster c. ``n_pairs`` counts pairs sent to
    NLI, ``n_calls`` the calls to ``nli_batch``, ``n_cached`` the pairs answered from the cache.
    """

    cluster_ids: list[int]
    representatives: list[int]
    duplicate_of: list[int]
    labels: list[list[int]]
    strict: bool
    n_pairs: int
    n_calls: int
    n_cached: int

    @property
    def n_clusters(self) -> int:
        return len(self.representatives)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_texts(
    texts: Sequence[str],
    nli_batch: Callable[[list[tuple[int, int]]], Sequence[int]],
    strict: bool = True,
    *,
    cache: MutableMapping[tuple[str, str], int] | None = None,
    normalise: Callable[[str], str] = normalise_answer_text,
    lazy_reverse: bool = True,
) -> EntailmentClustering:
    """Cluster answer texts by bidirectional entailment with as few, batched NLI calls as
    possible; same clusters as :func:`cluster_by_entailment` over the distinct strings.

    ``nli_batch(pairs)`` receives a list of (premise index, hypothesis index) into ``texts`` and
    returns one label per pair (0 contradiction, 1 neutral, 2 entailment).

    1. Answers with identical ``normalise``-d strings are one item and share a cluster with no
       NLI call (Farquhar et al. 2024 cluster the raw strings; deduplication only saves calls).
    2. Rounds: the earliest unassigned distinct item opens cluster c; the round asks
       (rep_c, j) for every later unassigned item j and then (j, rep_c) for those whose forward
       label can still make them equivalent (entailment under the strict rule, anything but
       contradiction under the lenient one) — with ``lazy_reverse`` two ``nli_batch`` calls
       and exactly the pairs :func:`cluster_by_entailment` asks, the fewest NLI pairs; without
       it one call per round with both directions of every pair. Those equivalent to rep_c
       join c. This reproduces the sequential first-member, first-match walk exactly — an item
       meets the representatives in the order the clusters open and stops at the first match.
    3. ``cache`` maps (normalised premise, normalised hypothesis) to a label; hits skip the
       model and new labels are stored. Share one cache only between calls that feed the NLI
       the same context (same question, same NLI model).
    """
    texts = list(texts)
    n = len(texts)
    if n == 0:
        raise ConfidantError("need at least one answer to cluster")
    if not all(isinstance(t, str) for t in texts):
        raise ConfidantError("answers must be strings")
    keys = [normalise(t) for t in texts]

    first_index: dict[str, int] = {}
    duplicate_of: list[int] = []
    for i, key in enumerate(keys):
        duplicate_of.append(first_index.setdefault(key, i))
    distinct = [i for i in range(n) if duplicate_of[i] == i]
    members: dict[int, list[int]] = {i: [] for i in distinct}
    for i in range(n):
        members[duplicate_of[i]].append(i)

    labels = np.full((n, n), NOT_COMPUTED, dtype=int)
    n_pairs = n_calls = n_cached = 0

    def record(premise: int, hypothesis: int, label: int) -> None:
        for a in members[premise]:
            for b in members[hypothesis]:
                labels[a, b] = label

    def ask(wanted: list[tuple[int, int]], known: dict[tuple[int, int], int]) -> None:
        nonlocal n_pairs, n_calls, n_cached
        to_ask: list[tuple[int, int]] = []
        for pair in wanted:
            key = (keys[pair[0]], keys[pair[1]])
            if cache is not None and key in cache:
                known[pair] = _check_label(cache[key], f"cached pair {pair}")
                n_cached += 1
            else:
                to_ask.append(pair)
        if not to_ask:
            return
        answers = list(nli_batch(to_ask))
        n_calls += 1
        n_pairs += len(to_ask)
        if len(answers) != len(to_ask):
            raise ConfidantError(f"NLI returned {len(answers)} labels for {len(to_ask)} pairs")
        for pair, label in zip(to_ask, answers, strict=True):
            label = _check_label(label, f"premise {pair[0]}, hypothesis {pair[1]}")
            known[pair] = label
            if cache is not None:
                cache[(keys[pair[0]], keys[pair[1]])] = label

    cluster_of: dict[int, int] = {}
    representatives: list[int] = []
    unassigned = list(distinct)
    while unassigned:
        rep = unassigned[0]
        cluster = len(representatives)
        representatives.append(rep)
        cluster_of[rep] = cluster
        rest = unassigned[1:]
        known: dict[tuple[int, int], int] = {}
        if lazy_reverse:
            ask([(rep, j) for j in rest], known)
            ask(
                [(j, rep) for j in rest if _forward_may_match(known[(rep, j)], strict)],
                known,
            )
        else:
            ask([(rep, j) for j in rest] + [(j, rep) for j in rest], known)
        for pair, label in known.items():
            record(pair[0], pair[1], label)
        still: list[int] = []
        for j in rest:
            if (j, rep) in known and entailment_equivalent(
                known[(rep, j)], known[(j, rep)], strict
            ):
                cluster_of[j] = cluster
            else:
                still.append(j)
        unassigned = still

    return EntailmentClustering(
        cluster_ids=[cluster_of[duplicate_of[i]] for i in range(n)],
        representatives=representatives,
        duplicate_of=duplicate_of,
        labels=labels.tolist(),
        strict=strict,
        n_pairs=n_pairs,
        n_calls=n_calls,
        n_cached=n_cached,
    )


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _cluster_array(cluster_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    ids = np.asarray(cluster_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ConfidantError("cluster ids must be a non-empty 1-D sequence, one id per answer")
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise ConfidantError("cluster ids must be integers")
    return ids


def _finite_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfidantError(f"{name} must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise ConfidantError(f"{name} must be finite (no NaN or infinity)")
    return arr


def _logprob_array(token_logprobs: Sequence[float] | np.ndarray) -> np.ndarray:
    lps = _finite_array(token_logprobs, "token log-probabilities")
    if np.any(lps > LOGPROB_TOLERANCE):
        raise ConfidantError("token log-probabilities must be ≤ 0")
    return np.minimum(lps, 0.0)


def _ids_and_likelihoods(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ids = _cluster_array(cluster_ids)
    ll = _finite_array(log_likelihoods, "log-likelihoods")
    if ll.shape != ids.shape:
        raise ConfidantError(
            f"need one log-likelihood per answer: {ids.size} cluster ids, {ll.size} values"
        )
    return ids, ll


def _entropy_of(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(max(0.0, -(p * np.log(p)).sum()))


# --------------------------------------------------------------------------------------------
# Semantic entropy family
# --------------------------------------------------------------------------------------------


def number_of_semantic_sets(cluster_ids: Sequence[int] | np.ndarray) -> int:
    """K, the number of distinct meanings among the answers (Kuhn et al. 2023)."""
    return int(np.unique(_cluster_array(cluster_ids)).size)


def cluster_probabilities(
    cluster_ids: Sequence[int] | np.ndarray,
    log_likelihoods: Sequence[float] | np.ndarray | None = None,
) -> dict[int, float]:
    """Probability of each observed cluster, keyed by cluster id (ascending).

    Without likelihoods: the share of answers, p̂(C) = |C|/N. With likelihoods ℓ_i (one per
    answer, used as given): p(C) = Σ_{i∈C} e^{ℓ_i} / Σ_j e^{ℓ_j}, normalised over the observed
    clusters (Farquhar et al. 2024). Every sampled answer counts, duplicates included.
    """
    if log_likelihoods is None:
        ids = _cluster_array(cluster_ids)
        labels, counts = np.unique(ids, return_counts=True)
        return {int(c): float(k / ids.size) for c, k in zip(labels, counts, strict=True)}
    ids, ll = _ids_and_likelihoods(cluster_ids, log_likelihoods)
    labels = np.unique(ids)
    total = logsumexp(ll)
    return {int(c): float(np.exp(logsumexp(ll[ids == c]) - total)) for c in labels}


def discrete_semantic_entropy(cluster_ids: Sequence[int] | np.ndarray) -> float:
    """Discrete semantic entropy −Σ_C p̂(C) log p̂(C) with p̂(C) = |C|/N, nats.

    Needs no likelihoods, so it works for black-box models (Farquhar et al. 2024, "discrete
    semantic entropy"). Between 0 (one meaning) and log K.
    """
    return _entropy_of(np.array(list(cluster_probabilities(cluster_ids).values())))


def semantic_entropy(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> float:
    """Likelihood semantic entropy of Farquhar et al. 2024, nats.

    log p(C) = logsumexp_{i∈C} ℓ_i − logsumexp_j ℓ_j (cluster probabilities normalised over the
    observed clusters), then the plug-in estimate SE = −Σ_C p(C) log p(C). ``log_likelihoods``
    holds one value per answer, used as given; the paper passes the mean token
    log-probability. Every sample counts, duplicates included. Between 0 and log K.
    """
    return _entropy_of(np.array(list(cluster_probabilities(cluster_ids, log_likelihoods).values())))


def kuhn_semantic_entropy(
    cluster_ids: Sequence[int] | np.ndarray, log_likelihoods: Sequence[float] | np.ndarray
) -> float:
    """Semantic entropy as computed in the code of Kuhn et al. 2023, nats.

    SE = −(1/K) Σ_C log Σ_{i∈C} e^{ℓ_i}: the unweighted mean over clusters of the negative
    unnormalised cluster log-mass. Their code also subtracts a constant shift from ℓ, which
    changes no ranking and is left out. Not bounded by log K, and can be negative when a
    cluster's summed likelihood exceeds 1.
    """
    ids, ll = _ids_and_likelihoods(cluster_ids, log_likelihoods)
    masses = [logsumexp(ll[ids == c]) for c in np.unique(ids)]
    return float(-np.mean(masses))


def predictive_entropy(log_likelihoods: Sequence[float] | np.ndarray) -> float:
    """Monte Carlo predictive entropy PE = −(1/N) Σ_i ℓ_i, nats (Kuhn et al. 2023).

    ``log_likelihoods`` are used as given: total log p(s_i | x) gives PE; mean token
    log-probabilities give the length-normalised form that Farquhar et al. 2024 call "naive
    entropy".
    """
    return float(-_finite_array(log_likelihoods, "log-likelihoods").mean())


def length_normalised_predictive_entropy(
    log_likelihoods: Sequence[float] | np.ndarray, lengths: Sequence[int] | np.ndarray
) -> float:
    """Length-normalised predictive entropy −(1/N) Σ_i ℓ_i / L_i, nats (Malinin & Gales 2021;
    Kuhn et al. 2023), from total log-likelihoods ℓ_i and token counts L_i."""
    ll = _finite_array(log_likelihoods, "log-likelihoods")
    lengths_arr = np.asarray(lengths)
    if lengths_arr.shape != ll.shape:
        raise ConfidantError(
            f"need one length per answer: {ll.size} log-likelihoods, {lengths_arr.size} lengths"
        )
    if not np.issubdtype(lengths_arr.dtype, np.integer) or np.any(lengths_arr < 1):
        raise ConfidantError("answer lengths must be positive token counts")
    return float(-(ll / lengths_arr).mean())


def maximum_sequence_probability(token_logprobs: Sequence[float] | np.ndarray) -> float:
    """Maximum sequence probability as an uncertainty, −log p(y|x) = −Σ_t log p(y_t | y_<t, x),
    nats, for one answer (usually the greedy or low-temperature one; LM-Polygraph's MSP)."""
    return float(-_logprob_array(token_logprobs).sum())


def mean_token_entropy(token_entropies: Sequence[float] | np.ndarray) -> float:
    """Mean over the answer's tokens of H_t = −Σ_v p(v | y_<t, x) log p(v | y_<t, x), nats
    (Malinin & Gales 2021; LM-Polygraph's MeanTokenEntropy)."""
    return float(_token_entropy_array(token_entropies).mean())


def max_token_entropy(token_entropies: Sequence[float] | np.ndarray) -> float:
    """Largest per-token entropy max_t H_t over the answer, nats."""
    return float(_token_entropy_array(token_entropies).max())


def _token_entropy_array(token_entropies: Sequence[float] | np.ndarray) -> np.ndarray:
    ents = _finite_array(token_entropies, "token entropies")
    if np.any(ents < -LOGPROB_TOLERANCE):
        raise ConfidantError("token entropies must be ≥ 0")
    return np.maximum(ents, 0.0)


def p_true_uncertainty(logprob_true: float, logprob_false: float | None = None) -> float:
    """1 − p(True), the p(True) measure of Kadavath et al. 2022 as an uncertainty.

    The model is asked whether a proposed answer is true; ``logprob_true`` is log p("True")
    (or of the option standing for it). With ``logprob_false`` the probability is renormalised
    over the two options, p = e^{a} / (e^{a} + e^{b}) = σ(a − b); without it p = e^{a}.
    Farquhar et al.'s code stores this quantity as ``p_false_fixed``.
    """
    a = _check_logprob(logprob_true, "log p(True)")
    if logprob_false is None:
        return float(1.0 - math.exp(a))
    b = _check_logprob(logprob_false, "log p(False)")
    if a == -math.inf and b == -math.inf:
        raise ConfidantError("p(True) is undefined when both options have probability 0")
    return float(1.0 - expit(a - b))


def _check_logprob(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value) or value > LOGPROB_TOLERANCE:
        raise ConfidantError(f"{name} must be a log-probability ≤ 0, got {value}")
    return min(value, 0.0)


def normalise_by_log_n(value: float, n: int) -> float:
    """value / log N: an entropy over N answers (≤ log N) rescaled to [0, 1].

    For N = 1 such an entropy is 0 and so is the result.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfidantError(f"the number of answers must be a positive integer, got {n!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfidantError(f"cannot normalise a non-finite value {value}")
    if n == 1:
        return 0.0
    return value / math.log(n)
