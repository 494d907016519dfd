"""The backend objects an app process shares: loaded lazily, once, thread-safe.

Nothing reaches for a global model: the UI holds one ``Backends`` and passes the objects it
returns into the pipelines.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from backends.base import LanguageModel
from backends.embedded import EMBEDDED_MODEL_ID, embedded_model_dir
from backends.embeddings import DEFAULT_EMBEDDING_MODEL, SentenceEmbedder
from backends.tiny import TINY_MODEL_ID, TINY_NLI_ID, tiny_model_dir
from core.errors import ModelLoadError
from core.secrets import register_url, safe_url

# The embedded real model: prepared offline from a PyPI wheel (see backends/embedded.py).
DEFAULT_GENERATOR = EMBEDDED_MODEL_ID
DEFAULT_NLI = "microsoft/deberta-large-mnli"


@dataclass(frozen=True)
class EntailmentDefault:
    """Which entailment a run uses when the user picks none: "nli" when an NLI model can be
    loaded here, otherwise "embedding", with ``reason`` saying why NLI is not used."""

    method: str
    reason: str | None = None

    @property
    def message(self) -> str:
        if self.method == "nli":
            return ""
        return (
            f"Meanings are compared by embedding similarity because the NLI model cannot be "
            f"used: {self.reason}. Give one with `--nli-model <directory or hub id>` "
            "(env CONFIDANT_NLI_MODEL) for NLI entailment."
        )


@dataclass
class BackendConfig:
    """Which models to use. ``model`` is a hub id, a local directory, ``smollm2-135m`` (the
    embedded real model, the default) or ``tiny-random``;
    with ``openai_base_url`` it is the model name on that server."""

    model: str = DEFAULT_GENERATOR
    openai_base_url: str | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    nli_model: str | None = None  # None: the default (tiny-random-nli alongside tiny-random)
    device: str | None = None
    concurrency: int | None = None  # requests in flight to an OpenAI-compatible server
    # Served NLI (TEI /predict or vLLM /classify) and embeddings (/v1/embeddings); with them
    # nli_model and embedding_model are the names on those servers.
    nli_base_url: str | None = None
    nli_labels: str | None = None  # the NLI model's class names in output order
    nli_pair_separator: str | None = None  # between premise and hypothesis (vLLM /classify)
    embedding_base_url: str | None = None

    def __post_init__(self) -> None:
        for url in (self.openai_base_url, self.nli_base_url, self.embedding_base_url):
            register_url(url)  # its password is redacted from every message

    @property
    def is_tiny(self) -> bool:
        return self.model == TINY_MODEL_ID and not self.openai_base_url

    @property
    def resolved_nli_model(self) -> str:
        if self.nli_model:
            return self.nli_model
        return TINY_NLI_ID if self.is_tiny else DEFAULT_NLI

    @classmethod
    def from_env(cls) -> BackendConfig:
        env = os.environ
        return cls(
            model=env.get("CONFIDANT_MODEL") or DEFAULT_GENERATOR,
            openai_base_url=env.get("CONFIDANT_OPENAI_BASE_URL") or None,
            embedding_model=env.get("CONFIDANT_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL),
            nli_model=env.get("CONFIDANT_NLI_MODEL") or None,
            device=env.get("CONFIDANT_DEVICE") or None,
            concurrency=env.get("CONFIDANT_CONCURRENCY") or None,
            nli_base_url=env.get("CONFIDANT_NLI_BASE_URL") or None,
            nli_labels=env.get("CONFIDANT_NLI_LABELS") or None,
            nli_pair_separator=env.get("CONFIDANT_NLI_PAIR_SEPARATOR") or None,
            embedding_base_url=env.get("CONFIDANT_EMBEDDING_BASE_URL") or None,
        )


class Backends:
    """Lazily built, shared model objects. A failed load is not cached: the next call retries
    (the user may have fixed the cause) and raises the same clear ``ModelLoadError``."""

    def __init__(self, config: BackendConfig | None = None) -> None:
        self.config = config or BackendConfig()
        self._lock = threading.Lock()
        self._objects: dict[str, object] = {}

    def _get(self, key: str, build):
        obj = self._objects.get(key)
        if obj is None:
            with self._lock:
                obj = self._objects.get(key)
                if obj is None:
                    obj = build()
                    self._objects[key] = obj
        return obj.load()

    def generator(self) -> LanguageModel:
        cfg = self.config

        def build():
            if cfg.openai_base_url:
                from backends.openai_compat import OpenAICompatLM

                return OpenAICompatLM(cfg.openai_base_url, cfg.model, concurrency=cfg.concurrency)
            from backends.hf import HFCausalLM

            if cfg.model == TINY_MODEL_ID:
                return HFCausalLM(
                    str(tiny_model_dir()), display_name=TINY_MODEL_ID, device=cfg.device
                )
            if cfg.model == EMBEDDED_MODEL_ID:
                return HFCausalLM(
                    str(embedded_model_dir()), display_name=EMBEDDED_MODEL_ID, device=cfg.device
                )
            return HFCausalLM(cfg.model, device=cfg.device)

        return self._get("generator", build)

    def embedder(self) -> SentenceEmbedder:
        cfg = self.config

        def build():
            if cfg.embedding_base_url:
                from backends.embeddings_remote import RemoteEmbedder

                return RemoteEmbedder(
                    cfg.embedding_base_url, cfg.embedding_model, concurrency=cfg.concurrency
                )
            return SentenceEmbedder(cfg.embedding_model, device=cfg.device)

        return self._get("embedder", build)

    def nli(self):
        from backends.nli import NLIModel

        name = self.config.resolved_nli_model

        def build():
            if self.config.nli_base_url:
                from backends.nli_remote import RemoteNLI

                return RemoteNLI(
                    self.config.nli_base_url,
                    self.config.nli_model,
                    labels=self.config.nli_labels,
                    pair_separator=self.config.nli_pair_separator,
                    concurrency=self.config.concurrency,
                )
            if name == TINY_NLI_ID:
                return NLIModel(str(tiny_model_dir(TINY_NLI_ID)), display_name=TINY_NLI_ID)
            return NLIModel(name, device=self.config.device)

        return self._get("nli", build)

    def default_entailment(self) -> EntailmentDefault:
        """NLI when its model can be loaded here (checked once, nothing downloaded), else
        embedding similarity — the best offline option — with the reason. A model the user
        named with ``--nli-model`` is always used: its load error then says what is wrong."""
        found = self._objects.get("entailment_default")
        if found is None:
            from backends.nli import nli_unavailable_reason

            cfg = self.config
            name = cfg.resolved_nli_model
            reason = None
            if name != TINY_NLI_ID and not cfg.nli_model and not cfg.nli_base_url:
                reason = nli_unavailable_reason(name)
                if reason:
                    reason = f"{name}: {reason}"
            found = EntailmentDefault("embedding" if reason else "nli", reason)
            self._objects["entailment_default"] = found
        return found

    def describe(self) -> dict[str, str]:
        cfg = self.config
        return {
            "generator": cfg.model
            + (f" @ {safe_url(cfg.openai_base_url)}" if cfg.openai_base_url else ""),
            "embeddings": cfg.embedding_model
            + (f" @ {safe_url(cfg.embedding_base_url)}" if cfg.embedding_base_url else ""),
            "nli": (cfg.nli_model or "NLI") + f" @ {safe_url(cfg.nli_base_url)}"
            if cfg.nli_base_url
            else cfg.resolved_nli_model,
        }

    @property
    def is_embedded(self) -> bool:
        return self.config.model == EMBEDDED_MODEL_ID and not self.config.openai_base_url


__all__ = [
    "BackendConfig",
    "Backends",
    "EntailmentDefault",
    "ModelLoadError",
    "DEFAULT_GENERATOR",
    "DEFAULT_NLI",
]
