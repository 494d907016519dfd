"""Query selection: the next question by C-IP (smallest expected prediction set) or by IP
(largest expected information gain).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.cip.calibration import score_histories
from uq.cip.class_sets import normalize_answer
from uq.cip.conformal import (
    HYPOTHESIS_MODES,
    METHODS,
    Answerer,
    PosteriorBatch,
    check_alpha,
    check_probabilities,
    entropy_upper_bounds,
    posterior_entropy_bits,
    prediction_set,
)

# --------------------------------------------------------------------------------------------
# Choosing the next question
# --------------------------------------------------------------------------------------------


@dataclass
class SelectionStep:
    """One choice of the next question, with every candidate's objective.

    ``bounds`` are C-IP entropy bounds (bits) and ``expected_entropies`` the IP estimates (bits),
    both from the same simulated histories; ``scores`` is the one the method minimised (None for
    random selection, which scores nothing). ``set_sizes[j][s]`` and ``covered[j][s]`` describe
    candidate j under hypothetical label s. ``n_scored`` counts the distinct histories sent to
    the posterior (duplicates, e.g. two labels giving the same answer, are scored once).
    """

    method: str
    candidates: list[str]
    chosen: str
    chosen_index: int
    hypothetical_labels: list[str] = field(default_factory=list)
    tau: float | None = None
    scores: list[float] | None = None
    bounds: list[float] | None = None
    expected_entropies: list[float] | None = None
    set_sizes: list[list[int]] | None = None
    covered: list[list[bool]] | None = None
    score_std: float | None = None
    n_histories: int = 0
    n_scored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw_hypotheses(
    n_classes: int,
    n_est: int,
    rng: np.random.Generator,
    *,
    mode: str = "uniform",
    posterior: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Indices of n_est hypothetical hidden classes, drawn with replacement: uniformly over the
    classes (the paper's 20 Questions choice, not conditioned on the history) or, with
    ``mode="posterior"``, from the current posterior p̂(· | h_k)."""
    if isinstance(n_est, bool) or not isinstance(n_est, int | np.integer) or n_est < 1:
        raise ConfidantError(f"n_est must be a positive integer, got {n_est!r}")
    if mode == "uniform":
        return rng.integers(n_classes, size=n_est)
    if mode == "posterior":
        if posterior is None:
            raise ConfidantError("drawing hypotheses from the posterior needs the posterior")
        p = check_probabilities(posterior, "posterior", 1)
        if p.size != n_classes or p.sum() <= 0:
            raise ConfidantError(f"the posterior must have {n_classes} non-negative entries")
        return rng.choice(n_classes, size=n_est, p=p / p.sum())
    raise ConfidantError(f"hypotheses must be one of {', '.join(HYPOTHESIS_MODES)}, got {mode!r}")


def select_query(
    method: str,
    history: Sequence[tuple[str, str]],
    candidates: Sequence[str],
    classes: Sequence[str],
    posterior_batch: PosteriorBatch,
    answerer: Answerer,
    rng: np.random.Generator,
    *,
    tau: float | None = None,
    alpha: float | None = None,
    n_est: int = 4,
    hypotheses: str = "uniform",
    posterior: Sequence[float] | np.ndarray | None = None,
    cache: MutableMapping[tuple, np.ndarray] | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
) -> SelectionStep:
    """Choose the next question by C-IP, IP or at random (Chan et al. 2025, §3 and B.4).

    C-IP (``"cip"``): draw n_est hypothetical labels once (shared by all candidates); for every
    candidate q and label y_s, answer q as y_s would (``answerer``), extend the history with
    (q, answer), score all (candidate, label) histories in ONE batched, deduplicated posterior
    call, form C_s = {y : p̂(y | h_s) ≥ τ} with ``tau`` = τ̂(k + 1), and compute
    :func:`entropy_upper_bound`; pick the argmin (first on ties).
    IP (``"ip"``): same histories; pick the argmin of the mean posterior entropy in bits.
    Random (``"random"``): a uniform candidate, no posterior call.

    Note: uncovered draws add α·log2(K − |C|), which is largest for small sets, so with labels
    drawn uniformly (mostly outside the current set late in a game) the bound can favour
    questions that keep sets large or leave them empty; ``hypotheses="posterior"`` draws the
    labels from p̂(· | h_k) instead.
    """
    if method not in METHODS:
        raise ConfidantError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    candidates = list(candidates)
    if not candidates:
        raise ConfidantError("there are no candidate questions left")
    if len(set(candidates)) != len(candidates):
        raise ConfidantError("the candidate questions contain duplicates")
    n_classes = len(classes)
    if n_classes < 2:
        raise ConfidantError("at least 2 classes are needed")
    if method == "random":
        j = int(rng.integers(len(candidates)))
        return SelectionStep(method, candidates, candidates[j], j)
    if method == "cip" and (tau is None or alpha is None):
        raise ConfidantError("C-IP selection needs the threshold tau and alpha")
    if alpha is not None:
        alpha = check_alpha(alpha)
    if labels is None:
        labels = draw_hypotheses(n_classes, n_est, rng, mode=hypotheses, posterior=posterior)
    labels = np.asarray(labels, dtype=int)
    if labels.ndim != 1 or labels.size < 1 or labels.min() < 0 or labels.max() >= n_classes:
        raise ConfidantError(f"hypothetical labels must be class indices below {n_classes}")
    n_est = int(labels.size)

    # The answer depends only on (label, candidate): ask once per distinct label.
    answers: dict[tuple[int, int], str] = {}
    for label in dict.fromkeys(int(x) for x in labels):
        for j, query in enumerate(candidates):
            answers[(label, j)] = normalize_answer(answerer(classes[label], query))
    base = list(history)
    sims = [
        base + [(query, answers[(int(label), j)])]
        for j, query in enumerate(candidates)
        for label in labels
    ]
    flat, n_scored = score_histories(posterior_batch, sims, n_classes, cache=cache)
    probs = flat.reshape(len(candidates), n_est, n_classes)

    entropies = posterior_entropy_bits(probs.reshape(-1, n_classes)).reshape(len(candidates), -1)
    expected_entropies = entropies.mean(axis=1)
    bounds = sizes = covered = None
    if tau is not None and alpha is not None:
        sets = prediction_set(probs.reshape(-1, n_classes), tau).reshape(probs.shape)
        sizes = sets.sum(axis=2)
        covered = sets[:, np.arange(n_est), labels]
        bounds = entropy_upper_bounds(sizes, covered, float(alpha), n_classes, n_est)
    scores = bounds if method == "cip" else expected_entropies
    j = int(np.argmin(scores))
    return SelectionStep(
        method=method,
        candidates=candidates,
        chosen=candidates[j],
        chosen_index=j,
        hypothetical_labels=[classes[int(x)] for x in labels],
        tau=None if tau is None else float(tau),
        scores=[float(x) for x in scores],
        bounds=None if bounds is None else [float(x) for x in bounds],
        expected_entropies=[float(x) for x in expected_entropies],
        set_sizes=None if sizes is None else sizes.astype(int).tolist(),
        covered=None if covered is None else covered.astype(bool).tolist(),
        score_std=float(np.std(scores)),
        n_histories=len(sims),
        n_scored=n_scored,
    )
