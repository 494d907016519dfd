"""Measure providers: other methods' columns in the evaluation harness, passed in by the caller.

A provider is an object with a ``name`` (its columns are ``"{name}.{measure}"``), a ``version``
(bump it when its output changes; name and version enter the cache key) and
``measure_batch(contexts)``, which returns one :class:`ProviderValues` per question. The harness
hands it the questions of one batch at a time (``run_evaluation(..., batch_size=...)``); a
provider that works one question at a time is :func:`measure_provider` around a function.

Without the semantic-entropy pipeline the harness needs a reference answerer instead: an object
with ``describe()`` (a dict that enters the cache key) and ``answer(lm, questions)`` → one
answer string per question, in one batch.

    from uq.evaluation.providers import measure_provider
    length = measure_provider("length", lambda ctx: {"words": len(ctx.answer.split())})
    # run_evaluation(items, lm, entailment, settings, providers=[length])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.evaluation.datasets import EvalItem
from uq.evaluation.settings import EvalSettings
from uq.semantic.result import SemanticEntropyResult


@dataclass
class QuestionContext:
    """What a measure provider sees for one question: the item, the generator, the settings,
    the question's seed, the reference answer and — when the run has the semantic-entropy
    pipeline — its result (samples, clusters, measures); otherwise ``result`` is None."""

    item: EvalItem
    lm: LanguageModel
    settings: EvalSettings
    result: SemanticEntropyResult | None
    seed: int
    answer: str = ""


@dataclass
class ProviderValues:
    """One question's output of a provider: ``{measure: value or None}`` and JSON-serialisable
    ``details`` the row keeps under ``row["details"][provider name]`` (left out when empty)."""

    measures: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)


class MeasureProvider(Protocol):
    name: str
    version: str

    def measure_batch(self, contexts: Sequence[QuestionContext]) -> list[ProviderValues]: ...


class ReferenceAnswerer(Protocol):
    def describe(self) -> dict[str, Any]: ...

    def answer(self, lm: LanguageModel, questions: Sequence[str]) -> list[str]: ...


def check_provider_name(name: Any) -> str:
    """A provider name prefixes column names, so it is a non-empty string without dots."""
    if not name or not isinstance(name, str) or "." in name:
        raise ConfidantError("a provider name must be a non-empty string without dots")
    return name


@dataclass
class FunctionProvider:
    """A provider from a per-question function ``fn(context) → {measure: value or None}``."""

    name: str
    fn: Callable[[QuestionContext], dict[str, float | None]]
    version: str = "1"

    def measure_batch(self, contexts: Sequence[QuestionContext]) -> list[ProviderValues]:
        return [ProviderValues(dict(self.fn(context))) for context in contexts]


def measure_provider(
    name: str, fn: Callable[[QuestionContext], dict[str, float | None]], *, version: str = "1"
) -> FunctionProvider:
    """A measure provider named ``name`` that calls ``fn`` once per question."""
    return FunctionProvider(check_provider_name(name), fn, str(version))


def check_providers(providers: Sequence[Any]) -> list[Any]:
    """The providers as a list, each with a valid, distinct name and a version."""
    providers = list(providers)
    names = [check_provider_name(getattr(p, "name", None)) for p in providers]
    if len(set(names)) != len(names):
        raise ConfidantError(f"two measure providers share a name: {names}")
    for p in providers:
        if not callable(getattr(p, "measure_batch", None)) or getattr(p, "version", None) is None:
            raise ConfidantError(f"the provider {p.name!r} needs a version and measure_batch()")
    return providers


def provided_columns(
    provider: Any, contexts: Sequence[QuestionContext]
) -> list[tuple[dict[str, float | None], dict[str, Any]]]:
    """Call ``provider`` on one batch: per question, its measures as ``"{name}.{measure}"`` →
    finite float or None (NaN and ±inf become None), and its details."""
    outputs = list(provider.measure_batch(list(contexts)))
    if len(outputs) != len(contexts):
        raise ConfidantError(
            f"the provider {provider.name!r} returned {len(outputs)} results "
            f"for {len(contexts)} questions"
        )
    columns = []
    for out in outputs:
        measures: dict[str, float | None] = {}
        for key, value in dict(out.measures).items():
            value = None if value is None else float(value)
            finite = value is None or math.isfinite(value)
            measures[f"{provider.name}.{key}"] = value if finite else None
        columns.append((measures, dict(out.details)))
    return columns
