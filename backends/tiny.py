"""Tiny random-weight models built in code, for trying the app offline and for tests.

``build_tiny_causal_lm(path)`` writes a small Llama-style model and a byte-level BPE tokenizer
trained in code to ``path``; it is then loaded through the same ``from_pretrained`` path as any
user's model. Its text is gibberish: the weights are random.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

TINY_MODEL_ID = "tiny-random"
TINY_NLI_ID = "tiny-random-nli"

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A little English so the trained tokenizer has real merges; any text would do.
_CORPUS = """
The capital of France is Paris. The capital of Italy is Rome. Water boils at one hundred degrees.
Is it a mammal? Does it live in water? Can it fly? Yes. No. The animal is a cat, a dog, an eagle.
Question: Who wrote Hamlet? Answer: William Shakespeare wrote Hamlet in about 1600.
Score: [1] [2] [3] [4] [5] [10] [42] [99] [100] Verdict: [A] [B] [C] The first answer is better.
The quick brown fox jumps over the lazy dog. Light travels faster than sound.
Are these two answers saying the same thing? Entailment, neutral, contradiction. True or false?
0 1 2 3 4 5 6 7 8 9 The number is 7. The year was 1969. Numbers: 12, 34, 56, 78, 90.
"""

_lock = threading.Lock()


def _cache_root() -> Path:
    root = os.environ.get("CONFIDANT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "confidant"
    )
    return Path(root)


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_causal_lm(
    path: str | os.PathLike,
    *,
    vocab_size: int = 384,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a random-weight Llama-style causal LM and its tokenizer to ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Larger random logits so the distributions are far from uniform and vary by token.
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_nli(
    path: str | os.PathLike, *, vocab_size: int = 384, hidden_size: int = 32, seed: int = 0
) -> Path:
    """Write a random-weight DeBERTa-v2-style NLI cross-encoder (3 labels) to ``path``.

    The label order is deliberately not the MNLI default, so code that hard-codes it fails.
    """
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    tokenizer.cls_token = "<|im_start|>"
    tokenizer.sep_token = "<|im_end|>"
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        id2label={0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"},
        label2id={"ENTAILMENT": 0, "NEUTRAL": 1, "CONTRADICTION": 2},
        num_labels=3,
    )
    torch.manual_seed(seed)
    model = DebertaV2ForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_model_dir(kind: str = TINY_MODEL_ID) -> Path:
    """Build (once, cached on disk) and return the directory of a tiny random model."""
    builders = {TINY_MODEL_ID: build_tiny_causal_lm, TINY_NLI_ID: build_tiny_nli}
    if kind not in builders:
        raise ValueError(f"unknown tiny model {kind!r}")
    version = hashlib.sha1((kind + _CORPUS + CHAT_TEMPLATE + "v1").encode()).hexdigest()[:10]
    target = _cache_root() / f"{kind}-{version}"
    with _lock:
        if not (target / "config.json").exists():
            tmp = target.with_name(target.name + f".tmp{os.getpid()}")
            builders[kind](tmp)
            try:
                os.replace(tmp, target)
            except OSError:  # another process won the race
                pass
    return target
