"""Inv-Entropy's measures as ONE table (Song et al. 2025): each measure is a function of
:class:`InvStatistics` plus one :class:`InvMeasure` line in :data:`MEASURES`. The result's
measure values, the harness and CLI columns, the UI rows and the README's list iterate it.

The statistics are computed once per question: one dual random walk per bootstrap (one
replicate per input each), the walk over replicate 0 of every input (no replication), and the
meaning clusters and log-probabilities of the same answers for the semantic entropy beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.inv.maths import (
    DualRandomWalk,
    dual_random_walk,
    max_forward_conditional,
    ni_entropy,
    single_inv_entropy,
    square_matrix,
    validated_bootstraps,
    wasserstein_px_py,
)
from uq.semantic.estimators import discrete_semantic_entropy, semantic_entropy
from uq.semantic.measures import ONE, Bound

# --------------------------------------------------------------------------- statistics, table


@dataclass
class InvStatistics:
    """The computed-once statistics every Inv-Entropy measure reads.

    ``walks``: one :class:`DualRandomWalk` per bootstrap (S_x with that bootstrap's S_y);
    ``no_replication_walk``: the walk with replicate 0 of every input (r = 1, no bootstrap).
    ``cluster_ids_original`` / ``cluster_ids_all``: meaning clusters of the r answers to the
    original question and of all (n+1)·r answers; ``mean_logprobs_*``: those answers' mean token
    log-probabilities. A statistic that is None (or no walks) is missing: the measures that
    need it get None.
    """

    n_inputs: int
    walks: list[DualRandomWalk] = field(default_factory=list)
    no_replication_walk: DualRandomWalk | None = None
    cluster_ids_original: list[int] | None = None
    cluster_ids_all: list[int] | None = None
    mean_logprobs_original: list[float] | None = None
    mean_logprobs_all: list[float] | None = None

    def available(self) -> set[str]:
        """The names of the statistics present (see :class:`InvMeasure` ``needs``)."""
        present = {
            _BOOT: bool(self.walks),
            _NR: self.no_replication_walk is not None,
            _CLUSTERS: self.cluster_ids_original is not None and self.cluster_ids_all is not None,
            _LL: self.mean_logprobs_original is not None and self.mean_logprobs_all is not None,
        }
        return {name for name, there in present.items() if there}


@dataclass(frozen=True)
class InvMeasure:
    """One measure of the Inv-Entropy family: ``compute(stats)`` → float, in nats.

    ``needs`` names the statistics it reads: "bootstraps" (the per-bootstrap walks),
    "no_replication" (the r = 1 walk), "clusters" (the answers' meaning clusters),
    "likelihoods" (their mean token log-probabilities). ``higher_is_uncertain`` is False for a
    confidence (MAX-py-x). ``lower`` / ``upper``: the range every value lies in.
    """

    key: str
    label: str
    explanation: str
    compute: Callable[[InvStatistics], float]
    needs: frozenset[str]
    higher_is_uncertain: bool = True
    lower: float | None = 0.0
    upper: Bound | None = None


_BOOT, _NR, _CLUSTERS, _LL = "bootstraps", "no_replication", "clusters", "likelihoods"

MISSING_NOTES = {
    _BOOT: "needs the bootstrap output matrices",
    _NR: "needs the no-replication output matrix",
    _CLUSTERS: "needs the answers' meaning clusters",
    _LL: "needs the answers' log-probabilities",
}

# −Σ_i d_i ln d_i with every d_i ∈ [0, 1]: each term is at most 1/e.
INPUTS_OVER_E = Bound("(n+1)/e", lambda s: s.n_inputs / math.e)
LOG_R = Bound("log r", lambda s: math.log(len(s.cluster_ids_original)))
LOG_ALL = Bound("log((n+1)·r)", lambda s: math.log(len(s.cluster_ids_all)))


def _bootstrap_mean(per_walk: Callable[[DualRandomWalk], float]) -> Callable[..., float]:
    return lambda s: float(np.mean([per_walk(w) for w in s.walks]))


_B, _NO_REP, _SE, _SE_LL = (frozenset({_BOOT}), frozenset({_NR}), frozenset({_CLUSTERS}),
                            frozenset({_CLUSTERS, _LL}))  # fmt: skip

# One line per measure; the formulas live in uq.inv.maths and uq.semantic.estimators.
# fmt: off
MEASURES: tuple[InvMeasure, ...] = (
    InvMeasure("inv_entropy", "Inv-Entropy", "mean over bootstraps of −Σ p(x_i|y_i) ln p(x_i|y_i); higher when the answers do not point back to their own inputs.", _bootstrap_mean(single_inv_entropy), _B, upper=INPUTS_OVER_E),  # noqa: E501
    InvMeasure("ni_entropy", "NI-Entropy", "the same entropy of the forward conditional p(y_i|x_i) (by Bayes), the non-inverse variant.", _bootstrap_mean(ni_entropy), _B, upper=INPUTS_OVER_E),  # noqa: E501
    InvMeasure("nr_inv_entropy", "NR-Inv-Entropy", "Inv-Entropy from one response per input (replicate 1), no bootstrap.", lambda s: single_inv_entropy(s.no_replication_walk), _NO_REP, upper=INPUTS_OVER_E),  # noqa: E501
    InvMeasure("wd_px_py", "WD-px-py", "Wasserstein distance between the values of p(X) and p(Y).", _bootstrap_mean(wasserstein_px_py), _B, upper=ONE),  # noqa: E501
    InvMeasure("max_py_x", "MAX-py-x", "max_i p(y_i|x_i), the paper's definition (a confidence: higher means the best input-answer pair is more certain).", _bootstrap_mean(max_forward_conditional), _B, higher_is_uncertain=False, upper=ONE),  # noqa: E501
    InvMeasure("semantic_entropy_discrete_original", "Discrete semantic entropy, answers to the original", "entropy of the share of the original question's r answers in each meaning cluster.", lambda s: discrete_semantic_entropy(s.cluster_ids_original), _SE, upper=LOG_R),  # noqa: E501
    InvMeasure("semantic_entropy_discrete_all", "Discrete semantic entropy, all answers", "the same over every input's answers.", lambda s: discrete_semantic_entropy(s.cluster_ids_all), _SE, upper=LOG_ALL),  # noqa: E501
    InvMeasure("semantic_entropy_original", "Semantic entropy, answers to the original", "entropy of the clusters' likelihood mass over the original question's answers, each weighted by exp(mean token log-prob).", lambda s: semantic_entropy(s.cluster_ids_original, s.mean_logprobs_original), _SE_LL, upper=LOG_R),  # noqa: E501
    InvMeasure("semantic_entropy_all", "Semantic entropy, all answers", "the same over every input's answers.", lambda s: semantic_entropy(s.cluster_ids_all, s.mean_logprobs_all), _SE_LL, upper=LOG_ALL),  # noqa: E501
)
# fmt: on

MEASURE_BY_KEY: dict[str, InvMeasure] = {m.key: m for m in MEASURES}


def compute_inv_measures(
    stats: InvStatistics, measures: Sequence[InvMeasure] = MEASURES
) -> dict[str, float | None]:
    """Every measure from the same statistics, by key; None where a statistic it needs is
    missing (:meth:`InvStatistics.available`)."""
    available = stats.available()
    return {m.key: float(m.compute(stats)) if m.needs <= available else None for m in measures}


# --------------------------------------------------------------------------- result


@dataclass
class InvEntropyResult:
    """Every measure of the table for one question (nats), with the bootstrap record.

    ``values`` holds each measure computed from these statistics by its key (the semantic
    entropy of the same answers is read from the run: :func:`uq.inv.result.measure_values`);
    each is also an attribute (``result.inv_entropy``; None when not computed). Bootstrap-based measures are the mean over
    the bootstraps of the per-bootstrap value; ``nr_inv_entropy`` uses the single
    no-replication output matrix. :meth:`to_dict` stores the values flat, beside the rest.
    """

    values: dict[str, float | None]
    inv_entropy_per_bootstrap: list[float]
    ni_entropy_per_bootstrap: list[float]
    n_bootstraps: int
    n_inputs: int
    bootstrap_indices: list[list[int]] = field(default_factory=list)
    seed: int | None = None

    def __getattr__(self, name: str) -> float | None:
        values = self.__dict__.get("values")
        if values is None or name not in MEASURE_BY_KEY:
            raise AttributeError(name)
        return values.get(name)

    def to_dict(self) -> dict:
        record = {k: v for k, v in self.__dict__.items() if k != "values"}
        return {**self.values, **record}

    @classmethod
    def from_dict(cls, data: dict) -> InvEntropyResult:
        values = {m.key: data[m.key] for m in MEASURES if m.key in data}
        rest = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(values=values, **{k: v for k, v in rest.items() if k != "values"})


def inv_statistics(
    sim_x: np.ndarray,
    sim_y_bootstraps: Sequence[np.ndarray],
    sim_y_no_replication: np.ndarray | None = None,
    **semantic: list | None,
) -> InvStatistics:
    """The walks of every bootstrap and of the no-replication matrix, computed once
    (Song et al. 2025, §2.3–2.4). ``semantic``: the clusters and log-probabilities fields of
    :class:`InvStatistics`."""
    walks = [dual_random_walk(sim_x, s) for s in validated_bootstraps(sim_y_bootstraps)]
    no_replication = (
        None if sim_y_no_replication is None else dual_random_walk(sim_x, sim_y_no_replication)
    )
    return InvStatistics(
        n_inputs=int(walks[0].p_x.shape[0]),
        walks=walks,
        no_replication_walk=no_replication,
        **semantic,
    )


def inv_entropy_result(
    stats: InvStatistics, indices: np.ndarray | None = None, seed: int | None = None
) -> InvEntropyResult:
    """Every measure of :data:`MEASURES` whose statistics are there, plus the per-bootstrap
    Inv- and NI-Entropy."""
    available = stats.available()
    chosen = [m for m in MEASURES if m.needs <= available]
    return InvEntropyResult(
        values=compute_inv_measures(stats, chosen),
        inv_entropy_per_bootstrap=[single_inv_entropy(w) for w in stats.walks],
        ni_entropy_per_bootstrap=[ni_entropy(w) for w in stats.walks],
        n_bootstraps=len(stats.walks),
        n_inputs=stats.n_inputs,
        bootstrap_indices=[] if indices is None else np.asarray(indices).tolist(),
        seed=seed,
    )


def inv_entropy_measures(
    sim_x: np.ndarray,
    sim_y_bootstraps: Sequence[np.ndarray],
    sim_y_no_replication: np.ndarray,
) -> InvEntropyResult:
    """Inv-Entropy, NI-Entropy, NR-Inv-Entropy, WD-px-py and MAX-py-x (Song et al. 2025).

    ``sim_y_bootstraps``: one output-similarity matrix per bootstrap (all are used, nothing
    more). ``sim_y_no_replication``: the output matrix with one fixed response per input
    (r = 1, no bootstrap) for NR-Inv-Entropy.
    """
    return inv_entropy_result(inv_statistics(sim_x, sim_y_bootstraps, sim_y_no_replication))


# --------------------------------------------------------------------------- bootstraps


def draw_bootstrap_indices(
    n_inputs: int,
    n_replicates: int,
    n_bootstraps: int,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Response indices for B bootstraps, shape (B, n_inputs).

    Responses are laid out input-major: response ``i * n_replicates + k`` is replicate k of
    input i. Each bootstrap picks one replicate per input uniformly, independently, with
    replacement across bootstraps (Song et al. 2025, Algorithm 1). ``rng``: a numpy Generator
    or a seed.
    """
    for name, value in (
        ("n_inputs", n_inputs),
        ("n_replicates", n_replicates),
        ("n_bootstraps", n_bootstraps),
    ):
        if int(value) != value or value < 1:
            raise ConfidantError(f"{name} must be a positive integer, got {value!r}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    picks = generator.integers(0, n_replicates, size=(n_bootstraps, n_inputs))
    return picks + np.arange(n_inputs) * n_replicates


def first_replicate_indices(n_inputs: int, n_replicates: int) -> np.ndarray:
    """Indices of replicate 0 of every input (the r = 1 layout used by NR-Inv-Entropy)."""
    return np.arange(n_inputs) * n_replicates


def bootstrap_output_similarities(
    response_similarity: np.ndarray, indices: np.ndarray
) -> list[np.ndarray]:
    """S_y⁽ᵇ⁾ = S[idx_b, idx_b] for every row idx_b of ``indices``; nothing is recomputed.

    ``response_similarity`` is the similarity between all (n+1)·r responses, input-major.
    """
    similarity = square_matrix(response_similarity, "response similarity matrix")
    index_array = np.asarray(indices)
    if index_array.ndim == 1:
        index_array = index_array[None, :]
    if index_array.size and (index_array.min() < 0 or index_array.max() >= similarity.shape[0]):
        raise ConfidantError("bootstrap indices fall outside the response similarity matrix")
    return [similarity[np.ix_(row, row)] for row in index_array]


def response_statistics(
    sim_x: np.ndarray,
    response_similarity: np.ndarray,
    n_replicates: int,
    n_bootstraps: int = 20,
    seed: int = 0,
    **semantic: list | None,
) -> tuple[InvStatistics, np.ndarray]:
    """The statistics from S_x and one similarity matrix over all responses (input-major),
    and the bootstrap indices drawn.

    Draws ``n_bootstraps`` seeded bootstraps (one replicate per input each), and uses
    replicate 0 of every input for NR-Inv-Entropy. Song et al. (2025), Algorithm 1.
    """
    sim_x = square_matrix(sim_x, "S_x")
    n_inputs = sim_x.shape[0]
    response_similarity = square_matrix(response_similarity, "response similarity matrix")
    if response_similarity.shape[0] != n_inputs * n_replicates:
        raise ConfidantError(
            f"response similarity is {response_similarity.shape[0]}×{response_similarity.shape[0]}"
            f" but {n_inputs} inputs × {n_replicates} replicates need "
            f"{n_inputs * n_replicates} responses"
        )
    indices = draw_bootstrap_indices(n_inputs, n_replicates, n_bootstraps, seed)
    stats = inv_statistics(
        sim_x,
        bootstrap_output_similarities(response_similarity, indices),
        bootstrap_output_similarities(
            response_similarity, first_replicate_indices(n_inputs, n_replicates)
        )[0],
        **semantic,
    )
    return stats, indices


def inv_entropy_from_responses(
    sim_x: np.ndarray,
    response_similarity: np.ndarray,
    n_replicates: int,
    n_bootstraps: int = 20,
    seed: int = 0,
) -> InvEntropyResult:
    """Every measure from S_x and one similarity matrix over all responses (input-major)
    (:func:`response_statistics`). Song et al. (2025), Algorithm 1.
    """
    stats, indices = response_statistics(
        sim_x, response_similarity, n_replicates, n_bootstraps, seed
    )
    return inv_entropy_result(stats, indices, seed)


def stored_measures(result: Mapping[str, Any]) -> dict[str, float | None]:
    """Every measure of a stored Inv-Entropy run (``InvEntropyRun.to_dict()``), one entry per
    entry of :data:`MEASURES` in table order, then the semantic-entropy baselines computed on
    the same answers (``se_<name>``)."""
    values = result.get("measures") or {}
    out: dict[str, float | None] = {m.key: values.get(m.key) for m in MEASURES}
    for name, value in (result.get("semantic_entropy") or {}).items():
        if isinstance(value, int | float) or value is None:
            out[f"se_{name}"] = value
    return out
