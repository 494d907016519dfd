"""Inv-Entropy on a dataset: per-question measures, AUROC / PRR against gold answers, and TSU.

For each question of a JSONL or CSV file (``id``, ``question``, ``answers``; the format of
:func:`uq.evaluate.load_dataset`) the Inv-Entropy pipeline runs (questions in batches: one
paraphrase call and one answering call per batch), a greedy reference answer to the original
question is scored against the gold answers (SQuAD F1 ≥ 0.5 by default,
:mod:`uq.correctness`), and every measure — Inv-Entropy, NI-Entropy, NR-Inv-Entropy, WD-px-py,
MAX-py-x and the semantic entropy of the same answers — gets AUROC and PRR with bootstrap
intervals (:func:`uq.metrics.evaluation_metrics`). With ``--tsu`` the same perturbations are
answered again at every temperature of the grid and each measure's TSU is reported (Song et al.
2025, eq. 7; no labels needed).

    python -m uq.inv_evaluate --data data/qa/trivia_small.jsonl --model tiny-random \\
        --out results/inv --limit 10 --tsu

The harness :mod:`uq.evaluate` takes the same measures as extra columns through
:func:`register_inv_entropy` (a measure provider named "inv").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import ConfidantError, LanguageModel, SamplingParams
from uq.cli import run_cli
from uq.correctness import correctness_score
from uq.inv_pipeline import (
    DEFAULT_ANSWER_INSTRUCTION,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_REPLICATES,
    SIMILARITIES,
    Embed,
    answer_prompt,
    check_options,
    clean_response,
    inv_entropy_tsu,
    measure_values,
    run_inv_entropy,
    run_inv_entropy_batch,
)
from uq.metrics import evaluation_metrics
from uq.perturb import DEFAULT_N_PERTURBATIONS
from uq.tsu import DEFAULT_TSU_TEMPERATURES

__all__ = [
    "CORRECTNESS",
    "inv_entropy_record",
    "main",
    "make_inv_entropy_provider",
    "reference_answers",
    "register_inv_entropy",
    "score_rows",
]

CORRECTNESS = {
    "squad_f1": ("squad_f1", 0.5),
    "em": ("exact_match", 1.0),
    "rougeL": ("rouge_l", 0.3),
}
TABLE_METRICS = ("auroc", "prr_normalised", "prr")


def _question_of(record: Any) -> str:
    question = (
        record.get("question") if isinstance(record, dict) else getattr(record, "question", None)
    )
    if not isinstance(question, str) or not question.strip():
        raise ConfidantError("the record has no 'question' text")
    return question


def inv_entropy_record(
    record: Any,
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    seed: int = 0,
    **options: Any,
) -> dict[str, float | None]:
    """Every Inv-Entropy measure for one question record (a dict or an object with
    ``question``), by name: inv_entropy, ni_entropy, nr_inv_entropy, wd_px_py, max_py_x and the
    semantic entropy of the same answers (:func:`uq.inv_pipeline.measure_values`).

    ``options`` go to :func:`uq.inv_pipeline.run_inv_entropy` (perturbation, n, replicates,
    similarity, bootstraps, temperature, ...). Song et al. (2025), Algorithm 1.
    """
    run = run_inv_entropy(_question_of(record), lm, embed, nli, seed=seed, **options)
    return measure_values(run)


def make_inv_entropy_provider(
    embed: Embed | None, nli: Any = None, **options: Any
) -> Callable[[Any], dict[str, float | None]]:
    """A measure provider for :func:`uq.evaluate.register_measure_provider`.

    It reads the question, the generator and the question's seed from the harness's
    ``QuestionContext`` and returns :func:`inv_entropy_record`'s values.
    """

    def provider(context: Any) -> dict[str, float | None]:
        return inv_entropy_record(
            context.item, context.lm, embed, nli, seed=int(context.seed), **options
        )

    return provider


def register_inv_entropy(embed: Embed | None, nli: Any = None, **options: Any) -> str:
    """Add the Inv-Entropy measures to :mod:`uq.evaluate`'s tables as columns ``inv.<measure>``.

    The provider's version hashes ``options``, so the harness's cache recomputes questions when
    they change. Returns the version.
    """
    from uq.evaluate import register_measure_provider

    payload = json.dumps(options, sort_keys=True, default=str)
    version = "1-" + hashlib.sha256(payload.encode()).hexdigest()[:10]
    register_measure_provider(
        "inv", make_inv_entropy_provider(embed, nli, **options), version=version
    )
    return version


def reference_answers(
    lm: LanguageModel,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 32,
    instruction: str = DEFAULT_ANSWER_INSTRUCTION,
) -> list[str]:
    """The greedy answer to each original question (first line), in one batched call; this is
    the answer whose correctness the measures should predict."""
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    replies = lm.sample_batch([answer_prompt(q, instruction) for q in questions], params)
    return [clean_response(reply[0].text) for reply in replies]


def score_rows(
    rows: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, dict | None]]:
    """AUROC, AURAC, rejection accuracies and PRR (raw and normalised) with bootstrap intervals
    for every measure column of ``rows`` (each with ``measures``, ``correct`` and ``score``),
    over the questions where the measure has a value (:func:`uq.metrics.evaluation_metrics`).
    """
    names = list(dict.fromkeys(name for row in rows for name in row["measures"]))
    table: dict[str, dict[str, dict | None]] = {}
    for name in names:
        used = [r for r in rows if r["measures"].get(name) is not None]
        if len(used) < 2:
            continue
        metrics = evaluation_metrics(
            [r["measures"][name] for r in used],
            [r["correct"] for r in used],
            [r["score"] for r in used],
            n_boot=n_boot,
            seed=seed,
        )
        table[name] = {k: (v.to_dict() if v is not None else None) for k, v in metrics.items()}
    return table


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m uq.inv_evaluate",
        description="Inv-Entropy and its variants on a dataset: per-question measures, "
        "AUROC/PRR against gold answers, and TSU over a temperature grid.",
    )
    ap.add_argument("--data", required=True, help="a .jsonl or .csv file (id, question, answers)")
    ap.add_argument("--model", required=True, help="hub id, local directory or tiny-random")
    ap.add_argument("--out", required=True, help="directory for the results")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--perturbation", choices=["paraphrase", "gaap"], default="paraphrase")
    ap.add_argument("--n", type=int, default=DEFAULT_N_PERTURBATIONS, help="perturbations")
    ap.add_argument("--r", type=int, default=DEFAULT_REPLICATES, help="answers per input")
    ap.add_argument("--similarity", choices=list(SIMILARITIES), default="embedding")
    ap.add_argument("--bootstraps", type=int, default=DEFAULT_BOOTSTRAPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--paraphrase-max-new-tokens", type=int, default=None, help="default 24·n + 32")
    ap.add_argument("--batch-size", type=int, default=8, help="questions per batched call")
    ap.add_argument("--correctness", choices=list(CORRECTNESS), default="squad_f1")
    ap.add_argument("--correctness-threshold", type=float, default=None)
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for metrics")
    ap.add_argument("--tsu", action="store_true", help="also TSU over the temperature grid")
    ap.add_argument(
        "--temperatures",
        default=",".join(str(t) for t in DEFAULT_TSU_TEMPERATURES),
        help="the TSU grid, comma-separated (default 0.3,0.7,1.0,1.4)",
    )
    ap.add_argument("--nli", default=None, help="NLI model for --similarity nli")
    ap.add_argument("--openai-base-url", default=None, help="an OpenAI-compatible server")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _run_cli(_parser().parse_args(a)), argv)


def _fmt(metric: dict | None) -> str:
    if metric is None:
        return "—"
    return f"{metric['estimate']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


def _run_cli(args: argparse.Namespace) -> int:
    # The CLI is an entry point: it wires the backends and the file writers around the maths.
    from backends.registry import BackendConfig, Backends
    from store.export import write_csv, write_jsonl
    from uq.evaluate import load_dataset

    options = check_options(
        perturbation=args.perturbation,
        n=args.n,
        replicates=args.r,
        similarity=args.similarity,
        bootstraps=args.bootstraps,
        seed=args.seed,
    )
    if args.limit is not None and args.limit < 1:
        raise ConfidantError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_size < 1:
        raise ConfidantError(f"--batch-size must be at least 1, got {args.batch_size}")
    method, default_threshold = CORRECTNESS[args.correctness]
    threshold = (
        default_threshold if args.correctness_threshold is None else args.correctness_threshold
    )
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ConfidantError(f"the correctness threshold must be in [0, 1], got {threshold}")
    try:
        grid = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except ValueError:
        raise ConfidantError(f"--temperatures must be numbers, got {args.temperatures!r}") from None
    items = load_dataset(args.data)[: args.limit]
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidantError(f"--out {out_dir} exists and is not a directory")

    backends = Backends(
        BackendConfig(model=args.model, openai_base_url=args.openai_base_url, nli_model=args.nli)
    )
    lm = backends.generator()
    needs_embedder = options["similarity"] != "nli" or options["perturbation"] == "gaap"
    embed = backends.embedder() if needs_embedder else None
    nli = backends.nli() if options["similarity"] == "nli" else None
    run_options = {
        "n": options["n"],
        "replicates": options["replicates"],
        "similarity": options["similarity"],
        "bootstraps": options["bootstraps"],
        "seed": options["seed"],
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "paraphrase_max_new_tokens": args.paraphrase_max_new_tokens,
    }
    print(f"Inv-Entropy on {len(items)} questions from {args.data} with {lm.model_id}", flush=True)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    perturbed = []
    for start in range(0, len(items), args.batch_size):
        batch = items[start : start + args.batch_size]
        questions = [item.question for item in batch]
        runs = run_inv_entropy_batch(
            questions, lm, embed, nli, perturbation=options["perturbation"], **run_options
        )
        answers = reference_answers(lm, questions, max_new_tokens=args.max_new_tokens)
        for item, run, answer in zip(batch, runs, answers, strict=True):
            score = correctness_score(answer, item.answers, method) if answer else 0.0
            perturbed.append(run.perturbation)
            rows.append(
                {
                    "id": item.id,
                    "question": item.question,
                    "golds": item.answers,
                    "answer": answer,
                    "score": score,
                    "correct": bool(score >= threshold),
                    "measures": measure_values(run),
                    "perturbations": run.perturbation.perturbations,
                    "perturbation_source": run.perturbation.source,
                }
            )
        print(f"[{len(rows)}/{len(items)}] {time.perf_counter() - started:.1f} s", flush=True)

    metrics = score_rows(rows, n_boot=args.n_boot, seed=options["seed"])
    summary: dict[str, Any] = {
        "params": {
            **run_options,
            "perturbation": options["perturbation"],
            "model": lm.model_id,
            "embedding_model": getattr(embed, "model_id", None),
            "nli_model": getattr(nli, "model_id", None),
            "data": str(args.data),
            "n_questions": len(rows),
            "correctness": method,
            "correctness_threshold": threshold,
            "reference_answer": "greedy, first line",
            "n_boot": args.n_boot,
            "batch_size": args.batch_size,
        },
        "accuracy": float(np.mean([r["correct"] for r in rows])),
        "metrics": metrics,
    }
    if args.tsu:
        print(f"TSU over temperatures {grid}", flush=True)
        sweep = inv_entropy_tsu(
            [item.question for item in items],
            lm,
            embed,
            nli,
            temperatures=grid,
            perturbed=perturbed,
            batch_size=args.batch_size,
            **{k: v for k, v in run_options.items() if k not in ("n", "temperature")},
        )
        summary["tsu"] = sweep.to_dict()
    summary["duration"] = time.perf_counter() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        write_jsonl(rows, out_dir / "inv_entropy_rows.jsonl"),
        out_dir / "inv_entropy_summary.json",
    ]
    paths[1].write_text(json.dumps(summary, ensure_ascii=False, indent=1, allow_nan=False))
    table = [
        {
            "measure": name,
            **{m: (values.get(m) or {}).get("estimate") for m in TABLE_METRICS},
            **({"tsu": json.dumps(summary["tsu"]["summary"].get(name))} if args.tsu else {}),
        }
        for name, values in metrics.items()
    ]
    columns = ["measure", *TABLE_METRICS] + (["tsu"] if args.tsu else [])
    paths.append(write_csv(table, columns, out_dir / "inv_entropy_metrics.csv"))

    print(f"accuracy {summary['accuracy']:.3f} · {summary['duration']:.1f} s")
    for name, values in metrics.items():
        print(
            f"  {name:<36} AUROC {_fmt(values.get('auroc'))}  "
            f"PRR {_fmt(values.get('prr_normalised'))}"
        )
    if args.tsu:
        for name, columns_ in summary["tsu"]["summary"].items():
            print(f"  TSU {name:<32} " + "  ".join(f"{k} {v:.1f}" for k, v in columns_.items()))
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
