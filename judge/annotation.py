"""Agreement between annotators and the judge over stored judgements.

Each stored judgement is a plain dict (one row of ``store.judgements``): the item, the
annotator, the human score (single items) or preference A / B / C (pairs), and the judge's
scores as a JSON object. Items are grouped by kind and scale; within a group every annotator's
latest judgement of an item is their rating, and the judge's scores are extra raters::

    >>> rows = [
    ...     {"item_id": "q1", "kind": "single", "scale": 5, "annotator": "ada", "human_score": 4,
    ...      "scores": {"emitted": 4, "expectation": 3.9}},
    ...     {"item_id": "q2", "kind": "single", "scale": 5, "annotator": "ada", "human_score": 2,
    ...      "scores": {"emitted": 1, "expectation": 1.6}},
    ...     {"item_id": "q3", "kind": "single", "scale": 5, "annotator": "ada", "human_score": 3,
    ...      "scores": {"emitted": 3, "expectation": 3.1}},
    ... ]
    >>> report = agreement_report(rows)
    >>> [(p["rater_a"], p["rater_b"], p["spearman"]) for p in report["groups"][0]["pairs"]][:1]
    [('ada', 'judge: emitted', 1.0)]

Statistics: Spearman's ρ and Kendall's τ_b for every pair of raters, Cohen's κ (plain and
quadratic-weighted) for discrete raters (people, the judge's emitted score or verdict), and
Krippendorff's α over the people, then over the people with the judge (:mod:`judge.agreement`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import ConfidantError
from judge.agreement import agreement_table, krippendorff_alpha

# Judge raters of single items: (name, key in the stored scores, discrete?)
SINGLE_JUDGE_RATERS = (
    ("judge: emitted", "emitted", True),
    ("judge: G-Eval", "geval", False),
    ("judge: expectation", "expectation", False),
    ("judge: TrustJudge", "trustjudge", False),
)
PAIR_JUDGE_RATERS = (
    ("judge: baseline", "baseline"),
    ("judge: likelihood", "likelihood"),
    ("judge: PPL", "ppl"),
)
PREFERENCE_TO_RELATION = {"A": 1, "B": -1, "C": 0}


def _scores(row: Mapping[str, Any]) -> dict[str, Any]:
    value = row.get("scores")
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else {}
        except json.JSONDecodeError:
            return {}
    return dict(value or {})


def _group_key(row: Mapping[str, Any]) -> tuple[str, int | None]:
    kind = row.get("kind") or "single"
    return (kind, int(row["scale"]) if kind == "single" and row.get("scale") else None)


def _alpha(ratings: list[list[Any]], level: str) -> float | None:
    try:
        return krippendorff_alpha(ratings, level)
    except ConfidantError:
        return None


def _group(name: str, kind: str, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    items: list[str] = []
    people: dict[str, dict[str, Any]] = {}
    judge: dict[str, dict[str, Any]] = {}
    for row in rows:  # in save order: a later judgement of the same item replaces the earlier
        item = str(row.get("item_id"))
        if item not in items:
            items.append(item)
        who = row.get("annotator") or "(anonymous)"
        scores = _scores(row)
        if kind == "single":
            if row.get("human_score") is None:
                continue
            people.setdefault(who, {})[item] = float(row["human_score"])
            for rater, key, _ in SINGLE_JUDGE_RATERS:
                if scores.get(key) is not None:
                    judge.setdefault(rater, {})[item] = float(scores[key])
        else:
            pref = PREFERENCE_TO_RELATION.get(str(row.get("human_preference") or ""))
            if pref is None:
                continue
            people.setdefault(who, {})[item] = pref
            relations = scores.get("relations") or {}
            for rater, key in PAIR_JUDGE_RATERS:
                if relations.get(key) is not None:
                    judge.setdefault(rater, {})[item] = int(relations[key])
    raters = {
        **{p: [r.get(i) for i in items] for p, r in people.items()},
        **{j: [r.get(i) for i in items] for j, r in judge.items()},
    }
    discrete = set(people) | (
        {n for n, _, d in SINGLE_JUDGE_RATERS if d} if kind == "single" else set(judge)
    )
    pairs = []
    if len(raters) >= 2:
        continuous = {p.rater_a + "\0" + p.rater_b: p for p in agreement_table(raters, False)}
        names = [n for n in raters if n in discrete]
        kappas = (
            {
                p.rater_a + "\0" + p.rater_b: p
                for p in agreement_table({n: raters[n] for n in names}, True)
            }
            if len(names) >= 2
            else {}
        )
        for key, p in continuous.items():
            d = p.to_dict()
            if key in kappas:
                d["cohen_kappa"] = kappas[key].cohen_kappa
                d["weighted_kappa"] = kappas[key].weighted_kappa if kind == "single" else None
            pairs.append(d)
    level = "interval" if kind == "single" else "nominal"
    person_rows = [raters[p] for p in people]
    first_judge = next(iter(judge), None)
    return {
        "name": name,
        "kind": kind,
        "items": len(items),
        "annotators": sorted(people),
        "pairs": pairs,
        "alpha_people": _alpha(person_rows, level) if len(person_rows) >= 2 else None,
        "alpha_with_judge": (
            _alpha(person_rows + [raters[first_judge]], level)
            if person_rows and first_judge
            else None
        ),
        "alpha_judge": first_judge,
    }


def agreement_report(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement per group of items (single items of each scale; pairs), see the module
    docstring. Statistics a group cannot define (fewer than two shared items, a constant rater)
    are None."""
    groups: dict[tuple[str, int | None], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    out = []
    for (kind, scale), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        name = f"single, 1..{scale}" if kind == "single" else "pairwise"
        out.append(_group(name, kind, members))
    return {"groups": out}
