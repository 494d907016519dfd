"""Pairwise verdicts (TrustJudge): reading A/B/C verdict tokens, swapping, and the
likelihood-aware pairwise aggregation.

Relations use 1 / 0 / -1: 1 means the candidate shown as "A" in the first order is better, -1
that the other one is, 0 a tie. Verdict letters are "A" (A better), "B" (B better), "C" (tie).
The two-pass baseline ties when the orders disagree; the likelihood rule weighs both orders::

    >>> pairwise_relation({"A": 0.6, "C": 0.3}, {"A": 0.55, "B": 0.4}, "baseline")
    0
    >>> pairwise_relation({"A": 0.6, "C": 0.3}, {"A": 0.55, "B": 0.4}, "likelihood")
    1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from core.errors import ConfidantError
from judge.trustjudge import MASS_SLACK, RELATION_METHODS, VERDICT_LETTERS
from uq.token_stats import perplexity

_LETTER_TO_RELATION = {"A": 1, "B": -1, "C": 0}
_SWAP = {"A": "B", "B": "A", "C": "C"}
# Markers tokenizers put in front of a word (GPT-2 byte-level "Ġ", sentencepiece "▁").
_SPACE_MARKERS = "Ġ▁"


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
        if not math.isfinite(p) or p < 0.0 or p > 1.0 + MASS_SLACK:
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
