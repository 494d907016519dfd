"""How consistent is a judge with itself: Conflict Ratio and Non-Transitivity Ratio.

TrustJudge (Wang, Song et al., arXiv 2509.21117) measures two inconsistencies on a question
with several candidate answers:

- score-comparison inconsistency, the **Conflict Ratio** (CR): the share of candidate pairs
  whose single-answer scores disagree with the pairwise verdict;
- pairwise transitivity inconsistency, the **Non-Transitivity Ratio** NTR_k: the share of
  k-subsets of candidates whose pairwise verdicts contain a cycle (A > B > C > A) or a broken
  equivalence (A = B, B = C, A ≠ C).

Relations map a candidate pair ``(i, j)`` with ``i < j`` to 1 (i better), 0 (tie) or −1 (j
better)::

    >>> conflict_ratio([4, 2, 2], {(0, 1): 1, (0, 2): 1, (1, 2): -1})
    0.3333333333333333
    >>> non_transitivity_ratio({(0, 1): 1, (1, 2): 1, (0, 2): -1}, n=3, k=3).ratio
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from core.errors import ConfidantError

Relations = Mapping[tuple[int, int], int]


def _validate_relations(relations: Relations, n: int | None = None) -> dict[tuple[int, int], int]:
    if not isinstance(relations, Mapping):
        raise ConfidantError("relations must map candidate pairs (i, j) to 1, 0 or -1")
    clean: dict[tuple[int, int], int] = {}
    for pair, relation in relations.items():
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in pair)
        ):
            raise ConfidantError(f"a relation key must be a pair of integers (i, j), got {pair!r}")
        i, j = int(pair[0]), int(pair[1])
        if not 0 <= i < j:
            raise ConfidantError(f"a relation key must be (i, j) with 0 <= i < j, got {pair!r}")
        if n is not None and j >= n:
            raise ConfidantError(f"pair {pair!r} names a candidate beyond the {n} candidates")
        if isinstance(relation, bool) or relation not in (1, 0, -1):
            raise ConfidantError(f"relation of pair {pair!r} must be 1, 0 or -1, got {relation!r}")
        clean[(i, j)] = int(relation)
    return clean


def _validate_tolerance(tolerance: float) -> float:
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ConfidantError(f"tolerance must be a non-negative number, got {tolerance!r}")
    return tol


def score_relation(score_i: float, score_j: float, tolerance: float = 0.0) -> int:
    """The relation two single scores imply: 0 if |S_i − S_j| < tolerance (strictly), else the
    sign of S_i − S_j (so equal scores are a tie even with tolerance 0)."""
    diff = float(score_i) - float(score_j)
    if abs(diff) < tolerance:
        return 0
    return (diff > 0) - (diff < 0)


def conflicting_pairs(
    scores: Sequence[float | None] | Mapping[int, float | None],
    relations: Relations,
    tolerance: float = 0.0,
) -> tuple[list[tuple[int, int]], int]:
    """The pairs whose pairwise relation differs from the one their scores imply, and the number
    of pairs compared (see :func:`conflict_ratio`)."""
    tol = _validate_tolerance(tolerance)
    clean = _validate_relations(relations)
    lookup = dict(scores) if isinstance(scores, Mapping) else dict(enumerate(scores))
    conflicts: list[tuple[int, int]] = []
    compared = 0
    for (i, j), relation in sorted(clean.items()):
        if i not in lookup or j not in lookup:
            raise ConfidantError(f"pair {(i, j)} names a candidate with no score entry")
        s_i, s_j = lookup[i], lookup[j]
        if s_i is None or s_j is None:
            continue  # an unparsed score leaves the pair out, as in the reference code
        for s in (s_i, s_j):
            if not math.isfinite(float(s)):
                raise ConfidantError(f"scores must be finite numbers, got {s!r}")
        compared += 1
        if score_relation(s_i, s_j, tol) != relation:
            conflicts.append((i, j))
    return conflicts, compared


def conflict_ratio(
    scores: Sequence[float | None] | Mapping[int, float | None],
    relations: Relations,
    tolerance: float = 0.0,
) -> float:
    """Conflict Ratio: the share of judged pairs whose scores contradict the pairwise verdict.

    CR = (1/|P|)·Σ_{(i,j)∈P} 1[C_ij ≠ r(S_i, S_j)] where r is 0 when |S_i − S_j| < δ (strictly)
    and the sign of S_i − S_j otherwise (TrustJudge, arXiv 2509.21117, Def. 2.1). A tie on one
    side against a preference on the other counts as a conflict, not only reversals.

    ``scores`` is a sequence (candidate i at position i) or a map candidate → score; a score of
    ``None`` (unparsed) leaves its pairs out. Only pairs present in ``relations`` count.
    """
    conflicts, compared = conflicting_pairs(scores, relations, tolerance)
    if compared == 0:
        raise ConfidantError(
            "no pair has a relation and both scores: the Conflict Ratio is undefined"
        )
    return len(conflicts) / compared


def triple_violation(a: int, b: int, c: int) -> str | None:
    """Check relations a = C(x, y), b = C(y, z), c = C(x, z) of one triple x < y < z.

    If a and b are strict and opposite, y is the best or worst of the three and any c is
    consistent. Otherwise a and b compose into r (a tie passes the other relation through:
    > with = is >, = with = is =) and the triple is consistent iff c = r. A violation is
    ``"circular"`` when c is the strict opposite of r, ``"equivalence"`` when one of them is a
    tie. This is the 27-case table of TrustJudge's code (arXiv 2509.21117, ``evaluate_triple``),
    which covers the paper's two patterns and mixed ones such as x > y, y = z, x < z (circular).

    Returns None when consistent, else "circular" or "equivalence".
    """
    if a != 0 and a == -b:
        return None
    implied = a if a != 0 else b
    if c == implied:
        return None
    return "circular" if c == -implied else "equivalence"


@dataclass
class NonTransitivity:
    """NTR_k counts for one set of candidates (or pooled over several).

    ``subsets`` counts the k-subsets with every pair judged (the denominator); ``violating`` those
    with at least one violating triple; ``circular`` and ``equivalence`` those with at least one
    violation of that type (a subset can have both).
    """

    n: int
    k: int
    subsets: int
    violating: int
    circular: int
    equivalence: int
    skipped: int = 0  # k-subsets left out because a pair had no relation

    @property
    def ratio(self) -> float | None:
        """NTR_k = violating / subsets; None when no subset could be checked."""
        return self.violating / self.subsets if self.subsets else None

    @property
    def circular_ratio(self) -> float | None:
        return self.circular / self.subsets if self.subsets else None

    @property
    def equivalence_ratio(self) -> float | None:
        return self.equivalence / self.subsets if self.subsets else None

    def __add__(self, other: NonTransitivity) -> NonTransitivity:
        """Pool two question's counts (same k); n becomes the total number of candidates."""
        if other.k != self.k:
            raise ConfidantError(f"cannot pool NTR counts for k={self.k} and k={other.k}")
        return NonTransitivity(
            n=self.n + other.n,
            k=self.k,
            subsets=self.subsets + other.subsets,
            violating=self.violating + other.violating,
            circular=self.circular + other.circular,
            equivalence=self.equivalence + other.equivalence,
            skipped=self.skipped + other.skipped,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            ratio=self.ratio,
            circular_ratio=self.circular_ratio,
            equivalence_ratio=self.equivalence_ratio,
        )
        return d


def non_transitivity_ratio(relations: Relations, n: int, k: int) -> NonTransitivity:
    """Non-Transitivity Ratio NTR_k over the k-subsets of candidates 0..n−1.

    NTR_k = V_k / N_k, where N_k counts the k-subsets whose C(k, 2) pairs all have a relation and
    V_k those among them containing a triple x < y < z that violates :func:`triple_violation`
    (TrustJudge, arXiv 2509.21117, Def. 2.2; k = 3, 4, 5 there, NTR_5 in the headline table).
    A subset with a missing pair leaves the denominator, as in the reference code.

    Returns a :class:`NonTransitivity` with the counts; ``.ratio`` is NTR_k.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfidantError(f"n must be a non-negative number of candidates, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 3:
        raise ConfidantError(f"k must be an integer of at least 3, got {k!r}")
    if k > n:
        raise ConfidantError(f"k = {k} is larger than the {n} candidates")
    clean = _validate_relations(relations, n)

    # Each triple is judged once; subsets only look its verdict up.
    triple_type: dict[tuple[int, int, int], str | None] = {}
    for x, y, z in combinations(range(n), 3):
        if (x, y) in clean and (y, z) in clean and (x, z) in clean:
            triple_type[(x, y, z)] = triple_violation(clean[(x, y)], clean[(y, z)], clean[(x, z)])

    subsets = violating = circular = equivalence = skipped = 0
    for subset in combinations(range(n), k):
        if any(pair not in clean for pair in combinations(subset, 2)):
            skipped += 1
            continue
        subsets += 1
        kinds = {triple_type[t] for t in combinations(subset, 3)} - {None}
        violating += bool(kinds)
        circular += "circular" in kinds
        equivalence += "equivalence" in kinds
    return NonTransitivity(
        n=n,
        k=k,
        subsets=subsets,
        violating=violating,
        circular=circular,
        equivalence=equivalence,
        skipped=skipped,
    )
