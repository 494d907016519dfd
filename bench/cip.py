"""One C-IP selection step: the batched posterior path against one pass per history.

A random-initialised Llama-style model of realistic shape (~100M parameters; a word-level BPE
tokenizer trained in code on the class set and the prompts, so questions and names take about
as many tokens as with a real tokenizer) chooses the next question of a game on the animals
class set after two answers: every unasked bank question (76 candidates) × n_est = 4
hypothetical labels drawn uniformly (seeded), answers from the bank.

- Ours: ``uq.cip.selection.select_query`` with ``uq.cip.llm_posterior.LLMPosterior``: the (candidate, hypothesis)
  histories are deduplicated (two labels giving the same answer make one history), then scored
  in ONE ``score_tree`` call: the shared prefix (system + the two answered lines) run once, each
  distinct (question, answer, forced prefix) suffix a row, the K class names as continuations.
- Baseline: for EVERY (candidate, hypothesis) pair, no deduplication, one
  ``lm.score(full_prompt, [" " + name for each class], chat=False)`` call: that history's whole
  prompt (system + its three lines + forced prefix) is run through the model, then all K class
  names are scored against its cache in one batched pass; the same bound arithmetic follows.

Both give the same posteriors (checked). Repetitions alternate between the paths; the minimum
time of each is compared (the machine is shared and noisy), medians are printed too.

    python bench/cip.py [--quick]

Last line: ``RESULT speedup=<baseline min ÷ ours min>`` (target ≥ 5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from backends.hf import HFCausalLM  # noqa: E402
from backends.tiny import CHAT_TEMPLATE  # noqa: E402
from bench.common import build_llama  # noqa: E402
from uq.cip.class_sets import load_default_class_set
from uq.cip.llm_posterior import LLMPosterior
from uq.cip.selection import select_query


def train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(path: Path, quick: bool, texts: list[str]) -> None:
    build_llama(path, train_tokenizer(texts), quick)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--candidates", type=int, default=None, help="default: every unasked one")
    args = ap.parse_args()
    reps = args.reps or 2
    animals = load_default_class_set()
    history = [("Is it a mammal?", "yes"), ("Does it live on a farm?", "no")]
    history = [(q, a) for q, a in history if animals.has_question(q)] or [
        (animals.questions[0], "yes"),
        (animals.questions[1], "no"),
    ]
    asked = {q for q, _ in history}
    candidates = [q for q in animals.questions if q not in asked]
    if args.candidates:
        candidates = candidates[: args.candidates]
    elif args.quick:
        candidates = candidates[:20]
    n_est = 4
    with tempfile.TemporaryDirectory() as d:
        probe = LLMPosterior(type("NoTok", (), {"model_id": "probe"})(), animals.classes)
        texts = [probe.prompt_text(history + [(q, a)]) for q in animals.questions
                 for a in ("yes", "no")]  # fmt: skip
        build_model(Path(d), args.quick, texts)
        lm = HFCausalLM(d).load()
        posterior = LLMPosterior(lm, animals.classes)
        options = list(posterior.options)
        print(
            f"prompt tokens: {len(lm._prompt_ids(posterior.prompt_text(history), False))}, "
            f"class name tokens: {sum(len(lm._encode(o)) for o in options)} for "
            f"K={len(options)} classes, candidates={len(candidates)}, n_est={n_est}",
            flush=True,
        )

        def ours():
            step = select_query("cip", history, candidates, animals.classes, posterior,
                                animals.answer, np.random.default_rng(0), tau=0.01, alpha=0.1,
                                n_est=n_est)  # fmt: skip
            return step

        def per_history(histories):
            out = []
            for h in histories:
                totals = np.array(
                    [
                        s.total_logprob
                        for s in lm.score(posterior.prompt_text(h), options, chat=False)
                    ]  # fmt: skip
                )
                p = np.exp(totals - totals.max())
                out.append(p / p.sum())
            return np.array(out)

        def baseline():
            calls = []

            def no_dedup(histories):
                # select_query deduplicates; the baseline scores every (candidate, label) pair.
                calls.append(len(histories))
                return per_history(histories)

            rng = np.random.default_rng(0)
            labels = rng.integers(animals.n_classes, size=n_est)
            sims = [history + [(q, animals.answer(animals.classes[y], q))]
                    for q in candidates for y in labels]  # fmt: skip
            probs = no_dedup(sims)
            step = select_query("cip", history, candidates, animals.classes,
                                lambda hs: probs_lookup(hs, sims, probs), animals.answer,
                                np.random.default_rng(0), tau=0.01, alpha=0.1,
                                n_est=n_est)  # fmt: skip
            return step, len(sims)

        def probs_lookup(hs, sims, probs):
            index = {tuple(map(tuple, h)): i for i, h in enumerate(sims)}
            return probs[[index[tuple(map(tuple, h))] for h in hs]]

        # Warm-up and equality check.
        a = ours()
        b, n_pairs = baseline()
        assert a.chosen == b.chosen, (a.chosen, b.chosen)
        check = [history + [(candidates[0], "yes")], history + [(candidates[1], "no")]]
        np.testing.assert_allclose(posterior(check), per_history(check), atol=1e-4)
        print(f"distinct histories (ours): {a.n_scored}; pairs scored by the baseline: {n_pairs}")
        t_ours, t_base = [], []
        for r in range(reps):
            for fn, times in ((ours, t_ours), (baseline, t_base)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            print(f"rep {r + 1}: ours {t_ours[-1]:.2f} s, baseline {t_base[-1]:.2f} s", flush=True)
        print(f"ours:     min {min(t_ours):.2f} s, median {statistics.median(t_ours):.2f} s")
        print(f"baseline: min {min(t_base):.2f} s, median {statistics.median(t_base):.2f} s")
        print(f"RESULT speedup={min(t_base) / min(t_ours):.2f}")


if __name__ == "__main__":
    main()
