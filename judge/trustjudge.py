"""Distribution-sensitive scores and likelihood-aware pairwise relations (TrustJudge).

A judge asked for ``Score: [X]`` does not only emit one value of the scale: at the score position
it holds a probability for every value. TrustJudge (Wang, Song et al., "TrustJudge:
Inconsistencies of LLM-as-a-Judge and How to Alleviate Them", arXiv 2509.21117, ICLR 2026) keeps
that distribution instead of its argmax, and for pairwise comparisons uses the verdict
probabilities of both presentation orders (or the perplexity of each order's judgement) instead of
the two-pass "agree, else tie" rule.

Everything here is a plain function of numbers::

    >>> dist = {80: 0.50, 85: 0.30, 75: 0.15, 8: 0.02}
    >>> round(expected_score(dist, "geval"), 2)
    76.91
    >>> round(expected_score(dist, "expectation"), 2)
    79.29
    >>> round(expected_score(dist, "trustjudge"), 2)
    80.07
    >>> pairwise_relation({"A": 0.6, "C": 0.3}, {"A": 0.55, "B": 0.4}, "baseline")
    0
    >>> pairwise_relation({"A": 0.6, "C": 0.3}, {"A": 0.55, "B": 0.4}, "likelihood")
    1

Relations use 1 / 0 / -1: 1 means the candidate shown as "A" in the first order is better, -1
that the other one is, 0 a tie. Verdict letters are "A" (A better), "B" (B better), "C" (tie).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import softmax
from scipy.stats import entropy as _entropy

from backends.base import ConfidantError
from uq.token_stats import perplexity

SCORE_METHODS = ("geval", "expectation", "trustjudge")
RELATION_METHODS = ("baseline", "likelihood")
DISCRETE_RULES = ("argmax", "first", "sample")
VERDICT_LETTERS = ("A", "B", "C")

# Added to p and 1 - p inside the log-odds, as the TrustJudge code does, so p = 1 stays finite.
LOG_ODDS_EPSILON = 1e-8
# Slack on Σp > 1 for probabilities that were rounded or merged from several tokens.
_MASS_SLACK = 1e-6

_LETTER_TO_RELATION = {"A": 1, "B": -1, "C": 0}
_SWAP = {"A": "B", "B": "A", "C": "C"}
# Markers tokenizers put in front of a word (GPT-2 byte-level "Ġ", sentencepiece "▁").
_SPACE_MARKERS = "Ġ▁"


# ----------------------------------------------------------------------------------------------
# Score distributions
# ----------------------------------------------------------------------------------------------


def validate_distribution(
    dist: Mapping[int, float], scale: tuple[int, int] | None = None
) -> dict[int, float]:
    """Check a score distribution and return it as a plain ``{int: float}`` dict (order kept).

    ``dist`` maps an integer score to its probability at the score position. The probabilities
    need not sum to 1 (tokens outside the scale or the top-k take the rest) but must be finite,
    in [0, 1], sum to at most 1 and put some mass on the scale. With ``scale = (lo, hi)`` every
    score must lie in [lo, hi].

    Raises ``ConfidantError`` for an empty map, a non-integer score, a negative, NaN or infinite
    probability, a total above 1 or a total of 0.
    """
    if not isinstance(dist, Mapping):
        raise ConfidantError(f"a score distribution must map scores to probabilities, got {dist!r}")
    if len(dist) == 0:
        raise ConfidantError("the score distribution is empty: no score value has a probability")
    clean: dict[int, float] = {}
    for score, prob in dist.items():
        if isinstance(score, bool) or not isinstance(score, (int, np.integer)):
            raise ConfidantError(f"scores must be integers, got {score!r}")
        try:
            p = float(prob)
        except (TypeError, ValueError):
            raise ConfidantError(
                f"probability of score {score} is not a number: {prob!r}"
            ) from None
        if not math.isfinite(p):
            raise ConfidantError(f"probability of score {score} is not finite: {p}")
        if p < 0.0 or p > 1.0 + _MASS_SLACK:
            raise ConfidantError(f"probability of score {score} must be in [0, 1], got {p}")
        if scale is not None and not scale[0] <= int(score) <= scale[1]:
            raise ConfidantError(f"score {score} is outside the scale {scale[0]}..{scale[1]}")
        clean[int(score)] = min(p, 1.0)
    total = sum(clean.values())
    if total > 1.0 + _MASS_SLACK:
        raise ConfidantError(f"the score probabilities sum to {total:.6g}, more than 1")
    if total <= 0.0:
        raise ConfidantError("the score distribution puts no probability on any score")
    return clean


def _validate_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0.0):
        raise ConfidantError(f"temperature must be a positive number, got {temperature!r}")
    return t


def trustjudge_weights(dist: Mapping[int, float], temperature: float = 0.2) -> dict[int, float]:
    """TrustJudge's weights: a softmax over log-odds divided by a temperature.

    ℓ_s = ln((p_s + ε) / (1 − p_s + ε)) with ε = 1e-8, and w_s = exp(ℓ_s / T) / Σ_s' exp(ℓ_s' / T)
    (TrustJudge, arXiv 2509.21117, ``compute_softmax_weighted_score``; T = 0.2 there). Up to ε,
    w_s ∝ (p_s / (1 − p_s))^(1/T), a renormalisation sharpened towards the most likely score.

    Scores with p = 0 get weight 0, the limit of the formula as p → 0 (the reference code skips
    them too). A score with p = 1 keeps a finite, ε-regularised log-odds and so takes all the
    weight; the reference code skips it and returns 0, which we do not reproduce.
    """
    clean = validate_distribution(dist)
    t = _validate_temperature(temperature)
    scores = [s for s, p in clean.items() if p > 0.0]
    probs = np.array([clean[s] for s in scores])
    log_odds = np.log(probs + LOG_ODDS_EPSILON) - np.log1p(-probs + LOG_ODDS_EPSILON)
    weights = softmax(log_odds / t)
    return {s: float(w) for s, w in zip(scores, weights, strict=True)}


def expected_score(dist: Mapping[int, float], method: str, temperature: float = 0.2) -> float:
    """A continuous score from the judge's distribution over the scale.

    - ``"geval"``: Σ_s s·p(s), not renormalised (G-Eval, Liu et al. 2023, as TrustJudge's
      baseline computes it; mass outside the scale pulls the score towards 0).
    - ``"expectation"``: Σ_s s·p(s) / Σ_s p(s), the mean of the distribution renormalised over
      the scale (equal to a softmax over the scores' log-probabilities).
    - ``"trustjudge"``: Σ_s s·w_s with w the softmax over log-odds ln(p/(1−p)) divided by
      ``temperature`` (TrustJudge, arXiv 2509.21117; T = 0.2), see :func:`trustjudge_weights`.

    ``temperature`` is used by ``"trustjudge"`` only.
    """
    clean = validate_distribution(dist)
    if method == "geval":
        return float(sum(s * p for s, p in clean.items()))
    if method == "expectation":
        return float(sum(s * p for s, p in clean.items()) / sum(clean.values()))
    if method == "trustjudge":
        weights = trustjudge_weights(clean, temperature)
        return float(sum(s * w for s, w in weights.items()))
    raise ConfidantError(f"unknown scoring method {method!r}; choose one of {SCORE_METHODS}")


def discrete_score(dist: Mapping[int, float], rule: str = "argmax", seed: int | None = None) -> int:
    """One value of the scale from the distribution.

    - ``"argmax"``: the most likely score; ties go to the lower score.
    - ``"first"``: the first key of ``dist``, i.e. the score the judge actually emitted when the
      map is in emission order (TrustJudge's ``baseline`` method).
    - ``"sample"``: a draw from the distribution renormalised over the scale, with
      ``numpy.random.default_rng(seed)``.
    """
    clean = validate_distribution(dist)
    if rule == "argmax":
        best = max(clean.values())
        return min(s for s, p in clean.items() if p == best)
    if rule == "first":
        return next(iter(clean))
    if rule == "sample":
        scores = list(clean)
        probs = np.array([clean[s] for s in scores])
        rng = np.random.default_rng(seed)
        return int(scores[rng.choice(len(scores), p=probs / probs.sum())])
    raise ConfidantError(f"unknown discrete rule {rule!r}; choose one of {DISCRETE_RULES}")


def distribution_entropy(dist: Mapping[int, float]) -> float:
    """Entropy of the score distribution renormalised over the scale, in nats.

    H = −Σ_s p̂(s) ln p̂(s) with p̂ = p / Σp. TrustJudge (arXiv 2509.21117, Theorem 3.1) uses it
    to show that distributions with different entropies collapse to the same discrete score.
    """
    clean = validate_distribution(dist)
    return float(_entropy(np.array(list(clean.values()))))


def _as_scale(scale: tuple[int, int] | int) -> tuple[int, int]:
    lo, hi = (1, scale) if isinstance(scale, (int, np.integer)) else scale
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfidantError(f"a scale needs a minimum below its maximum, got {scale!r}")
    return lo, hi


def rescale_score(
    score: float,
    from_scale: tuple[int, int] | int = (1, 100),
    to_scale: tuple[int, int] | int = (1, 5),
) -> float:
    """Map a score linearly from one scale to another, endpoints onto endpoints.

    x' = lo' + (x − lo)·(hi' − lo') / (hi − lo). An integer scale N means 1..N. So on 1..100 →
    1..5: 1 → 1, 50.5 → 3, 100 → 5; and 1..5 → 1..100: 3 → 50.5.

    TrustJudge (arXiv 2509.21117, eq. for S) only multiplies by (s_max − s_min)/(s'_max − s'_min)
    with no offset; both maps are increasing, so orderings and comparisons are the same, but the
    affine map also sends the ends of one scale to the ends of the other. Tolerances scale by the
    same factor (hi' − lo')/(hi − lo).
    """
    lo, hi = _as_scale(from_scale)
    new_lo, new_hi = _as_scale(to_scale)
    x = float(score)
    if not math.isfinite(x):
        raise ConfidantError(f"score must be finite, got {score!r}")
    return new_lo + (x - lo) * (new_hi - new_lo) / (hi - lo)


@dataclass
class ScoreSummary:
    """Every score of one distribution, with the parameters that produced them."""

    distribution: dict[int, float]
    argmax: int
    first: int
    geval: float
    expectation: float
    trustjudge: float
    entropy: float
    mass: float  # Σp over the scale; below 1 when other tokens took probability
    temperature: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # JSON object keys are strings; keep the scores readable back with int(key).
        d["distribution"] = {str(s): p for s, p in self.distribution.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreSummary:
        return cls(**{**d, "distribution": {int(s): p for s, p in d["distribution"].items()}})


def score_summary(
    dist: Mapping[int, float],
    temperature: float = 0.2,
    scale: tuple[int, int] | int | None = None,
) -> ScoreSummary:
    """All scores of one distribution at once: argmax, the emitted (first) score, G-Eval,
    expectation, TrustJudge at ``temperature``, entropy (nats) and the mass on the scale."""
    clean = validate_distribution(dist, _as_scale(scale) if scale is not None else None)
    t = _validate_temperature(temperature)
    return ScoreSummary(
        distribution=clean,
        argmax=discrete_score(clean, "argmax"),
        first=discrete_score(clean, "first"),
        geval=expected_score(clean, "geval"),
        expectation=expected_score(clean, "expectation"),
        trustjudge=expected_score(clean, "trustjudge", t),
        entropy=distribution_entropy(clean),
        mass=float(sum(clean.values())),
        temperature=t,
    )


# ----------------------------------------------------------------------------------------------
# Pairwise verdicts
# ----------------------------------------------------------------------------------------------


def clean_token(token: str) -> str:
    """A token's text without surrounding whitespace and tokenizer word markers (Ġ, ▁)."""
    return str(token).strip().strip(_SPACE_MARKERS).strip()


def swap_letter(letter: str) -> str:
    """The verdict seen from the other presentation order: A ↔ B, C stays."""
    key = clean_token(letter)
    if key not in _SWAP:
        raise ConfidantError(f"a verdict must be one of A, B, C, got {letter!r}")
    return _SWAP[key]


def letter_to_relation(letter: str) -> int:
    """A → 1 (first candidate better), B → −1, C → 0 (tie)."""
    key = clean_token(letter)
    if key not in _LETTER_TO_RELATION:
        raise ConfidantError(f"a verdict must be one of A, B, C, got {letter!r}")
    return _LETTER_TO_RELATION[key]


def _verdict_map(probs: Mapping[str, float], which: str) -> tuple[str | None, dict[str, float]]:
    """(first key if it is a verdict letter, letter → summed probability).

    Keys are cleaned of whitespace and word markers and merged; keys that are not A, B or C (the
    rest of a top-k list) are ignored, as in the reference code.
    """
    if not isinstance(probs, Mapping):
        raise ConfidantError(f"the {which} verdict probabilities must be a mapping, got {probs!r}")
    letters: dict[str, float] = {}
    first: str | None = None
    for i, (token, prob) in enumerate(probs.items()):
        try:
            p = float(prob)
        except (TypeError, ValueError):
            raise ConfidantError(
                f"{which}: probability of {token!r} is not a number: {prob!r}"
            ) from None
        if not math.isfinite(p) or p < 0.0 or p > 1.0 + _MASS_SLACK:
            raise ConfidantError(f"{which}: probability of {token!r} must be in [0, 1], got {p}")
        key = clean_token(token)
        if i == 0 and key in _SWAP:
            first = key
        if key in _SWAP:
            letters[key] = letters.get(key, 0.0) + p
    return first, letters


def pairwise_relation(
    p_first_order: Mapping[str, float],
    p_second_order: Mapping[str, float],
    method: str,
    tolerance: float = 0.0,
) -> int:
    """Relation between candidates x and y from the judge's verdicts in both orders.

    The first order shows x as A and y as B; the second shows y as A and x as B. Each map holds
    the letters A / B / C with their probabilities as emitted in that order; its first key is the
    verdict actually produced. The second order is mapped back by swapping A and B.

    - ``"baseline"`` (MT-Bench two-pass rule): v₁ = first key of the first order, v₂ = swap(first
      key of the second order); the relation of v₁ if v₁ = v₂, else a tie.
    - ``"likelihood"`` (TrustJudge, arXiv 2509.21117, bidirectional probability):
      m[k] = p₁[k] + p₂[swap(k)] for k ∈ {A, B, C}, missing letters counting 0, not
      renormalised; the relation of argmax_k m[k], or a tie when (m_top − m_second)/2 <
      ``tolerance``. A maximum shared by two letters is a tie too (no order is preferred).

    Returns 1 (x better), 0 (tie) or −1 (y better).
    """
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ConfidantError(f"tolerance must be a non-negative number, got {tolerance!r}")
    first_1, letters_1 = _verdict_map(p_first_order, "first order")
    first_2, letters_2 = _verdict_map(p_second_order, "second order")
    if method == "baseline":
        if first_1 is None or first_2 is None:
            raise ConfidantError(
                "the baseline rule needs the verdict each order produced: the first key of both "
                "maps must be A, B or C"
            )
        v1, v2 = first_1, _SWAP[first_2]
        return _LETTER_TO_RELATION[v1] if v1 == v2 else 0
    if method == "likelihood":
        if not letters_1 and not letters_2:
            raise ConfidantError("neither order gives a probability to any of A, B, C")
        merged = {k: letters_1.get(k, 0.0) + letters_2.get(_SWAP[k], 0.0) for k in VERDICT_LETTERS}
        ranked = sorted(merged.items(), key=lambda kv: kv[1], reverse=True)
        (top_letter, top), (_, second) = ranked[0], ranked[1]
        if top == second or (top - second) / 2.0 < tol:
            return 0
        return _LETTER_TO_RELATION[top_letter]
    raise ConfidantError(f"unknown relation method {method!r}; choose one of {RELATION_METHODS}")


def judgement_perplexity(token_logprobs: Sequence[float]) -> float:
    """Perplexity of a generated judgement: exp(−(1/N)·Σ_t log p(t)).

    TrustJudge (arXiv 2509.21117, ``calculate_perplexity``) takes it over the whole judgement,
    rationale and verdict, of one presentation order.
    """
    return perplexity(list(token_logprobs))


def ppl_relation(
    verdict_first_order: str,
    ppl_first_order: float,
    verdict_second_order: str,
    ppl_second_order: float,
    tolerance: float = 0.0,
) -> int:
    """Relation from the order whose judgement the judge found more likely (TrustJudge, PPL rule).

    With PPL₁, PPL₂ the perplexities of the two orders' judgements (:func:`judgement_perplexity`):
    if PPL₁ < PPL₂ and PPL₂ − PPL₁ > ``tolerance``, the first order's verdict; if PPL₂ < PPL₁ by
    more than ``tolerance``, the second order's verdict with A and B swapped back; otherwise a
    tie (TrustJudge, arXiv 2509.21117). Verdicts are the letters as emitted in each order.

    Returns 1 (candidate shown first in the first order better), 0 or −1.
    """
    relation_1 = letter_to_relation(verdict_first_order)
    relation_2 = letter_to_relation(swap_letter(verdict_second_order))
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ConfidantError(f"tolerance must be a non-negative number, got {tolerance!r}")
    ppl_1, ppl_2 = float(ppl_first_order), float(ppl_second_order)
    for name, value in (("first", ppl_1), ("second", ppl_2)):
        if not (math.isfinite(value) and value > 0.0):
            raise ConfidantError(f"the {name} order's perplexity must be positive, got {value}")
    if ppl_1 < ppl_2 and ppl_2 - ppl_1 > tol:
        return relation_1
    if ppl_2 < ppl_1 and ppl_1 - ppl_2 > tol:
        return relation_2
    return 0
