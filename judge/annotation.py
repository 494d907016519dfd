"""Annotation rows, and agreement between annotators and the judge over stored judgements.

:func:`annotation_record` checks one person's answer to an item and builds the row stored
beside the judge's result (and the run that records both); it is a plain function of the item,
the judge's result dict and what the person typed, so the Judge tab only shows and saves.

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
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ConfidantError
from judge.agreement import agreement_table, krippendorff_alpha
from judge.grading import GradeResult
from judge.pairwise import PairwiseResult
from judge.scores import SCORE_METHODS

# Judge raters of single items: (name, key in the stored scores, discrete?), one per score
# method that the table marks as a rater.
SINGLE_JUDGE_RATERS = tuple(
    (f"judge: {m.label}", m.key, m.discrete) for m in SCORE_METHODS if m.rater
)
PAIR_JUDGE_RATERS = (
    ("judge: baseline", "baseline"),
    ("judge: likelihood", "likelihood"),
    ("judge: PPL", "ppl"),
)
PREFERENCE_TO_RELATION = {"A": 1, "B": -1, "C": 0}
PREFERENCE_WORDS = {"A": "first better", "B": "second better", "C": "tie"}
MAX_NOTE_CHARS = 5_000
MAX_CLIENT_KEY_CHARS = 100


# ----------------------------------------------------------------------------------------------
# One person's judgement of one item
# ----------------------------------------------------------------------------------------------


@dataclass
class AnnotationRecord:
    """What to store for one judgement: ``row`` is one row of the judgements table (its
    ``run_id`` still to come), ``answer`` the person's answer in words ("4 / 5", "tie"),
    ``run`` the fields of the run that records the item, the judge's result and the answer
    (kind, model, params, seed, result, title, annotator, session_id)."""

    row: dict[str, Any]
    answer: str
    run: dict[str, Any]


def _client_key(client_key: Any) -> str:
    key = str(client_key or "").strip()
    if not key or len(key) > MAX_CLIENT_KEY_CHARS:
        raise ConfidantError("This submission has no valid key; show the item again.")
    return key


def _note(note: Any) -> str:
    note = "" if note is None else str(note)
    if "\x00" in note:
        raise ConfidantError("The note contains a NUL character.")
    if len(note) > MAX_NOTE_CHARS:
        raise ConfidantError(
            f"The note is {len(note):,} characters; the limit is {MAX_NOTE_CHARS:,}."
        )
    return note.strip()


def _human_score(human_score: Any, scale: int) -> float:
    try:
        value = float(human_score)
    except (TypeError, ValueError):
        raise ConfidantError("Give your score before saving.") from None
    if not math.isfinite(value):
        raise ConfidantError("Your score must be a finite number.")
    if not value.is_integer() or not 1 <= value <= scale:
        raise ConfidantError(f"Your score must be a whole number from 1 to {scale}.")
    return value


def annotation_record(
    item: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    annotator: str,
    client_key: Any,
    human_score: Any = None,
    preference: Any = None,
    note: Any = "",
    blind: bool = False,
    shown: str | None = None,
    session_id: str | None = None,
) -> AnnotationRecord:
    """Check a person's answer to ``item`` and build the judgement row beside the judge's
    ``result`` (a ``GradeResult`` or ``PairwiseResult`` dict).

    Single items take ``human_score``, a whole number from 1 to the judge's scale; pairs take
    ``preference``, whose first letter is A, B or C (tie). ``client_key`` (at most 100
    characters) makes the submission idempotent; ``note`` is at most 5,000 characters without
    NUL. Every problem is a ``ConfidantError`` naming it; nothing is built half-way.
    """
    key = _client_key(client_key)
    note = _note(note)
    row: dict[str, Any] = {
        "client_key": key,
        "item_id": item["item_id"],
        "kind": item["kind"],
        "annotator": annotator,
        "session_id": session_id,
        "question": item["question"],
        "note": note,
        "judge_model": result["model"],
        "blind": int(bool(blind)),
        "shown": shown or None,
    }
    if item["kind"] == "pairwise":
        letter = str(preference or "").strip()[:1].upper()
        if letter not in PREFERENCE_WORDS:
            raise ConfidantError("Choose A, B or C (tie) before saving.")
        pr = PairwiseResult.from_dict(result)
        view = pr.judge_view()
        row.update(
            response=item["response_a"],
            response_b=item["response_b"],
            human_preference=letter,
            judge_rationale=pair_rationale(pr),
            judge=view,
            scores={"relations": pr.relations, "emitted": view["emitted"]},
        )
        answer = PREFERENCE_WORDS[letter]
    else:
        g = GradeResult.from_dict(result)
        value = _human_score(human_score, g.scale)
        row.update(
            response=item["response"],
            human_score=value,
            scale=g.scale,
            judge_rationale=g.rationale,
            judge={
                "distribution": {str(k): p for k, p in g.distribution.items()},
                "raw": {str(k): p for k, p in g.raw.items()},
                "source": g.source,
                "truncated": g.truncated,
            },
            scores=g.scores(),
        )
        answer = f"{int(value)} / {g.scale}"
    run = {
        "kind": "judge",
        "model": result["model"],
        "params": result["config"],
        "seed": result["config"].get("seed"),
        "result": {
            "type": "annotation",
            "item": item,
            "judge": result,
            "human": {"annotator": annotator, "answer": answer, "note": note},
        },
        "title": item["question"][:200],
        "annotator": annotator,
        "session_id": session_id,
    }
    return AnnotationRecord(row=row, answer=answer, run=run)


def pair_rationale(pr: PairwiseResult) -> str:
    """The judge's rationale for a pair in both orders it was shown."""
    return f"[x as A] {pr.first.rationale}\n[y as A] {pr.second.rationale}"


def stored_rationale(result: Mapping[str, Any]) -> str | None:
    """The judge's rationale in a stored annotation run's result (None for other runs)."""
    judge = (result or {}).get("judge") or {}
    if "rationale" in judge:
        return judge["rationale"]
    if "first" in judge and "second" in judge:
        return pair_rationale(PairwiseResult.from_dict(judge))
    return None


def stored_measures(result: Mapping[str, Any]) -> dict[str, Any]:
    """The judge's scores in a stored annotation run's result: every score method's value
    (single items; one per :data:`judge.scores.SCORE_METHODS` entry) or each rule's relation
    (pairs); empty for other judge runs."""
    judge = (result or {}).get("judge") or {}
    if result.get("type") != "annotation" or not judge:
        return {}
    if "first" in judge:
        return {f"relation_{k}": v for k, v in PairwiseResult.from_dict(judge).relations.items()}
    return GradeResult.from_dict(judge).scores()


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
