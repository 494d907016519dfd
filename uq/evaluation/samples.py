"""Your own generations (a samples file): the harness scores samples generated elsewhere, with
no generator.

One question per JSONL line (or CSV row):

- ``question`` (text), ``gold`` (a list of texts or one text; also ``answers``), ``id``
  (optional; default the 1-based row);
- ``samples``: a list of texts, or of objects ``{"text", "token_logprobs"?, "tokens"?}``
  (log-probabilities under the raw model distribution, one per generated token; give them for
  every sample of a question or for none);
- ``reference`` (optional): the low-temperature/greedy answer, a text or an object
  ``{"text", "token_logprobs"?, "token_entropies"?, "tokens"?}``. The reference answer is the
  one judged against the gold answers; without it, the first sample is.

In CSV, ``samples`` is a JSON list in one cell, ``gold`` a JSON list or ``a|b|c``, and
``reference`` a text or a JSON object. Every measure whose statistics are present is computed:
the likelihood measures when the samples have ``token_logprobs``, the reference measures when
the reference has token statistics; the rest get no value and the note "needs model internals".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.base import Generation, TokenRecord
from core.errors import ConfidantError
from core.reader import format_from_name, parse_json, read_table, read_text
from uq.evaluation.datasets import MAX_FILE_BYTES, MAX_QUESTIONS, EvalItem, _golds
from uq.semantic.cocoa import reference_similarity
from uq.semantic.measures import (
    NEEDS_LIKELIHOODS,
    NEEDS_PAIRS,
    NEEDS_REFERENCE,
    NEEDS_REFERENCE_SIMILARITY,
    NEEDS_SIMILARITY,
    AnswerStatistics,
    compute_measures,
    select_measures,
)
from uq.semantic.pair_stats import pair_statistics
from uq.semantic.relevance import relevance_statistics
from uq.semantic.result import SemanticEntropyResult
from uq.trace import clean_question

MAX_SAMPLES = 256
MAX_TEXT_CHARS = 20_000
MAX_TOKENS = 8_192
# A token log-probability of a real model lies far above this (float32 underflows near −104).
MIN_LOGPROB = -1e4
MAX_ENTROPY = 1e3
NEEDS_INTERNALS = "needs model internals"
_SAMPLE_FIELDS = ("text", "token_logprobs", "tokens")
_REFERENCE_FIELDS = ("text", "token_logprobs", "token_entropies", "tokens")


@dataclass
class SampledItem(EvalItem):
    """A question with its gold answers and the user's own samples (plain dicts of
    :data:`_SAMPLE_FIELDS`) and optional reference answer (a dict of :data:`_REFERENCE_FIELDS`)."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, Any] | None = None


# --------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------


def _numbers(value: Any, where: str, low: float, high: float) -> list[float]:
    if not isinstance(value, list):
        raise ConfidantError(f"{where} must be a list of numbers")
    if len(value) > MAX_TOKENS:
        raise ConfidantError(f"{where} has {len(value):,} tokens; the limit is {MAX_TOKENS:,}")
    out = []
    for k, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfidantError(f"{where}[{k}] is not a number: {str(v)[:40]!r}")
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x) or not low - 1e-6 <= x <= high + 1e-6:
            raise ConfidantError(
                f"{where}[{k}] = {str(v)[:40]} is out of range [{low:g}, {high:g}]"
            )
        out.append(min(max(x, low), high))
    return out


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfidantError(f"{where} must be text, got {type(value).__name__}")
    if len(value) > MAX_TEXT_CHARS:
        raise ConfidantError(
            f"{where} is {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,}"
        )
    return value.strip()


def _answer(value: Any, where: str, fields: Sequence[str]) -> dict[str, Any]:
    """One sample or reference as ``{field: value or None}``, every field checked."""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise ConfidantError(f"{where} must be a text or an object with a 'text' field")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfidantError(
            f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(fields)}"
        )
    if "text" not in value:
        raise ConfidantError(f"{where}: missing 'text'")
    out: dict[str, Any] = dict.fromkeys(fields)
    out["text"] = _text(value["text"], f"{where}.text")
    lengths = {}
    if value.get("token_logprobs") is not None:
        out["token_logprobs"] = _numbers(
            value["token_logprobs"], f"{where}.token_logprobs", MIN_LOGPROB, 0.0
        )  # noqa: E501
        lengths["token_logprobs"] = len(out["token_logprobs"])
    if value.get("token_entropies") is not None:
        out["token_entropies"] = _numbers(
            value["token_entropies"], f"{where}.token_entropies", 0.0, MAX_ENTROPY
        )  # noqa: E501
        lengths["token_entropies"] = len(out["token_entropies"])
    if value.get("tokens") is not None:
        tokens = value["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ConfidantError(f"{where}.tokens must be a list of texts")
        if len(tokens) > MAX_TOKENS:
            raise ConfidantError(f"{where}.tokens has more than {MAX_TOKENS:,} tokens")
        out["tokens"] = list(tokens)
        lengths["tokens"] = len(tokens)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} {n}" for k, n in lengths.items())
        raise ConfidantError(f"{where}: one entry per token in each list, got {shown}")
    return out


def _samples(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = parse_json(value, f"{where}: the samples cell") if value.strip() else []
    if not isinstance(value, list):
        raise ConfidantError(f"{where}: 'samples' must be a list of texts or objects")
    if not value:
        raise ConfidantError(f"{where}: 'samples' is empty; give at least one sample")
    if len(value) > MAX_SAMPLES:
        raise ConfidantError(f"{where}: {len(value)} samples; the limit is {MAX_SAMPLES}")
    out = [_answer(s, f"{where}, samples[{k}]", _SAMPLE_FIELDS) for k, s in enumerate(value)]
    given = [s["token_logprobs"] is not None for s in out]
    if any(given) and not all(given):
        k = given.index(not given[0])
        raise ConfidantError(
            f"{where}: give token_logprobs for every sample or for none (samples[0] "
            f"{'has' if given[0] else 'has none'}, samples[{k}] {'has' if given[k] else 'has none'})"
        )
    return out


def _reference(value: Any, where: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = parse_json(value, f"{where}: the reference cell")
    return _answer(value, f"{where}, reference", _REFERENCE_FIELDS)


def _read(text: str, fmt: str, name: str):
    return read_table(
        text, name=name, fmt=fmt, max_bytes=MAX_FILE_BYTES, max_rows=MAX_QUESTIONS,
        what="questions", aliases={"gold": ("answers", "golds", "answer")},
    )  # fmt: skip


def parse_samples(text: str, fmt: str, name: str = "samples file") -> list[SampledItem]:
    """Items with samples from the text of a JSONL or CSV samples file (schema: module doc)."""
    if fmt not in ("jsonl", "csv"):
        raise ConfidantError(f"unknown samples format {fmt!r}; use a .jsonl or .csv file")
    try:
        return _items(_read(text, fmt, name), fmt, name)
    except ValueError as exc:  # an integer too long for Python to convert (ReaderError is not one)
        raise ConfidantError(f"{name} is not JSON: it holds a number too long to read") from exc


def _items(table, fmt: str, name: str) -> list[SampledItem]:
    if fmt == "csv" and table.rows and not {"question", "gold", "samples"} <= set(table.columns):
        raise ConfidantError(f"{name} needs the columns 'question', 'gold' and 'samples'")
    if not table.rows:
        raise ConfidantError(f"{name} has no questions")
    items: list[SampledItem] = []
    seen: set[str] = set()
    for row in table.rows:
        where, obj = f"{name}, {row.where}", row.data
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ConfidantError(f"{where}: missing or empty 'question'")
        if obj.get("gold") is None:
            raise ConfidantError(f"{where}: missing 'gold'")
        gold = obj["gold"]
        golds = _golds([gold] if isinstance(gold, str) and fmt == "jsonl" else gold, where)
        if obj.get("samples") is None:
            raise ConfidantError(f"{where}: missing 'samples'")
        qid = obj.get("id")
        qid = str(row.index) if qid in (None, "") else str(qid).strip()
        if qid in seen:
            raise ConfidantError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        items.append(
            SampledItem(
                id=qid,
                question=question.strip(),
                answers=golds,
                samples=_samples(obj["samples"], where),
                reference=_reference(obj.get("reference"), where),
            )
        )
    return items


def load_samples(path: str | Path) -> list[SampledItem]:
    """Items with samples from a ``.jsonl`` or ``.csv`` samples file (:func:`parse_samples`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfidantError(f"no samples file at {path}")
    fmt = format_from_name(
        path.name, {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}, ".jsonl or .csv"
    )
    return parse_samples(read_text(path, max_bytes=MAX_FILE_BYTES), fmt, path.name)


# --------------------------------------------------------------------------------------------
# Writing one (e.g. from the harness's own sampling) and scoring
# --------------------------------------------------------------------------------------------


def answer_record(gen: Generation, *, entropies: bool = False) -> dict[str, Any]:
    """A sample (or, with ``entropies``, a reference) object of the schema from a generation."""
    out: dict[str, Any] = {
        "text": gen.text,
        "token_logprobs": [t.logprob for t in gen.tokens],
        "tokens": [t.text for t in gen.tokens],
    }
    if entropies:
        out["token_entropies"] = [t.entropy for t in gen.tokens]
    return out


def samples_record(item: EvalItem, result: SemanticEntropyResult) -> dict[str, Any]:
    """One line of a samples file from a semantic-entropy result of ``item``'s question."""
    record: dict[str, Any] = {
        "id": item.id,
        "question": item.question,
        "gold": list(item.answers),
        "samples": [answer_record(g) for g in result.samples],
    }
    if result.reference is not None:
        record["reference"] = answer_record(result.reference, entropies=True)
    return record


def write_samples_file(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write samples records as JSONL (one object per line, UTF-8)."""
    path = Path(path)
    lines = [json.dumps(r, ensure_ascii=False, allow_nan=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _generation(answer: dict[str, Any]) -> Generation:
    lps, ents, toks = answer["token_logprobs"], answer.get("token_entropies"), answer["tokens"]
    n = len(next(v for v in (lps, ents, toks, []) if v is not None))
    tokens = [
        TokenRecord(
            text=toks[k] if toks is not None else "",
            logprob=lps[k] if lps is not None else math.nan,
            entropy=ents[k] if ents is not None else math.nan,
            varentropy=math.nan,
        )
        for k in range(n)
    ]
    return Generation(
        text=answer["text"], tokens=tokens, finish_reason="stop", logprob_source="given"
    )  # noqa: E501


def _has_token_stats(answer: dict[str, Any] | None) -> bool:
    return answer is not None and any(answer.get(k) is not None for k in _REFERENCE_FIELDS[1:])


def check_samples_run(entailment: Any, settings: Any, providers: Sequence[Any]) -> None:
    """What a run without a generator cannot do, refused before anything runs."""
    from uq.semantic.entailment import GeneratorEntailment

    if entailment is None or isinstance(entailment, GeneratorEntailment):
        raise ConfidantError("your own samples are compared with NLI or embeddings")
    if settings.method == "judge":
        raise ConfidantError("the LLM judge needs a generator; choose another correctness")
    if settings.p_true_fewshot or settings.few_shot:
        raise ConfidantError("few-shot examples need a generator")
    if providers:
        raise ConfidantError("measure providers need a generator")


def score_given_samples(item: SampledItem, entailment: Any, settings: Any) -> SemanticEntropyResult:
    """Every semantic-family measure the item's samples allow: pairs and clusters always, the
    likelihood measures with the samples' log-probabilities (mean and total token log-prob, as
    the pipeline's raw distribution), the reference measures with the reference's token
    statistics; every other measure gets no value and a "needs model internals" note."""
    if not isinstance(item, SampledItem):
        raise ConfidantError("an evaluation without a generator needs samples for each question")
    question = clean_question(item.question)
    texts = [s["text"] for s in item.samples]
    chosen = select_measures(settings.measures)
    full = any(NEEDS_PAIRS in m.needs for m in chosen)
    pairs = pair_statistics(question, texts, entailment, strict=settings.strict, full_matrix=full)
    gens = [_generation(s) for s in item.samples]
    has_lls = all(s["token_logprobs"] is not None for s in item.samples)
    reference = _generation(item.reference) if _has_token_stats(item.reference) else None
    available = {NEEDS_PAIRS} | ({NEEDS_LIKELIHOODS} if has_lls else set())
    available |= {NEEDS_REFERENCE} if reference is not None else set()
    stats = AnswerStatistics(
        texts=texts,
        cluster_ids=pairs.clustering.cluster_ids,
        log_likelihoods=[g.mean_logprob for g in gens] if has_lls else None,
        total_log_likelihoods=[g.total_logprob for g in gens] if has_lls else None,
        similarity=pairs.similarity,
        kernel_weights=pairs.kernel_weights,
        reference=reference,
    )
    with_tokens = [*item.samples, item.reference or {}]
    if (
        has_lls
        and reference is not None
        and all(a.get("tokens") is not None for a in with_tokens)
        and any(NEEDS_SIMILARITY in m.needs for m in chosen)
    ):
        # SAR and semantic density: token relevances and similarities by the same model,
        # from the given tokens (as the pipeline computes them from generated ones).
        relevance = relevance_statistics(question, gens, reference, entailment)
        if relevance is not None:
            available.add(NEEDS_SIMILARITY)
            stats.sample_token_logprobs = [[t.logprob for t in g.tokens] for g in gens]
            stats.sample_token_relevance = relevance.sample_token_relevance
            stats.reference_token_relevance = relevance.reference_token_relevance
            stats.answer_similarity = relevance.answer_similarity
            stats.reference_kernel = relevance.reference_kernel
    if item.reference is not None and any(NEEDS_REFERENCE_SIMILARITY in m.needs for m in chosen):
        # CoCoA: the given reference answer's similarity to each sample, one batched call.
        stats.reference_similarity, _ = reference_similarity(
            question, item.reference["text"].strip(), texts, entailment
        )
        available.add(NEEDS_REFERENCE_SIMILARITY)
    values = compute_measures(stats, chosen, available)
    ref = item.reference
    partial = ref is not None and any(ref.get(k) is None for k in _REFERENCE_FIELDS[1:])
    for m in chosen:
        entry = values[m.key]
        lacking = m.needs - available
        if entry["value"] is None and (lacking or (NEEDS_REFERENCE in m.needs and partial)):
            why = entry["note"] if lacking else "the reference's token log-probs or entropies"
            entry["note"] = f"{NEEDS_INTERNALS}: {why.removeprefix('needs ')}"
    return SemanticEntropyResult(
        question=question,
        source="samples",
        model=None,
        params={"n": len(texts), "strict": bool(settings.strict),
                "measures": [m.key for m in chosen], **entailment.describe()},
        texts=texts,
        clustering=pairs.clustering,
        measures=values,
        samples=gens if has_lls else [],
        reference=reference if reference is not None else (
            Generation(text=ref["text"], tokens=[]) if ref else None
        ),
        log_likelihoods=stats.log_likelihoods,
        likelihood_source="given (mean token log-probability)" if has_lls else None,
        similarity=pairs.similarity.tolist() if pairs.similarity is not None else None,
        work={"generate_calls": 0, "entailment_pairs": pairs.model_pairs,
              "entailment_calls": pairs.model_calls},
    )  # fmt: skip


def given_answer(item: SampledItem) -> str:
    """The answer judged against the gold answers: the reference's text, else the first sample's."""
    return (item.reference["text"] if item.reference else item.samples[0]["text"]).strip()
