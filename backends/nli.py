"""Natural-language inference cross-encoders on transformers.

The label order is read from the model's ``config.id2label``, never assumed: MNLI checkpoints
disagree (``microsoft/deberta-large-mnli`` puts contradiction first, several cross-encoders put
entailment first).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

from backends.base import ModelLoadError
from backends.hf import load_error_message, pick_device

DEFAULT_NLI_MODEL = "microsoft/deberta-large-mnli"

CONTRADICTION, NEUTRAL, ENTAILMENT = 0, 1, 2


def label_order(id2label: dict) -> list[int]:
    """Model output index of contradiction, neutral and entailment, from ``id2label``."""
    found: dict[int, int] = {}
    for idx, name in id2label.items():
        low = str(name).lower()
        if low.startswith("contra"):
            found[CONTRADICTION] = int(idx)
        elif low.startswith("neutral"):
            found[NEUTRAL] = int(idx)
        elif low.startswith("entail"):
            found[ENTAILMENT] = int(idx)
    if len(found) != 3:
        raise ModelLoadError(
            f"NLI model labels {dict(id2label)} do not name contradiction, neutral and entailment; "
            "choose an MNLI-style cross-encoder"
        )
    return [found[CONTRADICTION], found[NEUTRAL], found[ENTAILMENT]]


class NLIModel:
    """``probs(pairs)`` → (n, 3) array of p(contradiction), p(neutral), p(entailment) for
    (premise, hypothesis) pairs, in batches; ``labels(pairs)`` → 0 / 1 / 2 (argmax)."""

    def __init__(
        self,
        model_id: str = DEFAULT_NLI_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 32,
        display_name: str | None = None,
    ):
        self.model_id = display_name or model_id
        self._path = model_id
        self.device = device or pick_device()
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None
        self._order: list[int] = []
        self._lock = threading.Lock()

    def load(self) -> NLIModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from transformers import AutoModelForSequenceClassification, AutoTokenizer

                    try:
                        tok = AutoTokenizer.from_pretrained(self._path)
                        model = AutoModelForSequenceClassification.from_pretrained(self._path)
                    except Exception as exc:  # noqa: BLE001
                        raise ModelLoadError(load_error_message(self._path, exc)) from exc
                    self._order = label_order(model.config.id2label)
                    model.to(self.device).eval()
                    self._tokenizer, self._model = tok, model
        return self

    def probs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.load()
        out = np.zeros((len(pairs), 3))
        with self._lock, torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start : start + self.batch_size]
                enc = self._tokenizer(
                    [p for p, _ in chunk],
                    [h for _, h in chunk],
                    padding=True,
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                ).to(self.device)
                logits = self._model(**enc).logits.float()
                p = torch.softmax(logits, -1)[:, self._order]
                out[start : start + len(chunk)] = p.cpu().numpy()
        return out

    def labels(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return [int(i) for i in self.probs(pairs).argmax(1)] if pairs else []
