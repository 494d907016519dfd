"""Agreement between people and the judge, and between annotators.

Rank correlations (Spearman's ρ, Kendall's τ_b) for continuous judge scores against human ones;
Cohen's κ (optionally linear- or quadratic-weighted) for two raters on a discrete scale;
Krippendorff's α for any number of raters with missing ratings (nominal, ordinal or interval).

Missing ratings are ``None`` or NaN. The two-rater statistics drop every item either rater left
out (pairwise deletion); α uses every item at least two raters rated::

    >>> cohen_kappa([1, 2, 3, 3], [1, 2, 3, None])
    1.0
    >>> round(krippendorff_alpha([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    ...                           [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]], "nominal"), 3)
    0.095
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.metrics import cohen_kappa_score

from core.errors import ConfidantError

ALPHA_LEVELS = ("nominal", "ordinal", "interval")
KAPPA_WEIGHTS = (None, "linear", "quadratic")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _paired(a: Sequence[Any], b: Sequence[Any], numeric: bool) -> tuple[list[Any], list[Any]]:
    """The items both raters rated, in order."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ConfidantError(f"the two raters must rate the same items: {len(a)} vs {len(b)}")
    kept_a, kept_b = [], []
    for x, y in zip(a, b, strict=True):
        if _is_missing(x) or _is_missing(y):
            continue
        if numeric:
            for v in (x, y):
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise ConfidantError(f"ratings must be numbers, got {v!r}")
                if not math.isfinite(v):
                    raise ConfidantError(f"ratings must be finite, got {v!r}")
        kept_a.append(x)
        kept_b.append(y)
    if len(kept_a) < 2:
        raise ConfidantError("agreement needs at least two items rated by both raters")
    return kept_a, kept_b


def _check_not_constant(a: list[Any], b: list[Any], what: str) -> None:
    for name, values in (("first", a), ("second", b)):
        if len(set(values)) < 2:
            raise ConfidantError(
                f"{what} is undefined: the {name} rater gave the same rating to every item"
            )


def spearman(a: Sequence[float | None], b: Sequence[float | None]) -> float:
    """Spearman's rank correlation ρ of two raters' scores (``scipy.stats.spearmanr``).

    ρ = Pearson correlation of the ranks, ties given their average rank (Spearman 1904).
    Items either rater left out are dropped.
    """
    x, y = _paired(a, b, numeric=True)
    _check_not_constant(x, y, "Spearman's rho")
    return float(spearmanr(x, y).statistic)


def kendall_tau(a: Sequence[float | None], b: Sequence[float | None]) -> float:
    """Kendall's τ_b of two raters' scores (``scipy.stats.kendalltau``).

    τ_b = (P − Q) / √((P + Q + T_x)(P + Q + T_y)) with P concordant and Q discordant pairs and
    T_x, T_y pairs tied on one side only (Kendall 1945). Items either rater left out are dropped.
    """
    x, y = _paired(a, b, numeric=True)
    _check_not_constant(x, y, "Kendall's tau")
    return float(kendalltau(x, y).statistic)


def cohen_kappa(
    a: Sequence[Hashable | None],
    b: Sequence[Hashable | None],
    weights: str | None = None,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's κ between two raters (``sklearn.metrics.cohen_kappa_score``).

    κ = (p_o − p_e) / (1 − p_e), with p_o the observed agreement and p_e the agreement expected
    from the raters' marginals (Cohen 1960). Weighted: κ_w = 1 − Σ w_ij O_ij / Σ w_ij E_ij with
    w_ij = |i − j| (``"linear"``) or (i − j)² (``"quadratic"``, Cohen 1968), i and j the positions
    of the categories in ``labels``.

    For weighted κ on integer ratings, ``labels`` defaults to every integer between the lowest and
    highest rating, so distances are true score differences even when a value is never used.
    Items either rater left out are dropped.
    """
    if weights not in KAPPA_WEIGHTS:
        raise ConfidantError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    x, y = _paired(a, b, numeric=weights is not None)
    if labels is None and weights is not None:
        values = x + y
        if all(float(v).is_integer() for v in values):
            labels = list(range(int(min(values)), int(max(values)) + 1))
    if labels is not None:
        labels = list(labels)
        unknown = {v for v in x + y if v not in labels}
        if unknown:
            raise ConfidantError(f"ratings {sorted(unknown, key=str)} are not among the labels")
    if len(set(x)) == 1 and set(x) == set(y):
        raise ConfidantError(
            "Cohen's kappa is undefined: both raters used one and the same category throughout"
        )
    return float(cohen_kappa_score(x, y, labels=labels, weights=weights))


def _reliability_matrix(ratings: Sequence[Sequence[Any]]) -> list[list[Any]]:
    rows = [list(r) for r in ratings]
    if len(rows) < 2:
        raise ConfidantError("Krippendorff's alpha needs ratings from at least two raters")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ConfidantError("every rater's row must cover the same items (use None for missing)")
    return rows


def coincidence_matrix(
    ratings: Sequence[Sequence[Any]],
) -> tuple[list[Any], np.ndarray]:
    """Krippendorff's coincidence matrix of a reliability-data matrix (raters × items).

    o_ck = Σ_u (number of ordered pairs of values (c, k) from different raters in item u) /
    (m_u − 1), where m_u is the number of ratings item u received; items with m_u < 2 are not
    pairable and add nothing (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    Returns (the sorted distinct values, the matrix indexed like them).
    """
    rows = _reliability_matrix(ratings)
    units = [[r[u] for r in rows if not _is_missing(r[u])] for u in range(len(rows[0]))]
    units = [u for u in units if len(u) >= 2]
    if not units:
        raise ConfidantError("no item was rated by at least two raters")
    try:
        values = sorted({v for u in units for v in u})
    except TypeError:
        raise ConfidantError("ratings of one task must be comparable values") from None
    index = {v: i for i, v in enumerate(values)}
    matrix = np.zeros((len(values), len(values)))
    for unit in units:
        counts = np.zeros(len(values))
        for v in unit:
            counts[index[v]] += 1
        # Ordered pairs from different raters: n_c·n_k off the diagonal, n_c·(n_c − 1) on it.
        matrix += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    return values, matrix


def _squared_distance(values: list[Any], marginals: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        numbers = np.array(values, dtype=float)
        return np.subtract.outer(numbers, numbers) ** 2
    # Ordinal: δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k)/2)², over the ranks of the observed values.
    cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
    size = len(values)
    delta = np.zeros((size, size))
    for c in range(size):
        for k in range(c, size):
            spread = cumulative[k + 1] - cumulative[c] - (marginals[c] + marginals[k]) / 2.0
            delta[c, k] = delta[k, c] = spread**2
    return delta


def krippendorff_alpha(ratings: Sequence[Sequence[Any]], level: str = "interval") -> float:
    """Krippendorff's α of a reliability-data matrix: one row per rater, one column per item.

    α = 1 − D_o / D_e = 1 − (n − 1)·Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck, with o the coincidence
    matrix (:func:`coincidence_matrix`), n_c its marginals, n = Σ n_c the number of pairable
    values, and δ² the metric of the level: nominal [c ≠ k]; interval (c − k)²; ordinal
    (Σ_{g=c}^{k} n_g − (n_c + n_k)/2)² (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"; Hayes & Krippendorff 2007). Missing ratings (None, NaN) are allowed; items
    rated fewer than twice are ignored. Ordinal and interval ratings must be numbers.
    """
    if level not in ALPHA_LEVELS:
        raise ConfidantError(f"level must be one of {ALPHA_LEVELS}, got {level!r}")
    if level != "nominal":
        for row in _reliability_matrix(ratings):
            for v in row:
                if _is_missing(v):
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise ConfidantError(f"{level} ratings must be numbers, got {v!r}")
                if not math.isfinite(v):
                    raise ConfidantError(f"ratings must be finite, got {v!r}")
    values, observed = coincidence_matrix(ratings)
    marginals = observed.sum(axis=1)
    total = marginals.sum()
    delta = _squared_distance(values, marginals, level)
    expected = float((np.outer(marginals, marginals) * delta).sum())
    if expected == 0.0:
        raise ConfidantError(
            "Krippendorff's alpha is undefined: every pairable rating has the same value"
        )
    return float(1.0 - (total - 1.0) * float((observed * delta).sum()) / expected)


@dataclass
class PairAgreement:
    """Agreement of two raters on the items both rated; a statistic is None when undefined."""

    rater_a: str
    rater_b: str
    items: int
    spearman: float | None
    kendall_tau: float | None
    cohen_kappa: float | None
    weighted_kappa: float | None  # quadratic weights

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _or_none(fn: Callable[..., float], *args: Any, **kwargs: Any) -> float | None:
    try:
        return fn(*args, **kwargs)
    except ConfidantError:
        return None


def agreement_table(
    raters: Mapping[str, Sequence[float | None]], discrete: bool = True
) -> list[PairAgreement]:
    """Every pair of raters (people and the judge alike) with ρ, τ_b and κ side by side.

    ``raters`` maps a name to its ratings of the same items in the same order (None for an item
    the rater skipped). κ needs discrete ratings: with ``discrete=False`` (continuous judge
    scores) both κ columns are None. Statistics that are undefined for a pair (fewer than two
    shared items, a constant rater) are None rather than an error.
    """
    names = list(raters)
    if len(names) < 2:
        raise ConfidantError("an agreement table needs at least two raters")
    lengths = {len(raters[name]) for name in names}
    if len(lengths) != 1:
        raise ConfidantError("every rater must have one entry per item (use None for missing)")
    rows = []
    for first, second in combinations(names, 2):
        a, b = raters[first], raters[second]
        shared = sum(1 for x, y in zip(a, b, strict=True) if not (_is_missing(x) or _is_missing(y)))
        rows.append(
            PairAgreement(
                rater_a=first,
                rater_b=second,
                items=shared,
                spearman=_or_none(spearman, a, b),
                kendall_tau=_or_none(kendall_tau, a, b),
                cohen_kappa=_or_none(cohen_kappa, a, b) if discrete else None,
                weighted_kappa=_or_none(cohen_kappa, a, b, "quadratic") if discrete else None,
            )
        )
    return rows
