"""Sentence embeddings from a server's ``POST /v1/embeddings`` (vLLM, text-embeddings-inference,
OpenAI), with the interface of ``backends.embeddings.SentenceEmbedder``.

Texts go ``batch_size`` to a request, requests up to ``concurrency`` at once
(:mod:`backends.requests_pool`), with retries; rows come back in input order (by each reply's
``index``) and are L2-normalised here, as the in-process embedder's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backends.nli_remote import HTTPJSON, _chunks
from core.errors import BackendError, ConfidantError

EMBEDDING_KEY_ENV = "CONFIDANT_EMBEDDING_API_KEY"
DEFAULT_EMBEDDING_BATCH = 64


class RemoteEmbedder:
    """``embed(texts)`` → L2-normalised rows, one per text, from ``base_url`` (…/v1)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        batch_size: int = DEFAULT_EMBEDDING_BATCH,
        concurrency: int | None = None,
        api_key_env: str = EMBEDDING_KEY_ENV,
        **http: Any,
    ) -> None:
        if int(batch_size) < 1:
            raise ConfidantError(f"the embedding batch size must be at least 1, got {batch_size}")
        self.http = HTTPJSON(base_url, api_key_env=api_key_env, concurrency=concurrency, **http)
        self.model_id = model
        self.batch_size = int(batch_size)

    def load(self) -> RemoteEmbedder:
        return self

    def _batch(self, texts: list[str]) -> np.ndarray:
        reply = self.http.request(
            "POST",
            "/embeddings",
            {"model": self.model_id, "input": texts, "encoding_format": "float"},
        )
        data = sorted((reply or {}).get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(texts):
            raise BackendError(
                f"The server at {self.http.url} sent {len(data)} embeddings for {len(texts)} texts"
            )
        return np.asarray([d["embedding"] for d in data], dtype=np.float32)

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        size = int(batch_size or self.batch_size)
        parts = self.http.map(
            lambda idx: self._batch([texts[i] for i in idx]), _chunks(len(texts), size)
        )
        vecs = np.concatenate(parts, axis=0)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    __call__ = embed

    def cosine_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Pairwise cosine similarity of the texts' embeddings."""
        vecs = self.embed(texts)
        return np.clip(vecs @ vecs.T, -1.0, 1.0)
