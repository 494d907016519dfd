"""Pasted answers (no model): every semantic-family measure that needs no model internals,
and the parsing of pasted/uploaded answer lists.
"""

from __future__ import annotations

import math
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfidantError
from core.reader import (
    format_from_name,
    normalise_keys,
    parse_json_list,
    read_lines,
    read_table,
    read_text,
)
from uq.semantic.entailment import GeneratorEntailment
from uq.semantic.measures import (
    NEEDS_LIKELIHOODS,
    NEEDS_PAIRS,
    AnswerStatistics,
    compute_measures,
    select_measures,
)
from uq.semantic.pair_stats import pair_statistics
from uq.semantic.pipeline import needed_statistics
from uq.semantic.result import SemanticEntropyResult
from uq.trace import clean_question

MAX_ANSWERS = 200
MAX_ANSWER_CHARS = 5_000


# --------------------------------------------------------------------------------------------
# Pasted answers (black-box)
# --------------------------------------------------------------------------------------------


def _check_answers(answers: Sequence[Any]) -> list[str]:
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise ConfidantError("give the answers as a list of strings")
    out = []
    for k, a in enumerate(answers, 1):
        if not isinstance(a, str):
            raise ConfidantError(f"answer {k} is not text: {a!r}")
        if "\x00" in a:
            raise ConfidantError(f"answer {k} contains a NUL character")
        a = a.strip()
        if not a:
            raise ConfidantError(f"answer {k} is empty")
        if len(a) > MAX_ANSWER_CHARS:
            raise ConfidantError(
                f"answer {k} is {len(a):,} characters long; the limit is {MAX_ANSWER_CHARS:,}"
            )
        out.append(a)
    if len(out) < 2:
        raise ConfidantError(f"paste at least 2 answers to compare, got {len(out)}")
    if len(out) > MAX_ANSWERS:
        raise ConfidantError(f"at most {MAX_ANSWERS} answers, got {len(out)}")
    return out


def _check_log_likelihoods(values: Sequence[Any] | None, n: int) -> list[float] | None:
    if values is None:
        return None
    out = []
    for k, v in enumerate(values, 1):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ConfidantError(f"log-likelihood {k} is not a number: {v!r}") from None
        if not math.isfinite(x):
            raise ConfidantError(f"log-likelihood {k} must be finite, got {v!r}")
        if x > 1e-6:
            raise ConfidantError(f"log-likelihood {k} must be ≤ 0 (a log-probability), got {x}")
        out.append(min(x, 0.0))
    if len(out) != n:
        raise ConfidantError(f"got {len(out)} log-likelihoods for {n} answers; give one each")
    return out


def score_pasted_answers(
    answers: Sequence[str],
    entailment,
    *,
    question: str = "",
    log_likelihoods: Sequence[float] | None = None,
    strict: bool = True,
    measures: Sequence[str] | None = None,
    cache: MutableMapping[tuple[str, str], int] | None = None,
) -> SemanticEntropyResult:
    """Every measure that needs no model internals, for answers the user supplies.

    Discrete SE, number of sets, lexical similarity, EigV/Degree/Eccentricity and KLE always;
    likelihood SE, the Kuhn variant and (length-normalised) predictive entropy when
    ``log_likelihoods`` (one per answer, used as given for both the per-answer and the
    total log-likelihood) are supplied. ``question`` (optional) is prepended for NLI.
    """
    texts = _check_answers(answers)
    lls = _check_log_likelihoods(log_likelihoods, len(texts))
    question = clean_question(question) if question and str(question).strip() else ""
    if isinstance(entailment, GeneratorEntailment):
        raise ConfidantError("pasted answers are compared with NLI or embeddings")
    chosen = select_measures(measures)
    available = {NEEDS_PAIRS} | ({NEEDS_LIKELIHOODS} if lls is not None else set())
    started = time.perf_counter()
    pairs = pair_statistics(
        question,
        texts,
        entailment,
        strict=strict,
        full_matrix=NEEDS_PAIRS in needed_statistics(chosen),
        cache=cache,
    )
    timings = {"entailment": time.perf_counter() - started}
    stats = AnswerStatistics(
        texts=texts,
        cluster_ids=pairs.clustering.cluster_ids,
        log_likelihoods=lls,
        total_log_likelihoods=lls,
        similarity=pairs.similarity,
        kernel_weights=pairs.kernel_weights,
    )
    values = compute_measures(stats, chosen, available)
    return SemanticEntropyResult(
        question=question,
        source="pasted",
        model=None,
        params={
            "n": len(texts),
            "strict": bool(strict),
            "measures": [m.key for m in chosen],
            **entailment.describe(),
        },
        texts=texts,
        clustering=pairs.clustering,
        measures=values,
        log_likelihoods=lls,
        likelihood_source="given" if lls is not None else None,
        similarity=pairs.similarity.tolist() if pairs.similarity is not None else None,
        work={
            "generate_calls": 0,
            "entailment_pairs": pairs.model_pairs,
            "entailment_calls": pairs.model_calls,
            "cached_pairs": pairs.cached_pairs,
            "embedded_texts": pairs.embedded,
        },
        timings=timings,
    )


_ALIASES = {
    "answer": ("text", "response"),
    "log_likelihood": ("loglik", "logprob", "log_prob"),
}
# Pasted text and uploaded files alike: room for MAX_ANSWERS answers of MAX_ANSWER_CHARS
# characters at 4 bytes each (the longest UTF-8); the reader stops at this many bytes.
MAX_ANSWERS_BYTES = 4_000_000
MAX_ANSWER_FILE_BYTES = MAX_ANSWERS_BYTES


def _from_records(records: list[Any], where: str) -> tuple[list[str], list[float] | None]:
    if all(isinstance(r, str) for r in records):
        return list(records), None
    if not all(isinstance(r, dict) for r in records):
        raise ConfidantError(f"{where}: give strings, or objects with an 'answer' field")
    answers, lls = [], []
    for k, r in enumerate(records, 1):
        r = normalise_keys(r, _ALIASES)
        a = r.get("answer")
        if a is None:
            raise ConfidantError(f"{where}: item {k} has no 'answer' field")
        answers.append(a)
        lls.append(r.get("log_likelihood"))
    given = [v not in (None, "") for v in lls]
    if any(given) and not all(given):
        raise ConfidantError(f"{where}: give a log-likelihood for every answer or for none")
    return answers, (lls if all(given) else None)


def parse_answers_text(
    text: str | None, name: str | None = None
) -> tuple[list[str], list[float] | None]:
    """Answers typed or pasted: a JSON list (of strings, or of objects with "answer" and an
    optional "log_likelihood"), else one answer per non-blank line. Returns the raw answers
    and log-likelihoods (None when not given); :func:`score_pasted_answers` validates them.
    ``name`` names the file the text came from in messages (else "the pasted text/list")."""
    if text is None or not str(text).strip():
        raise ConfidantError("Paste some answers first (one per line, or a JSON list).")
    text = read_text(str(text), name=name or "the pasted text", max_bytes=MAX_ANSWERS_BYTES)
    stripped = text.strip()
    if stripped.startswith("["):
        where = name or "the pasted list"
        records = parse_json_list(stripped, where, max_items=MAX_ANSWERS, what="answers")
        return _from_records(records, name or "JSON list")
    lines = read_lines(text, name=name or "the pasted text", max_lines=MAX_ANSWERS, what="answers")
    return lines, None


def read_answers_file(path: str | Path) -> tuple[list[str], list[float] | None]:
    """Answers from a CSV (header with an "answer" column and an optional "log_likelihood")
    or a JSONL file (one object or string per line)."""
    path = Path(path)
    suffixes = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
    suffixes |= {".tsv": "tsv", ".txt": "lines"}
    fmt = format_from_name(path.name, suffixes, ".csv, .tsv, .jsonl or .txt")
    text = read_text(path, max_bytes=MAX_ANSWER_FILE_BYTES)
    if fmt == "lines" or (fmt == "json" and text.strip().startswith("[")):
        return parse_answers_text(text, path.name)
    table = read_table(
        text,
        name=path.name,
        fmt="jsonl" if fmt == "json" else fmt,
        max_bytes=MAX_ANSWER_FILE_BYTES,
        max_rows=MAX_ANSWERS,
        what="answers",
        aliases=_ALIASES,
        objects_only=False,
    )
    records = [row.data for row in table.rows]
    if table.format == "jsonl":
        if not records:
            raise ConfidantError(f"{path.name} has no answers")
        return _from_records(records, path.name)
    if not records:
        raise ConfidantError(f"{path.name} has a header but no answers")
    if "answer" not in table.columns:
        raise ConfidantError(f"{path.name} needs an 'answer' column")
    return _from_records(records, path.name)
