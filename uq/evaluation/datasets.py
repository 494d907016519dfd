"""Question-answer datasets for the harness: CSV or JSONL with ``id``, ``question``,
``answers``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfidantError
from core.reader import format_from_name, parse_json, read_table, read_text

MAX_QUESTIONS = 100_000
MAX_FILE_BYTES = 50_000_000


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass
class EvalItem:
    """One question with its gold answers."""

    id: str
    question: str
    answers: list[str]


def _golds(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = parse_json(text, f"{where}: the answers cell")
        else:
            value = [a for a in text.split("|")]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ConfidantError(f"{where}: 'answers' must be a list of strings (or a|b|c in CSV)")
    value = [a.strip() for a in value if a.strip()]
    if not value:
        raise ConfidantError(f"{where}: no gold answer")
    return value


def parse_dataset(text: str, fmt: str, name: str = "dataset") -> list[EvalItem]:
    """Items from the text of a JSONL (``fmt="jsonl"``) or CSV (``fmt="csv"``) file.

    Fields: ``question`` (required), ``answers`` (a list; in CSV ``a|b|c`` or a JSON list;
    ``answer`` is accepted for one gold) and ``id`` (optional; default the 1-based row)."""
    if fmt not in ("jsonl", "csv"):
        raise ConfidantError(f"unknown dataset format {fmt!r}; use a .jsonl or .csv file")
    table = read_table(
        text,
        name=name,
        fmt=fmt,
        max_bytes=MAX_FILE_BYTES,
        max_rows=MAX_QUESTIONS,
        what="questions",
        aliases={"answers": ("answer",)},
    )
    if fmt == "csv" and not {"question", "answers"} <= set(table.columns):
        raise ConfidantError(f"{name} needs the columns 'question' and 'answers'")
    if not table.rows:
        raise ConfidantError(f"{name} has no questions")
    items: list[EvalItem] = []
    seen: set[str] = set()
    for row in table.rows:
        where, obj = f"{name}, {row.where}", row.data
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ConfidantError(f"{where}: missing or empty 'question'")
        gold = obj.get("answers")
        if gold is None:
            raise ConfidantError(f"{where}: missing 'answers'")
        qid = obj.get("id")
        qid = str(row.index) if qid in (None, "") else str(qid).strip()
        if qid in seen:
            raise ConfidantError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        items.append(EvalItem(id=qid, question=question.strip(), answers=_golds(gold, where)))
    return items


def load_dataset(path: str | Path) -> list[EvalItem]:
    """Items from a ``.jsonl`` or ``.csv`` file (see :func:`parse_dataset`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfidantError(f"no dataset file at {path}")
    suffixes = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
    fmt = format_from_name(path.name, suffixes, ".jsonl or .csv")
    return parse_dataset(read_text(path, max_bytes=MAX_FILE_BYTES), fmt, path.name)


def dataset_hash(items: Sequence[EvalItem]) -> str:
    """A hash of the questions and gold answers (not of the file's formatting)."""
    payload = json.dumps([asdict(i) for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
