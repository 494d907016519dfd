"""Overhead of the token-trace path over a bare ``model.generate``.

A random-initialised Llama-style model of realistic shape (~100M parameters) generates the same
fixed number of tokens (min = max new tokens) for the same prompt, n samples in one batch, on
both paths; repetitions alternate between the paths so machine noise hits both alike.

    python bench/token_trace.py [--quick]

Last line: ``RESULT overhead=<trace time ÷ bare time>`` (fastest repetition of each; target ≤ 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import GenerationConfig  # noqa: E402

from backends.base import SamplingParams
from backends.hf import HFCausalLM  # noqa: E402
from backends.tiny import _train_tokenizer  # noqa: E402
from bench.common import build_llama  # noqa: E402


def build_model(path: Path, quick: bool) -> None:
    build_llama(path, _train_tokenizer(384), quick)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    tokens = args.tokens or (32 if args.quick else 64)
    reps = args.reps or (3 if args.quick else 5)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as d:
        build_model(Path(d), args.quick)
        lm = HFCausalLM(d).load()
        prompt = "Explain why the sky is blue in one short paragraph."
        ids = lm._prompt_ids(prompt, True)
        input_ids = torch.tensor([ids] * args.n)
        # The trace path never stops early here: EOS is out of reach by min_new_tokens in both.
        params = SamplingParams(n=args.n, temperature=1.0, max_new_tokens=tokens, seed=0)
        bare_cfg = GenerationConfig(
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=lm.tokenizer.pad_token_id,
            eos_token_id=lm.tokenizer.eos_token_id,
        )

        def bare():
            with torch.inference_mode():
                torch.manual_seed(0)
                out = lm.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    generation_config=bare_cfg,
                )
            assert out.shape[1] == len(ids) + tokens

        original = lm._generation_config

        def fixed_length(p, greedy):
            cfg = original(p, greedy)
            cfg.min_new_tokens = tokens
            return cfg

        lm._generation_config = fixed_length

        def trace():
            gens = lm.sample(prompt, SamplingParams(**{**params.__dict__}))
            assert all(len(g.tokens) == tokens for g in gens)

        bare()
        trace()  # warm-up both
        t_bare, t_trace = [], []
        for _ in range(reps):
            for fn, store in ((bare, t_bare), (trace, t_trace)):
                start = time.perf_counter()
                fn()
                store.append(time.perf_counter() - start)
        # The machine is shared: the fastest repetition of each path is the least disturbed.
        mb, mt = min(t_bare), min(t_trace)
        print(
            f"bare generate: min {mb:.3f} s, median {statistics.median(t_bare):.3f} s, runs {' '.join(f'{t:.3f}' for t in t_bare)}"
        )
        print(
            f"trace path:    min {mt:.3f} s, median {statistics.median(t_trace):.3f} s, runs {' '.join(f'{t:.3f}' for t in t_trace)}"
        )
        print(
            f"n={args.n} tokens={tokens} median ratio {statistics.median(t_trace) / statistics.median(t_bare):.3f}"
        )
        print(f"RESULT overhead={mt / mb:.3f}")


if __name__ == "__main__":
    main()
