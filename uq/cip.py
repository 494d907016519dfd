"""Conformal information pursuit (C-IP) for 20 Questions.

Source: Chan, Ge, Dobriban, Hassani & Vidal, "Conformal Information Pursuit for Interactively
Guiding Large Language Models" (NeurIPS 2025), with the split-by-coverage entropy bound of the
authors' code (after Correia et al. 2024, Proposition 3.1 of the paper).

The querier asks, at each turn k, the question whose answer is expected to leave the smallest
conformal prediction set for the hidden class. The language model only enters as callables:

- ``posterior_batch(histories) -> array (len(histories), K)``: p̂(class | history) for many
  histories in one batched call (a history is a list of (question, answer) pairs);
- ``answerer(label, query) -> str``: the answer a hypothetical hidden class would give (the bank
  lookup ``ClassSet.answer`` by default, or a model role-playing the class).

Everything else is plain arithmetic. Sets are ``{y : p̂(y | h) ≥ τ}`` with one conformal threshold
τ per history length k = 1..L, calibrated on random histories. Set-size bounds and posterior
entropies are in bits (log2), as in the paper.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backends.base import ConfidantError
from uq.twenty_questions import ClassSet, normalize_answer

History = list[tuple[str, str]]
PosteriorBatch = Callable[[list[History]], np.ndarray]
Answerer = Callable[[str, str], str]

METHODS = ("cip", "ip", "random")
METHOD_NAMES = {"cip": "C-IP", "ip": "IP", "random": "Random"}
HYPOTHESIS_MODES = ("uniform", "posterior")
# Probabilities are clamped here before log2 in the IP entropy, as in the reference code.
ENTROPY_CLAMP = 1e-5
# Row sums of a posterior may drift this far from 1 (float32 softmax) and are renormalised.
_ROW_SUM_TOLERANCE = 1e-3
# ⌈(n + 1)(1 − α)⌉ is taken after removing this much, so 10 × 0.9 = 9.000000000000002 is 9.
_RANK_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------------
# Conformal thresholds, sets and the entropy bound
# --------------------------------------------------------------------------------------------


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating):
        raise ConfidantError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ConfidantError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def _check_probabilities(values: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be numbers") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise ConfidantError(f"{name} must be a {' or '.join(f'{d}-D' for d in dims)} array")
    if arr.size == 0:
        raise ConfidantError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ConfidantError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0.0) or np.any(arr > 1.0 + 1e-9):
        raise ConfidantError(f"{name} must be probabilities in [0, 1]")
    return arr


def binary_entropy_bits(p: float) -> float:
    """h_b(p) = −p log2 p − (1 − p) log2(1 − p), in bits; 0 at p ∈ {0, 1}."""
    if not 0.0 <= p <= 1.0:
        raise ConfidantError(f"binary entropy needs p in [0, 1], got {p}")
    return float(sum(-x * math.log2(x) for x in (p, 1.0 - p) if x > 0.0))


def conformal_threshold(
    true_class_probs: Sequence[float] | np.ndarray, alpha: float, finite_sample: bool = False
) -> float:
    """Split-conformal threshold τ for sets ``{y : p̂(y) ≥ τ}`` (inclusive).

    Scores are s_i = −p̂(y_i | h_i), the negated probability of the true class on n calibration
    histories.

    - ``finite_sample=False`` (the C-IP reference code): τ = −q, q the 1 − α quantile of the
      scores with numpy's ``method="higher"``.
    - ``finite_sample=True`` (textbook split conformal, Vovk et al. 2005; Angelopoulos & Bates
      2021): τ = −s_(r), the r-th smallest score with r = ⌈(n + 1)(1 − α)⌉, which guarantees
      P(y ∈ C) ≥ 1 − α for an exchangeable test point. When r > n (too few calibration points
      for this α) no finite threshold gives the guarantee and τ = −inf: the set is every class.

    Source: Chan et al. 2025, Algorithm 1 and §3.2.
    """
    alpha = _check_alpha(alpha)
    probs = _check_probabilities(true_class_probs, "true-class probabilities", 1)
    scores = -probs
    if not finite_sample:
        return float(-np.quantile(scores, 1.0 - alpha, method="higher"))
    n = scores.size
    rank = math.ceil((n + 1) * (1.0 - alpha) - _RANK_TOLERANCE)
    if rank > n:
        return -math.inf
    return float(-np.sort(scores)[rank - 1])


def prediction_set(probs: Sequence[float] | np.ndarray, tau: float) -> np.ndarray:
    """Boolean membership of the conformal set C = {y : p̂(y) ≥ τ}; ``probs`` is (K,) or (N, K).

    Source: Chan et al. 2025, eq. (7) with the inclusive inequality of the reference code.
    """
    arr = _check_probabilities(probs, "probabilities", (1, 2))
    if isinstance(tau, bool) or not isinstance(tau, int | float | np.floating):
        raise ConfidantError(f"the threshold must be a number, got {tau!r}")
    if math.isnan(tau):
        raise ConfidantError("the threshold is NaN")
    return arr >= tau


def entropy_upper_bound(
    set_sizes: Sequence[int] | np.ndarray,
    covered: Sequence[bool] | np.ndarray,
    alpha: float,
    n_classes: int,
    n_est: int,
) -> float:
    """Upper bound on H(Y | q(X), H_k) in bits from the conformal sets of n_est simulated draws.

    B = h_b(α) + (1 − α_n) · mean_{s covered} log2 |C_s| + α · mean_{s not covered} log2(K − |C_s|),

    with α_n = α − 1/(n_est + 1) and K = ``n_classes``. It is the mean of the log sizes, not the
    log of the mean size. A group with no draws adds 0. A draw is covered when its hypothetical
    label is in its set, so a covered set has |C| ≥ 1 and an uncovered one |C| ≤ K − 1 (the full
    set covers every label): both logs are finite, and inputs breaking this are rejected.
    h_b(α) is the binary entropy in bits at α itself.

    Source: Chan et al. 2025, Proposition 3.1 (after Correia et al. 2024) in the split-by-coverage
    form of the authors' 20 Questions code.
    """
    alpha = _check_alpha(alpha)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ConfidantError(f"n_classes must be an integer ≥ 2, got {n_classes!r}")
    if isinstance(n_est, bool) or not isinstance(n_est, int | np.integer) or n_est < 1:
        raise ConfidantError(f"n_est must be a positive integer, got {n_est!r}")
    sizes = np.asarray(set_sizes)
    cov = np.asarray(covered)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ConfidantError("set_sizes must be a non-empty 1-D array")
    if cov.shape != sizes.shape:
        raise ConfidantError(f"covered has shape {cov.shape} but set_sizes has shape {sizes.shape}")
    if cov.dtype != bool:
        if not np.all(np.isin(cov, (0, 1))):
            raise ConfidantError("covered must be booleans")
        cov = cov.astype(bool)
    if not np.issubdtype(sizes.dtype, np.number) or not np.all(np.isfinite(sizes)):
        raise ConfidantError("set_sizes must be finite numbers")
    if np.any(sizes != np.round(sizes)) or np.any(sizes < 0) or np.any(sizes > n_classes):
        raise ConfidantError(f"set sizes must be integers between 0 and {n_classes}")
    sizes = sizes.astype(float)
    if np.any(sizes[cov] < 1):
        raise ConfidantError("a covered draw must have a set of size ≥ 1")
    if np.any(sizes[~cov] >= n_classes):
        raise ConfidantError("an uncovered draw cannot have the full set")
    alpha_n = alpha - 1.0 / (n_est + 1)
    bound = binary_entropy_bits(alpha)
    if cov.any():
        bound += (1.0 - alpha_n) * float(np.mean(np.log2(sizes[cov])))
    if (~cov).any():
        bound += alpha * float(np.mean(np.log2(n_classes - sizes[~cov])))
    return float(bound)


def _entropy_upper_bounds(
    sizes: np.ndarray, covered: np.ndarray, alpha: float, n_classes: int, n_est: int
) -> np.ndarray:
    """:func:`entropy_upper_bound` for every row of (candidates, draws) arrays at once; the
    sets come from :func:`prediction_set`, so covered sets are non-empty and uncovered ones
    are not full."""
    sizes = sizes.astype(float)
    alpha_n = alpha - 1.0 / (n_est + 1)
    n_cov = covered.sum(axis=1)
    n_unc = covered.shape[1] - n_cov
    log_cov = np.where(covered, np.log2(np.maximum(sizes, 1.0)), 0.0).sum(axis=1)
    log_unc = np.where(covered, 0.0, np.log2(np.maximum(n_classes - sizes, 1.0))).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cov = np.where(n_cov > 0, log_cov / n_cov, 0.0)
        mean_unc = np.where(n_unc > 0, log_unc / n_unc, 0.0)
    return binary_entropy_bits(alpha) + (1.0 - alpha_n) * mean_cov + alpha * mean_unc


def posterior_entropy_bits(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Entropy −Σ_y p log2 p of each posterior row, in bits, with p clamped below at 1e-5 as
    in the IP baseline of Chan et al. 2025 (reference code ``compute_entropy_formula``).
    Returns a scalar array for one posterior, a (N,) array for (N, K)."""
    arr = _check_probabilities(probs, "probabilities", (1, 2))
    clamped = np.clip(arr, ENTROPY_CLAMP, None)
    return -(clamped * np.log2(clamped)).sum(axis=-1)


def should_stop(scores: Sequence[float] | np.ndarray, epsilon: float | None) -> bool:
    """The practical stopping rule (Chan et al. 2025, Appendix G.10): stop when the population
    standard deviation of the candidates' objective values is below ε. ``None`` disables it."""
    if epsilon is None:
        return False
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return True
    return bool(np.std(values) < epsilon)


# --------------------------------------------------------------------------------------------
# Batched, deduplicated posterior scoring
# --------------------------------------------------------------------------------------------


def _history_key(history: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(q), str(a)) for q, a in history)


def _check_posteriors(raw: Any, n_rows: int, n_classes: int) -> np.ndarray:
    try:
        probs = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise ConfidantError(
            "the posterior callable returned something that is not numbers"
        ) from None
    if probs.shape != (n_rows, n_classes):
        raise ConfidantError(
            f"the posterior callable returned shape {probs.shape}, expected ({n_rows}, {n_classes})"
        )
    if not np.all(np.isfinite(probs)) or np.any(probs < 0.0):
        raise ConfidantError("the posterior callable returned NaN, infinite or negative values")
    sums = probs.sum(axis=1)
    if n_rows and np.max(np.abs(sums - 1.0)) > _ROW_SUM_TOLERANCE:
        raise ConfidantError("each posterior row must sum to 1 over the classes")
    return probs / sums[:, None] if n_rows else probs


def score_histories(
    posterior_batch: PosteriorBatch,
    histories: Sequence[Sequence[tuple[str, str]]],
    n_classes: int,
    *,
    cache: MutableMapping[tuple, np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """p̂(· | h) for every history, from at most ONE call of ``posterior_batch`` over the
    distinct histories not already in ``cache``. Returns (probs (len(histories), K), number of
    histories actually scored). New results are added to ``cache`` when one is given."""
    keys = [_history_key(h) for h in histories]
    known = cache if cache is not None else {}
    todo: dict[tuple, int] = {}
    for key in keys:
        if key not in known and key not in todo:
            todo[key] = len(todo)
    fresh = np.zeros((0, n_classes))
    if todo:
        fresh = _check_posteriors(
            posterior_batch([list(key) for key in todo]), len(todo), n_classes
        )
        if cache is not None:
            for key, row in todo.items():
                cache[key] = fresh[row]
    out = np.empty((len(keys), n_classes))
    for i, key in enumerate(keys):
        out[i] = fresh[todo[key]] if key in todo else known[key]
    return out, len(todo)


# --------------------------------------------------------------------------------------------
# Calibration on random histories
# --------------------------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    """One conformal threshold per history length k = 1..L (``thresholds[k - 1]``), with the
    coverage and mean set size they give on their own calibration histories."""

    alpha: float
    finite_sample: bool
    n_cal: int
    seed: int
    n_classes: int
    thresholds: list[float]
    coverage: list[float]
    mean_set_size: list[float]
    n_scored: list[int]
    class_set_fingerprint: str = ""

    @property
    def max_length(self) -> int:
        return len(self.thresholds)

    def threshold_for_length(self, k: int) -> float:
        """τ̂(k) for a history of k answers (1 ≤ k ≤ L)."""
        if not 1 <= k <= self.max_length:
            raise ConfidantError(
                f"no threshold for a history of length {k}: calibrated for 1..{self.max_length}"
            )
        return self.thresholds[k - 1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def sample_random_histories(
    class_set: ClassSet,
    length: int,
    n: int,
    rng: np.random.Generator,
    answerer: Answerer | None = None,
) -> tuple[list[History], np.ndarray]:
    """n random histories of ``length`` answers, the uniform parameterisation of C-IP (Chan et
    al. 2025, eq. 12): a label uniform over the classes, ``length`` questions uniform without
    replacement from the bank, answered from the bank (or by ``answerer(label, query)``).
    Returns the histories and the label indices."""
    if not 1 <= length <= class_set.n_questions:
        raise ConfidantError(
            f"history length must be between 1 and {class_set.n_questions} (the bank size), "
            f"got {length}"
        )
    labels = rng.integers(class_set.n_classes, size=n)
    histories: list[History] = []
    for label in labels:
        picked = rng.choice(class_set.n_questions, size=length, replace=False)
        if answerer is None:
            history = [
                (class_set.questions[j], "yes" if class_set.answers[label, j] else "no")
                for j in picked
            ]
        else:
            history = [
                (
                    class_set.questions[j],
                    normalize_answer(answerer(class_set.classes[label], class_set.questions[j])),
                )
                for j in picked
            ]
        histories.append(history)
    return histories, labels


def calibrate_thresholds(
    class_set: ClassSet,
    posterior_batch: PosteriorBatch,
    *,
    alpha: float = 0.1,
    max_length: int = 20,
    n_cal: int = 100,
    finite_sample: bool = False,
    seed: int = 0,
    answerer: Answerer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationResult:
    """Calibrate τ̂(k) for k = 1..L on random histories (Chan et al. 2025, §3.2 and eq. 12).

    For each k: draw ``n_cal`` (label, length-k history) pairs with
    :func:`sample_random_histories`, score all of them in one batched posterior call, and set
    τ̂(k) = :func:`conformal_threshold` of the true-class probabilities. ``progress(k, L)`` is
    called after each length. Seeded: the same arguments give the same thresholds.
    """
    alpha = _check_alpha(alpha)
    if not 1 <= max_length <= class_set.n_questions:
        raise ConfidantError(
            f"max_length must be between 1 and {class_set.n_questions}, got {max_length}"
        )
    if not 1 <= n_cal <= 100_000:
        raise ConfidantError(f"n_cal must be between 1 and 100000, got {n_cal}")
    rng = np.random.default_rng(seed)
    thresholds, coverage, sizes, scored = [], [], [], []
    for k in range(1, max_length + 1):
        histories, labels = sample_random_histories(class_set, k, n_cal, rng, answerer)
        probs, n_scored = score_histories(posterior_batch, histories, class_set.n_classes)
        true_probs = probs[np.arange(n_cal), labels]
        tau = conformal_threshold(true_probs, alpha, finite_sample=finite_sample)
        sets = prediction_set(probs, tau)
        thresholds.append(tau)
        coverage.append(float(np.mean(true_probs >= tau)))
        sizes.append(float(sets.sum(axis=1).mean()))
        scored.append(n_scored)
        if progress is not None:
            progress(k, max_length)
    return CalibrationResult(
        alpha=alpha,
        finite_sample=finite_sample,
        n_cal=n_cal,
        seed=seed,
        n_classes=class_set.n_classes,
        thresholds=thresholds,
        coverage=coverage,
        mean_set_size=sizes,
        n_scored=scored,
        class_set_fingerprint=class_set.fingerprint(),
    )


def calibration_fields(
    model_key: str,
    class_set: ClassSet,
    *,
    alpha: float,
    finite_sample: bool,
    n_cal: int,
    max_length: int,
    seed: int,
) -> dict[str, Any]:
    """The key a calibration is stored under."""
    return {
        "model": model_key,
        "class_set_fingerprint": class_set.fingerprint(),
        "alpha": float(alpha),
        "finite_sample": bool(finite_sample),
        "n_cal": int(n_cal),
        "max_length": int(max_length),
        "seed": int(seed),
    }


CalibrationCache = Callable[..., tuple[dict[str, Any], bool]]


def get_or_calibrate(
    class_set: ClassSet,
    posterior: Callable,
    *,
    cache: CalibrationCache | None = None,
    alpha: float = 0.1,
    finite_sample: bool = False,
    n_cal: int = 100,
    max_length: int = 20,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CalibrationResult, bool]:
    """(calibration, reused): :func:`calibrate_thresholds` for this posterior's model, class set
    and settings, through ``cache`` when given.

    ``cache(fields, compute, posterior_label=..., class_set_name=...)`` returns ``(result dict,
    reused)``: the stored result for the key ``fields`` (:func:`calibration_fields`), or
    ``compute()`` stored under it — e.g. ``functools.partial(store.cip.cached_calibration,
    store)`` for the app's database. Without a cache the thresholds are computed every time.
    """
    fields = calibration_fields(
        str(getattr(posterior, "model_key", "?")),
        class_set,
        alpha=alpha,
        finite_sample=finite_sample,
        n_cal=n_cal,
        max_length=max_length,
        seed=seed,
    )

    def compute() -> dict[str, Any]:
        return calibrate_thresholds(
            class_set,
            posterior,
            alpha=alpha,
            max_length=max_length,
            n_cal=n_cal,
            finite_sample=finite_sample,
            seed=seed,
            progress=progress,
        ).to_dict()

    if cache is None:
        return CalibrationResult.from_dict(compute()), False
    result, reused = cache(
        fields,
        compute,
        posterior_label=str(getattr(posterior, "label", "")),
        class_set_name=class_set.name,
    )
    return CalibrationResult.from_dict(result), reused


def check_coverage(
    class_set: ClassSet,
    posterior_batch: PosteriorBatch,
    calibration: CalibrationResult,
    *,
    n_test: int = 100,
    seed: int = 1,
    answerer: Answerer | None = None,
) -> list[float]:
    """Empirical coverage P(y ∈ C_τ̂(k)(h)) per length k on fresh random histories drawn like
    the calibration ones (use a seed different from the calibration seed)."""
    if n_test < 1:
        raise ConfidantError(f"n_test must be positive, got {n_test}")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(1, calibration.max_length + 1):
        histories, labels = sample_random_histories(class_set, k, n_test, rng, answerer)
        probs, _ = score_histories(posterior_batch, histories, class_set.n_classes)
        out.append(
            float(np.mean(probs[np.arange(n_test), labels] >= calibration.thresholds[k - 1]))
        )
    return out


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
        p = _check_probabilities(posterior, "posterior", 1)
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
        alpha = _check_alpha(alpha)
    labels = draw_hypotheses(n_classes, n_est, rng, mode=hypotheses, posterior=posterior)

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
        bounds = _entropy_upper_bounds(sizes, covered, float(alpha), n_classes, n_est)
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


# --------------------------------------------------------------------------------------------
# The game
# --------------------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    """One state of a game: after ``turn`` answers (turn 0 is before any question).

    ``bound`` / ``expected_entropy`` are the chosen question's C-IP bound and IP estimate (bits)
    when it was selected; ``set_members`` is C_τ̂(turn)(history), every class at turn 0 (no
    threshold exists for an empty history); ``covered`` says whether the hidden class is in the
    set, when it is known (auto play).
    """

    turn: int
    query: str | None
    answer: str | None
    set_members: list[str]
    set_size: int
    tau: float | None
    bound: float | None
    expected_entropy: float | None
    score_std: float | None
    posterior_top: list[tuple[str, float]]
    guess: str
    covered: bool | None = None
    n_scored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Game:
    """20 Questions as a state machine: ask → answer → update posterior → conformal set.

    Human play: ``q = game.next_question()`` then ``game.answer("yes")``, until ``q`` is None.
    Auto play: ``game.play(lambda q: class_set.answer(hidden, q))``.

    The querier chooses among the bank questions not asked yet (or ``propose_queries(history)``
    for open queries) with ``method`` ("cip", "ip" or "random"). Hypothetical answers come from
    ``answerer(label, query)`` (the bank by default). The game stops after ``max_queries``
    questions, when no candidate is left, or when the candidates' objective values have
    standard deviation below ``epsilon`` (None disables the rule). Every random draw comes from
    ``seed``.
    """

    class_set: ClassSet
    posterior_batch: PosteriorBatch
    calibration: CalibrationResult
    method: str = "cip"
    n_est: int = 4
    max_queries: int = 20
    epsilon: float | None = None
    hypotheses: str = "uniform"
    answerer: Answerer | None = None
    propose_queries: Callable[[History], list[str]] | None = None
    seed: int | tuple[int, ...] = 0
    top_k: int = 5
    truth: str | None = None
    history: History = field(default_factory=list, init=False)
    turns: list[TurnRecord] = field(default_factory=list, init=False)
    finished: bool = field(default=False, init=False)
    stop_reason: str | None = field(default=None, init=False)
    pending: SelectionStep | None = field(default=None, init=False, repr=False)
    posterior: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfidantError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.hypotheses not in HYPOTHESIS_MODES:
            raise ConfidantError(f"hypotheses must be one of {', '.join(HYPOTHESIS_MODES)}")
        if self.calibration.n_classes != self.class_set.n_classes:
            raise ConfidantError(
                f"the calibration is for {self.calibration.n_classes} classes, the class set "
                f"has {self.class_set.n_classes}"
            )
        if not 1 <= self.max_queries <= self.calibration.max_length:
            raise ConfidantError(
                f"max_queries must be between 1 and {self.calibration.max_length} "
                "(the longest calibrated history)"
            )
        if self.n_est < 1:
            raise ConfidantError(f"n_est must be positive, got {self.n_est}")
        if self.epsilon is not None and not (math.isfinite(self.epsilon) and self.epsilon >= 0):
            raise ConfidantError(f"epsilon must be a non-negative number, got {self.epsilon}")
        if self.truth is not None:
            self.class_set.class_index(self.truth)
        self._rng = np.random.default_rng(self.seed)
        self._cache: dict[tuple, np.ndarray] = {}

    # -- state --------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self.turns)

    @property
    def guess(self) -> str | None:
        return self.turns[-1].guess if self.turns else None

    def start(self) -> TurnRecord:
        """Score the empty history and record turn 0 (the prior guess)."""
        if self.started:
            return self.turns[0]
        probs, n_scored = score_histories(self.posterior_batch, [[]], self.class_set.n_classes)
        return self._record(probs[0], None, None, None, n_scored)

    def _candidates(self) -> list[str]:
        asked = {q for q, _ in self.history}
        if self.propose_queries is not None:
            proposed = [q for q in self.propose_queries(list(self.history)) if q not in asked]
            return list(dict.fromkeys(proposed))
        return [q for q in self.class_set.questions if q not in asked]

    def _finish(self, reason: str) -> None:
        self.finished, self.stop_reason, self.pending = True, reason, None

    def _default_answerer(self, label: str, query: str) -> str:
        return self.class_set.answer(label, query)

    def next_question(self) -> str | None:
        """Choose the next question, or None when the game is over (see ``stop_reason``)."""
        if not self.started:
            self.start()
        if self.finished:
            return None
        if self.pending is not None:
            return self.pending.chosen
        k = len(self.history)
        if k >= self.max_queries:
            self._finish("max_queries")
            return None
        candidates = self._candidates()
        if not candidates:
            self._finish("no_questions_left")
            return None
        self._cache = {}
        step = select_query(
            self.method,
            self.history,
            candidates,
            self.class_set.classes,
            self.posterior_batch,
            self.answerer or self._default_answerer,
            self._rng,
            tau=self.calibration.threshold_for_length(k + 1),
            alpha=self.calibration.alpha,
            n_est=self.n_est,
            hypotheses=self.hypotheses,
            posterior=self.posterior,
            cache=self._cache,
        )
        if self.method != "random" and should_stop(step.scores, self.epsilon):
            self._finish("bounds_settled")
            return None
        self.pending = step
        return step.chosen

    def answer(self, text: str) -> TurnRecord:
        """Record the answer to the pending question, update the posterior and the set."""
        if self.pending is None:
            raise ConfidantError("there is no question waiting for an answer")
        step = self.pending
        answer = normalize_answer(text)
        self.history.append((step.chosen, answer))
        probs, n_scored = score_histories(
            self.posterior_batch, [self.history], self.class_set.n_classes, cache=self._cache
        )
        self.pending = None
        j = step.chosen_index
        return self._record(
            probs[0],
            step,
            None if step.bounds is None else step.bounds[j],
            None if step.expected_entropies is None else step.expected_entropies[j],
            step.n_scored + n_scored,
        )

    def _record(
        self,
        probs: np.ndarray,
        step: SelectionStep | None,
        bound: float | None,
        expected_entropy: float | None,
        n_scored: int,
    ) -> TurnRecord:
        self.posterior = probs
        k = len(self.history)
        classes = self.class_set.classes
        if k == 0:
            tau, members = None, np.ones(len(classes), dtype=bool)
        else:
            tau = self.calibration.threshold_for_length(k)
            members = prediction_set(probs, tau)
        order = np.argsort(-probs, kind="stable")
        covered = None
        if self.truth is not None:
            covered = bool(members[self.class_set.class_index(self.truth)])
        record = TurnRecord(
            turn=k,
            query=self.history[-1][0] if k else None,
            answer=self.history[-1][1] if k else None,
            set_members=[classes[i] for i in order if members[i]],
            set_size=int(members.sum()),
            tau=tau,
            bound=bound,
            expected_entropy=expected_entropy,
            score_std=None if step is None else step.score_std,
            posterior_top=[(classes[i], float(probs[i])) for i in order[: self.top_k]],
            guess=classes[int(order[0])],
            covered=covered,
            n_scored=n_scored,
        )
        self.turns.append(record)
        return record

    def play(self, answer_fn: Callable[[str], str]) -> list[TurnRecord]:
        """Auto play to the end: ``answer_fn(query)`` answers for the hidden class."""
        while (query := self.next_question()) is not None:
            self.answer(answer_fn(query))
        return self.turns

    def first_correct_turn(self) -> int | None:
        """The number of answers at the first turn whose guess is ``truth`` (None if never)."""
        if self.truth is None:
            raise ConfidantError("the hidden class is not known to this game")
        return next((t.turn for t in self.turns if t.guess == self.truth), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_est": self.n_est,
            "max_queries": self.max_queries,
            "epsilon": self.epsilon,
            "hypotheses": self.hypotheses,
            "seed": list(self.seed) if isinstance(self.seed, tuple) else self.seed,
            "alpha": self.calibration.alpha,
            "class_set": self.class_set.name,
            "class_set_fingerprint": self.class_set.fingerprint(),
            "truth": self.truth,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "turns": [t.to_dict() for t in self.turns],
        }


# --------------------------------------------------------------------------------------------
# Benchmark mode
# --------------------------------------------------------------------------------------------


@dataclass
class BenchmarkRow:
    """One method's row of the paper's Table 2, mean (and std across seeds).

    A game is won from the first turn whose guess names the hidden class (the UoT protocol the
    paper follows); its length is the number of questions asked by then, or all the questions
    asked if it was never won. ``final_accuracy`` is the share of games whose last guess is
    right. ``coverage_per_turn[t - 1]`` is the share of games with a turn t whose set holds the
    hidden class, pooled over seeds.
    """

    method: str
    query_set: str
    answer_type: str
    n_games: int
    n_seeds: int
    avg_len: float
    avg_len_std: float
    avg_success_len: float | None
    avg_success_len_std: float | None
    success_rate: float
    success_rate_std: float
    final_accuracy: float
    final_accuracy_std: float
    coverage_per_turn: list[float]
    mean_set_size_per_turn: list[float]
    hypotheses: str | None = None


@dataclass
class BenchmarkResult:
    rows: list[BenchmarkRow]
    games: list[dict[str, Any]]
    params: dict[str, Any]

    def table(self) -> list[dict[str, Any]]:
        """Table 2 form: Method, Q, A, Avg. len, Avg. success len, Success rate (mean ± std)."""

        def pm(mean: float | None, std: float | None) -> str:
            return "n/a" if mean is None else f"{mean:.2f}±{std:.2f}"

        return [
            {
                "Method": r.method,
                "Q": r.query_set,
                "A": r.answer_type,
                "Avg. len": pm(r.avg_len, r.avg_len_std),
                "Avg. success len": pm(r.avg_success_len, r.avg_success_len_std),
                "Success rate": pm(r.success_rate, r.success_rate_std),
                "Final accuracy": pm(r.final_accuracy, r.final_accuracy_std),
                "Hypothetical labels": r.hypotheses or "-",
                "Games": r.n_games,
            }
            for r in self.rows
        ]

    def to_csv(self) -> str:
        """The rows as CSV, numbers unrounded, per-turn coverage as one column per turn."""
        n_turns = max((len(r.coverage_per_turn) for r in self.rows), default=0)
        fields = [
            "method", "query_set", "answer_type", "n_games", "n_seeds", "avg_len", "avg_len_std",
            "avg_success_len", "avg_success_len_std", "success_rate", "success_rate_std",
            "final_accuracy", "final_accuracy_std", "hypotheses",
        ]  # fmt: skip
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields + [f"coverage_turn_{t}" for t in range(1, n_turns + 1)])
        for r in self.rows:
            values = ["" if getattr(r, f) is None else getattr(r, f) for f in fields]
            cover = r.coverage_per_turn + [""] * (n_turns - len(r.coverage_per_turn))
            writer.writerow(values + cover)
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def run_benchmark(
    class_set: ClassSet,
    posterior_batch: PosteriorBatch,
    calibration: CalibrationResult,
    *,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0,),
    classes: Sequence[str] | None = None,
    n_est: int = 4,
    max_queries: int = 20,
    epsilon: float | None = None,
    hypotheses: str | Sequence[str] = "uniform",
    answerer: Answerer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BenchmarkResult:
    """Auto-play every class (or ``classes``) with each method and seed; answers to the real
    questions come from the bank. Games with the same seed and class share their random
    stream across methods (paired comparison). Returns the paper's Table 2 rows (Chan et al.
    2025, Table 2) plus per-turn coverage of the conformal sets.

    ``hypotheses`` is one mode of :func:`draw_hypotheses` or several (e.g. ``("uniform",
    "posterior")``): C-IP and IP then get one row per mode, labelled with it, so the effect of
    drawing hypothetical labels uniformly (the paper) or from the posterior is visible side by
    side. Random selection draws no labels and gets one row."""
    for m in methods:
        if m not in METHODS:
            raise ConfidantError(f"method must be one of {', '.join(METHODS)}, got {m!r}")
    if not methods or not seeds:
        raise ConfidantError("the benchmark needs at least one method and one seed")
    modes = [hypotheses] if isinstance(hypotheses, str) else list(dict.fromkeys(hypotheses))
    if not modes or any(h not in HYPOTHESIS_MODES for h in modes):
        raise ConfidantError(f"hypotheses must be among {', '.join(HYPOTHESIS_MODES)}")
    variants = [(m, h) for m in methods for h in (modes if m != "random" else modes[:1])]
    names = list(classes) if classes is not None else list(class_set.classes)
    if not names:
        raise ConfidantError("the benchmark needs at least one class")
    indices = [class_set.class_index(name) for name in names]
    total, done = len(variants) * len(seeds) * len(names), 0
    games: list[dict[str, Any]] = []
    rows: list[BenchmarkRow] = []
    for method, mode in variants:
        per_seed: dict[str, list[float]] = {"len": [], "success_len": [], "rate": [], "final": []}
        covered_at: list[list[bool]] = [[] for _ in range(max_queries)]
        size_at: list[list[int]] = [[] for _ in range(max_queries)]
        n_games = 0
        for seed in seeds:
            lengths, success_lengths, wins, finals = [], [], [], []
            for name, index in zip(names, indices, strict=True):
                game = Game(
                    class_set,
                    posterior_batch,
                    calibration,
                    method=method,
                    n_est=n_est,
                    max_queries=max_queries,
                    epsilon=epsilon,
                    hypotheses=mode,
                    answerer=answerer,
                    seed=(int(seed), index),
                    truth=name,
                )
                game.play(lambda q, name=name: class_set.answer(name, q))
                first = game.first_correct_turn()
                n_asked = len(game.history)
                length = first if first is not None else n_asked
                lengths.append(length)
                wins.append(first is not None)
                if first is not None:
                    success_lengths.append(first)
                finals.append(game.guess == name)
                for t in game.turns[1:]:
                    covered_at[t.turn - 1].append(bool(t.covered))
                    size_at[t.turn - 1].append(t.set_size)
                games.append(
                    {
                        "method": method,
                        "hypotheses": None if method == "random" else mode,
                        "seed": int(seed),
                        "class": name,
                        "won": first is not None,
                        "first_correct_turn": first,
                        "n_questions": n_asked,
                        "final_guess": game.guess,
                        "stop_reason": game.stop_reason,
                    }
                )
                n_games += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            per_seed["len"].append(float(np.mean(lengths)))
            per_seed["rate"].append(float(np.mean(wins)))
            per_seed["final"].append(float(np.mean(finals)))
            if success_lengths:
                per_seed["success_len"].append(float(np.mean(success_lengths)))
        label = METHOD_NAMES[method]
        if method == "cip":
            label = f"C-IP α={calibration.alpha:g}"
        if len(modes) > 1 and method != "random":
            label += f" ({mode} labels)"
        avg_len, avg_len_std = _mean_std(per_seed["len"])
        success_len, success_len_std = _mean_std(per_seed["success_len"])
        rate, rate_std = _mean_std(per_seed["rate"])
        final, final_std = _mean_std(per_seed["final"])
        rows.append(
            BenchmarkRow(
                method=label,
                query_set="closed",
                answer_type="binary",
                n_games=n_games,
                n_seeds=len(seeds),
                avg_len=avg_len,
                avg_len_std=avg_len_std,
                avg_success_len=success_len,
                avg_success_len_std=success_len_std,
                success_rate=rate,
                success_rate_std=rate_std,
                final_accuracy=final,
                final_accuracy_std=final_std,
                coverage_per_turn=[float(np.mean(c)) for c in covered_at if c],
                mean_set_size_per_turn=[float(np.mean(s)) for s in size_at if s],
                hypotheses=None if method == "random" else mode,
            )
        )
    params = {
        "methods": list(methods),
        "seeds": [int(s) for s in seeds],
        "classes": names,
        "n_est": n_est,
        "max_queries": max_queries,
        "epsilon": epsilon,
        "hypotheses": modes,
        "alpha": calibration.alpha,
        "finite_sample": calibration.finite_sample,
        "class_set": class_set.name,
        "class_set_fingerprint": class_set.fingerprint(),
    }
    return BenchmarkResult(rows=rows, games=games, params=params)
