"""How far a judge can be trusted, as ONE table of reliability measures: each is a function of
:class:`ReliabilityStatistics` plus one :class:`ReliabilityMeasure` line in
:data:`RELIABILITY_MEASURES`. The report, the CLI, the exports and the README iterate it.

The statistics are plain data, computed once by :mod:`judge.report` (or built by hand):

- ``pairs``: pairwise items judged in both orders (the first shows x as A, the second y as A),
  the verdict letter each order emitted, its A/B/C probabilities and both answers' lengths;
- ``singles``: single answers with one exact score distribution (its scores and entropy), the
  emitted score of k runs at a sampling temperature, and the answer's length;
- ``humans`` on either: annotator → rating (a score, or a preference letter A/B/C seen as in the
  first order).

``higher_is_uncertain``: True when a higher value means a less reliable judge (flip rate,
spread), False when it means a more reliable one (agreement with people), None for a rate or
correlation whose good value is in the middle (0.5 for position A, 0 for length)::

    >>> always_a = ReliabilityStatistics(pairs=[
    ...     PairObservation("A", "A", length_x=10, length_y=40),
    ...     PairObservation("A", "A", length_x=30, length_y=20)])
    >>> reliability_values(always_a)["flip_rate"], reliability_values(always_a)["position_a_share"]
    (1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from core.errors import ConfidantError
from judge.length_bias import length_controlled_win_rate, length_spearman, longer_win_rate

LETTERS = ("A", "B", "C")
_SWAP = {"A": "B", "B": "A", "C": "C"}
# Share of a verdict that goes to x, by the letter each order emitted.
_PREF_FIRST = {"A": 1.0, "B": 0.0, "C": 0.5}
_PREF_SECOND = {"A": 0.0, "B": 1.0, "C": 0.5}
_RELATION = {"A": 1, "B": -1, "C": 0}


@dataclass
class PairObservation:
    """One pair (x, y) judged in both orders: ``first`` the letter emitted with x as A,
    ``second`` the letter emitted with y as A; ``probs_*`` their A/B/C probabilities."""

    first: str
    second: str
    probs_first: dict[str, float] | None = None
    probs_second: dict[str, float] | None = None
    length_x: float = 0.0
    length_y: float = 0.0
    humans: dict[str, str] = field(default_factory=dict)  # annotator → A (x) / B (y) / C
    item_id: str = ""

    @property
    def relation(self) -> int:
        """The two-pass relation (MT-Bench): the verdict if both orders agree, else a tie."""
        v1, v2 = _RELATION[self.first], _RELATION[_SWAP[self.second]]
        return v1 if v1 == v2 else 0


@dataclass
class SingleObservation:
    """One answer graded once exactly (``scores`` by method, ``entropy`` of its distribution in
    nats) and k times at a temperature (``runs``: the emitted score of each run)."""

    scores: dict[str, float]
    length: float
    entropy: float | None = None
    runs: list[float] = field(default_factory=list)
    humans: dict[str, float] = field(default_factory=dict)  # annotator → score
    item_id: str = ""


@dataclass
class ReliabilityStatistics:
    pairs: list[PairObservation] = field(default_factory=list)
    singles: list[SingleObservation] = field(default_factory=list)
    score_key: str = "expectation"  # the single score the length correlation uses
    scale: int = 5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReliabilityStatistics:
        return cls(
            pairs=[PairObservation(**p) for p in d.get("pairs", [])],
            singles=[SingleObservation(**s) for s in d.get("singles", [])],
            score_key=d.get("score_key", "expectation"),
            scale=int(d.get("scale", 5)),
        )


def _pairs(stats: ReliabilityStatistics) -> list[PairObservation]:
    if not stats.pairs:
        raise ConfidantError("no pairwise item was judged in both orders")
    return stats.pairs


def _singles(stats: ReliabilityStatistics) -> list[SingleObservation]:
    if not stats.singles:
        raise ConfidantError("no single answer was graded")
    return stats.singles


def flip_rate(stats: ReliabilityStatistics) -> float:
    """Position flip rate: over pairs where neither order is a tie, the share whose verdict
    changes when the answers swap places, v₁ ≠ swap(v₂) (Zheng et al. 2023, MT-Bench §3.3
    position bias; Wang et al. 2023, "Large Language Models are not Fair Evaluators"). A judge
    that always picks A has flip rate 1."""
    strict = [p for p in _pairs(stats) if p.first != "C" and p.second != "C"]
    if not strict:
        raise ConfidantError("every pair has a tie in one order at least")
    return sum(p.first != _SWAP[p.second] for p in strict) / len(strict)


def tie_flip_rate(stats: ReliabilityStatistics) -> float:
    """Share of pairs that are a tie in exactly one order (counted apart from flips)."""
    pairs = _pairs(stats)
    return sum((p.first == "C") != (p.second == "C") for p in pairs) / len(pairs)


def position_a_share(stats: ReliabilityStatistics) -> float:
    """Share of the strict verdicts of both orders that name position A (0.5 = no position
    preference; MT-Bench reports it as the first-position win rate, Zheng et al. 2023)."""
    letters = [v for p in _pairs(stats) for v in (p.first, p.second) if v != "C"]
    if not letters:
        raise ConfidantError("every verdict is a tie")
    return letters.count("A") / len(letters)


def verdict_distribution(probs: Mapping[str, float]) -> np.ndarray:
    v = np.array([max(0.0, float(probs.get(k, 0.0))) for k in LETTERS])
    if v.sum() <= 0:
        raise ConfidantError("a verdict distribution has no mass on A, B, C")
    return v / v.sum()


def probability_shift(stats: ReliabilityStatistics) -> float:
    """Mean probability mass that moves when the order swaps: the total variation distance
    ½·Σ_k |p₁(k) − p₂(swap k)| between the first order's A/B/C distribution and the second's
    mapped back (both renormalised over A, B, C); 0 for an order-blind judge, 1 for one that
    always puts all its mass on A."""
    pairs = [p for p in _pairs(stats) if p.probs_first and p.probs_second]
    if not pairs:
        raise ConfidantError("no pair has verdict probabilities")
    moved = []
    for p in pairs:
        one = verdict_distribution(p.probs_first)
        two = verdict_distribution({_SWAP[k]: v for k, v in p.probs_second.items() if k in _SWAP})
        moved.append(0.5 * float(np.abs(one - two).sum()))
    return float(np.mean(moved))


def _verdicts(stats: ReliabilityStatistics) -> tuple[list[float], list[float], list[float]]:
    """(preference for x, len x − len y, position of x: +½ first, −½ second), one per order."""
    prefs, deltas, positions = [], [], []
    for p in _pairs(stats):
        d = float(p.length_x) - float(p.length_y)
        prefs += [_PREF_FIRST[p.first], _PREF_SECOND[p.second]]
        deltas += [d, d]
        positions += [0.5, -0.5]
    return prefs, deltas, positions


def _single_score(stats: ReliabilityStatistics) -> tuple[list[float], list[float]]:
    rows = [s for s in _singles(stats) if stats.score_key in s.scores]
    return [s.scores[stats.score_key] for s in rows], [s.length for s in rows]


def _runs(stats: ReliabilityStatistics) -> list[SingleObservation]:
    rows = [s for s in _singles(stats) if len(s.runs) >= 2]
    if not rows:
        raise ConfidantError("no answer was graded at least twice")
    return rows


def score_spread(stats: ReliabilityStatistics) -> float:
    """Mean over answers of the standard deviation of the emitted score across k runs at the
    sampling temperature, √((1/k)·Σ_r (s_r − s̄)²) (run-to-run spread)."""
    return float(np.mean([np.std(s.runs) for s in _runs(stats)]))


def changed_share(stats: ReliabilityStatistics) -> float:
    """Share of answers whose emitted (discrete) score is not the same in all k runs."""
    rows = _runs(stats)
    return sum(len(set(s.runs)) > 1 for s in rows) / len(rows)


def entropy_spread_correlation(stats: ReliabilityStatistics) -> float:
    """Spearman's ρ between the entropy of each answer's exact score distribution (one pass)
    and its run-to-run standard deviation: near 1 when the distribution alone predicts which
    answers a judge will score unstably, so the k extra runs add nothing."""
    rows = [s for s in _runs(stats) if s.entropy is not None]
    return length_spearman([float(np.std(s.runs)) for s in rows], [s.entropy for s in rows])


def majority(ratings: Mapping[str, Any]) -> Any:
    """The rating most annotators gave, None when there is no strict majority."""
    values = list(ratings.values())
    if not values:
        return None
    counts = {v: values.count(v) for v in set(values)}
    best = max(counts.values())
    top = [v for v, c in counts.items() if c == best]
    return top[0] if len(top) == 1 else None


def human_pair_accuracy(stats: ReliabilityStatistics) -> float:
    """Judge-vs-majority accuracy on pairs: the share of pairs with a strict human majority
    whose two-pass relation equals that majority (A = x better, B = y, C = tie)."""
    rows = [(p, majority(p.humans)) for p in _pairs(stats)]
    rows = [(p, m) for p, m in rows if m is not None]
    if not rows:
        raise ConfidantError("no pair has a majority human preference")
    return sum(p.relation == _RELATION[m] for p, m in rows) / len(rows)


def human_score_spearman(stats: ReliabilityStatistics) -> float:
    """Spearman's ρ between the judge's score (``score_key``) and the mean human score."""
    rows = [s for s in _singles(stats) if s.humans and stats.score_key in s.scores]
    if not rows:
        raise ConfidantError("no graded answer has a human score")
    return length_spearman(
        [s.scores[stats.score_key] for s in rows],
        [float(np.mean(list(s.humans.values()))) for s in rows],
    )


@dataclass(frozen=True)
class Bound:
    text: str
    value: Callable[[ReliabilityStatistics], float]


ONE = Bound("1", lambda s: 1.0)
HALF_SCALE = Bound("(hi − 1)/2", lambda s: (s.scale - 1) / 2)


@dataclass(frozen=True)
class ReliabilityMeasure:
    """One reliability measure: ``compute(stats)`` → float; ``needs`` the statistics it reads
    ("pairs", "probs", "singles", "runs", "humans")."""

    key: str
    label: str
    family: str
    explanation: str
    compute: Callable[[ReliabilityStatistics], float]
    needs: frozenset[str]
    lower: float | None = 0.0
    upper: Bound | None = ONE
    higher_is_uncertain: bool | None = True


def _lc(stats: ReliabilityStatistics, what: str) -> float:
    return getattr(length_controlled_win_rate(*_verdicts(stats)), what)


_P, _PR, _S, _R, _H = "pairs", "probs", "singles", "runs", "humans"
# fmt: off
RELIABILITY_MEASURES: tuple[ReliabilityMeasure, ...] = (
    ReliabilityMeasure("flip_rate", "position flip rate", "position", "Share of pairs without a tie whose verdict changes when the answers swap places (MT-Bench, Zheng et al. 2023; Wang et al. 2023).", flip_rate, frozenset({_P})),  # noqa: E501
    ReliabilityMeasure("tie_flip_rate", "tie in one order only", "position", "Share of pairs that are a tie in one order and a preference in the other.", tie_flip_rate, frozenset({_P})),  # noqa: E501
    ReliabilityMeasure("position_a_share", "prefers position A", "position", "Share of strict verdicts naming position A; 0.5 is no position preference.", position_a_share, frozenset({_P}), higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("probability_shift", "probability mass moved", "position", "Mean total variation ½·Σ|p₁(k) − p₂(swap k)| between the A/B/C distributions of the two orders.", probability_shift, frozenset({_P, _PR})),  # noqa: E501
    ReliabilityMeasure("length_spearman", "score–length ρ", "length", "Spearman's ρ of the judge's single score with the answer's length in characters; 1 = scores by length.", lambda s: length_spearman(*_single_score(s)), frozenset({_S}), lower=-1.0, higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("longer_win_rate", "longer answer wins", "length", "Share of verdicts (both orders, a tie ½) won by the longer answer; 0.5 = no length preference.", lambda s: longer_win_rate(*_verdicts(s)[:2]), frozenset({_P}), higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("win_rate", "win rate of x", "length", "Mean share of the verdicts that goes to x, the first answer of each pair (a tie ½).", lambda s: _lc(s, "win_rate"), frozenset({_P}), higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("lc_win_rate", "length-controlled win rate of x", "length", "Logistic model logit P(x wins) = θ + β·tanh(Δlen/s) + π·position, reported with the length term at zero: mean σ(θ + π·position) (AlpacaEval 2.0, Dubois et al. 2024, arXiv 2404.04475).", lambda s: _lc(s, "lc_win_rate"), frozenset({_P}), higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("length_coefficient", "length coefficient β", "length", "β of the length-controlled model: how much a longer x raises the log-odds of its winning (0 = no length effect).", lambda s: _lc(s, "length_coefficient"), frozenset({_P}), lower=None, upper=None, higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("score_spread", "run-to-run score std", "spread", "Mean over answers of the standard deviation of the emitted score over k runs at the sampling temperature.", score_spread, frozenset({_S, _R}), upper=HALF_SCALE),  # noqa: E501
    ReliabilityMeasure("changed_share", "answers whose score changes", "spread", "Share of answers whose emitted score differs between the k runs.", changed_share, frozenset({_S, _R})),  # noqa: E501
    ReliabilityMeasure("entropy_spread_rho", "entropy–spread ρ", "spread", "Spearman's ρ between the entropy of the one-pass score distribution and the run-to-run std: near 1, the distribution alone predicts instability.", entropy_spread_correlation, frozenset({_S, _R}), lower=-1.0, higher_is_uncertain=None),  # noqa: E501
    ReliabilityMeasure("human_pair_accuracy", "agrees with the human majority (pairs)", "human", "Share of pairs with a strict human majority whose two-pass verdict equals it.", human_pair_accuracy, frozenset({_P, _H}), higher_is_uncertain=False),  # noqa: E501
    ReliabilityMeasure("human_score_rho", "score–human ρ", "human", "Spearman's ρ of the judge's single score with the mean human score.", human_score_spearman, frozenset({_S, _H}), lower=-1.0, higher_is_uncertain=False),  # noqa: E501
)
# fmt: on
RELIABILITY_BY_KEY = {m.key: m for m in RELIABILITY_MEASURES}


def _value(measure: ReliabilityMeasure, stats: ReliabilityStatistics) -> float | None:
    try:
        value = float(measure.compute(stats))
    except ConfidantError:
        return None
    return value if math.isfinite(value) else None


def reliability_values(stats: ReliabilityStatistics) -> dict[str, float | None]:
    """Every measure of the table, None where its statistics are missing or it is undefined."""
    return {m.key: _value(m, stats) for m in RELIABILITY_MEASURES}


def bootstrap_intervals(
    stats: ReliabilityStatistics, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap intervals of every measure (Efron & Tibshirani 1993): pairs and
    single answers resampled with replacement ``n_boot`` times (seeded), each measure computed
    on each resample, the (1 − level)/2 and (1 + level)/2 quantiles kept."""
    if n_boot < 1:
        raise ConfidantError(f"bootstrap resamples must be at least 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m.key: [] for m in RELIABILITY_MEASURES}
    for _ in range(n_boot):
        resample = replace(
            stats,
            pairs=[stats.pairs[i] for i in rng.integers(0, len(stats.pairs), len(stats.pairs))],
            singles=[
                stats.singles[i] for i in rng.integers(0, len(stats.singles), len(stats.singles))
            ],
        )
        for key, value in reliability_values(resample).items():
            if value is not None:
                draws[key].append(value)
    tail = (1.0 - level) / 2.0
    return {
        key: (float(np.quantile(v, tail)), float(np.quantile(v, 1.0 - tail))) if v else None
        for key, v in draws.items()
    }


def measure_rows(
    stats: ReliabilityStatistics, n_boot: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per measure: family, key, label, value and its bootstrap interval."""
    values = reliability_values(stats)
    intervals = bootstrap_intervals(stats, n_boot, seed) if n_boot else {}
    rows = []
    for m in RELIABILITY_MEASURES:
        ci = intervals.get(m.key)
        rows.append(
            {
                "family": m.family,
                "key": m.key,
                "label": m.label,
                "value": values[m.key],
                "ci_low": ci[0] if ci and values[m.key] is not None else None,
                "ci_high": ci[1] if ci and values[m.key] is not None else None,
            }
        )
    return rows


def pair_disagreements(pairs: Sequence[PairObservation]) -> dict[str, list[str]]:
    """Item ids of pairs where people disagree with each other, apart from those where people
    agree and the judge's two-pass verdict differs from them."""
    humans, judge = [], []
    for p in pairs:
        if len(set(p.humans.values())) > 1:
            humans.append(p.item_id)
        elif p.humans and p.relation != _RELATION[next(iter(p.humans.values()))]:
            judge.append(p.item_id)
    return {"humans_disagree": humans, "judge_disagrees": judge}


def markdown_table() -> str:
    """The reliability measures as a Markdown table (the README's list between the
    ``<!-- measures:reliability -->`` markers)."""
    direction = {True: "higher = less reliable", False: "higher = more reliable", None: "—"}
    lines = ["| key | measure | family | direction | what it computes |", "|---|---|---|---|---|"]
    for m in RELIABILITY_MEASURES:
        cells = [f"`{m.key}`", m.label, m.family, direction[m.higher_is_uncertain], m.explanation]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
