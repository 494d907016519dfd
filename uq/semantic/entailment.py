"""Entailment back-ends for semantic clustering: each labels (premise, hypothesis) index pairs
of a list of answers.

- ``"nli"``: an NLI cross-encoder (``backends.nli.NLIModel``), the question prepended to each
  answer by default (Farquhar et al. 2024; Kuhn et al. 2023);
- ``"embedding"``: cosine similarity of sentence embeddings above a threshold (offline with
  MiniLM), the question prepended by default;
- ``"generator"``: the generator itself asked whether one answer entails the other
  (Farquhar et al.'s LLM entailment), read with ``choice_probs`` over the three labels.

Measured offline (bench/entailment_threshold.py, 233 hand-written pairs): MiniLM at the chosen
default reaches balanced accuracy 0.625 and misses most near misses ("… is Skopje" / "… is
Pristina"); SmolLM2-135M-Instruct as the generator labels every pair "neutral" (balanced
accuracy 0.500 strict and lenient; its p(entailment) ranks same-meaning pairs with AUROC 0.48).
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

# Embedding defaults, chosen offline by bench/entailment_threshold.py on 233 hand-written answer
# pairs (data/entailment/pairs.jsonl, 110 same meaning, 123 different; results in
# data/entailment/results.json; a test keeps these constants equal to its best option). The
# best balanced accuracy over thresholds 0.50 … 0.95 (step 0.05), with and without the
# question, is 0.625 (accuracy 0.614) at cosine ≥ 0.90 with the question prepended; the best
# without it is 0.524 at 0.50, and the former default (0.75, no question) scored 0.415, worse
# than chance. No threshold separates near misses: at 0.90 with the question only 29 % of
# the answers that differ in one entity or number are told apart (entity 44 %, number 10 %),
# and the cosine ranks same-meaning pairs above near misses with AUROC 0.60 (0.26 without the
# question, i.e. near misses look *more* alike than paraphrases). Prefer NLI when it loads.
DEFAULT_EMBEDDING_THRESHOLD = 0.90
# Whether each method prepends the question to every answer by default. NLI: as Farquhar et
# al. and Kuhn et al. do. Embedding: measured, above. The generator's prompt always shows the
# question, so it has no such switch.
DEFAULT_CONDITION_ON_QUESTION = {"nli": True, "embedding": True}

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
        condition_on_question: bool = DEFAULT_CONDITION_ON_QUESTION["embedding"],
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
    condition_on_question: bool | None = None,
    threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    chat: bool = True,
):
    """The entailment back-end for ``method`` ("nli", "embedding" or "generator") over the
    given backend object. ``condition_on_question`` None takes the method's default
    (``DEFAULT_CONDITION_ON_QUESTION``); the generator's prompt always shows the question."""
    if condition_on_question is None:
        condition_on_question = DEFAULT_CONDITION_ON_QUESTION.get(method, True)
    if method == "nli":
        if nli is None:
            raise ConfidantError("NLI entailment needs an NLI model")
        return NLIEntailment(nli, condition_on_question=condition_on_question)
    if method == "embedding":
        if embedder is None:
            raise ConfidantError("embedding entailment needs a sentence-embedding model")
        return EmbeddingEntailment(
            embedder, threshold=threshold, condition_on_question=condition_on_question
        )
    if method == "generator":
        if lm is None:
            raise ConfidantError("generator entailment needs the generator")
        return GeneratorEntailment(lm, chat=chat)
    raise ConfidantError(
        f"unknown entailment {method!r}; use one of {', '.join(ENTAILMENT_METHODS)}"
    )
