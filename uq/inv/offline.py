"""Inv-Entropy offline: the user's own inputs and responses from a CSV/JSONL table, no model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfidantError
from core.reader import MORE_CELLS, NOT_VALID_JSON, Row, Table, read_table, read_text
from uq.inv.options import (
    DEFAULT_BOOTSTRAPS,
    DEFAULT_SE_COSINE_THRESHOLD,
    DEFAULT_SIMILARITY,
    MAX_BOOTSTRAPS,
    MAX_INPUTS,
    MAX_OFFLINE_BYTES,
    MAX_RESPONSES,
    SIMILARITIES,
    Embed,
    check_positive_int,
    check_seed,
    check_similarity,
    check_sizes,
    check_text,
    model_name_of,
    semantic_entropy_rule,
)
from uq.inv.perturbation import Perturbation
from uq.inv.result import InvEntropyRun, measure_run
from uq.inv.similarity import similarity_statistics

# --------------------------------------------------------------------------- black box


_INPUT_COLUMNS = ("input", "question", "perturbation", "prompt")
_RESPONSE_COLUMNS = ("response", "answer", "output")
_ALIASES = {"input": _INPUT_COLUMNS[1:], "response": _RESPONSE_COLUMNS[1:]}


def _column(names: Sequence[str], wanted: Sequence[str], what: str, found: Sequence[str]) -> str:
    """``wanted[0]`` (the reader gave it to the first alias present), if ``names`` has it."""
    if wanted[0] not in names:
        raise ConfidantError(
            f"no {what}; name one of: {', '.join(wanted)} (found: "
            f"{', '.join(str(n) for n in found if n) or 'none'})"
        )
    return wanted[0]


def _rows_from_jsonl(rows: Sequence[Row]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for row in rows:
        record, number = row.data, row.number
        key = _column(list(record), _INPUT_COLUMNS, f"input field on line {number}", record)
        if "responses" in record:
            answers = record["responses"]
            if not isinstance(answers, list) or not answers:
                raise ConfidantError(f"line {number}: 'responses' must be a non-empty list")
        else:
            what = f"response field on line {number}"
            answers = [record[_column(list(record), _RESPONSE_COLUMNS, what, record)]]
        out.append(
            (
                check_text(record[key], f"the input on line {number}"),
                [check_text(a, f"a response on line {number}") for a in answers],
            )
        )
    return out


def _rows_from_csv(table: Table) -> list[tuple[str, list[str]]]:
    input_key = _column(table.columns, _INPUT_COLUMNS, "input column", table.header)
    response_key = _column(table.columns, _RESPONSE_COLUMNS, "response column", table.header)
    rows = []
    for row in table.rows:
        if row.extra:
            raise ConfidantError(MORE_CELLS.format(where=row.where))
        rows.append(
            (
                check_text(row.data.get(input_key), f"the input on {row.where}"),
                [check_text(row.data.get(response_key), f"the response on {row.where}")],
            )
        )
    return rows


def parse_offline_table(
    text: str | None = None, path: str | Path | None = None
) -> tuple[list[str], list[list[str]]]:
    """Perturbed questions and their responses from CSV or JSONL (pasted text or a file).

    CSV: a header with an input column (``input``, ``question``, ``perturbation`` or
    ``prompt``) and a response column (``response``, ``answer`` or ``output``), one response
    per row. JSONL: one object per line with an input field and ``response`` (one) or
    ``responses`` (a list). The first input listed is the original question; rows of the same
    input are its replicates, and every input needs the same number of them (at least two
    inputs). Returns (inputs, responses[input][replicate]); bad input raises
    :class:`ConfidantError` naming the line.
    """
    if (text is None or not str(text).strip()) and path is None:
        raise ConfidantError("paste a CSV or JSONL table, or upload a file")
    source: str | Path = str(text)
    name = "the table"
    if path is not None and (text is None or not str(text).strip()):
        source = Path(path)
        if not source.is_file():
            raise ConfidantError(f"no file at {source}")
        name = source.name
    text = read_text(source, name=name, max_bytes=MAX_OFFLINE_BYTES).strip()
    table = read_table(
        text,
        name=name,
        max_bytes=MAX_OFFLINE_BYTES,
        max_rows=MAX_RESPONSES,
        what="responses",
        aliases=_ALIASES,
        strict_quotes=True,
        json_message=NOT_VALID_JSON,
    )
    rows = _rows_from_jsonl(table.rows) if table.format == "jsonl" else _rows_from_csv(table)
    grouped: dict[str, list[str]] = {}
    for question, answers in rows:
        grouped.setdefault(question, []).extend(answers)
    if len(grouped) < 2:
        raise ConfidantError(
            "need the original question and at least one perturbation (two distinct inputs)"
        )
    if len(grouped) > MAX_INPUTS:
        raise ConfidantError(f"at most {MAX_INPUTS} distinct inputs, got {len(grouped)}")
    counts = {len(a) for a in grouped.values()}
    if len(counts) != 1:
        detail = ", ".join(f"{q[:40]!r}: {len(a)}" for q, a in grouped.items())
        raise ConfidantError(
            f"every input needs the same number of responses (replicates); got {detail}"
        )
    inputs, responses = list(grouped), list(grouped.values())
    if len(inputs) * len(responses[0]) > MAX_RESPONSES:
        raise ConfidantError(f"at most {MAX_RESPONSES} responses in all")
    return inputs, responses


def inv_entropy_offline(
    inputs: Sequence[str],
    responses: Sequence[Sequence[str]],
    embed: Embed | None = None,
    nli: Any = None,
    *,
    similarity: str = DEFAULT_SIMILARITY,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    seed: int = 0,
    se_cosine_threshold: float = DEFAULT_SE_COSINE_THRESHOLD,
) -> InvEntropyRun:
    """Every measure from user-supplied perturbed questions and responses; no generator.

    ``inputs[0]`` is the original question; ``responses[i]`` are input i's replicates (equal
    counts). Same statistics and measures as :func:`run_inv_entropy`; semantic entropy is the
    discrete (count-based) one, since black-box answers carry no likelihoods (§5 of the issue;
    Song et al. 2025 run GPT-3.5 as a black box the same way).
    """
    inputs = [check_text(x, f"input {i + 1}") for i, x in enumerate(inputs)]
    if len(inputs) < 2:
        raise ConfidantError("need the original question and at least one perturbation")
    if len(responses) != len(inputs):
        raise ConfidantError(f"{len(inputs)} inputs but {len(responses)} response lists")
    rows = [
        [check_text(a, f"response {k + 1} of input {i + 1}") for k, a in enumerate(row)]
        for i, row in enumerate(responses)
    ]
    if not rows[0] or len({len(r) for r in rows}) != 1:
        raise ConfidantError("every input needs the same, non-zero number of responses")
    similarity = check_similarity(similarity)
    bootstraps = check_positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS)
    seed = check_seed(seed)
    check_sizes(len(inputs), len(rows[0]), bootstraps)
    stats = similarity_statistics(
        [(inputs, [t for row in rows for t in row])],
        similarity,
        embed=embed,
        nli=nli,
        se_cosine_threshold=se_cosine_threshold,
    )[0]
    params = {
        "mode": "offline",
        "perturbation": "given",
        "perturbation_source": "user",
        "n": len(inputs) - 1,
        "replicates": len(rows[0]),
        "similarity": similarity,
        "similarity_rule": SIMILARITIES[similarity],
        "bootstraps": bootstraps,
        "seed": seed,
        "bootstrap_seed": seed,
        "se_cosine_threshold": se_cosine_threshold if similarity != "nli" else None,
        "se_rule": semantic_entropy_rule(similarity, se_cosine_threshold),
        "model": None,
        "embedding_model": model_name_of(embed),
        "nli_model": model_name_of(nli) if similarity == "nli" else None,
    }
    return measure_run(
        inputs[0],
        Perturbation(method="given", perturbations=inputs[1:], source="user"),
        rows,
        stats,
        bootstraps=bootstraps,
        seed=seed,
        params=params,
    )
