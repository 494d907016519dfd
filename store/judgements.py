"""Judgements: one row per human judgement of an item, beside the judge's own view.

``client_key`` makes a submission idempotent: the same key sent twice with the same answer
(a retried request) stores one row; the same key with another answer is refused, so an
acknowledgement never names an answer that is not the stored one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Migrations

from core.errors import ConfidantError
from store.db import Store
from store.export import export_dir, write_csv, write_jsonl
from store.runs import dumps_json, ensure_annotator, now_iso, save_run

migrations = Migrations("confidant.judgements")


@migrations()
def m001_judgements(db) -> None:
    db["judgements"].create(
        {
            "id": int,
            "client_key": str,
            "run_id": str,
            "item_id": str,
            "kind": str,  # "single" or "pairwise"
            "annotator": str,
            "session_id": str,
            "question": str,
            "response": str,
            "response_b": str,
            "human_score": float,
            "human_preference": str,
            "note": str,
            "judge": str,  # JSON: the judge's distribution and verdict probabilities
            "scores": str,  # JSON: each method's score
            "created": str,
        },
        pk="id",
        not_null={"kind", "created"},
    )
    db["judgements"].create_index(["client_key"], unique=True)
    db["judgements"].create_index(["annotator", "created"])


@migrations()
def m002_judgement_context(db) -> None:
    """What the annotator saw: the scale, the judge model, whether the judge was hidden until
    the answer (blind), and when the item was shown (``created`` is when it was saved)."""
    table = db["judgements"]
    table.add_column("scale", int)
    table.add_column("judge_model", str)
    table.add_column("blind", int)
    table.add_column("shown", str)


@migrations()
def m003_judge_rationale(db) -> None:
    """The judge's rationale (the text it wrote before its score or verdict)."""
    db["judgements"].add_column("judge_rationale", str)


JUDGEMENT_COLUMNS = [
    "id",
    "item_id",
    "kind",
    "annotator",
    "question",
    "response",
    "response_b",
    "human_score",
    "human_preference",
    "note",
    "judge",
    "scores",
    "scale",
    "judge_model",
    "judge_rationale",
    "blind",
    "run_id",
    "shown",
    "created",
]


# What a person answered: a replay of a key must carry the same, or it is refused.
ANSWER_FIELDS = ("item_id", "human_score", "human_preference", "note")


def answer_in_words(row: dict[str, Any]) -> str:
    """A stored judgement's answer as the page says it ("2 / 5", "tie")."""
    if row.get("human_preference"):
        words = {"A": "first better", "B": "second better", "C": "tie"}
        return words.get(row["human_preference"], str(row["human_preference"]))
    score, scale = row.get("human_score"), row.get("scale")
    if score is None:
        return "no answer"
    return f"{int(score)} / {scale}" if scale else f"{score:g}"


def _stored_id(
    db, client_key: str | None, annotator: str | None, row: dict[str, Any] | None = None
) -> int | None:
    """The id of the judgement already stored under ``client_key`` (None when the key is new
    or empty). A key stored by another annotator is an error, and so is a replay of the key
    with another answer (``row``): nothing is saved and the message says what is stored."""
    if not client_key:
        return None
    found = list(db["judgements"].rows_where("client_key = ?", [client_key]))
    if not found:
        return None
    stored = found[0]
    if stored["annotator"] != annotator:
        raise ConfidantError("This submission key belongs to another annotator; nothing was saved.")
    if row is not None:
        changed = [
            f for f in ANSWER_FIELDS if f in row and _normal(row.get(f)) != _normal(stored.get(f))
        ]
        if changed:
            raise ConfidantError(
                f"Not saved: this showing of the item was already saved as judgement "
                f"#{stored['id']} ({answer_in_words(stored)}), and a saved judgement is not "
                "changed. Show the item again to judge it anew."
            )
    return stored["id"]


def _normal(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return value


def save_judgement(store: Store, judgement: dict[str, Any]) -> int:
    """Store one judgement; returns its id (the existing id when ``client_key`` was seen with
    the same answer; another answer under a seen key is refused)."""
    row = {k: judgement.get(k) for k in JUDGEMENT_COLUMNS if k not in ("id", "created")}
    row["client_key"] = judgement.get("client_key")
    row["created"] = now_iso()
    for key in ("judge", "scores"):
        if row.get(key) is not None and not isinstance(row[key], str):
            row[key] = dumps_json(row[key])

    def tx(db):
        found = _stored_id(db, row.get("client_key"), row.get("annotator"), judgement)
        if found is not None:
            return found
        ensure_annotator(db, row.get("annotator"))
        return db["judgements"].insert(row).last_pk

    return store.write(tx)


def save_annotation(store: Store, judgement: dict[str, Any], run: dict[str, Any]) -> int:
    """Store a judgement and the run that records it (``run``: the keyword arguments of
    :func:`store.runs.save_run`) in one transaction: both land or neither does. Returns the
    judgement's id. A ``client_key`` seen before with the same answer stores neither and
    returns the stored id, so a retried submission arriving while the first is being saved
    finds it (the store's lock serialises the two) instead of storing a second run beside it;
    the same key with another answer is refused."""

    def tx(db):
        found = _stored_id(
            db, judgement.get("client_key"), judgement.get("annotator"), dict(judgement)
        )
        if found is not None:
            return found
        run_id = save_run(store, **run)
        return save_judgement(store, {**judgement, "run_id": run_id})

    return store.write(tx)


def judgement_by_key(store: Store, client_key: str) -> dict[str, Any] | None:
    """The judgement stored under ``client_key``, or None."""

    def q(db):
        rows = list(db["judgements"].rows_where("client_key = ?", [client_key]))
        return dict(rows[0]) if rows else None

    return store.read(q)


def list_judgements(store: Store, annotator: str | None = None) -> list[dict[str, Any]]:
    def q(db):
        where, args = ("annotator = ?", [annotator]) if annotator else (None, [])
        return [dict(r) for r in db["judgements"].rows_where(where, args, order_by="id")]

    return store.read(q)


def export_judgements(
    store: Store,
    annotator: str | None = None,
    fmt: str = "csv",
    rationale_of: Callable[[dict[str, Any]], str | None] | None = None,
):
    """One row per judgement, to a new temporary file: CSV (formulas neutralised) with one
    ``score_<method>`` column per score the judge's view holds (a pair's relations as
    ``score_relations_<rule>``) and the judge's rationale; or JSONL, raw, with the JSON columns
    decoded. ``rationale_of(run result)`` fills the rationale of judgements stored before it
    had a column, from the run that records them."""
    rows = list_judgements(store, annotator)
    if rationale_of is not None:
        _fill_rationale(store, rows, rationale_of)
    for r in rows:
        for key in ("judge", "scores"):
            r[key] = json.loads(r[key]) if r.get(key) else None
    folder = export_dir()
    if fmt == "jsonl":
        return write_jsonl(rows, folder / "confidant-judgements.jsonl")
    score_columns: dict[str, None] = {}
    for r in rows:
        for name, value in _flat_scores(r.pop("scores") or {}).items():
            r[name] = value
            score_columns.setdefault(name)
    columns = [c for c in JUDGEMENT_COLUMNS if c != "scores"] + list(score_columns)
    return write_csv(rows, columns, folder / "confidant-judgements.csv")


def _flat_scores(scores: dict[str, Any]) -> dict[str, Any]:
    """``{"geval": 3.2, "relations": {"likelihood": 1}}`` → ``{"score_geval": 3.2,
    "score_relations_likelihood": 1}``; lists stay JSON cells."""
    out: dict[str, Any] = {}
    for name, value in scores.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                out[f"score_{name}_{inner}"] = v
        else:
            out[f"score_{name}"] = value
    return out


def _fill_rationale(store: Store, rows: list[dict[str, Any]], rationale_of) -> None:
    missing = {r["run_id"] for r in rows if not r.get("judge_rationale") and r.get("run_id")}
    if not missing:
        return

    def q(db):
        ids, found = sorted(missing), {}
        for start in range(0, len(ids), 500):  # below SQLite's limit on bound parameters
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(db.execute(f"select id, result from runs where id in ({marks})", chunk))
        return found

    results = store.read(q)
    for r in rows:
        if not r.get("judge_rationale") and r.get("run_id") in results:
            try:
                r["judge_rationale"] = rationale_of(json.loads(results[r["run_id"]] or "{}"))
            except (KeyError, TypeError, ValueError):
                continue
