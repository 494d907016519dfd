"""Question-answer datasets for the harness: CSV or JSONL with ``id``, ``question``,
``answers``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfidantError

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
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfidantError(
                    f"{where}: the answers look like JSON but do not parse"
                ) from None
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
    if "\x00" in text:
        raise ConfidantError(f"{name} contains NUL characters; is it a text file?")
    records: list[tuple[str, dict]] = []
    if fmt == "jsonl":
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfidantError(f"{name} line {k} is not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise ConfidantError(f"{name} line {k} must be a JSON object")
            records.append((f"{name} line {k}", obj))
    elif fmt == "csv":
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
        except csv.Error as exc:
            raise ConfidantError(f"{name} is not valid CSV: {exc}") from None
        fields = {str(f).strip().lower() for f in (reader.fieldnames or [])}
        if "question" not in fields or not ({"answers", "answer"} & fields):
            raise ConfidantError(f"{name} needs the columns 'question' and 'answers'")
        for k, row in enumerate(rows, 2):
            records.append((f"{name} row {k}", {str(a).strip().lower(): b for a, b in row.items()}))
    else:
        raise ConfidantError(f"unknown dataset format {fmt!r}; use a .jsonl or .csv file")
    if not records:
        raise ConfidantError(f"{name} has no questions")
    if len(records) > MAX_QUESTIONS:
        raise ConfidantError(
            f"{name} has {len(records):,} questions; the limit is {MAX_QUESTIONS:,}"
        )
    items: list[EvalItem] = []
    seen: set[str] = set()
    for k, (where, obj) in enumerate(records, 1):
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ConfidantError(f"{where}: missing or empty 'question'")
        gold = obj.get("answers", obj.get("answer"))
        if gold is None:
            raise ConfidantError(f"{where}: missing 'answers'")
        qid = obj.get("id")
        qid = str(k) if qid in (None, "") else str(qid).strip()
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
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfidantError(f"{path.name} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfidantError(f"{path.name} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix)
    if fmt is None:
        raise ConfidantError(f"give a .jsonl or .csv dataset, not {path.name}")
    return parse_dataset(text, fmt, path.name)


def dataset_hash(items: Sequence[EvalItem]) -> str:
    """A hash of the questions and gold answers (not of the file's formatting)."""
    payload = json.dumps([asdict(i) for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
