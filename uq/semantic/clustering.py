"""Clustering answers by meaning: bidirectional entailment over NLI labels (Kuhn et al.
2023; Farquhar et al. 2024), with the first-member walk of the reference code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.errors import ConfidantError
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
