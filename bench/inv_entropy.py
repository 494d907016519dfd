"""Inv-Entropy's answering step: every (input, replicate) in batched calls vs one call each.

Inv-Entropy answers the question and its 9 perturbations 5 times each: 50 answers per question.
Our pipeline (``uq.inv.pipeline.generate_responses``) sends all 10 inputs × 5 replicates to ONE
``sample_batch``; the authors' code makes one API call per (input, replicate). Both paths run
here on a random-initialised Llama-style model of realistic shape (~100M parameters), with the
same token-trace recording, generating a fixed number of tokens (min = max new tokens) so the
work is identical; repetitions alternate between the paths so machine noise hits both alike, and
the MINIMUM time of each path is compared (medians printed too).

    python bench/inv_entropy.py [--quick] [--tokens 16] [--reps 2] [--max-batch 64]

Last line: ``RESULT speedup=<per-call time ÷ batched time> ...`` (target ≥ 5).
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

from backends.base import SamplingParams
from backends.hf import HFCausalLM  # noqa: E402
from backends.tiny import _train_tokenizer  # noqa: E402
from bench.common import build_llama  # noqa: E402
from uq.inv.pipeline import answer_prompt, generate_responses

INPUTS = [
    "What is the capital city of Australia?",
    "Which city is the capital of Australia?",
    "Australia's capital is which city?",
    "Name the capital of Australia.",
    "What city serves as Australia's capital?",
    "Which Australian city is the national capital?",
    "Can you tell me the capital of Australia?",
    "What is the seat of government of Australia?",
    "Which city is Australia's capital city?",
    "In which city is the capital of Australia?",
]


def build_model(path: Path, quick: bool) -> None:
    build_llama(path, _train_tokenizer(384), quick)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--max-batch", type=int, default=64, help="sequences per generate call")
    args = ap.parse_args()
    tokens = args.tokens or (12 if args.quick else 16)
    reps = args.reps or 2
    r = args.replicates
    with tempfile.TemporaryDirectory() as d:
        build_model(Path(d), args.quick)
        lm = HFCausalLM(d, max_batch=args.max_batch).load()
        original = lm._generation_config

        def fixed_length(params, greedy):
            config = original(params, greedy)
            config.min_new_tokens = tokens  # EOS out of reach: identical work on both paths
            return config

        lm._generation_config = fixed_length
        calls = {"n": 0}
        generate = lm.model.generate

        def counted(*a, **kw):
            calls["n"] += 1
            return generate(*a, **kw)

        lm.model.generate = counted

        def params(n: int, seed: int) -> SamplingParams:
            return SamplingParams(n=n, temperature=0.7, max_new_tokens=tokens, seed=seed)

        def batched() -> int:
            calls["n"] = 0
            out = generate_responses(lm, [INPUTS], r, params(r, 0))
            assert sum(len(g.tokens) for row in out[0] for g in row) == len(INPUTS) * r * tokens
            return calls["n"]

        def per_call() -> int:
            calls["n"] = 0
            for k, text in enumerate(INPUTS):
                for j in range(r):
                    (gen,) = lm.sample_batch([answer_prompt(text)], params(1, k * r + j))[0]
                    assert len(gen.tokens) == tokens
            return calls["n"]

        n_batched, n_per_call = batched(), per_call()  # warm-up both
        times: dict[str, list[float]] = {"batched": [], "per_call": []}
        for _ in range(reps):
            for name, fn in (("batched", batched), ("per_call", per_call)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        for name, count in (("batched", n_batched), ("per_call", n_per_call)):
            print(
                f"{name:<9} {count:>3} generate calls · min {best[name]:.2f} s · median "
                f"{median[name]:.2f} s · runs {[f'{t:.2f}' for t in times[name]]}"
            )
        print(
            f"{len(INPUTS)} inputs × {r} replicates · {tokens} tokens each · max_batch "
            f"{args.max_batch} · torch threads {torch.get_num_threads()}"
        )
        print(
            f"RESULT speedup={best['per_call'] / best['batched']:.2f} "
            f"median_speedup={median['per_call'] / median['batched']:.2f}"
        )


if __name__ == "__main__":
    main()
