"""The judge's score methods as ONE table: each is a function of the judge's score distribution
plus one :class:`ScoreMethod` line in :data:`SCORE_METHODS`.

Grading (:func:`score_summary`), the stored grade (``GradeResult.scores()``), the agreement
report's judge raters, the consistency run, the Judge tab's table and figure and the README's
list (:func:`markdown_table`) iterate this table, so a new score method is one function and one
line here::

    >>> summary = score_summary({80: 0.50, 85: 0.30, 75: 0.15, 8: 0.02}, scale=100)
    >>> list(summary.scores)
    ['emitted', 'argmax', 'geval', 'expectation', 'trustjudge']
    >>> summary.scores["emitted"], round(summary.geval, 2), round(summary.trustjudge, 2)
    (80, 76.91, 80.07)

A distribution maps an integer value of the scale to the judge's probability for it at the
score position, in emission order (the value the judge wrote first); see
:func:`judge.trustjudge.validate_distribution`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from judge.trustjudge import (
    as_scale,
    discrete_score,
    distribution_entropy,
    expected_score,
    validate_distribution,
    validate_temperature,
)

# What a method's value ranges over, on a scale lo..hi.
SCALE_KINDS: dict[str, str] = {
    "values": "a value of the scale, lo..hi",
    "range": "a real number in [lo, hi]",
    "mass": "a real number in [0, hi]",
}


@dataclass(frozen=True)
class ScoreMethod:
    """One score method: ``compute(distribution, temperature)`` → the judge's score.

    ``scale`` is one of :data:`SCALE_KINDS`: ``"values"`` (an integer value of the scale),
    ``"range"`` (a real number between the scale's ends) or ``"mass"`` (a real number in
    [0, hi]: probability off the scale pulls it towards 0). ``temperature`` is TrustJudge's
    softmax temperature; only methods with ``uses_temperature`` read it. ``emission_order``:
    the value depends on the order of the distribution's keys (the first key is the value the
    judge wrote); every other method is invariant to that order. ``rater``: compared with people
    in the agreement report.
    """

    key: str
    label: str
    scale: str
    description: str
    compute: Callable[[Mapping[int, float], float], float]
    uses_temperature: bool = False
    emission_order: bool = False
    rater: bool = True

    @property
    def discrete(self) -> bool:
        """True when the value is one value of the scale (an int), not a real number."""
        return self.scale == "values"

    def bounds(self, lo: int, hi: int) -> tuple[float, float]:
        """The interval the value lies in for a distribution over the scale ``lo..hi``: the
        scale's ends, or for ``"mass"`` the ends pulled towards 0 (Σ s·p(s) with Σ p ≤ 1 lies
        in [lo·Σp, hi·Σp])."""
        if self.scale == "mass":
            return (min(0.0, float(lo)), max(0.0, float(hi)))
        return (float(lo), float(hi))


# One line per method. The functions and their formulas live in judge.trustjudge.
# fmt: off
SCORE_METHODS: tuple[ScoreMethod, ...] = (
    ScoreMethod("emitted", "emitted", "values", "The value the judge wrote after `Score: [`: the first key of the distribution in emission order (TrustJudge's baseline, Wang, Song et al. 2025, arXiv 2509.21117).", lambda d, t: discrete_score(d, "first"), emission_order=True),  # noqa: E501
    ScoreMethod("argmax", "argmax", "values", "The most likely value, argmax_s p(s); ties go to the lower value.", lambda d, t: discrete_score(d, "argmax"), rater=False),  # noqa: E501
    ScoreMethod("geval", "G-Eval", "mass", "Σ_s s·p(s), not renormalised, so probability off the scale pulls it towards 0 (G-Eval, Liu et al. 2023, as TrustJudge's baseline computes it).", lambda d, t: expected_score(d, "geval")),  # noqa: E501
    ScoreMethod("expectation", "expectation", "range", "Σ_s s·p(s) / Σ_s p(s): the mean of the distribution renormalised over the scale, the continuous expectation of TrustJudge's distribution-sensitive scoring (arXiv 2509.21117).", lambda d, t: expected_score(d, "expectation")),  # noqa: E501
    ScoreMethod("trustjudge", "TrustJudge", "range", "Σ_s s·w_s with w = softmax(ln(p_s / (1 − p_s)) / T), T = 0.2: the distribution sharpened towards its most likely value (TrustJudge, Wang, Song et al. 2025, arXiv 2509.21117).", lambda d, t: expected_score(d, "trustjudge", t), uses_temperature=True),  # noqa: E501
)
# fmt: on

SCORE_BY_KEY: dict[str, ScoreMethod] = {m.key: m for m in SCORE_METHODS}


def compute_scores(dist: Mapping[int, float], temperature: float = 0.2) -> dict[str, float]:
    """Every method's score of one distribution, keyed by method, in table order."""
    return {m.key: m.compute(dist, temperature) for m in SCORE_METHODS}


def markdown_table() -> str:
    """The score methods as a Markdown table (the README's list between the
    ``<!-- measures:judge -->`` markers)."""
    lines = ["| key | score | value | what it computes |", "|---|---|---|---|"]
    for m in SCORE_METHODS:
        cells = [f"`{m.key}`", m.label, SCALE_KINDS[m.scale], m.description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Every score of one distribution
# ----------------------------------------------------------------------------------------------

# Stored JSON names that differ from the method key: older runs call the emitted score "first".
_STORED_AS = {"emitted": "first"}


@dataclass
class ScoreSummary:
    """Every score of one distribution, with the statistics and parameters that produced them.

    ``scores`` holds one value per entry of :data:`SCORE_METHODS`, in table order;
    ``summary.geval`` reads ``summary.scores["geval"]``. ``entropy`` is in nats over the
    distribution renormalised over the scale; ``mass`` is Σp over the scale, below 1 when other
    tokens took probability.
    """

    distribution: dict[int, float]
    scores: dict[str, float]
    entropy: float
    mass: float
    temperature: float

    def __getattr__(self, name: str) -> Any:
        scores = self.__dict__.get("scores")
        if scores is not None and name in scores:
            return scores[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def first(self) -> int:
        """The emitted score (the first key of the distribution in emission order)."""
        return int(self.scores["emitted"])

    def to_dict(self) -> dict[str, Any]:
        # JSON object keys are strings; keep the scores readable back with int(key).
        d: dict[str, Any] = {"distribution": {str(s): p for s, p in self.distribution.items()}}
        d.update({_STORED_AS.get(k, k): v for k, v in self.scores.items()})
        d.update(entropy=self.entropy, mass=self.mass, temperature=self.temperature)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreSummary:
        """Read a stored summary back; a method the stored summary lacks (it was saved before
        the method was added) is computed from the stored distribution."""
        dist = {int(s): p for s, p in d["distribution"].items()}
        scores = {}
        for m in SCORE_METHODS:
            name = _STORED_AS.get(m.key, m.key)
            scores[m.key] = d[name] if name in d else m.compute(dist, d["temperature"])
        return cls(
            distribution=dist,
            scores=scores,
            entropy=d["entropy"],
            mass=d["mass"],
            temperature=d["temperature"],
        )


def score_summary(
    dist: Mapping[int, float],
    temperature: float = 0.2,
    scale: tuple[int, int] | int | None = None,
) -> ScoreSummary:
    """All scores of one distribution at once: every method of :data:`SCORE_METHODS`
    (TrustJudge at ``temperature``), the entropy (nats) and the mass on the scale. With
    ``scale`` (``(lo, hi)`` or N for 1..N) a value outside it is a ``ConfidantError``."""
    clean = validate_distribution(dist, as_scale(scale) if scale is not None else None)
    t = validate_temperature(temperature)
    return ScoreSummary(
        distribution=clean,
        scores=compute_scores(clean, t),
        entropy=distribution_entropy(clean),
        mass=float(sum(clean.values())),
        temperature=t,
    )
