"""Question-answer datasets from elsewhere: a Hugging Face dataset by name and split, or a local
parquet file, each with a column mapping (which column is the question, which the gold answers).

A gold column may hold one text, a list of texts, or a dict holding them (SQuAD's
``{"text": [...]}``, TriviaQA's ``{"aliases": [...], "value": ...}``); a dotted name such as
``answers.text`` reads inside a dict column.

    items = load_hf_dataset("rajpurkar/squad", "validation", question_column="question",
                            gold_column="answers.text", limit=100)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfidantError
from uq.evaluation.datasets import MAX_QUESTIONS, EvalItem

_GOLD_KEYS = ("text", "aliases", "normalized_aliases", "value", "answer")


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (as parquet and ``datasets`` give them) as lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _cell(record: Mapping[str, Any], column: str, where: str) -> Any:
    value: Any = record
    for part in column.split("."):
        value = _plain(value)
        if not isinstance(value, Mapping) or part not in value:
            shown = ", ".join(map(str, list(record)[:20]))
            raise ConfidantError(f"{where}: no column {column!r} (the columns are {shown})")
        value = value[part]
    return _plain(value)


def _gold_texts(value: Any, where: str) -> list[str]:
    if isinstance(value, Mapping):
        found = [value[k] for k in _GOLD_KEYS if value.get(k) not in (None, "", [])]
        if not found:
            raise ConfidantError(f"{where}: the gold column holds no {' or '.join(_GOLD_KEYS)}")
        value = _plain(found[0])
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfidantError(f"{where}: the gold answers must be texts, got {str(value)[:60]!r}")
    golds = [str(v).strip() for v in value if str(v).strip()]
    if not golds:
        raise ConfidantError(f"{where}: no gold answer")
    return list(dict.fromkeys(golds))


def items_from_records(
    records: Iterable[Mapping[str, Any]],
    *,
    question_column: str = "question",
    gold_column: str = "answers",
    id_column: str | None = None,
    limit: int | None = None,
    name: str = "the dataset",
) -> list[EvalItem]:
    """Items from mapping records: the question, gold and (optional) id columns by name."""
    items: list[EvalItem] = []
    seen: set[str] = set()
    for index, record in enumerate(records, 1):
        if limit is not None and len(items) >= limit:
            break
        if len(items) >= MAX_QUESTIONS:
            raise ConfidantError(f"more than {MAX_QUESTIONS:,} questions in {name}; use a limit")
        where = f"{name}, row {index}"
        question = _cell(record, question_column, where)
        if not isinstance(question, str) or not question.strip():
            raise ConfidantError(f"{where}: the question column {question_column!r} is empty")
        qid = str(_cell(record, id_column, where)).strip() if id_column else str(index)
        if qid in seen:
            raise ConfidantError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        golds = _gold_texts(_cell(record, gold_column, where), where)
        items.append(EvalItem(id=qid, question=question.strip(), answers=golds))
    if not items:
        raise ConfidantError(f"{name} has no questions")
    return items


def _hub_loader() -> Callable[..., Any]:
    try:
        from datasets import load_dataset
    except ImportError:
        raise ConfidantError(
            "loading a Hugging Face dataset needs the `datasets` package, which is not "
            "installed: pip install datasets (or download the split as parquet and use it)"
        ) from None
    return load_dataset


def load_hf_dataset(
    name: str,
    split: str = "validation",
    *,
    question_column: str = "question",
    gold_column: str = "answers",
    id_column: str | None = None,
    config: str | None = None,
    limit: int | None = None,
    loader: Callable[..., Any] | None = None,
) -> list[EvalItem]:
    """Items of a Hugging Face dataset's ``split`` (``loader`` defaults to
    ``datasets.load_dataset``; a clear error when that package is missing or the hub cannot be
    reached)."""
    if not name or not str(name).strip():
        raise ConfidantError("name a Hugging Face dataset, e.g. rajpurkar/squad")
    load = loader or _hub_loader()
    try:
        rows = load(name, config, split=split) if config else load(name, split=split)
    except Exception as exc:  # noqa: BLE001 - the hub, the network and the name all fail here
        raise ConfidantError(
            f"could not load the Hugging Face dataset {name!r} (split {split!r}): "
            f"{type(exc).__name__}: {str(exc)[:300]} — is the hub reachable (HF_HUB_OFFLINE "
            "unset, network up) and the name and split right?"
        ) from None
    return items_from_records(
        rows, question_column=question_column, gold_column=gold_column, id_column=id_column,
        limit=limit, name=f"{name} ({split})",
    )  # fmt: skip


def load_parquet(
    path: str | Path,
    *,
    question_column: str = "question",
    gold_column: str = "answers",
    id_column: str | None = None,
    limit: int | None = None,
) -> list[EvalItem]:
    """Items of a local parquet file (pandas with pyarrow)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfidantError(f"no parquet file at {path}")
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ConfidantError(
            f"reading parquet needs pyarrow (pip install pyarrow): {exc}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a file that is not parquet fails in many ways
        raise ConfidantError(f"cannot read {path.name} as parquet: {str(exc)[:200]}") from None
    if id_column is None and "id" in frame.columns:
        id_column = "id"
    return items_from_records(
        frame.to_dict("records"), question_column=question_column, gold_column=gold_column,
        id_column=id_column, limit=limit, name=path.name,
    )  # fmt: skip
