"""Runs (one per question asked of any method), their generations, annotators and sessions.

A run stores its full result (a JSON-serialisable dict) and the parameters that produced it,
so every view can be rebuilt later without a model.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlite_utils import Migrations

from backends.base import Generation
from store.db import Store

migrations = Migrations("confidant.runs")


@migrations()
def m001_core(db) -> None:
    db["annotators"].create({"id": int, "name": str, "created": str}, pk="id", not_null={"name"})
    db["annotators"].create_index(["name"], unique=True)
    db["sessions"].create({"id": str, "annotator": str, "created": str}, pk="id")
    db["runs"].create(
        {
            "id": str,
            "kind": str,
            "title": str,
            "model": str,
            "params": str,
            "seed": int,
            "created": str,
            "duration": float,
            "annotator": str,
            "session_id": str,
            "result": str,
        },
        pk="id",
        not_null={"kind", "created"},
    )
    db["runs"].create_index(["kind", "created"])
    db["generations"].create(
        {
            "id": int,
            "run_id": str,
            "idx": int,
            "role": str,
            "text": str,
            "tokens": str,
            "n_tokens": int,
            "total_logprob": float,
            "mean_logprob": float,
            "finish_reason": str,
            "logprob_source": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["generations"].create_index(["run_id", "idx"], unique=True)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_default)


def _default(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def ensure_annotator(db, name: str | None) -> str | None:
    if not name:
        return None
    if not db["annotators"].count_where("name = ?", [name]):
        db["annotators"].insert({"name": name, "created": now_iso()})
    return name


def save_run(
    store: Store,
    *,
    kind: str,
    model: str,
    params: dict[str, Any],
    result: dict[str, Any],
    seed: int | None = None,
    generations: list[tuple[str, Generation]] | None = None,
    title: str = "",
    annotator: str | None = None,
    session_id: str | None = None,
    duration: float | None = None,
) -> str:
    """Save a run, its result and its generations (role, generation) in one transaction.

    Everything is serialised before the transaction opens, so a value that cannot be stored
    (NaN, an unknown type) fails before anything is written."""
    run_id = uuid.uuid4().hex
    row = {
        "id": run_id,
        "kind": kind,
        "title": title[:500],
        "model": model,
        "params": dumps_json(params),
        "seed": seed,
        "created": now_iso(),
        "duration": duration,
        "annotator": annotator,
        "session_id": session_id,
        "result": dumps_json(result),
    }
    gen_rows = [
        {
            "run_id": run_id,
            "idx": i,
            "role": role,
            "text": g.text,
            "tokens": dumps_json([t for t in g.to_dict()["tokens"]]),
            "n_tokens": len(g.tokens),
            "total_logprob": g.total_logprob,
            "mean_logprob": g.mean_logprob,
            "finish_reason": g.finish_reason,
            "logprob_source": g.logprob_source,
        }
        for i, (role, g) in enumerate(generations or [])
    ]

    def tx(db):
        ensure_annotator(db, annotator)
        if session_id and not db["sessions"].count_where("id = ?", [session_id]):
            db["sessions"].insert({"id": session_id, "annotator": annotator, "created": now_iso()})
        db["runs"].insert(row)
        if gen_rows:
            db["generations"].insert_all(gen_rows)
        return run_id

    return store.write(tx)


def owner_clause(owner: str | None, column: str = "annotator") -> tuple[list[str], list[Any]]:
    """The SQL condition limiting rows to ``owner``'s (none for ``owner=None``: everyone's).
    An empty owner matches nothing: with login on, nobody logged in reads nobody's rows."""
    if owner is None:
        return [], []
    return [f"{column} = ?"], [owner]


def run_conditions(
    kind: str | None, owner: str | None, table: str = ""
) -> tuple[list[str], list[Any]]:
    """The SQL conditions selecting runs of ``kind`` (any when None) and of ``owner``
    (:func:`owner_clause`); ``table`` prefixes the columns (``"runs."`` in a join)."""
    conditions, args = owner_clause(owner, f"{table}annotator")
    if kind:
        conditions.append(f"{table}kind = ?")
        args.append(kind)
    return conditions, args


def list_runs(
    store: Store, kind: str | None = None, limit: int = 200, owner: str | None = None
) -> list[dict[str, Any]]:
    """Newest first, without the (possibly large) result; only ``owner``'s runs when given."""
    conditions, args = run_conditions(kind, owner)
    where = " and ".join(conditions) or None

    def q(db):
        return list(
            db["runs"].rows_where(
                where,
                args,
                select="id, kind, title, model, seed, created, duration, annotator",
                order_by="created desc",
                limit=limit,
            )
        )

    return store.read(q)


def get_run(store: Store, run_id: str, owner: str | None = None) -> dict[str, Any] | None:
    """The run with its parameters, result and generations, or None (also when ``owner`` is
    given and the run is not theirs: another annotator's run does not exist for them)."""

    def q(db):
        rows = list(db["runs"].rows_where("id = ?", [run_id]))
        if not rows or (owner is not None and rows[0]["annotator"] != owner):
            return None
        run = dict(rows[0])
        run["params"] = json.loads(run["params"] or "{}")
        run["result"] = json.loads(run["result"] or "{}")
        gens = db["generations"].rows_where("run_id = ?", [run_id], order_by="idx")
        run["generations"] = [
            (
                g["role"],
                Generation.from_dict(
                    {
                        "text": g["text"],
                        "tokens": json.loads(g["tokens"]),
                        "finish_reason": g["finish_reason"],
                        "logprob_source": g["logprob_source"],
                    }
                ),
            )
            for g in gens
        ]
        return run

    return store.read(q)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
