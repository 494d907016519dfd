"""Finished questions of dataset evaluations, so an interrupted or repeated run resumes.

One row per (dataset hash, question id, parameters hash): the question's full result row as
JSON. ``uq.evaluation.harness`` only sees the small ``get``/``put`` interface of :class:`EvalCache`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlite_utils import Migrations

from store.db import Store
from store.export import write_csv
from store.runs import now_iso

migrations = Migrations("confidant.eval_cache")


@migrations()
def m001_eval_cache(db) -> None:
    db["eval_cache"].create(
        {
            "key": str,
            "dataset_hash": str,
            "question_id": str,
            "params_hash": str,
            "row": str,
            "created": str,
        },
        pk="key",
        not_null={"dataset_hash", "question_id", "params_hash", "row"},
    )
    db["eval_cache"].create_index(["dataset_hash", "params_hash"])


class EvalCache:
    """Question results keyed by ``(dataset_hash, question_id, params_hash)``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def key(dataset_hash: str, question_id: str, params_hash: str) -> str:
        return json.dumps([dataset_hash, question_id, params_hash])

    def get(self, dataset_hash: str, question_id: str, params_hash: str) -> dict[str, Any] | None:
        key = self.key(dataset_hash, question_id, params_hash)

        def q(db):
            rows = list(db["eval_cache"].rows_where("key = ?", [key], select="row"))
            return json.loads(rows[0]["row"]) if rows else None

        return self.store.read(q)

    def put(
        self, dataset_hash: str, question_id: str, params_hash: str, row: dict[str, Any]
    ) -> None:
        """Store one finished question (replacing an older row for the same key) in one
        transaction; the row is serialised first, so a bad value writes nothing."""
        record = {
            "key": self.key(dataset_hash, question_id, params_hash),
            "dataset_hash": dataset_hash,
            "question_id": question_id,
            "params_hash": params_hash,
            "row": json.dumps(row, ensure_ascii=False, allow_nan=False),
            "created": now_iso(),
        }
        self.store.write(lambda db: db["eval_cache"].upsert(record, pk="key"))

    def count(self, dataset_hash: str | None = None) -> int:
        def q(db):
            if dataset_hash is None:
                return db["eval_cache"].count
            return db["eval_cache"].count_where("dataset_hash = ?", [dataset_hash])

        return self.store.read(q)


def export_evaluation(result, out_dir: str | Path) -> list[Path]:
    """Write an ``uq.evaluation.harness.EvaluationResult`` to ``out_dir``: ``questions.csv`` (one row
    per question, one column per measure), ``metrics.csv`` (per measure, each metric with its
    interval), ``calibration.csv`` (per measure and calibrator, ECE, Brier score and log loss
    on the held-out split, with intervals; cells formula-neutralised) and ``evaluation.json``
    (everything)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    q_cols, q_rows = result.question_table()
    m_cols, m_rows = result.metric_table()
    c_cols, c_rows = result.calibration_table()
    paths = [
        write_csv(q_rows, q_cols, out / "questions.csv"),
        write_csv(m_rows, m_cols, out / "metrics.csv"),
        write_csv(c_rows, c_cols, out / "calibration.csv"),
    ]
    json_path = out / "evaluation.json"
    json_path.write_text(
        json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False, indent=1),
        encoding="utf-8",
    )
    paths.append(json_path)
    return paths
