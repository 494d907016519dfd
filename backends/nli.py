"""Natural-language inference cross-encoders on transformers.

The label order is read from the model's ``config.id2label``, never assumed: MNLI checkpoints
disagree (``microsoft/deberta-large-mnli`` puts contradiction first, several cross-encoders put
entailment first).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from backends.hf import load_error_message, pick_device
from core.errors import ModelLoadError

DEFAULT_NLI_MODEL = "microsoft/deberta-large-mnli"

CONTRADICTION, NEUTRAL, ENTAILMENT = 0, 1, 2

MAX_LENGTH = 512  # tokens per (premise, hypothesis) pair; longer pairs are truncated
# Padded tokens per batch (see NLIModel). Measured with a deberta-base-shaped model on a 2-core
# CPU, milliseconds a pair for pairs of ~150 / ~280 / ~580 tokens: 1024 tokens a batch
# 187 / 438 / 939; one pair a call 284 / 491 / 853; 32 pairs a batch whatever their length
# 215 / 610 / 1546.
CPU_BATCH_TOKENS = 1024
ACCELERATOR_BATCH_TOKENS = 16384


def nli_load_error_message(model_id: str, exc: BaseException) -> str:
    """The loader's diagnosis (``backends.hf.load_error_message``) with the fixes that apply to
    an NLI model rather than the generator's."""
    diagnosis = load_error_message(model_id, exc).split(" Fix: ")[0]
    return (
        f"{diagnosis.replace('Could not load model', 'Could not load model (NLI)', 1)} Fix: pass "
        "--nli-model with a local MNLI cross-encoder directory or a hub id this machine can "
        "download, or compare meanings by embedding similarity instead (the 'Embedding cosine "
        "similarity' choice; --entailment embedding on the command line)."
    )


def nli_unavailable_reason(model_id: str, *, timeout: float = 3.0) -> str | None:
    """Why ``model_id`` cannot be loaded here, or None when it can: a local directory, a hub id
    already in the Hugging Face cache, or a hub id the Hub answers for (one quick request; a
    machine without network fails it at once). No model is loaded or downloaded."""
    path = Path(model_id).expanduser()
    if path.exists():
        return None if (path / "config.json").exists() else f"{model_id} has no config.json"
    if model_id.startswith((".", "/", "~")):
        return f"there is no directory {model_id}"
    try:
        from huggingface_hub import model_info, try_to_load_from_cache

        if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
            return None
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            return "it is not in the local Hugging Face cache and the Hub is off (HF_HUB_OFFLINE)"
        model_info(model_id, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable from here"
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return f"it is not in the local Hugging Face cache and the Hub did not answer ({first})"
    return None


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


def token_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Group pair indices into batches, shortest first: a batch holds at most ``max_rows`` pairs
    and, padded to its longest pair, at most ``max_tokens`` tokens (a single longer pair is a
    batch of its own). Sorting by length keeps padding small."""
    if max_rows < 1 or max_tokens < 1:
        raise ValueError("batch limits must be positive")
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        # Sorted ascending, so the pair being added is the longest of the batch.
        if current and (len(current) >= max_rows or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class NLIModel:
    """``probs(pairs)`` → (n, 3) array of p(contradiction), p(neutral), p(entailment) for
    (premise, hypothesis) pairs; ``labels(pairs)`` → 0 / 1 / 2 (argmax).

    Pairs are tokenised once, sorted by length and run in batches of at most ``batch_size``
    pairs and ``max_batch_tokens`` padded tokens. The token cap matters on CPU, where
    DeBERTa's attention tensors grow with batch × length² and a large batch of long pairs
    costs more per pair than small ones (``bench/semantic_entropy.py`` prints the measured
    costs); the default is small on CPU and large on accelerators.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_NLI_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        display_name: str | None = None,
    ):
        self.model_id = display_name or model_id
        self._path = model_id
        self.device = device or pick_device()
        self.batch_size = batch_size
        if max_batch_tokens is None:
            max_batch_tokens = (
                CPU_BATCH_TOKENS if self.device == "cpu" else ACCELERATOR_BATCH_TOKENS
            )
        self.max_batch_tokens = int(max_batch_tokens)
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
                        raise ModelLoadError(nli_load_error_message(self._path, exc)) from exc
                    self._order = label_order(model.config.id2label)
                    model.to(self.device).eval()
                    self._tokenizer, self._model = tok, model
        return self

    def probs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.load()
        out = np.zeros((len(pairs), 3))
        if not len(pairs):
            return out
        enc = self._tokenizer(
            [p for p, _ in pairs], [h for _, h in pairs], truncation=True, max_length=MAX_LENGTH
        )
        rows = [{key: enc[key][i] for key in enc} for i in range(len(pairs))]
        lengths = [len(row["input_ids"]) for row in rows]
        with self._lock, torch.inference_mode():
            for batch in token_batches(lengths, self.batch_size, self.max_batch_tokens):
                padded = self._tokenizer.pad([rows[i] for i in batch], return_tensors="pt")
                logits = self._model(**padded.to(self.device)).logits.float()
                out[batch] = torch.softmax(logits, -1)[:, self._order].cpu().numpy()
        return out

    def labels(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return [int(i) for i in self.probs(pairs).argmax(1)] if pairs else []
