"""CSV and JSONL export that spreadsheets cannot turn into formulas.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with
an apostrophe (OWASP's advice for CSV injection); numbers are written as numbers. The same holds
when the cell starts with one of those after Unicode compatibility normalisation (NFKC: the
full-width ``＝ ＋ － ＠`` and the small ``﹢ ﹣`` that some spreadsheets read as ``= + - @``) or
after leading whitespace (spaces, tabs, line breaks, the ideographic space). JSONL exports are
raw: nothing is neutralised there, as a JSON reader executes nothing. Exports go to a fresh
folder with an unguessable name under ``$TMPDIR/confidant-exports`` (0700), never next to the
database; folders older than an hour (``EXPORT_TTL_S``) are deleted.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from store.runs import run_conditions

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


EXPORT_TTL_S = 3600  # an export folder older than this is deleted by the next export


def _root_path() -> Path:
    return Path(tempfile.gettempdir()) / "confidant-exports"


def export_root() -> Path:
    """The folder every export folder lives in (``$TMPDIR/confidant-exports``, mode 0700)."""
    root = _root_path()
    root.mkdir(mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def export_dir() -> Path:
    """A new export folder with an unguessable name, readable by this process's user only
    (0700). Folders older than ``EXPORT_TTL_S`` are deleted first."""
    root = export_root()
    sweep_exports(root)
    folder = root / secrets.token_urlsafe(24)
    folder.mkdir(mode=0o700)
    return folder


def sweep_exports(root: Path | None = None, max_age_s: float = EXPORT_TTL_S, now=None) -> int:
    """Delete the export folders under ``root`` last changed more than ``max_age_s`` seconds
    ago; returns how many were deleted. A folder another process deletes first is skipped."""
    root = export_root() if root is None else Path(root)
    now = time.time() if now is None else now
    removed = 0
    for folder in root.iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """Write ``rows`` (dicts) with the given columns, UTF-8 with a BOM-free header, every cell
    neutralised."""
    with _open_new(path, newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([neutralise(row.get(c)) if row.get(c) is not None else "" for c in columns])
    return path


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    with _open_new(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def _open_new(path: Path, newline: str | None = None):
    """``path`` opened for writing text; inside the export folders it is created 0600."""
    path = Path(path)
    private = _root_path() in path.resolve().parents
    mode = 0o600 if private else 0o666  # the umask applies to both
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    return open(fd, "w", newline=newline, encoding="utf-8")


RUN_COLUMNS = ["id", "kind", "title", "model", "seed", "created", "duration", "annotator", "params"]
ANSWER_COLUMNS = [
    "run_id", "kind", "model", "created", "annotator", "title", "idx", "role", "text",
    "n_tokens", "total_logprob", "mean_logprob", "finish_reason", "logprob_source",
]  # fmt: skip
MAX_WIDE_ANSWERS = 50  # answer_1 … answer_50 in the wide form; every answer is in the long form

Measures = Mapping[str, Callable[[dict[str, Any]], Mapping[str, Any]]]


def export_runs_csv(
    store, kind: str | None = None, owner: str | None = None, measures: Measures | None = None
) -> Path:
    """The runs in wide form (newest first; only ``owner``'s when given), to a new temporary
    CSV file: one row per run with its parameters, its answers (``answer_1`` …) and one column
    per measure, read from the stored result by ``measures[kind](result)``."""
    return _runs_wide(store, kind, owner, measures or {}, export_dir() / "confidant-runs.csv")


def export_runs(
    store, kind: str | None = None, owner: str | None = None, measures: Measures | None = None
) -> tuple[Path, Path]:
    """The runs in wide form (:func:`export_runs_csv`) and their answers in long form (one row
    per run and answer: role, text, token count and log-probabilities), in one new folder."""
    folder = export_dir()
    wide = _runs_wide(store, kind, owner, measures or {}, folder / "confidant-runs.csv")
    conditions, args = run_conditions(kind, owner, "runs.")
    where = f"where {' and '.join(conditions)} " if conditions else ""
    cols = "run_id, kind, model, runs.created as created, annotator, title, idx, role, text, "
    cols += "n_tokens, total_logprob, mean_logprob, finish_reason, logprob_source"
    sql = (
        f"select {cols} from generations join runs on runs.id = generations.run_id {where}"
        "order by runs.created desc, run_id, idx"
    )
    rows = store.read(lambda db: list(db.query(sql, args)))
    return wide, write_csv(rows, ANSWER_COLUMNS, folder / "confidant-runs-answers.csv")


def _runs_wide(store, kind, owner, measures: Measures, path: Path) -> Path:
    conditions, args = run_conditions(kind, owner)

    def q(db):
        rows = []
        for run in db["runs"].rows_where(
            " and ".join(conditions) or None,
            args,
            select=", ".join([*RUN_COLUMNS, "result"]),
            order_by="created desc",
        ):
            run = dict(run)
            result = run.pop("result")
            read = measures.get(run["kind"])
            if read is not None:
                try:
                    found = read(json.loads(result or "{}"))
                except (KeyError, TypeError, ValueError):  # a result of an older shape
                    found = {}
                run.update({f"measure_{k}": v for k, v in found.items()})
            texts = db.execute(
                "select text from generations where run_id = ? order by idx", [run["id"]]
            ).fetchall()
            run["n_answers"] = len(texts)
            run.update({f"answer_{i + 1}": t for i, (t,) in enumerate(texts[:MAX_WIDE_ANSWERS])})
            rows.append(run)
        return rows

    rows = store.read(q)
    extra: dict[str, None] = {}
    for run in rows:
        for name in run:
            if name.startswith("measure_"):
                extra.setdefault(name)
    most = max((min(r["n_answers"], MAX_WIDE_ANSWERS) for r in rows), default=0)
    answers = [f"answer_{i + 1}" for i in range(most)]
    return write_csv(rows, [*RUN_COLUMNS, *extra, "n_answers", *answers], path)
