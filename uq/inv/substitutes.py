"""Substitute words for GAAP: key words of a question and their nearest neighbours by
sentence-embedding similarity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from core.errors import ConfidantError

Embed = Callable[[list[str]], np.ndarray]
Substitutes = Callable[[str], Sequence[str]]


# --------------------------------------------------------------------------- embeddings


class EmbeddingCache:
    """Unit-normalised embeddings of strings; each distinct string is embedded once."""

    def __init__(self, embed: Embed):
        self.embed = embed
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = np.asarray(self.embed(missing), dtype=float)
            if vectors.ndim != 2 or vectors.shape[0] != len(missing):
                raise ConfidantError(
                    f"embed returned shape {vectors.shape} for {len(missing)} texts; "
                    "expected one row per text"
                )
            if not np.all(np.isfinite(vectors)):
                raise ConfidantError("embed returned NaN or infinite values")
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise ConfidantError("embed returned a zero vector")
            for text, vector in zip(missing, vectors / norms, strict=True):
                self._vectors[text] = vector
        if not texts:
            return np.zeros((0, 0))
        return np.stack([self._vectors[t] for t in texts])


def similarity_from_cosine(cosine: np.ndarray, rule: str) -> np.ndarray:
    if rule == "shifted":
        return (1.0 + cosine) / 2.0
    if rule == "absolute":
        return np.abs(cosine)
    if rule == "cosine":
        return cosine
    raise ConfidantError(f"unknown similarity rule {rule!r}; use shifted, absolute or cosine")


WORD = re.compile(r"\w+(?:['’-]\w+)*")


def _is_content_word(word: str) -> bool:
    return (
        len(word) > 1 and any(c.isalpha() for c in word) and word.lower() not in ENGLISH_STOP_WORDS
    )


def extract_key_words(
    question: str, embed: Embed, n_words: int, *, _cache: EmbeddingCache | None = None
) -> list[tuple[str, float]]:
    """KeyBERT-style key words: content words ranked by cos(ψ(word), ψ(question)).

    Grootendorst (2020), KeyBERT, as used by GAAP (Song et al. 2025, §2.6). Stop words
    (scikit-learn's English list), one-letter tokens and numbers are skipped. Returns up to
    ``n_words`` (word, cosine) pairs, best first; one batched ``embed`` call.
    """
    cache = _cache or EmbeddingCache(embed)
    words = list(dict.fromkeys(w for w in WORD.findall(question) if _is_content_word(w)))
    if not words or n_words < 1:
        return []
    vectors = cache([question] + words)
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")[:n_words]
    return [(words[i], float(scores[i])) for i in order]


def embedding_substitutes(
    embed: Embed,
    vocabulary: Iterable[str],
    k: int = 10,
    *,
    _cache: EmbeddingCache | None = None,
) -> Substitutes:
    """Substitutes from the embedding's neighbourhood: the k vocabulary words nearest by cosine.

    Used by GAAP when no WordNet database is available. The vocabulary (content words only,
    stop words removed) is embedded once, in one call, the first time it is needed.
    """
    words = list(dict.fromkeys(w.strip() for w in vocabulary if _is_content_word(w.strip())))
    cache = _cache or EmbeddingCache(embed)

    def substitutes(word: str) -> list[str]:
        candidates = [w for w in words if w.lower() != word.lower()]
        if not candidates:
            return []
        vectors = cache([word] + words)
        keep = [i + 1 for i, w in enumerate(words) if w.lower() != word.lower()]
        scores = vectors[keep] @ vectors[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [candidates[i] for i in order]

    return substitutes
