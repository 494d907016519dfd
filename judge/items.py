"""Items to judge: the bundled demo set, and items imported from CSV or JSONL, validated.

An item is either a single answer (``question`` + ``response``) or a pair (``question`` +
``response_a`` + ``response_b``). Files may also hold whole questions in the demo-set layout
(``question`` + a ``candidates`` list), which expand into one single item per candidate or one
pair per two candidates::

    >>> items = parse_items(b"question,response\\nWhat is 2+2?,4\\n", "items.csv", "single")
    >>> items[0]["question"], items[0]["response"], items[0]["item_id"]
    ('What is 2+2?', '4', 'row-1')

Text is kept as data: a cell such as ``=SUM(A1)`` stays that string here, and exports neutralise
it for spreadsheets. Everything a user can get wrong raises ``ConfidantError`` naming the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from core.errors import ConfidantError
from core.reader import MORE_CELLS, NOT_VALID_JSON, Row, Table, format_from_name, read_table

DEMO_PATH = Path(__file__).resolve().parents[1] / "data" / "judge" / "demo.jsonl"
KINDS = ("single", "pairwise")
MAX_FILE_BYTES = 5_000_000
MAX_ITEMS = 5_000
MAX_FIELD_CHARS = 20_000
REQUIRED = {
    "single": ("question", "response"),
    "pairwise": ("question", "response_a", "response_b"),
}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfidantError(f"the item kind must be one of {KINDS}, got {kind!r}")
    return kind


def _clean_field(value: Any, name: str, where: str) -> str:
    if value is None:
        raise ConfidantError(f"{where}: the {name!r} field is empty")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfidantError(
            f"{where}: the {name!r} field must be text, got {type(value).__name__}"
        )
    text = str(value)
    if "\x00" in text:
        raise ConfidantError(f"{where}: the {name!r} field contains a NUL character")
    text = text.strip()
    if not text:
        raise ConfidantError(f"{where}: the {name!r} field is empty")
    if len(text) > MAX_FIELD_CHARS:
        raise ConfidantError(
            f"{where}: the {name!r} field is {len(text):,} characters; the limit is "
            f"{MAX_FIELD_CHARS:,}"
        )
    return text


def load_questions(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Questions with candidate answers in the demo-set layout (``data/judge/demo.jsonl`` by
    default): ``question_id``, ``category``, ``question`` and ``candidates`` (each with
    ``candidate_id`` and ``text``). ``limit`` keeps the first questions only."""
    p = Path(path) if path is not None else DEMO_PATH
    table = read_table(
        p,
        fmt="jsonl",
        max_bytes=MAX_FILE_BYTES,
        max_rows=MAX_ITEMS,  # each question is at least one item
        what="questions",
        fold_case=False,
        objects_only=False,
        json_message=NOT_VALID_JSON,
    )
    questions = [_question(row.data, f"line {row.index}") for row in table.rows]
    if limit is not None:
        if limit < 1:
            raise ConfidantError(f"limit must be at least 1, got {limit}")
        questions = questions[:limit]
    return questions


def _question(row: Any, where: str) -> dict:
    if not isinstance(row, Mapping):
        raise ConfidantError(f"{where}: expected a JSON object")
    question = _clean_field(row.get("question"), "question", where)
    candidates = row.get("candidates")
    if not isinstance(candidates, list) or len(candidates) < 2:
        raise ConfidantError(f"{where}: 'candidates' must be a list of at least two answers")
    qid = str(row.get("question_id") or where.replace(" ", "-"))
    clean = []
    for n, cand in enumerate(candidates):
        if isinstance(cand, str):
            cand = {"text": cand}
        if not isinstance(cand, Mapping):
            raise ConfidantError(f"{where}: candidate {n + 1} must be an object or text")
        clean.append(
            {
                **{k: v for k, v in cand.items() if k not in ("candidate_id", "text")},
                "candidate_id": str(cand.get("candidate_id") or f"{qid}-{n + 1}"),
                "text": _clean_field(cand.get("text"), "text", f"{where}, candidate {n + 1}"),
            }
        )
    return {
        "question_id": qid,
        "category": str(row.get("category") or ""),
        "question": question,
        "candidates": clean,
    }


def expand_question(question: Mapping[str, Any], kind: str) -> list[dict]:
    """The items of one question: a single item per candidate, or one pair per two candidates
    (i < j, the earlier candidate shown as A)."""
    _check_kind(kind)
    qid, cands = question["question_id"], question["candidates"]
    if kind == "single":
        return [
            {
                "item_id": c["candidate_id"],
                "kind": "single",
                "question": question["question"],
                "response": c["text"],
            }
            for c in cands
        ]
    return [
        {
            "item_id": f"{qid}:{a['candidate_id']}|{b['candidate_id']}",
            "kind": "pairwise",
            "question": question["question"],
            "response_a": a["text"],
            "response_b": b["text"],
        }
        for a, b in combinations(cands, 2)
    ]


def demo_items(kind: str = "single") -> list[dict]:
    """Every item of the bundled demo set for ``kind``."""
    return [item for q in load_questions() for item in expand_question(q, _check_kind(kind))]


def _item(row: Mapping[str, Any], kind: str, where: str, default_id: str) -> dict:
    missing = [c for c in REQUIRED[kind] if c not in row]
    if missing:
        raise ConfidantError(
            f"{where}: missing column(s) {', '.join(missing)}; {kind} items need "
            f"{', '.join(REQUIRED[kind])}"
        )
    item = {"item_id": str(row.get("item_id") or "").strip() or default_id, "kind": kind}
    for c in REQUIRED[kind]:
        item[c] = _clean_field(row.get(c), c, where)
    return item


def parse_items(data: bytes, filename: str, kind: str) -> list[dict]:
    """Items from the bytes of a ``.csv`` or ``.jsonl`` file, validated.

    CSV: a header row with ``question`` and ``response`` (single) or ``response_a`` and
    ``response_b`` (pairwise), optionally ``item_id``. JSONL: one object per line with the same
    keys, or a question in the demo-set layout with ``candidates``. Raises ``ConfidantError`` for
    a file that is too large, not UTF-8, malformed, missing columns, with empty rows or fields,
    NUL characters, duplicate item ids, or no items.
    """
    _check_kind(kind)
    if not isinstance(data, (bytes, bytearray)):
        raise ConfidantError("the upload could not be read as a file")
    suffixes = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
    fmt = format_from_name(filename, suffixes, ".csv or .jsonl")
    table = read_table(
        data,
        name=Path(filename or "").name or "the file",
        fmt=fmt,
        max_bytes=MAX_FILE_BYTES,
        max_rows=MAX_ITEMS,  # each row is at least one item
        what="items",
        fold_case=False,
        json_message=NOT_VALID_JSON,
    )
    items = _parse_csv(table, kind) if fmt == "csv" else _parse_jsonl(table.rows, kind)
    if not items:
        raise ConfidantError("the file holds no items")
    if len(items) > MAX_ITEMS:
        raise ConfidantError(f"the file holds {len(items):,} items; the limit is {MAX_ITEMS:,}")
    seen: set[str] = set()
    for item in items:
        if item["item_id"] in seen:
            raise ConfidantError(f"item id {item['item_id']!r} appears more than once")
        seen.add(item["item_id"])
    return items


def _parse_csv(table: Table, kind: str) -> list[dict]:
    header = table.header
    if not header:
        raise ConfidantError("the CSV file is empty: it needs a header row")
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        raise ConfidantError(
            f"the CSV header is missing column(s) {', '.join(missing)}; {kind} items need "
            f"{', '.join(REQUIRED[kind])} (found: {', '.join(header)})"
        )
    items = []
    for row in table.rows:
        n = row.index
        if row.extra:
            raise ConfidantError(MORE_CELLS.format(where=f"CSV row {n}"))
        if all(not (v or "").strip() for v in row.data.values()):
            raise ConfidantError(f"CSV row {n} is empty")
        items.append(_item(row.data, kind, f"CSV row {n}", f"row-{n}"))
    return items


def _parse_jsonl(rows: Sequence[Row], kind: str) -> list[dict]:
    items: list[dict] = []
    for row in rows:
        n = row.number
        if "candidates" in row.data:
            items.extend(expand_question(_question(row.data, f"JSONL line {n}"), kind))
        else:
            items.append(_item(row.data, kind, f"JSONL line {n}", f"line-{n}"))
        if len(items) > MAX_ITEMS:
            break
    return items


def item_texts(item: Mapping[str, Any]) -> Sequence[str]:
    """The answer texts of an item: one for a single item, two for a pair."""
    if item.get("kind") == "pairwise":
        return (item["response_a"], item["response_b"])
    return (item["response"],)
