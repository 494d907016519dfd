"""Does Inv-Entropy separate anything on real answers? One run per similarity option.

With the embedded real model (SmolLM2-135M-Instruct) and the real embedding model
(all-MiniLM-L6-v2), trivia questions with gold answers (``data/qa/trivia_small.jsonl``) are
paraphrased n times by the model (screened: :func:`uq.inv.paraphrase.screen_paraphrases`),
every input is answered r times, and Inv-Entropy is measured from the SAME inputs and answers
with each similarity option of :data:`uq.inv.options.SIMILARITIES` (the NLI option only with
``--nli``, since it needs an NLI model on disk). A question counts as answered correctly when
most of the model's r answers to the original question contain a gold answer
(:func:`uq.evaluation.correctness.contains_gold`).

For each option it reports the spread of Inv-Entropy across questions (min, max, std), how far
it sits from ln(n+1) (the value it takes when every similarity is equal), and the AUROC of
−Inv-Entropy as a predictor of correctness (sklearn ``roc_auc_score``; 0.5 = no separation).
Results, with every input and answer, go to ``bench/results/inv_similarity.json``.

    python bench/inv_similarity.py [--questions 20] [--n 4] [--r 3] [--bootstraps 20] [--nli]

Last line: ``RESULT <option>_std=... <option>_auroc=... ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from backends.base import SamplingParams  # noqa: E402
from backends.registry import BackendConfig, Backends  # noqa: E402
from uq.evaluation.correctness import contains_gold  # noqa: E402
from uq.evaluation.datasets import load_dataset  # noqa: E402
from uq.inv.offline import inv_entropy_offline  # noqa: E402
from uq.inv.options import SIMILARITIES  # noqa: E402
from uq.inv.perturbation import paraphrase_questions  # noqa: E402
from uq.inv.pipeline import clean_response, generate_responses  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "data" / "qa" / "trivia_small.jsonl"
OUT = ROOT / "bench" / "results" / "inv_similarity.json"


def summary(values: list[float], correct: list[int], n_inputs: int) -> dict:
    array = np.asarray(values, dtype=float)
    log_inputs = math.log(n_inputs)
    both = 0 < sum(correct) < len(correct)
    return {
        "min": float(array.min()),
        "max": float(array.max()),
        "std": float(array.std()),
        "mean": float(array.mean()),
        "ln_n_plus_1": log_inputs,
        "max_abs_gap_to_ln_n_plus_1": float(np.max(np.abs(array - log_inputs))),
        "mean_abs_gap_to_ln_n_plus_1": float(np.mean(np.abs(array - log_inputs))),
        # Confidence = −Inv-Entropy predicts a right answer (Song et al. 2025, metrics).
        "auroc": float(roc_auc_score(correct, -array)) if both else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--n", type=int, default=4, help="perturbations per question")
    parser.add_argument("--r", type=int, default=3, help="answers per input")
    parser.add_argument("--bootstraps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--paraphrase-tokens", type=int, default=80)
    parser.add_argument("--nli", action="store_true", help="also the NLI option (needs a model)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    started = time.perf_counter()
    items = load_dataset(DATASET)[: args.questions]
    questions = [item.question for item in items]
    backends = Backends(BackendConfig(model="smollm2-135m"))
    lm, embed = backends.generator(), backends.embedder()
    nli = backends.nli() if args.nli else None

    made = paraphrase_questions(
        lm, questions, args.n, seed=args.seed, max_new_tokens=args.paraphrase_tokens,
        skip_unusable=True,
    )  # fmt: skip
    # A question whose every paraphrase answered instead of asking is left out (and counted).
    unusable = [item.question for item, p in zip(items, made, strict=True) if p is None]
    items = [item for item, p in zip(items, made, strict=True) if p is not None]
    perturbed = [p for p in made if p is not None]
    questions = [item.question for item in items]
    print(f"paraphrases: {time.perf_counter() - started:.0f} s", flush=True)
    inputs = [[q] + list(p.perturbations) for q, p in zip(questions, perturbed, strict=True)]
    params = SamplingParams(
        n=args.r, temperature=0.7, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    generations = generate_responses(lm, inputs, args.r, params)
    responses = [[[clean_response(g.text) or "∅" for g in row] for row in q] for q in generations]
    print(f"answers: {time.perf_counter() - started:.0f} s", flush=True)
    # Correct when most of the r answers to the original question contain a gold answer.
    correct = [
        int(2 * sum(contains_gold(a, item.answers) for a in rows[0]) > len(rows[0]))
        for rows, item in zip(responses, items, strict=True)
    ]
    greedy_answers = [rows[0][0] for rows in responses]

    options = [s for s in SIMILARITIES if s != "nli" or nli is not None]
    values: dict[str, list[float]] = {s: [] for s in options}
    per_bootstrap: dict[str, list[list[float]]] = {s: [] for s in options}
    for question_inputs, question_responses in zip(inputs, responses, strict=True):
        for similarity in options:
            run = inv_entropy_offline(
                question_inputs,
                question_responses,
                embed,
                nli,
                similarity=similarity,
                bootstraps=args.bootstraps,
                seed=args.seed,
            )
            values[similarity].append(float(run.measures.inv_entropy))
            per_bootstrap[similarity].append(list(run.measures.inv_entropy_per_bootstrap))

    n_inputs = args.n + 1
    report = {s: summary(values[s], correct, n_inputs) for s in options}
    rejected = [len(p.details.get("rejected", [])) for p in perturbed]
    record = {
        "model": lm.model_id,
        "embedding_model": embed.model_id,
        "questions": len(questions),
        "n": args.n,
        "r": args.r,
        "bootstraps": args.bootstraps,
        "seed": args.seed,
        "accuracy": sum(correct) / len(correct),
        "nli": "measured" if nli is not None else "not measured (no NLI model loaded)",
        "paraphrases_rejected": sum(rejected),
        "questions_without_usable_paraphrase": unusable,
        "seconds": time.perf_counter() - started,
        "summary": report,
        "per_question": [
            {
                "question": q,
                "gold": list(item.answers),
                "first_answer": a,
                "correct": c,
                "inputs": xs,
                "responses": ys,
                "rejected_paraphrases": p.details.get("rejected", []),
                "inv_entropy": {s: values[s][i] for s in options},
                "inv_entropy_per_bootstrap": {s: per_bootstrap[s][i] for s in options},
            }
            for i, (q, item, a, c, xs, ys, p) in enumerate(
                zip(
                    questions,
                    items,
                    greedy_answers,
                    correct,
                    inputs,
                    responses,
                    perturbed,
                    strict=True,
                )
            )  # fmt: skip
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"accuracy {record['accuracy']:.2f} over {len(questions)} questions; "
          f"{sum(rejected)} paraphrases rejected; {record['seconds']:.0f} s")  # fmt: skip
    print("| similarity | min | max | std | max gap to ln(n+1) | AUROC |")
    for s, r in report.items():
        auroc = "—" if r["auroc"] is None else f"{r['auroc']:.3f}"
        print(f"| {s} | {r['min']:.4f} | {r['max']:.4f} | {r['std']:.4f} | "
              f"{r['max_abs_gap_to_ln_n_plus_1']:.4f} | {auroc} |")  # fmt: skip
    parts = [f"{s}_std={r['std']:.4f} {s}_auroc={r['auroc']}" for s, r in report.items()]
    print("RESULT " + " ".join(parts))


if __name__ == "__main__":
    main()
