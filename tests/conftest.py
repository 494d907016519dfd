"""Shared fixtures: tiny random-weight models built in code and saved to a temp dir, then
loaded through ``from_pretrained`` exactly as a user's model directory would be."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The machine running the tests may be shared and loaded: no per-example time limits.
settings.register_profile("confidant", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("confidant")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    from backends.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_dir):
    from backends.hf import HFCausalLM

    return HFCausalLM(str(tiny_lm_dir)).load()


@pytest.fixture
def generate_calls(tiny_lm, monkeypatch) -> list[int]:
    """Counts ``tiny_lm.model.generate`` calls: one entry per call, its number of rows."""
    calls: list[int] = []
    original = tiny_lm.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_lm.model, "generate", counting)
    return calls


@pytest.fixture(scope="session")
def tiny_nli_dir(tmp_path_factory):
    from backends.tiny import build_tiny_nli

    return build_tiny_nli(tmp_path_factory.mktemp("tiny-nli"))


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 embedding model, shipped by a PyPI package (works offline)."""
    from backends.embeddings import SentenceEmbedder

    return SentenceEmbedder().load()
