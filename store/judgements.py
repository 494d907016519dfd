"""Judgements: one row per human judgement of an item, beside the judge's own view.

``client_key`` makes a submission idempotent: the same key sent twice (a retried request)
stores one row.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Migrations

from core.errors import ConfidantError
from store.db import Store
from store.export import export_dir, write_csv, write_jsonl
from store.runs import _dumps, ensure_annotator, now_iso

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
    "blind",
    "run_id",
    "shown",
    "created",
]


def save_judgement(store: Store, judgement: dict[str, Any]) -> int:
    """Store one judgement; returns its id (the existing id when ``client_key`` was seen)."""
    row = {k: judgement.get(k) for k in JUDGEMENT_COLUMNS if k not in ("id", "created")}
    row["client_key"] = judgement.get("client_key")
    row["created"] = now_iso()
    for key in ("judge", "scores"):
        if row.get(key) is not None and not isinstance(row[key], str):
            row[key] = _dumps(row[key])

    def tx(db):
        key = row.get("client_key")
        if key:
            found = list(
                db["judgements"].rows_where("client_key = ?", [key], select="id, annotator")
            )
            if found:
                if found[0]["annotator"] != row.get("annotator"):
                    raise ConfidantError(
                        "This submission key belongs to another annotator; nothing was saved."
                    )
                return found[0]["id"]
        ensure_annotator(db, row.get("annotator"))
        return db["judgements"].insert(row).last_pk

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


def export_judgements(store: Store, annotator: str | None = None, fmt: str = "csv"):
    """One row per judgement, to a new temporary file (CSV with formulas neutralised, or JSONL
    with the JSON columns decoded)."""
    rows = list_judgements(store, annotator)
    folder = export_dir()
    if fmt == "jsonl":
        for r in rows:
            for key in ("judge", "scores"):
                r[key] = json.loads(r[key]) if r.get(key) else None
        return write_jsonl(rows, folder / "confidant-judgements.jsonl")
    return write_csv(rows, JUDGEMENT_COLUMNS, folder / "confidant-judgements.csv")
