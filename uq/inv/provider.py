"""Inv-Entropy on a dataset: per-question measures, AUROC / PRR against gold answers, and TSU.

For each question of a JSONL or CSV file (``id``, ``question``, ``answers``; the format of
:func:`uq.evaluation.datasets.load_dataset`) the Inv-Entropy pipeline runs (questions in batches: one
paraphrase call and one answering call per batch), a greedy reference answer to the original
question is scored against the gold answers (SQuAD F1 ≥ 0.5 by default,
:mod:`uq.evaluation.correctness`), and every measure of :data:`uq.inv.measures.MEASURES`
(Inv-Entropy, its variants and the semantic entropy of the same answers) gets AUROC and PRR with
bootstrap intervals (:func:`uq.evaluation.metrics.evaluation_metrics`). With ``--tsu`` the same perturbations are
answered again at every temperature of the grid and each measure's TSU is reported (Song et al.
2025, eq. 7; no labels needed).

    python -m cli inv-evaluate --data data/qa/trivia_small.jsonl --model tiny-random \
        --out results/inv --limit 10 --tsu

The harness :mod:`uq.evaluation.harness` takes the same measures as extra columns through
:func:`register_inv_entropy` (a measure provider named "inv").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from backends.base import LanguageModel, SamplingParams
from core.errors import ConfidantError
from uq.evaluation.metrics import evaluation_metrics
from uq.inv.options import (
    DEFAULT_ANSWER_INSTRUCTION,
    Embed,
)
from uq.inv.pipeline import answer_prompt, clean_response, run_inv_entropy
from uq.inv.result import measure_values

CORRECTNESS = {
    "squad_f1": ("squad_f1", 0.5),
    "em": ("exact_match", 1.0),
    "rougeL": ("rouge_l", 0.3),
}
TABLE_METRICS = ("auroc", "prr_normalised", "prr")


def _question_of(record: Any) -> str:
    question = (
        record.get("question") if isinstance(record, dict) else getattr(record, "question", None)
    )
    if not isinstance(question, str) or not question.strip():
        raise ConfidantError("the record has no 'question' text")
    return question


def inv_entropy_record(
    record: Any,
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    seed: int = 0,
    **options: Any,
) -> dict[str, float | None]:
    """Every Inv-Entropy measure for one question record (a dict or an object with
    ``question``), by key of :data:`uq.inv.measures.MEASURES`: the harness's column names
    (:func:`uq.inv.result.measure_values`).

    ``options`` go to :func:`uq.inv.pipeline.run_inv_entropy` (perturbation, n, replicates,
    similarity, bootstraps, temperature, ...). Song et al. (2025), Algorithm 1.
    """
    run = run_inv_entropy(_question_of(record), lm, embed, nli, seed=seed, **options)
    return measure_values(run)


def make_inv_entropy_provider(
    embed: Embed | None, nli: Any = None, **options: Any
) -> Callable[[Any], dict[str, float | None]]:
    """A measure provider for :func:`uq.evaluation.harness.register_measure_provider`.

    It reads the question, the generator and the question's seed from the harness's
    ``QuestionContext`` and returns :func:`inv_entropy_record`'s values.
    """

    def provider(context: Any) -> dict[str, float | None]:
        return inv_entropy_record(
            context.item, context.lm, embed, nli, seed=int(context.seed), **options
        )

    return provider


def register_inv_entropy(embed: Embed | None, nli: Any = None, **options: Any) -> str:
    """Add the Inv-Entropy measures to :mod:`uq.evaluation.harness`'s tables as columns ``inv.<measure>``.

    The provider's version hashes ``options``, so the harness's cache recomputes questions when
    they change. Returns the version.
    """
    from uq.evaluation.harness import register_measure_provider

    payload = json.dumps(options, sort_keys=True, default=str)
    version = "1-" + hashlib.sha256(payload.encode()).hexdigest()[:10]
    register_measure_provider(
        "inv", make_inv_entropy_provider(embed, nli, **options), version=version
    )
    return version


def reference_answers(
    lm: LanguageModel,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 32,
    instruction: str = DEFAULT_ANSWER_INSTRUCTION,
) -> list[str]:
    """The greedy answer to each original question (first line), in one batched call; this is
    the answer whose correctness the measures should predict."""
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    replies = lm.sample_batch([answer_prompt(q, instruction) for q in questions], params)
    return [clean_response(reply[0].text) for reply in replies]


def score_rows(
    rows: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, dict | None]]:
    """AUROC, AURAC, rejection accuracies and PRR (raw and normalised) with bootstrap intervals
    for every measure column of ``rows`` (each with ``measures``, ``correct`` and ``score``),
    over the questions where the measure has a value (:func:`uq.evaluation.metrics.evaluation_metrics`).
    """
    names = list(dict.fromkeys(name for row in rows for name in row["measures"]))
    table: dict[str, dict[str, dict | None]] = {}
    for name in names:
        used = [r for r in rows if r["measures"].get(name) is not None]
        if len(used) < 2:
            continue
        metrics = evaluation_metrics(
            [r["measures"][name] for r in used],
            [r["correct"] for r in used],
            [r["score"] for r in used],
            n_boot=n_boot,
            seed=seed,
        )
        table[name] = {k: (v.to_dict() if v is not None else None) for k, v in metrics.items()}
    return table
