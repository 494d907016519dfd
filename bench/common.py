"""What the benchmarks share: a random-initialised Llama-style model of realistic shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def build_llama(
    path: Path,
    tokenizer,
    quick: bool,
    *,
    max_position_embeddings: int = 2048,
    adjust: Callable[[LlamaForCausalLM], None] | None = None,
    label: str = "model",
) -> None:
    """Save a random Llama-style model and ``tokenizer`` to ``path``.

    Full size is ~125M parameters (32k vocabulary, hidden 768, 12 layers, untied head);
    ``quick`` is ~31M (hidden 384, 4 layers). ``adjust`` may edit the weights before saving.
    """
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=384 if quick else 768,
        intermediate_size=1024 if quick else 2048,
        num_hidden_layers=4 if quick else 12,
        num_attention_heads=12,
        num_key_value_heads=4,
        max_position_embeddings=max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if adjust is not None:
        with torch.no_grad():
            adjust(model)
    print(
        f"{label}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", flush=True
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
