"""How well an uncertainty score predicts errors, over a set of questions.

Each function takes one uncertainty per question (higher = more uncertain) and the matching
correctness labels (1 correct, 0 wrong) or quality scores (higher = better). Sources:
Farquhar et al., Nature 2024 and their code (AUROC, rejection accuracy, AURAC); Malinin & Gales
2021 and LM-Polygraph (Fadeeva et al. 2023; Vashurin et al. 2025) for the prediction-rejection
ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from core.errors import ConfidantError

AURAC_FRACTIONS = np.linspace(0.1, 1.0, 20)


class UndefinedMetricError(ConfidantError):
    """The metric has no value on this data (e.g. AUROC when every answer is correct)."""


def _uncertainty(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfidantError("uncertainties must be a non-empty 1-D sequence, one per question")
    if not np.all(np.isfinite(arr)):
        raise ConfidantError("uncertainties must be finite (no NaN or infinity)")
    return arr


def _paired(
    uncertainty: Sequence[float] | np.ndarray, other: Sequence[Any] | np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    u = _uncertainty(uncertainty)
    o = np.asarray(other)
    if o.shape != u.shape:
        raise ConfidantError(
            f"need one {name} per uncertainty: {u.size} uncertainties, {o.size} {name} values"
        )
    return u, o


def _labels(uncertainty: Sequence[float] | np.ndarray, correct: Sequence[Any] | np.ndarray):
    u, c = _paired(uncertainty, correct, "correctness label")
    if c.dtype == bool:
        return u, c.astype(float)
    try:
        c = c.astype(float)
    except (TypeError, ValueError) as exc:
        raise ConfidantError("correctness labels must be 0/1 or booleans") from exc
    if not np.all((c == 0) | (c == 1)):
        raise ConfidantError("correctness labels must be 0/1 or booleans")
    return u, c


def _quality(uncertainty: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray):
    u, q = _paired(uncertainty, quality, "quality")
    try:
        q = q.astype(float)
    except (TypeError, ValueError) as exc:
        raise ConfidantError("quality scores must be numbers") from exc
    if not np.all(np.isfinite(q)):
        raise ConfidantError("quality scores must be finite (no NaN or infinity)")
    return u, q


def auroc(uncertainty: Sequence[float] | np.ndarray, correct: Sequence[Any] | np.ndarray) -> float:
    """Area under the ROC curve of the uncertainty as a score for "the answer is wrong".

    The probability that a random wrong answer gets a higher uncertainty than a random correct
    one, ties counting ½ (sklearn ``roc_auc_score``). 0.5 is chance, 1 perfect. Raises
    :class:`UndefinedMetricError` unless both correct and wrong answers are present.
    """
    u, c = _labels(uncertainty, correct)
    if np.all(c == c[0]):
        which = "correct" if c[0] == 1 else "wrong"
        raise UndefinedMetricError(f"AUROC needs correct and wrong answers; all are {which}")
    return float(roc_auc_score(1.0 - c, u))


def rejection_accuracy(
    uncertainty: Sequence[float] | np.ndarray,
    correct: Sequence[Any] | np.ndarray,
    answer_fraction: float,
) -> float:
    """Accuracy on the answers whose uncertainty is ≤ the ``answer_fraction`` quantile of the
    uncertainties (numpy's linear interpolation), i.e. after refusing the most uncertain
    1 − answer_fraction (Farquhar et al. 2024, "accuracy at answer fraction")."""
    u, c = _labels(uncertainty, correct)
    fraction = float(answer_fraction)
    if not 0.0 < fraction <= 1.0:
        raise ConfidantError(f"the answer fraction must be in (0, 1], got {answer_fraction}")
    cutoff = np.quantile(u, fraction)
    return float(c[u <= cutoff].mean())


def aurac(uncertainty: Sequence[float] | np.ndarray, correct: Sequence[Any] | np.ndarray) -> float:
    """Area under the rejection-accuracy curve as in Farquhar et al.'s code:
    Σ_q acc(q) · Δq over the 20 answer fractions q = linspace(0.1, 1, 20), Δq = 0.9/19.

    The area covers fractions 0.1 to 1 only, so a perfect score is 20 · 0.9/19 ≈ 0.947."""
    u, c = _labels(uncertainty, correct)
    step = AURAC_FRACTIONS[1] - AURAC_FRACTIONS[0]
    return float(sum(rejection_accuracy(u, c, q) * step for q in AURAC_FRACTIONS))


def _rejection_area(order_key: np.ndarray, quality: np.ndarray) -> float:
    # Ties in the key are broken at random in expectation: the expected mean quality of the k
    # least uncertain is linear in the tied values, so each tied group takes its mean quality.
    order = np.argsort(order_key, kind="stable")
    key, q = order_key[order], quality[order].copy()
    _, starts, counts = np.unique(key, return_index=True, return_counts=True)
    for start, count in zip(starts, counts, strict=True):
        if count > 1:
            q[start : start + count] = q[start : start + count].mean()
    k = np.arange(1, q.size + 1)
    return float((np.cumsum(q) / k).mean())


def prr(uncertainty: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray) -> float:
    """Prediction-rejection area, raw (LM-Polygraph's "prr" before normalisation).

    Sort the answers by ascending uncertainty; PRR = (1/N) Σ_{k=1}^{N} (mean quality of the k
    least uncertain). Ties in uncertainty count as the expected value over a random order
    within the tie. ``quality`` is used as given (LM-Polygraph min-max rescales it to [0, 1]
    first; for 0/1 correctness that changes nothing). Higher is better.
    """
    u, q = _quality(uncertainty, quality)
    return _rejection_area(u, q)


def prr_normalised(
    uncertainty: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray
) -> float:
    """Normalised prediction-rejection ratio (PRR_raw − PRR_random) / (PRR_oracle − PRR_random)
    (LM-Polygraph's "prr_normalized"; Malinin & Gales 2021).

    The oracle ranks by true quality; the random baseline is the exact expectation over random
    orders, which is the mean quality (LM-Polygraph averages 1000 shuffles). 1 is the oracle,
    0 chance, negative worse than chance. Invariant to positive affine rescaling of quality.
    Raises :class:`UndefinedMetricError` when every quality is the same.
    """
    u, q = _quality(uncertainty, quality)
    random_area = float(q.mean())
    oracle_area = _rejection_area(-q, q)
    if np.isclose(oracle_area, random_area, rtol=0.0, atol=1e-12):
        raise UndefinedMetricError("PRR is undefined when every answer has the same quality")
    return (_rejection_area(u, q) - random_area) / (oracle_area - random_area)


@dataclass
class BootstrapInterval:
    """A metric with its percentile bootstrap interval. ``n_used`` resamples had a defined
    value (the rest, e.g. with one class only, were skipped)."""

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    n_used: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: Sequence[Any] | np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap confidence interval of ``metric_fn(*arrays)``.

    Each resample draws N question indices with replacement (``numpy.random.default_rng(seed)``)
    and applies them to every array alike. Resamples on which the metric is undefined (it raises
    :class:`UndefinedMetricError`, or returns NaN) are skipped and counted out of ``n_used``.
    The interval is the (1 − level)/2 and (1 + level)/2 percentiles of the values; the estimate
    is the metric on the full data.
    """
    if not arrays:
        raise ConfidantError("give the arrays the metric is computed from")
    data = [np.asarray(a) for a in arrays]
    n = data[0].shape[0] if data[0].ndim else 0
    if n == 0 or any(a.ndim == 0 or a.shape[0] != n for a in data):
        raise ConfidantError("the arrays must be non-empty and of the same length")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfidantError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ConfidantError(f"the confidence level must be in (0, 1), got {level}")

    estimate = float(metric_fn(*data))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            value = float(metric_fn(*(a[idx] for a in data)))
        except UndefinedMetricError:
            continue
        if np.isfinite(value):
            values.append(value)
    if not values:
        raise UndefinedMetricError("the metric was undefined on every bootstrap resample")
    alpha = (1.0 - float(level)) / 2
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return BootstrapInterval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        level=float(level),
        n_boot=int(n_boot),
        n_used=len(values),
        seed=int(seed),
    )


def auroc_by_ranks(
    uncertainty: Sequence[float] | np.ndarray, correct: Sequence[Any] | np.ndarray
) -> float:
    """:func:`auroc` in its Mann–Whitney form, equal to sklearn's value:
    AUROC = (R_wrong − n_w(n_w + 1)/2) / (n_w · n_c), with R_wrong the sum of the wrong
    answers' ranks of uncertainty (ties get their average rank, which counts them ½)."""
    u, c = _labels(uncertainty, correct)
    value = _auroc_rows(u[None, :], c[None, :])[0]
    if np.isnan(value):
        which = "correct" if c[0] == 1 else "wrong"
        raise UndefinedMetricError(f"AUROC needs correct and wrong answers; all are {which}")
    return float(value)


def _auroc_rows(u: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Row-wise Mann–Whitney AUROC of uncertainty for "wrong"; NaN where a class is absent."""
    from scipy.stats import rankdata

    wrong = 1.0 - c
    ranks = rankdata(u, axis=1)
    n_wrong = wrong.sum(axis=1)
    n_correct = u.shape[1] - n_wrong
    with np.errstate(divide="ignore", invalid="ignore"):
        value = ((ranks * wrong).sum(axis=1) - n_wrong * (n_wrong + 1) / 2) / (n_wrong * n_correct)
    return np.where((n_wrong > 0) & (n_correct > 0), value, np.nan)


def _rejection_rows(u: np.ndarray, c: np.ndarray, fraction: float) -> np.ndarray:
    cutoff = np.quantile(u, fraction, axis=1)
    kept = u <= cutoff[:, None]
    return (c * kept).sum(axis=1) / kept.sum(axis=1)


REJECTION_FRACTIONS = (0.8, 0.9, 0.95)


def evaluation_metrics(
    uncertainty: Sequence[float] | np.ndarray,
    correct: Sequence[Any] | np.ndarray,
    quality: Sequence[float] | np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, BootstrapInterval | None]:
    """AUROC, AURAC, rejection accuracy at 80/90/95 % answered, PRR raw and normalised, each
    with a percentile bootstrap interval over the SAME resamples (as :func:`bootstrap_ci`).

    ``quality`` (default: the correctness labels) is what PRR ranks. The resampled AUROC,
    rejection accuracies and AURAC are computed for all resamples at once (row-wise ranks and
    quantiles) and equal :func:`auroc`, :func:`rejection_accuracy` and :func:`aurac`. A metric
    undefined on the full data (e.g. AUROC when every answer is correct) is None.
    """
    u, c = _labels(uncertainty, correct)
    u, q = _quality(u, c if quality is None else quality)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfidantError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ConfidantError(f"the confidence level must be in (0, 1), got {level}")
    n = u.size
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    bu, bc, bq = u[idx], c[idx], q[idx]

    def prr_rows(normalised: bool) -> np.ndarray:
        out = np.empty(n_boot)
        for b in range(n_boot):
            try:
                out[b] = prr_normalised(bu[b], bq[b]) if normalised else prr(bu[b], bq[b])
            except UndefinedMetricError:
                out[b] = np.nan
        return out

    step = AURAC_FRACTIONS[1] - AURAC_FRACTIONS[0]
    resampled: dict[str, tuple[Callable[[], float], Callable[[], np.ndarray]]] = {
        "auroc": (lambda: auroc_by_ranks(u, c), lambda: _auroc_rows(bu, bc)),
        "aurac": (
            lambda: aurac(u, c),
            lambda: sum(_rejection_rows(bu, bc, f) * step for f in AURAC_FRACTIONS),
        ),
    }
    for f in REJECTION_FRACTIONS:
        resampled[f"rejection_accuracy_{round(f * 100)}"] = (
            lambda f=f: rejection_accuracy(u, c, f),
            lambda f=f: _rejection_rows(bu, bc, f),
        )
    resampled["prr"] = (lambda: prr(u, q), lambda: prr_rows(False))
    resampled["prr_normalised"] = (lambda: prr_normalised(u, q), lambda: prr_rows(True))

    alpha = (1.0 - float(level)) / 2
    out: dict[str, BootstrapInterval | None] = {}
    for name, (full, rows) in resampled.items():
        try:
            estimate = float(full())
        except UndefinedMetricError:
            out[name] = None
            continue
        values = np.asarray(rows(), dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[name] = None
            continue
        low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
        out[name] = BootstrapInterval(
            estimate=estimate,
            low=float(low),
            high=float(high),
            level=float(level),
            n_boot=int(n_boot),
            n_used=int(values.size),
            seed=int(seed),
        )
    return out
