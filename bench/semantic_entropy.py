"""Semantic-entropy pipeline vs a reference-style pipeline vs the unavoidable work.

Random-initialised models of realistic shape (speed does not depend on the weights):
- generator: Llama-style, ~100M parameters (vocab 32000, hidden 768, 12 layers);
- NLI: a DeBERTa-v2 cross-encoder of **deberta-base shape** (hidden 768, 12 layers, 12 heads,
  intermediate 3072, relative attention, vocab 128100) with a 3-label head.

N = 10 answers plus the reference answer, a fixed 32 new tokens each (min = max new tokens),
every measure (so every ordered pair of distinct answers is labelled). Compared in one run,
repetitions alternating between the paths:

- ours: ``run_semantic_entropy`` (N samples + reference in one batched generate, all needed
  pairs in one batched NLI pass, p(True) in one scoring call);
- reference-style (as in Farquhar et al.'s code): one generate call per answer, every ordered
  pair of the N answers through NLI one call at a time, and the same p(True) call;
- unavoidable: one bare batched ``generate`` of the N + 1 answers plus one bare batched NLI
  forward over the pairs our pipeline actually needed (same length batches as ours).

Also printed: each path's stages (generation and NLI, per pair), the speedup without the
pair-matrix measures (EigV, Degree, Eccentricity, KLE: then only the clustering walk's pairs go
to the NLI model), and the speedup our sampling alone would give if entailment were free.

    python bench/semantic_entropy.py [--quick]

Last line: ``RESULT speedup=<reference ÷ ours> unavoidable_ratio=<ours ÷ unavoidable>``
(targets ≥ 8 and ≤ 1.3), from the minimum time of each path; medians are printed too.
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
from transformers import (  # noqa: E402
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    GenerationConfig,
)

from backends.base import SamplingParams
from backends.hf import HFCausalLM  # noqa: E402
from backends.nli import NLIModel, token_batches  # noqa: E402
from backends.tiny import _train_tokenizer  # noqa: E402
from bench.common import build_llama  # noqa: E402
from uq.semantic.clustering import cluster_by_entailment
from uq.semantic.entailment import NLIEntailment
from uq.semantic.measures import measures_without_pair_matrix
from uq.semantic.p_true import p_true_probability
from uq.semantic.pipeline import run_semantic_entropy

QUESTION = "Which river flows through the city of Vienna, and into which sea does it drain?"
N = 10
TOKENS = 32


def build_generator(path: Path, quick: bool) -> None:
    tok = _train_tokenizer(384)

    def words_only(model) -> None:
        # The bench tokenizer has ~384 tokens: silence the other rows of the head so every
        # sampled id decodes to text (the answers then have realistic lengths for NLI).
        model.lm_head.weight[len(tok) :] = 0.0
        model.lm_head.weight[: len(tok)] *= 4.0

    build_llama(path, tok, quick, adjust=words_only, label="generator")


def build_nli(path: Path, quick: bool) -> None:
    tok = _train_tokenizer(384)
    tok.cls_token, tok.sep_token = "<|im_start|>", "<|im_end|>"
    config = DebertaV2Config(
        vocab_size=128100,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=6 if quick else 12,
        num_attention_heads=12,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=256,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        pad_token_id=tok.pad_token_id,
        id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
        label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2},
        num_labels=3,
    )
    torch.manual_seed(0)
    model = DebertaV2ForSequenceClassification(config)
    print(f"NLI (deberta-base shape): {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M")
    model.save_pretrained(path)
    tok.save_pretrained(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    reps = args.reps or 2
    with tempfile.TemporaryDirectory() as d:
        gen_dir, nli_dir = Path(d) / "gen", Path(d) / "nli"
        build_generator(gen_dir, args.quick)
        build_nli(nli_dir, args.quick)
        lm = HFCausalLM(str(gen_dir)).load()
        nli = NLIModel(str(nli_dir)).load()
        original = lm._generation_config

        def fixed_length(p, greedy):
            cfg = original(p, greedy)
            cfg.min_new_tokens = TOKENS
            return cfg

        lm._generation_config = fixed_length
        prompt_text = f"Answer the following question as briefly as possible.\n{QUESTION}"
        last: dict = {}

        stages: dict[str, list[float]] = {"ref_generate": [], "ref_nli": []}

        def ours(measures=None, key="result"):
            result = run_semantic_entropy(
                lm, QUESTION, NLIEntailment(nli), n=N, max_new_tokens=TOKENS, stop=(), seed=1,
                measures=measures,
            )  # fmt: skip
            assert all(len(g.tokens) == TOKENS for g in result.samples)
            last[key] = result

        def reference_style():
            started = time.perf_counter()
            answers = []
            for i in range(N + 1):
                temp = 1.0 if i < N else 0.1
                params = SamplingParams(n=1, temperature=temp, max_new_tokens=TOKENS, seed=i)
                answers.append(lm.sample(prompt_text, params)[0])
            stages["ref_generate"].append(time.perf_counter() - started)
            texts = [g.text.strip() for g in answers[:N]]
            started = time.perf_counter()
            labels = {}
            for i in range(N):
                for j in range(N):
                    if i != j:
                        pair = [(f"{QUESTION} {texts[i]}", f"{QUESTION} {texts[j]}")]
                        labels[(i, j)] = int(nli.probs(pair)[0].argmax())
            stages["ref_nli"].append(time.perf_counter() - started)
            cluster_by_entailment(N, lambda i, j: labels[(i, j)])
            p_true_probability(lm, QUESTION, texts, answers[N].text)

        # The measures that need no pair matrix: the clustering walk alone decides the NLI work.
        walk_measures = measures_without_pair_matrix()

        def ours_walk():
            ours(walk_measures, "walk")

        ours()  # warm-up, and the pairs the unavoidable pass must label
        result = last["result"]
        texts = result.texts
        needed = [
            (i, j)
            for i in range(N)
            for j in range(N)
            if i != j
            and result.clustering.duplicate_of[i] == i
            and result.clustering.duplicate_of[j] == j
        ]
        assert len(needed) == result.work["entailment_pairs"]
        pair_texts = [(f"{QUESTION} {texts[i]}", f"{QUESTION} {texts[j]}") for i, j in needed]
        prompt_ids = lm._prompt_ids(prompt_text, True)
        input_ids = torch.tensor([prompt_ids] * (N + 1))
        bare_cfg = GenerationConfig(
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=TOKENS,
            min_new_tokens=TOKENS, pad_token_id=lm.tokenizer.pad_token_id,
            eos_token_id=lm.tokenizer.eos_token_id,
        )  # fmt: skip
        nli_model, nli_tok = nli._model, nli._tokenizer

        def unavoidable():
            with torch.inference_mode():
                torch.manual_seed(0)
                lm.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    generation_config=bare_cfg,
                )
                enc = nli_tok(
                    [p for p, _ in pair_texts], [h for _, h in pair_texts], truncation=True,
                    max_length=512,
                )  # fmt: skip
                rows = [{k: enc[k][i] for k in enc} for i in range(len(pair_texts))]
                lengths = [len(row["input_ids"]) for row in rows]
                for batch in token_batches(lengths, nli.batch_size, nli.max_batch_tokens):
                    nli_model(**nli_tok.pad([rows[i] for i in batch], return_tensors="pt"))

        reference_style()
        unavoidable()
        ours_walk()
        times = {"ours": [], "reference": [], "unavoidable": [], "ours_walk": []}
        stages["ref_generate"].clear()
        stages["ref_nli"].clear()
        for rep in range(reps):
            for name, fn in (
                ("reference", reference_style),
                ("ours", ours),
                ("unavoidable", unavoidable),
                ("ours_walk", ours_walk),
            ):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
                print(f"rep {rep + 1} {name}: {times[name][-1]:.2f} s", flush=True)
        r = last["result"]
        print(
            f"N={N} tokens={TOKENS} distinct answers={len(set(r.clustering.duplicate_of))} "
            f"pairs labelled: ours {r.work['entailment_pairs']} in "
            f"{r.work['entailment_calls']} call(s), reference-style {N * (N - 1)} single calls; "
            f"generate calls: ours {r.work['generate_calls']}, reference-style {N + 1}"
        )
        print("our stages (last run): " + ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items()))
        w = last["walk"]
        print(
            f"reference-style stages (fastest): generate {min(stages['ref_generate']):.2f} s "
            f"({N + 1} calls), NLI {min(stages['ref_nli']):.2f} s "
            f"({min(stages['ref_nli']) / (N * (N - 1)):.3f} s a pair, one pair a call)"
        )
        print(
            f"ours, NLI per pair: {r.timings['entailment'] / max(1, r.work['entailment_pairs']):.3f} s"
            f" batched by length (max {nli.batch_size} pairs, {nli.max_batch_tokens} tokens)"
        )
        print(
            f"ours without the pair-matrix measures ({len(walk_measures)} measures): "
            f"{w.work['entailment_pairs']} pairs in {w.work['entailment_calls']} call(s); "
            f"stages " + ", ".join(f"{k} {v:.2f} s" for k, v in w.timings.items())
        )
        bound = min(times["reference"]) / r.timings["sampling"]
        print(
            f"upper bound on the speedup with FREE entailment (reference ÷ our sampling alone): "
            f"{bound:.2f}"
        )
        for name, values in times.items():
            print(
                f"{name:<12} min {min(values):.2f} s  median {statistics.median(values):.2f} s  "
                f"{[round(v, 2) for v in values]}"
            )
        speedup = min(times["reference"]) / min(times["ours"])
        ratio = min(times["ours"]) / min(times["unavoidable"])
        print(
            f"median-based: speedup {statistics.median(times['reference']) / statistics.median(times['ours']):.2f}"  # noqa: E501
            f" unavoidable_ratio {statistics.median(times['ours']) / statistics.median(times['unavoidable']):.2f}"  # noqa: E501
        )
        print(
            f"without the pair-matrix measures: speedup "
            f"{min(times['reference']) / min(times['ours_walk']):.2f} (fastest), "
            f"{statistics.median(times['reference']) / statistics.median(times['ours_walk']):.2f}"
            " (medians)"
        )
        print(f"RESULT speedup={speedup:.2f} unavoidable_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
