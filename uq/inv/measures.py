"""Inv-Entropy's measures from the similarity matrices, with bootstrap replicates over the
responses (Song et al. 2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import ConfidantError
from uq.inv.maths import (
    _single_inv_entropy,
    _square_matrix,
    _validated_bootstraps,
    dual_random_walk,
    max_forward_conditional,
    ni_entropy,
    wasserstein_px_py,
)


@dataclass
class InvEntropyResult:
    """All measures of the Inv-Entropy framework for one question (nats).

    Each bootstrap-based measure is the mean over the bootstraps of its per-bootstrap value;
    ``nr_inv_entropy`` uses the single no-replication output matrix.
    """

    inv_entropy: float
    ni_entropy: float
    nr_inv_entropy: float
    wd_px_py: float
    max_py_x: float
    inv_entropy_per_bootstrap: list[float]
    ni_entropy_per_bootstrap: list[float]
    n_bootstraps: int
    n_inputs: int
    bootstrap_indices: list[list[int]] = field(default_factory=list)
    seed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InvEntropyResult:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


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
    matrices = _validated_bootstraps(sim_y_bootstraps)
    walks = [dual_random_walk(sim_x, s) for s in matrices]
    inv_values = [_single_inv_entropy(w) for w in walks]
    ni_values = [ni_entropy(w) for w in walks]
    no_replication_walk = dual_random_walk(sim_x, sim_y_no_replication)
    return InvEntropyResult(
        inv_entropy=float(np.mean(inv_values)),
        ni_entropy=float(np.mean(ni_values)),
        nr_inv_entropy=_single_inv_entropy(no_replication_walk),
        wd_px_py=float(np.mean([wasserstein_px_py(w) for w in walks])),
        max_py_x=float(np.mean([max_forward_conditional(w) for w in walks])),
        inv_entropy_per_bootstrap=inv_values,
        ni_entropy_per_bootstrap=ni_values,
        n_bootstraps=len(walks),
        n_inputs=int(walks[0].p_x.shape[0]),
    )


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
    similarity = _square_matrix(response_similarity, "response similarity matrix")
    index_array = np.asarray(indices)
    if index_array.ndim == 1:
        index_array = index_array[None, :]
    if index_array.size and (index_array.min() < 0 or index_array.max() >= similarity.shape[0]):
        raise ConfidantError("bootstrap indices fall outside the response similarity matrix")
    return [similarity[np.ix_(row, row)] for row in index_array]


def inv_entropy_from_responses(
    sim_x: np.ndarray,
    response_similarity: np.ndarray,
    n_replicates: int,
    n_bootstraps: int = 20,
    seed: int = 0,
) -> InvEntropyResult:
    """Every measure from S_x and one similarity matrix over all responses (input-major).

    Draws ``n_bootstraps`` seeded bootstraps (one replicate per input each), and uses
    replicate 0 of every input for NR-Inv-Entropy. Song et al. (2025), Algorithm 1.
    """
    sim_x = _square_matrix(sim_x, "S_x")
    n_inputs = sim_x.shape[0]
    response_similarity = _square_matrix(response_similarity, "response similarity matrix")
    if response_similarity.shape[0] != n_inputs * n_replicates:
        raise ConfidantError(
            f"response similarity is {response_similarity.shape[0]}×{response_similarity.shape[0]}"
            f" but {n_inputs} inputs × {n_replicates} replicates need "
            f"{n_inputs * n_replicates} responses"
        )
    indices = draw_bootstrap_indices(n_inputs, n_replicates, n_bootstraps, seed)
    result = inv_entropy_measures(
        sim_x,
        bootstrap_output_similarities(response_similarity, indices),
        bootstrap_output_similarities(
            response_similarity, first_replicate_indices(n_inputs, n_replicates)
        )[0],
    )
    result.bootstrap_indices = indices.tolist()
    result.seed = seed
    return result
