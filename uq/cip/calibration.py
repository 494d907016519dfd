"""Calibration of C-IP's conformal thresholds on random histories, and the coverage check."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.cip.class_sets import ClassSet, normalize_answer
from uq.cip.conformal import (
    ROW_SUM_TOLERANCE,
    Answerer,
    CalibrationCache,
    History,
    PosteriorBatch,
    check_alpha,
    conformal_threshold,
    prediction_set,
)

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
    if n_rows and np.max(np.abs(sums - 1.0)) > ROW_SUM_TOLERANCE:
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


class CalibrationRun:
    """:func:`calibrate_thresholds` split into short steps, so that a caller (a web handler)
    can report progress, time the first steps to estimate the rest, and stop between steps.

    ``steps()`` scores the random histories ``batch`` at a time (all ``n_cal`` of a length in
    one call when ``batch`` is None) and yields the number of histories scored so far after
    each call; ``result`` is set once the last length is done. ``run()`` does every step.
    The histories, and so the thresholds, do not depend on ``batch``.
    """

    def __init__(
        self,
        class_set: ClassSet,
        posterior_batch: PosteriorBatch,
        *,
        alpha: float = 0.1,
        max_length: int = 20,
        n_cal: int = 100,
        finite_sample: bool = False,
        seed: int = 0,
        answerer: Answerer | None = None,
        batch: int | None = None,
    ) -> None:
        self.alpha = check_alpha(alpha)
        if not 1 <= max_length <= class_set.n_questions:
            raise ConfidantError(
                f"max_length must be between 1 and {class_set.n_questions}, got {max_length}"
            )
        if not 1 <= n_cal <= 100_000:
            raise ConfidantError(f"n_cal must be between 1 and 100000, got {n_cal}")
        if batch is not None and batch < 1:
            raise ConfidantError(f"batch must be positive, got {batch}")
        self.class_set, self.posterior_batch, self.answerer = class_set, posterior_batch, answerer
        self.max_length, self.n_cal, self.seed = max_length, n_cal, seed
        self.finite_sample, self.batch = finite_sample, batch or n_cal
        self.total = n_cal * max_length
        self.done = 0
        self.lengths_done = 0
        self.result: CalibrationResult | None = None

    def steps(self) -> Iterator[int]:
        cs, n_cal = self.class_set, self.n_cal
        rng = np.random.default_rng(self.seed)
        thresholds, coverage, sizes, scored = [], [], [], []
        for k in range(1, self.max_length + 1):
            histories, labels = sample_random_histories(cs, k, n_cal, rng, self.answerer)
            probs = np.empty((n_cal, cs.n_classes))
            cache: dict[tuple, np.ndarray] = {}  # duplicates within a length are scored once
            n_scored = 0
            for start in range(0, n_cal, self.batch):
                chunk = histories[start : start + self.batch]
                p, n = score_histories(self.posterior_batch, chunk, cs.n_classes, cache=cache)
                probs[start : start + len(chunk)] = p
                n_scored += n
                self.done += len(chunk)
                if start + self.batch >= n_cal:
                    true_probs = probs[np.arange(n_cal), labels]
                    tau = conformal_threshold(true_probs, self.alpha, self.finite_sample)
                    thresholds.append(tau)
                    coverage.append(float(np.mean(true_probs >= tau)))
                    sizes.append(float(prediction_set(probs, tau).sum(axis=1).mean()))
                    scored.append(n_scored)
                    self.lengths_done = k
                yield self.done
        self.result = CalibrationResult(
            alpha=self.alpha,
            finite_sample=self.finite_sample,
            n_cal=n_cal,
            seed=self.seed,
            n_classes=cs.n_classes,
            thresholds=thresholds,
            coverage=coverage,
            mean_set_size=sizes,
            n_scored=scored,
            class_set_fingerprint=cs.fingerprint(),
        )

    def run(self, progress: Callable[[int, int], None] | None = None) -> CalibrationResult:
        """Every step; ``progress(k, L)`` after each length k."""
        reported = 0
        for _ in self.steps():
            if progress is not None and self.lengths_done > reported:
                reported = self.lengths_done
                progress(reported, self.max_length)
        assert self.result is not None
        return self.result


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
    called after each length. Seeded: the same arguments give the same thresholds. For short
    steps (progress, stopping between steps) use :class:`CalibrationRun` with a ``batch``.
    """
    return CalibrationRun(
        class_set,
        posterior_batch,
        alpha=alpha,
        max_length=max_length,
        n_cal=n_cal,
        finite_sample=finite_sample,
        seed=seed,
        answerer=answerer,
    ).run(progress)


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
