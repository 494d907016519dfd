"""The exact 100-point score distribution: one shared-cache pass against 100 separate passes.

A random-initialised Llama-style model of realistic shape (~100M parameters, 32k vocabulary)
and a tokenizer that splits numbers into several tokens. The text up to the score position is the
grading prompt (chat template) + a fixed rationale + "Score: [". Three paths, repetitions
alternating so machine noise hits all alike:

- ours: ``HFCausalLM.score_tree`` over the 100 continuations "1]" .. "100]" (what
  ``judge.grading.grade`` does after the rationale);
- separate: for each value, one forward over the full text + value + "]";
- prefill: one forward over the text up to the score position alone.

    python bench/judge.py [--quick]

Last line: ``RESULT speedup=<separate ÷ ours> prefill_ratio=<ours ÷ prefill>`` (targets ≥ 20 and
≤ 1.5), from the minimum time of each path (the machine is shared); medians are printed too.
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

from backends.hf import HFCausalLM  # noqa: E402
from backends.tiny import _train_tokenizer  # noqa: E402
from bench.common import build_llama  # noqa: E402
from judge.prompts import grading_prompt, score_prefix  # noqa: E402

QUESTION = "Why is the sky blue?"
RESPONSE = (
    "Because of Rayleigh scattering: the gas molecules in the air scatter short wavelengths "
    "(blue) much more strongly than long ones (red). The scattered blue light comes at us from "
    "every direction of the sky, so the sky looks blue."
)
RATIONALE = (
    "The response names the right mechanism, Rayleigh scattering, and explains that shorter "
    "wavelengths are scattered more strongly than longer ones, which is correct. It does not "
    "say why the sky is not violet, and it gives no numbers, but it is clear and accurate. "
    "Overall a correct, concise answer that misses some depth."
)


def build_model(path: Path, quick: bool) -> None:
    build_llama(path, _train_tokenizer(384), quick, max_position_embeddings=4096)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None, help="runs of the separate path")
    ap.add_argument("--pairs", type=int, default=None, help="ours/prefill runs per separate run")
    args = ap.parse_args()
    reps = args.reps or 2
    pairs = args.pairs or (4 if args.quick else 3)
    with tempfile.TemporaryDirectory() as d:
        build_model(Path(d), args.quick)
        lm = HFCausalLM(d).load()
        prompt = grading_prompt(QUESTION, RESPONSE, scale=100)
        suffix = score_prefix(RATIONALE)
        values = list(range(1, 101))
        conts = [f"{v}]" for v in values]
        prompt_ids = lm._prompt_ids(prompt, True)
        suffix_ids = lm._encode(suffix)
        full_ids = prompt_ids + suffix_ids
        cont_ids = []
        for c in conts:
            both = lm._encode(suffix + c)
            assert both[: len(suffix_ids)] == suffix_ids
            cont_ids.append(both[len(suffix_ids) :])
        lengths = [len(c) for c in cont_ids]
        print(
            f"text up to the score position: {len(full_ids)} tokens; continuations of "
            f"{min(lengths)}..{max(lengths)} tokens (the value split into digits, then ']')"
        )

        def ours():
            return [s.total_logprob for s in lm.score_tree(prompt, [suffix], conts)[0]]

        def separate():
            out = []
            with torch.inference_mode():
                for c in cont_ids:
                    ids = torch.tensor([full_ids + c])
                    start = len(full_ids) - 1
                    logits = lm.model(input_ids=ids).logits[0, start : start + len(c)]
                    logp = torch.log_softmax(logits.float(), -1)
                    out.append(sum(float(logp[j, t]) for j, t in enumerate(c)))
            return out

        def prefill():
            with torch.inference_mode():
                lm.model(input_ids=torch.tensor([full_ids]))

        a, b = ours(), separate()  # warm-up, and the two must agree
        diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
        probs = torch.tensor(a, dtype=torch.float64).exp()
        print(
            f"max |log p| difference ours vs separate: {diff:.2e}; mass on the scale {float(probs.sum()):.3g}"
        )
        prefill()
        times: dict[str, list[float]] = {"ours": [], "separate": [], "prefill": []}

        def timed(name, fn):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

        # The separate path is ~100 times slower: it runs `reps` times, and between its runs
        # ours and the prefill alternate `pairs` times each, so all paths see the same noise.
        for _ in range(reps):
            for _ in range(pairs):
                timed("ours", ours)
                timed("prefill", prefill)
            timed("separate", separate)
        for name, ts in times.items():
            print(
                f"{name:9s} min {min(ts):.3f} s  median {statistics.median(ts):.3f} s  "
                f"{[round(t, 3) for t in ts]}"
            )
        speedup = min(times["separate"]) / min(times["ours"])
        ratio = min(times["ours"]) / min(times["prefill"])
        med_speedup = statistics.median(times["separate"]) / statistics.median(times["ours"])
        med_ratio = statistics.median(times["ours"]) / statistics.median(times["prefill"])
        print(f"medians: speedup {med_speedup:.1f} prefill_ratio {med_ratio:.2f}")
        print(f"RESULT speedup={speedup:.1f} prefill_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
