"""One property test over every measure table (scikit-learn's test_common style).

Each family says how to build its statistics, how to permute the answers, and what "certain"
and "uncertain" statistics look like; every test then iterates every entry of every table:

- order invariance: permuting the answers (responses, inputs) does not change any value;
- bounds: every value lies in the entry's [lower, upper];
- higher = more uncertain: the certain statistics score ≤ the uncertain ones (≥ for an entry
  that is a confidence);
- a missing statistic gives None, not a crash.

A new table is one more :class:`Family` in :data:`FAMILIES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import Generation, TokenRecord
from judge import reliability as rel
from judge import scores as judge
from uq.inv import measures as inv
from uq.semantic import measures as semantic
from uq.semantic.black_box import nli_graph_weights, nli_similarity_matrix
from uq.semantic.measures import Bound

TOLERANCE = 1e-7
WORDS = ["paris", "lyon", "rome", "oslo", "lima", "kyiv", "bern", "riga", "doha", "baku"]


@dataclass(frozen=True)
class Family:
    """How the shared tests drive one measure table."""

    name: str
    table: Sequence[Any]  # entries with key, label, explanation, needs, lower, upper, ...
    values: Callable[[Any], dict[str, float | None]]  # statistics → {key: value or None}
    cases: st.SearchStrategy  # (statistics, the same statistics with the answers permuted)
    plain: Callable[[], tuple[Any, Any]]  # one hand-written case of the same shape
    certain: Callable[[int], Any]  # statistics of N answers that agree
    uncertain: Callable[[int], Any]  # statistics of N answers that all differ
    without: Callable[[Any, str], Any]  # the statistics with the named one missing


# --------------------------------------------------------------------------- semantic


def _reference(logprobs: Sequence[float], entropies: Sequence[float]) -> Generation:
    tokens = [
        TokenRecord(text=f"t{i}", logprob=lp, entropy=h, varentropy=0.0)
        for i, (lp, h) in enumerate(zip(logprobs, entropies, strict=True))
    ]
    return Generation(text="answer", tokens=tokens)


def _answer_statistics(
    texts: list[str],
    cluster_ids: list[int],
    labels: np.ndarray,
    log_likelihoods: list[float],
    total_log_likelihoods: list[float],
    reference: Generation,
    p_true: float,
    token_logprobs: list[list[float]],
    token_relevance: list[list[float]],
    reference_kernel: list[float],
    verbalized: tuple[float, float] = (70.0, 40.0),
    reference_similarity: list[float] | None = None,
) -> semantic.AnswerStatistics:
    return semantic.AnswerStatistics(
        texts=texts,
        cluster_ids=cluster_ids,
        log_likelihoods=log_likelihoods,
        total_log_likelihoods=total_log_likelihoods,
        similarity=nli_similarity_matrix(labels),
        kernel_weights=nli_graph_weights(labels),
        reference=reference,
        verbalized_one_stage=verbalized[0],
        verbalized_two_stage=verbalized[1],
        reference_similarity=(
            [0.5] * len(texts) if reference_similarity is None else reference_similarity
        ),
        p_true=p_true,
        sample_token_logprobs=token_logprobs,
        sample_token_relevance=token_relevance,
        reference_token_relevance=[0.5] * len(reference.tokens),
        answer_similarity=nli_similarity_matrix(labels),
        reference_kernel=reference_kernel,
    )


def _semantic_values(stats: semantic.AnswerStatistics) -> dict[str, float | None]:
    every = set().union(*(m.needs for m in semantic.MEASURES))
    out = semantic.compute_measures(stats, semantic.MEASURES, every)
    return {key: entry["value"] for key, entry in out.items()}


def _permute_answers(fields: dict, order: list[int]) -> dict:
    labels = fields["labels"]
    return {
        **fields,
        "texts": [fields["texts"][i] for i in order],
        "cluster_ids": [fields["cluster_ids"][i] for i in order],
        "labels": labels[np.ix_(order, order)],
        "log_likelihoods": [fields["log_likelihoods"][i] for i in order],
        "total_log_likelihoods": [fields["total_log_likelihoods"][i] for i in order],
        "token_logprobs": [fields["token_logprobs"][i] for i in order],
        "token_relevance": [fields["token_relevance"][i] for i in order],
        "reference_kernel": [fields["reference_kernel"][i] for i in order],
        "reference_similarity": [fields["reference_similarity"][i] for i in order],
    }


@st.composite
def _semantic_cases(draw):
    n = draw(st.integers(1, 6))
    logprob = st.floats(-8.0, 0.0)
    size = draw(st.integers(1, 4))
    labels = np.array(draw(st.lists(st.integers(0, 2), min_size=n * n, max_size=n * n)))
    fields = {
        "texts": [
            " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))
            for _ in range(n)
        ],  # fmt: skip
        "cluster_ids": draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
        "labels": labels.reshape(n, n),
        "log_likelihoods": draw(st.lists(logprob, min_size=n, max_size=n)),
        "total_log_likelihoods": draw(st.lists(st.floats(-40.0, 0.0), min_size=n, max_size=n)),
        "reference": _reference(
            draw(st.lists(logprob, min_size=size, max_size=size)),
            draw(st.lists(st.floats(0.0, 6.0), min_size=size, max_size=size)),
        ),
        "p_true": draw(st.floats(0.0, 1.0)),
        "token_logprobs": [],
        "token_relevance": [],
        "reference_kernel": draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)),
        "verbalized": (draw(st.floats(0.0, 100.0)), draw(st.floats(0.0, 100.0))),
        "reference_similarity": draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)),
    }
    for _ in range(n):
        length = draw(st.integers(0, 4))
        fields["token_logprobs"].append(draw(st.lists(logprob, min_size=length, max_size=length)))
        fields["token_relevance"].append(
            draw(st.lists(st.floats(0.0, 1.0), min_size=length, max_size=length))
        )
    order = draw(st.permutations(range(n)))
    return _answer_statistics(**fields), _answer_statistics(**_permute_answers(fields, order))


def _semantic_plain() -> tuple[semantic.AnswerStatistics, semantic.AnswerStatistics]:
    labels = np.array([[2, 2, 0, 1], [2, 2, 0, 1], [0, 0, 2, 1], [1, 0, 1, 2]])
    fields = {
        "texts": ["paris", "it is paris", "lyon", "rome or oslo"],
        "cluster_ids": [0, 0, 1, 2],
        "labels": labels,
        "log_likelihoods": [-0.2, -0.4, -1.5, -3.0],
        "total_log_likelihoods": [-0.4, -1.6, -3.0, -9.0],
        "reference": _reference([-0.1, -0.7], [0.3, 1.2]),
        "p_true": 0.8,
        "token_logprobs": [[-0.2], [-0.1, -0.3, -0.8], [-1.5, -1.5], []],
        "token_relevance": [[1.0], [0.1, 0.1, 0.9], [0.0, 0.0], []],
        "reference_kernel": [1.0, 0.9, 0.2, 0.4],
        "reference_similarity": [0.9, 0.8, 0.1, 0.0],
    }
    return _answer_statistics(**fields), _answer_statistics(
        **_permute_answers(fields, [2, 0, 3, 1])
    )


def _semantic_extreme(n: int, agree: bool) -> semantic.AnswerStatistics:
    # The same likelihoods, reference and p(True) in both: only the answers' agreement differs.
    return _answer_statistics(
        texts=["paris"] * n if agree else WORDS[:n],
        cluster_ids=[0] * n if agree else list(range(n)),
        labels=np.full((n, n), 2) if agree else np.where(np.eye(n, dtype=bool), 2, 0),
        log_likelihoods=[-0.5] * n,
        total_log_likelihoods=[-2.0] * n,
        reference=_reference([-0.3], [0.8]),
        p_true=0.6,
        token_logprobs=[[-0.5, -0.5]] * n,
        token_relevance=[[0.5, 0.5]] * n,
        reference_kernel=[1.0] * n if agree else [0.0] * n,
        reference_similarity=[1.0] * n if agree else [0.0] * n,
    )


def _semantic_without(stats: semantic.AnswerStatistics, need: str) -> semantic.AnswerStatistics:
    blank = {
        "likelihoods": {
            "log_likelihoods": None,
            "total_log_likelihoods": None,
            "sample_token_logprobs": None,
        },
        "pairs": {"similarity": None, "kernel_weights": None},
        "reference": {"reference": None},
        "generator": {"p_true": None},
        "similarity": {
            "sample_token_relevance": None,
            "reference_token_relevance": None,
            "answer_similarity": None,
            "reference_kernel": None,
        },
        "verbalized": {"verbalized_one_stage": None, "verbalized_two_stage": None},
        "reference_similarity": {"reference_similarity": None},
    }[need]
    return replace(stats, **blank)


SEMANTIC = Family(
    name="semantic",
    table=semantic.MEASURES,
    values=_semantic_values,
    cases=_semantic_cases(),
    plain=_semantic_plain,
    certain=lambda n: _semantic_extreme(n, agree=True),
    uncertain=lambda n: _semantic_extreme(n, agree=False),
    without=_semantic_without,
)


# --------------------------------------------------------------------------- Inv-Entropy


def _random_similarity(draw, n: int) -> np.ndarray:
    upper = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n * n, max_size=n * n)))
    upper = np.triu(upper.reshape(n, n), 1)
    similarity = upper + upper.T
    np.fill_diagonal(similarity, 1.0)
    return similarity


def _inv_statistics(
    sim_x: np.ndarray,
    sim_ys: list[np.ndarray],
    sim_y_single: np.ndarray,
    ids_original: list[int],
    ids_all: list[int],
    logprobs_original: list[float],
    logprobs_all: list[float],
) -> inv.InvStatistics:
    return inv.inv_statistics(
        sim_x,
        sim_ys,
        sim_y_single,
        cluster_ids_original=ids_original,
        cluster_ids_all=ids_all,
        mean_logprobs_original=logprobs_original,
        mean_logprobs_all=logprobs_all,
    )


def _permute_inv(fields: dict, inputs: list[int], original: list[int], every: list[int]) -> dict:
    def states(matrix: np.ndarray) -> np.ndarray:
        return matrix[np.ix_(inputs, inputs)]

    return {
        "sim_x": states(fields["sim_x"]),
        "sim_ys": [states(s) for s in fields["sim_ys"]],
        "sim_y_single": states(fields["sim_y_single"]),
        "ids_original": [fields["ids_original"][i] for i in original],
        "ids_all": [fields["ids_all"][i] for i in every],
        "logprobs_original": [fields["logprobs_original"][i] for i in original],
        "logprobs_all": [fields["logprobs_all"][i] for i in every],
    }


@st.composite
def _inv_cases(draw):
    n_inputs, r = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    total = n_inputs * r
    logprob = st.floats(-8.0, 0.0)
    fields = {
        "sim_x": _random_similarity(draw, n_inputs),
        "sim_ys": [_random_similarity(draw, n_inputs) for _ in range(draw(st.integers(1, 3)))],
        "sim_y_single": _random_similarity(draw, n_inputs),
        "ids_original": draw(st.lists(st.integers(0, 3), min_size=r, max_size=r)),
        "ids_all": draw(st.lists(st.integers(0, 3), min_size=total, max_size=total)),
        "logprobs_original": draw(st.lists(logprob, min_size=r, max_size=r)),
        "logprobs_all": draw(st.lists(logprob, min_size=total, max_size=total)),
    }
    permuted = _permute_inv(
        fields,
        draw(st.permutations(range(n_inputs))),
        draw(st.permutations(range(r))),
        draw(st.permutations(range(total))),
    )
    return _inv_statistics(**fields), _inv_statistics(**permuted)


def _inv_plain() -> tuple[inv.InvStatistics, inv.InvStatistics]:
    sim_x = np.array([[1.0, 0.9, 0.7], [0.9, 1.0, 0.6], [0.7, 0.6, 1.0]])
    sim_y = np.array([[1.0, 0.2, 0.8], [0.2, 1.0, 0.3], [0.8, 0.3, 1.0]])
    fields = {
        "sim_x": sim_x,
        "sim_ys": [sim_y, np.eye(3) * 0.5 + 0.5],
        "sim_y_single": sim_y,
        "ids_original": [0, 0, 1],
        "ids_all": [0, 0, 1, 1, 2, 0, 0, 2, 1],
        "logprobs_original": [-0.1, -0.3, -2.0],
        "logprobs_all": [-0.1, -0.3, -2.0, -1.0, -0.5, -0.2, -0.9, -4.0, -0.6],
    }
    permuted = _permute_inv(fields, [2, 0, 1], [1, 2, 0], [8, 7, 6, 5, 4, 3, 2, 1, 0])
    return _inv_statistics(**fields), _inv_statistics(**permuted)


def _inv_extreme(n: int, agree: bool) -> inv.InvStatistics:
    # Certain: each answer points back to its own input (S_y = S_x = I) and every answer means
    # the same; uncertain: the answers cannot tell the inputs apart (S_y all ones) and every
    # answer means something else. Two answers per input.
    sim_y = np.eye(n) if agree else np.ones((n, n))
    return _inv_statistics(
        np.eye(n),
        [sim_y, sim_y],
        sim_y,
        [0, 0] if agree else [0, 1],
        [0] * (2 * n) if agree else list(range(2 * n)),
        [-0.5, -0.5],
        [-0.5] * (2 * n),
    )


def _inv_without(stats: inv.InvStatistics, need: str) -> inv.InvStatistics:
    blank = {
        "bootstraps": {"walks": []},
        "no_replication": {"no_replication_walk": None},
        "clusters": {"cluster_ids_original": None, "cluster_ids_all": None},
        "likelihoods": {"mean_logprobs_original": None, "mean_logprobs_all": None},
    }[need]
    return replace(stats, **blank)


INV = Family(
    name="inv",
    table=inv.MEASURES,
    values=inv.compute_inv_measures,
    cases=_inv_cases(),
    plain=_inv_plain,
    certain=lambda n: _inv_extreme(n, agree=True),
    uncertain=lambda n: _inv_extreme(n, agree=False),
    without=_inv_without,
)


# --------------------------------------------------------------------------- judge scores
# A judge score is a function of one score distribution over the scale 1..hi (the statistics are
# ``(distribution, hi)``). Scores are not uncertainties: they have bounds and invariances, but
# no "higher = more uncertain" direction. The "answers" a permutation reorders are the values
# of the distribution after the first one, the value the judge wrote (``emission_order``).


@dataclass(frozen=True)
class JudgeEntry:
    """A :class:`judge.scores.ScoreMethod` seen through the shared tests' eyes."""

    method: judge.ScoreMethod

    key = property(lambda self: self.method.key)
    label = property(lambda self: self.method.label)
    explanation = property(lambda self: self.method.description)
    compute = property(lambda self: self.method.compute)
    needs = frozenset()
    higher_is_uncertain = None  # a score, not an uncertainty

    @property
    def lower(self) -> float:
        return self.method.bounds(1, 2)[0]

    @property
    def upper(self) -> Bound:
        return Bound("hi", lambda stats: self.method.bounds(1, stats[1])[1])


def _judge_values(stats: tuple[dict[int, float], int]) -> dict[str, float | None]:
    return judge.compute_scores(stats[0])


@st.composite
def _judge_cases(draw):
    hi = draw(st.sampled_from([5, 10, 100]))
    values = draw(st.lists(st.integers(1, hi), min_size=1, max_size=min(hi, 12), unique=True))
    weights = draw(st.lists(st.floats(0.01, 1.0), min_size=len(values), max_size=len(values)))
    mass = draw(st.floats(0.2, 1.0))
    dist = {v: mass * w / sum(weights) for v, w in zip(values, weights, strict=True)}
    rest = list(dist.items())[1:]
    shuffled = draw(st.permutations(rest))
    return (dist, hi), (dict([next(iter(dist.items())), *shuffled]), hi)


def _judge_plain():
    dist = {80: 0.50, 85: 0.30, 75: 0.15, 8: 0.02}
    return (dist, 100), ({80: 0.50, 8: 0.02, 75: 0.15, 85: 0.30}, 100)


JUDGE = Family(
    name="judge",
    table=[JudgeEntry(m) for m in judge.SCORE_METHODS],
    values=_judge_values,
    cases=_judge_cases(),
    plain=_judge_plain,
    certain=lambda n: ({3: 1.0}, 5),
    uncertain=lambda n: ({v: 1.0 / n for v in range(1, n + 1)}, 5),
    without=lambda stats, need: stats,
)


# --------------------------------------------------------------------------- judge reliability
# The statistics are a judge's verdicts on pairs and its grades of single answers; the
# "answers" a permutation reorders are the pairs and the answers. "Certain": a judge blind to
# position, stable between runs and agreeing with people; "uncertain": one that always picks A,
# scores at random between runs and contradicts people. Every case keeps every measure defined
# (a strict pair, distinct lengths, scores, spreads and entropies).


def _rel_stats(pairs: list, singles: list) -> rel.ReliabilityStatistics:
    return rel.ReliabilityStatistics(
        pairs=[rel.PairObservation(**p) for p in pairs],
        singles=[rel.SingleObservation(**s) for s in singles],
    )


_LETTER = st.sampled_from(["A", "B", "C"])
_PROBS = st.fixed_dictionaries({k: st.floats(0.01, 1.0) for k in "ABC"})


@st.composite
def _rel_cases(draw):
    n_pairs, n_singles = draw(st.integers(2, 6)), draw(st.integers(3, 6))
    pairs = [
        {
            "first": "A" if i == 0 else draw(_LETTER),
            "second": "A" if i == 0 else draw(_LETTER),
            "probs_first": draw(_PROBS),
            "probs_second": draw(_PROBS),
            "length_x": float(draw(st.integers(1, 200))) + (300.0 if i == 0 else 0.0),
            "length_y": float(draw(st.integers(1, 200))),
            "humans": {"ada": draw(_LETTER)},
        }
        for i in range(n_pairs)
    ]
    singles = []
    for i in range(n_singles):
        fixed = i < 3  # three answers that keep every correlation defined
        runs = (
            [1.0, 1.0 + 2 * i]
            if fixed
            else draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
        )
        singles.append(
            {
                "scores": {"expectation": float(i + 1) if fixed else draw(st.floats(1.0, 5.0))},
                "length": float(10 * (i + 1)) if fixed else float(draw(st.integers(1, 300))),
                "entropy": 0.1 * (i + 1) if fixed else draw(st.floats(0.0, 1.6)),
                "runs": [float(r) for r in runs],
                "humans": {"ada": float(3 - i) if fixed else float(draw(st.integers(1, 5)))},
            }
        )
    pair_order = draw(st.permutations(range(n_pairs)))
    single_order = draw(st.permutations(range(n_singles)))
    return _rel_stats(pairs, singles), _rel_stats(
        [pairs[i] for i in pair_order], [singles[i] for i in single_order]
    )


def _rel_extreme(n: int, reliable: bool) -> rel.ReliabilityStatistics:
    pairs = []
    for i in range(max(n, 2)):
        x, y = 10.0 * (i + 1), 15.0 * (i + 1) + 3
        better = "A" if i % 2 == 0 else "B"
        if reliable:
            first, second = better, rel._SWAP[better]
            probs_first = (
                {"A": 0.8, "B": 0.1, "C": 0.1} if better == "A" else {"A": 0.1, "B": 0.8, "C": 0.1}
            )
            probs_second = {rel._SWAP[k]: v for k, v in probs_first.items()}
        else:
            first = second = "A"
            probs_first = probs_second = {"A": 1.0, "B": 0.0, "C": 0.0}
        pairs.append(
            {"first": first, "second": second, "probs_first": probs_first,
             "probs_second": probs_second, "length_x": x, "length_y": y,
             "humans": {"ada": better}}
        )  # fmt: skip
    singles = []
    for i in range(max(n, 3)):
        runs = [3.0, 3.0 + 0.1 * i] if reliable else [1.0, 5.0 - 0.5 * i]
        singles.append(
            {"scores": {"expectation": 1.0 + i}, "length": 10.0 * (i + 1), "entropy": 0.1 * i,
             "runs": runs, "humans": {"ada": (1.0 + i) if reliable else (10.0 - i)}}
        )  # fmt: skip
    return _rel_stats(pairs, singles)


def _rel_plain() -> tuple[rel.ReliabilityStatistics, rel.ReliabilityStatistics]:
    stats = _rel_extreme(4, reliable=True)
    stats.pairs[0] = replace(stats.pairs[0], first="A", second="A")
    stats.pairs[1] = replace(stats.pairs[1], second="C")
    return stats, replace(stats, pairs=stats.pairs[::-1], singles=stats.singles[::-1])


def _rel_without(stats: rel.ReliabilityStatistics, need: str) -> rel.ReliabilityStatistics:
    if need == "pairs":
        return replace(stats, pairs=[])
    if need == "singles":
        return replace(stats, singles=[])
    if need == "probs":
        return replace(stats, pairs=[replace(p, probs_first=None) for p in stats.pairs])
    if need == "runs":
        return replace(stats, singles=[replace(s, runs=[]) for s in stats.singles])
    return replace(
        stats,
        pairs=[replace(p, humans={}) for p in stats.pairs],
        singles=[replace(s, humans={}) for s in stats.singles],
    )


RELIABILITY = Family(
    name="reliability",
    table=rel.RELIABILITY_MEASURES,
    values=rel.reliability_values,
    cases=_rel_cases(),
    plain=_rel_plain,
    certain=lambda n: _rel_extreme(n, reliable=True),
    uncertain=lambda n: _rel_extreme(n, reliable=False),
    without=_rel_without,
)


# --------------------------------------------------------------------------- the tests

FAMILIES = [SEMANTIC, INV, JUDGE, RELIABILITY]
IDS = [f.name for f in FAMILIES]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _check_order_invariance(family: Family, stats: Any, permuted: Any) -> None:
    values, again = family.values(stats), family.values(permuted)
    for m in family.table:
        assert values[m.key] is not None, f"{family.name}.{m.key} gave no value"
        assert _close(values[m.key], again[m.key]), (
            f"{family.name}.{m.key} changed when the answers were permuted: "
            f"{values[m.key]} → {again[m.key]}"
        )


def _check_bounds(family: Family, stats: Any) -> None:
    values = family.values(stats)
    for m in family.table:
        value = values[m.key]
        assert value is not None and math.isfinite(value), f"{family.name}.{m.key}: {value}"
        if m.lower is not None:
            assert value >= m.lower - TOLERANCE, f"{family.name}.{m.key} = {value} < {m.lower}"
        if m.upper is not None:
            bound = m.upper.value(stats)
            assert value <= bound + TOLERANCE, (
                f"{family.name}.{m.key} = {value} > {m.upper.text} = {bound}"
            )


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_table_entries_are_complete_and_unique(family):
    keys = [m.key for m in family.table]
    assert len(keys) == len(set(keys)) and keys
    for m in family.table:
        assert m.key.isidentifier() and m.label and m.explanation and callable(m.compute)
        assert m.lower is None or m.upper is None or m.lower <= m.upper.value(family.certain(3))


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_permuting_the_answers_changes_no_value(family, data):
    _check_order_invariance(family, *data.draw(family.cases))


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_value_lies_in_its_range(family, data):
    stats, permuted = data.draw(family.cases)
    _check_bounds(family, stats)
    _check_bounds(family, permuted)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_plain_case_is_order_invariant_and_in_range(family):
    stats, permuted = family.plain()
    _check_order_invariance(family, stats, permuted)
    _check_bounds(family, stats)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@pytest.mark.parametrize("n", [2, 3, 5])
def test_agreeing_answers_are_no_more_uncertain_than_differing_ones(family, n):
    certain, uncertain = family.certain(n), family.uncertain(n)
    low, high = family.values(certain), family.values(uncertain)
    for m in family.table:
        if m.higher_is_uncertain is None:  # a score, not an uncertainty: no direction to check
            continue
        a, b = (low[m.key], high[m.key]) if m.higher_is_uncertain else (high[m.key], low[m.key])
        assert a is not None and b is not None, f"{family.name}.{m.key} gave no value"
        assert a <= b + TOLERANCE, f"{family.name}.{m.key}: agreeing {a} > differing {b}"
    _check_bounds(family, certain)
    _check_bounds(family, uncertain)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_a_missing_statistic_gives_none_not_a_crash(family):
    stats, _ = family.plain()
    for need in sorted(set().union(*(m.needs for m in family.table))):
        values = family.values(family.without(stats, need))
        for m in family.table:
            if need in m.needs:
                assert values[m.key] is None, f"{family.name}.{m.key} without {need}"
            else:
                assert values[m.key] is not None, f"{family.name}.{m.key} lost without {need}"


def test_semantic_measures_not_available_are_none_with_a_note():
    stats, _ = _semantic_plain()
    out = semantic.compute_measures(stats, semantic.MEASURES, available=set())
    for m in semantic.MEASURES:
        if m.needs:
            assert out[m.key]["value"] is None and out[m.key]["note"]
        else:
            assert out[m.key]["value"] is not None
