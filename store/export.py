"""CSV and JSONL export that spreadsheets cannot turn into formulas.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with
an apostrophe (OWASP's advice for CSV injection); numbers are written as numbers. The same holds
when the cell starts with one of those after Unicode compatibility normalisation (NFKC: the
full-width ``＝ ＋ － ＠`` and the small ``﹢ ﹣`` that some spreadsheets read as ``= + - @``) or
after leading whitespace (spaces, tabs, line breaks, the ideographic space). JSONL exports are
raw: nothing is neutralised there, as a JSON reader executes nothing. Exports go to a fresh
temporary directory, never next to the database.
"""

from __future__ import annotations

import csv
import json
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# Enough leading characters to see past whitespace to the first one that counts; a longer run of
# whitespace is neutralised anyway (nothing is lost: the apostrophe only marks text as text).
_HEAD = 64


def _formula_like(text: str) -> bool:
    if text.startswith(FORMULA_PREFIXES):
        return True
    head = unicodedata.normalize("NFKC", text[:_HEAD])
    if head.startswith(FORMULA_PREFIXES):
        return True
    rest = head.lstrip()
    return rest != head and (not rest and len(text) > _HEAD or rest.startswith(FORMULA_PREFIXES))


def neutralise(value: Any) -> Any:
    """The cell as written to CSV: formula-like text (see the module's docstring) gets a
    leading apostrophe; lists and dicts are written as JSON text, neutralised the same way."""
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    if isinstance(value, dict | list):
        return neutralise(json.dumps(value, ensure_ascii=False))
    return value


def export_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="confidant-export-"))


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """Write ``rows`` (dicts) with the given columns, UTF-8 with a BOM-free header, every cell
    neutralised."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([neutralise(row.get(c)) if row.get(c) is not None else "" for c in columns])
    return path


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
    return path


RUN_COLUMNS = ["id", "kind", "title", "model", "seed", "created", "duration", "annotator", "params"]


def export_runs_csv(store, kind: str | None = None) -> Path:
    """All runs (newest first) with their parameters, to a new temporary CSV file."""

    def q(db):
        where, args = ("kind = ?", [kind]) if kind else (None, [])
        return list(
            db["runs"].rows_where(
                where, args, select=", ".join(RUN_COLUMNS), order_by="created desc"
            )
        )

    rows = store.read(q)
    return write_csv(rows, RUN_COLUMNS, export_dir() / "confidant-runs.csv")
