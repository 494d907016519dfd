"""Entailment back-ends for semantic clustering: each labels (premise, hypothesis) index pairs
of a list of answers.

- ``"nli"``: an NLI cross-encoder (``backends.nli.NLIModel``), the question prepended to each
  answer by default (Farquhar et al. 2024; Kuhn et al. 2023);
- ``"embedding"``: cosine similarity of sentence embeddings above a threshold (offline with
  MiniLM);
- ``"generator"``: the generator itself asked whether one answer entails the other
  (Farquhar et al.'s LLM entailment), read with ``choice_probs`` over the three labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.semantic.clustering import (
    CONTRADICTION,
    ENTAILMENT,
    NEUTRAL,
)

DEFAULT_EMBEDDING_THRESHOLD = 0.75

ENTAILMENT_METHODS = ("nli", "embedding", "generator")


# --------------------------------------------------------------------------------------------
# Entailment back-ends: each labels (premise, hypothesis) index pairs of a list of answers
# --------------------------------------------------------------------------------------------


def _with_question(question: str, answer: str, condition: bool) -> str:
    return f"{question} {answer}" if condition and question else answer


class NLIEntailment:
    """Labels pairs with an NLI cross-encoder, all pairs of a call in one ``probs`` call (which
    batches them by length, ``backends.nli``). Label order comes from the model's config."""

    method = "nli"

    def __init__(self, nli, *, condition_on_question: bool = True) -> None:
        self.nli = nli
        self.condition_on_question = bool(condition_on_question)
        self.model_id = getattr(nli, "model_id", type(nli).__name__)

    def describe(self) -> dict[str, Any]:
        return {
            "entailment": self.method,
            "nli_model": self.model_id,
            "condition_on_question": self.condition_on_question,
        }

    def label_pairs(
        self, question: str, texts: Sequence[str], pairs: Sequence[tuple[int, int]]
    ) -> list[int]:
        if not pairs:
            return []
        inputs = [
            (
                _with_question(question, texts[i], self.condition_on_question),
                _with_question(question, texts[j], self.condition_on_question),
            )
            for i, j in pairs
        ]
        return [int(k) for k in np.asarray(self.nli.probs(inputs)).argmax(1)]


class GeneratorEntailment:
    """Asks the generator whether answer 1 entails answer 2 (the prompt of Farquhar et al.'s
    LLM entailment, in our words) and takes the most probable of the three labels under
    ``choice_probs``. One scoring call per pair: prompts differ in their middle, so no
    cache is shared between pairs."""

    method = "generator"
    OPTIONS = ("entailment", "contradiction", "neutral")
    _LABEL = {"entailment": ENTAILMENT, "contradiction": CONTRADICTION, "neutral": NEUTRAL}

    def __init__(self, lm: LanguageModel, *, chat: bool = True) -> None:
        self.lm = lm
        self.chat = chat
        self.model_id = getattr(lm, "model_id", type(lm).__name__)

    def describe(self) -> dict[str, Any]:
        return {"entailment": self.method, "entailment_model": self.model_id}

    @staticmethod
    def prompt(question: str, premise: str, hypothesis: str) -> str:
        return (
            f"We are evaluating answers to the question: {question}\n"
            "Here are two possible answers.\n"
            f"Possible Answer 1: {premise}\n"
            f"Possible Answer 2: {hypothesis}\n"
            "Does Possible Answer 1 semantically entail Possible Answer 2? "
            "Respond with entailment, contradiction, or neutral."
        )

    def label_pairs(
        self, question: str, texts: Sequence[str], pairs: Sequence[tuple[int, int]]
    ) -> list[int]:
        options = list(self.OPTIONS) if self.chat else [" " + o for o in self.OPTIONS]
        labels = []
        for i, j in pairs:
            probs = self.lm.choice_probs(
                self.prompt(question, texts[i], texts[j]), options, chat=self.chat
            )
            labels.append(self._LABEL[self.OPTIONS[int(np.argmax(probs))]])
        return labels


class EmbeddingEntailment:
    """Two answers entail each other when the cosine similarity of their sentence embeddings
    is at least ``threshold`` (symmetric, so the strict and lenient rules agree); below it the
    pair counts as neutral. The spectral measures and KLE use the clipped cosine similarity
    itself. Embeddings of the distinct answers are computed once, in one batch."""

    method = "embedding"

    def __init__(
        self,
        embedder,
        *,
        threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
        condition_on_question: bool = False,
    ) -> None:
        threshold = float(threshold)
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise ConfidantError(f"the similarity threshold must be in [-1, 1], got {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.condition_on_question = bool(condition_on_question)
        self.model_id = getattr(embedder, "model_id", type(embedder).__name__)

    def describe(self) -> dict[str, Any]:
        return {
            "entailment": self.method,
            "embedding_model": self.model_id,
            "threshold": self.threshold,
            "condition_on_question": self.condition_on_question,
        }

    def cosine(self, question: str, texts: Sequence[str]) -> np.ndarray:
        vecs = np.asarray(
            self.embedder.embed(
                [_with_question(question, t, self.condition_on_question) for t in texts]
            ),
            dtype=float,
        )
        return np.clip(vecs @ vecs.T, -1.0, 1.0)


def make_entailment(
    method: str,
    *,
    nli=None,
    embedder=None,
    lm: LanguageModel | None = None,
    condition_on_question: bool = True,
    threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    chat: bool = True,
):
    """The entailment back-end for ``method`` ("nli", "embedding" or "generator") over the
    given backend object."""
    if method == "nli":
        if nli is None:
            raise ConfidantError("NLI entailment needs an NLI model")
        return NLIEntailment(nli, condition_on_question=condition_on_question)
    if method == "embedding":
        if embedder is None:
            raise ConfidantError("embedding entailment needs a sentence-embedding model")
        return EmbeddingEntailment(embedder, threshold=threshold)
    if method == "generator":
        if lm is None:
            raise ConfidantError("generator entailment needs the generator")
        return GeneratorEntailment(lm, chat=chat)
    raise ConfidantError(
        f"unknown entailment {method!r}; use one of {', '.join(ENTAILMENT_METHODS)}"
    )
