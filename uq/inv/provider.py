"""Inv-Entropy as a measure provider of the evaluation harness, and its dataset views.

:class:`InvEntropyProvider` gives the harness (:func:`uq.evaluation.harness.run_evaluation`,
``providers=[...]``) every Inv-Entropy measure — Inv-Entropy, NI-Entropy, NR-Inv-Entropy,
WD-px-py, MAX-py-x and the semantic entropy of the same answers: every entry of
:data:`uq.inv.measures.MEASURES` — as columns ``inv.<measure>``
(Song et al. 2025, Algorithm 1). :class:`GreedyReference` is the reference answerer of a run
without the semantic-entropy pipeline: the greedy answer to the original question, first line.
``python -m cli inv-evaluate`` runs the harness with both; ``python -m cli evaluate
--inv-entropy`` puts the provider beside semantic entropy.

    python -m cli inv-evaluate --data data/qa/trivia_small.jsonl --model tiny-random \\
        --out results/inv --limit 10 --tsu
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import LanguageModel, SamplingParams
from core.errors import ConfidantError
from uq.evaluation.harness import EvalSettings, EvaluationResult, score_measures
from uq.evaluation.providers import ProviderValues, QuestionContext
from uq.inv.measures import MEASURES
from uq.inv.options import (
    DEFAULT_ANSWER_INSTRUCTION,
    Embed,
    model_name_of,
)
from uq.inv.perturbation import NoUsableParaphraseError, Perturbation
from uq.inv.pipeline import answer_prompt, clean_response, run_inv_entropy, run_inv_entropy_batch
from uq.inv.result import InvEntropyRun, measure_values

CORRECTNESS_CHOICES = ("squad_f1", "em", "rougeL")
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


def _values(run: InvEntropyRun) -> ProviderValues:
    p = run.perturbation
    details = {
        "perturbations": list(p.perturbations),
        "perturbation_source": p.source,
        "perturbation_method": p.method,
        "perturbation_seed": p.seed,
    }
    return ProviderValues(measure_values(run), details)


@dataclass
class InvEntropyProvider:
    """The Inv-Entropy measures of each question, for the harness (columns ``inv.<measure>``).

    ``options`` go to :func:`uq.inv.pipeline.run_inv_entropy_batch` (perturbation, n,
    replicates, similarity, bootstraps, temperature, ...). Without ``seed`` in ``options`` each
    question runs alone with the harness's seed for it (a resumed run reproduces every value);
    with ``seed`` the harness's batch of questions runs as one batched pipeline call with that
    seed (one paraphrase call and one answering call per batch; the values depend on which
    questions share a batch). The version hashes the options and the embedding and NLI
    models' ids, so the harness's cache recomputes questions when they change.
    """

    embed: Embed | None
    nli: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "inv"

    @property
    def version(self) -> str:
        # The models decide the values too: another embedding or NLI model must miss the cache.
        models = {
            "embedding_model": model_name_of(self.embed),
            "nli_model": model_name_of(self.nli),
        }
        payload = json.dumps({**self.options, **models}, sort_keys=True, default=str)
        return "1-" + hashlib.sha256(payload.encode()).hexdigest()[:10]

    def measure_batch(self, contexts: Sequence[QuestionContext]) -> list[ProviderValues]:
        """Per question: its Inv-Entropy measures, and its perturbations as details. A question
        the model wrote no usable paraphrase of gets no values (and the reason in its details)
        instead of stopping the evaluation; with a batch seed, its batch is then run question
        by question."""
        if not contexts:
            return []
        if "seed" in self.options:
            try:
                runs = run_inv_entropy_batch(
                    [_question_of(c.item) for c in contexts],
                    contexts[0].lm,
                    self.embed,
                    self.nli,
                    **self.options,
                )
                return [_values(run) for run in runs]
            except NoUsableParaphraseError:
                pass
        options = {k: v for k, v in self.options.items() if k != "seed"}
        out = []
        for c in contexts:
            seed = int(self.options.get("seed", c.seed))
            try:
                run = run_inv_entropy(
                    _question_of(c.item), c.lm, self.embed, self.nli, seed=seed, **options
                )
            except NoUsableParaphraseError as exc:
                out.append(ProviderValues({m.key: None for m in MEASURES}, {"error": str(exc)}))
                continue
            out.append(_values(run))
        return out


def make_inv_entropy_provider(
    embed: Embed | None, nli: Any = None, **options: Any
) -> InvEntropyProvider:
    """The Inv-Entropy measure provider (:class:`InvEntropyProvider`) with these options."""
    return InvEntropyProvider(embed, nli, dict(options))


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


@dataclass
class GreedyReference:
    """The harness's reference answerer for Inv-Entropy runs: :func:`reference_answers`."""

    max_new_tokens: int = 32
    instruction: str = DEFAULT_ANSWER_INSTRUCTION

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "greedy, first line",
            "max_new_tokens": int(self.max_new_tokens),
            "instruction": self.instruction,
        }

    def answer(self, lm: LanguageModel, questions: Sequence[str]) -> list[str]:
        return reference_answers(
            lm, questions, max_new_tokens=self.max_new_tokens, instruction=self.instruction
        )


# --------------------------------------------------------------------------- dataset views


def _scored(metrics: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The measures with a value for at least two questions (fewer leave no metric)."""
    return {
        name: values
        for name, values in metrics.items()
        if sum(r["measures"].get(name) is not None for r in rows) >= 2
    }


def score_rows(
    rows: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, dict | None]]:
    """AUROC, AURAC, rejection accuracies and PRR (raw and normalised) with bootstrap intervals
    for every measure column of ``rows`` (each with ``measures``, ``correct`` and ``score``)
    that has a value for at least two questions, over those questions
    (:func:`uq.evaluation.harness.score_measures`, bootstrap seeded by ``seed``).
    """
    settings = EvalSettings(n_boot=n_boot, metrics_seed=seed)
    return _scored(score_measures(rows, settings)[0], rows)


def _unprefixed(measures: dict[str, Any], name: str) -> dict[str, Any]:
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in measures.items() if k.startswith(prefix)}


def inv_rows(result: EvaluationResult, name: str = "inv") -> list[dict[str, Any]]:
    """The per-question rows of an Inv-Entropy evaluation as ``inv-evaluate`` writes them: the
    answer, its score and label, the measures (without the provider prefix) and the
    perturbations."""
    out = []
    for r in result.rows:
        details = r.get("details", {}).get(name, {})
        out.append(
            {
                **{k: r[k] for k in ("id", "question", "golds", "answer", "score", "correct")},
                "measures": _unprefixed(r["measures"], name),
                "perturbations": details.get("perturbations"),
                "perturbation_source": details.get("perturbation_source"),
            }
        )
    return out


def inv_metrics(result: EvaluationResult, name: str = "inv") -> dict[str, Any]:
    """The metrics of an Inv-Entropy evaluation by measure (without the provider prefix), for
    the measures with a value for at least two questions."""
    return _unprefixed(_scored(result.metrics, result.rows), name)


def inv_perturbations(result: EvaluationResult, name: str = "inv") -> list[Perturbation]:
    """Each question's perturbations, as made in the evaluation (for the TSU sweep)."""
    out = []
    for r in result.rows:
        d = r.get("details", {}).get(name)
        if not d:
            raise ConfidantError(f"question {r['id']!r} has no Inv-Entropy perturbations")
        out.append(
            Perturbation(
                method=d["perturbation_method"],
                perturbations=list(d["perturbations"]),
                source=d["perturbation_source"],
                seed=d.get("perturbation_seed"),
            )
        )
    return out
