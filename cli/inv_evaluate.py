"""``python -m cli inv-evaluate``: Inv-Entropy over a dataset — per-question measures, AUROC /
PRR against gold answers, and TSU.

For each question of a JSONL or CSV file (``id``, ``question``, ``answers``; the format of
:func:`uq.evaluation.datasets.load_dataset`) the evaluation harness
(:func:`uq.evaluation.harness.run_evaluation`) runs the Inv-Entropy provider
(:class:`uq.inv.provider.InvEntropyProvider`; questions in batches: one paraphrase call and one
answering call per batch), scores the greedy reference answer to the original question against
the gold answers (SQuAD F1 ≥ 0.5 by default, :mod:`uq.evaluation.correctness`), and gives every
measure — Inv-Entropy, NI-Entropy, NR-Inv-Entropy, WD-px-py, MAX-py-x and the semantic entropy
of the same answers — AUROC and PRR with bootstrap intervals. Finished questions are cached in
SQLite (``--db``; default the app's database), so a repeated or interrupted run computes only
what is missing. With ``--tsu`` the same perturbations are answered again at every temperature of
the grid and each measure's TSU is reported (Song et al. 2025, eq. 7; no labels needed).

    python -m cli inv-evaluate --data data/qa/trivia_small.jsonl --model tiny-random \\
        --out results/inv --limit 10 --tsu
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cli.common import add_model_arguments, backends_from_args, run_cli, seed_arg
from core.errors import ConfidantError
from uq.evaluation.harness import EvalSettings, EvaluationResult, run_evaluation
from uq.evaluation.tsu import DEFAULT_TSU_TEMPERATURES
from uq.inv.options import (
    DEFAULT_BOOTSTRAPS,
    DEFAULT_REPLICATES,
    DEFAULT_SIMILARITY,
    SIMILARITIES,
    check_options,
)
from uq.inv.paraphrase import DEFAULT_N_PERTURBATIONS
from uq.inv.provider import (
    CORRECTNESS_CHOICES,
    TABLE_METRICS,
    GreedyReference,
    inv_metrics,
    inv_perturbations,
    inv_rows,
    make_inv_entropy_provider,
)
from uq.inv.tsu_sweep import inv_entropy_tsu


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m cli inv-evaluate",
        description="Inv-Entropy and its variants on a dataset: per-question measures, "
        "AUROC/PRR against gold answers, and TSU over a temperature grid.",
    )
    ap.add_argument("--data", required=True, help="a .jsonl or .csv file (id, question, answers)")
    ap.add_argument("--out", required=True, help="directory for the results")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--perturbation", choices=["paraphrase", "gaap"], default="paraphrase")
    ap.add_argument("--n", type=int, default=DEFAULT_N_PERTURBATIONS, help="perturbations")
    ap.add_argument("--r", type=int, default=DEFAULT_REPLICATES, help="answers per input")
    ap.add_argument("--similarity", choices=list(SIMILARITIES), default=DEFAULT_SIMILARITY)
    ap.add_argument("--bootstraps", type=int, default=DEFAULT_BOOTSTRAPS)
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--paraphrase-max-new-tokens", type=int, default=None, help="default 24·n + 32")
    ap.add_argument("--batch-size", type=int, default=8, help="questions per batched call")
    ap.add_argument("--correctness", choices=list(CORRECTNESS_CHOICES), default="squad_f1")
    ap.add_argument("--correctness-threshold", type=float, default=None)
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for metrics")
    ap.add_argument("--tsu", action="store_true", help="also TSU over the temperature grid")
    ap.add_argument(
        "--temperatures",
        default=",".join(str(t) for t in DEFAULT_TSU_TEMPERATURES),
        help="the TSU grid, comma-separated (default 0.3,0.7,1.0,1.4)",
    )
    ap.add_argument("--db", default=None, help="SQLite file for the resume cache")
    ap.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    add_model_arguments(ap)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _run_cli(_parser().parse_args(a)), argv)


def _fmt(metric: dict | None) -> str:
    if metric is None:
        return "—"
    return f"{metric['estimate']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


def _run_cli(args: argparse.Namespace) -> int:
    # The CLI is an entry point: it wires the backends, the cache and the file writers.
    from store.db import Store
    from store.eval_cache import EvalCache
    from uq.evaluation.datasets import load_dataset

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
    settings = EvalSettings(
        seed=options["seed"],
        correctness=args.correctness,
        correctness_threshold=args.correctness_threshold,
        n_boot=args.n_boot,
        metrics_seed=options["seed"],
    ).validate()
    try:
        grid = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except ValueError:
        raise ConfidantError(f"--temperatures must be numbers, got {args.temperatures!r}") from None
    items = load_dataset(args.data)[: args.limit]
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidantError(f"--out {out_dir} exists and is not a directory")

    backends = backends_from_args(args)
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
    # With a seed in its options the provider runs each batch as one pipeline call.
    provider = make_inv_entropy_provider(
        embed, nli, perturbation=options["perturbation"], **run_options
    )
    cache = None if args.no_cache else EvalCache(Store(args.db) if args.db else Store())
    print(f"Inv-Entropy on {len(items)} questions from {args.data} with {lm.model_id}", flush=True)
    started = time.perf_counter()

    def progress(done: int, total: int, message: str) -> None:
        print(f"[{done}/{total}] {message}", flush=True)

    result = run_evaluation(
        items,
        lm,
        None,
        settings,
        providers=[provider],
        answerer=GreedyReference(max_new_tokens=args.max_new_tokens),
        batch_size=args.batch_size,
        cache=cache,
        progress=progress,
    )
    rows = inv_rows(result, provider.name)
    metrics = inv_metrics(result, provider.name)
    summary: dict[str, Any] = {
        "params": {
            **run_options,
            "perturbation": options["perturbation"],
            "model": lm.model_id,
            "embedding_model": getattr(embed, "model_id", None),
            "nli_model": getattr(nli, "model_id", None),
            "data": str(args.data),
            "n_questions": len(rows),
            "correctness": settings.method,
            "correctness_threshold": settings.threshold,
            "reference_answer": "greedy, first line",
            "n_boot": args.n_boot,
            "batch_size": args.batch_size,
        },
        "accuracy": result.accuracy,
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
            perturbed=inv_perturbations(result, provider.name),
            batch_size=args.batch_size,
            **{k: v for k, v in run_options.items() if k not in ("n", "temperature")},
        )
        summary["tsu"] = sweep.to_dict()
    summary["duration"] = time.perf_counter() - started
    return _write(args, out_dir, rows, metrics, summary, result)


def _write(
    args: argparse.Namespace,
    out_dir: Path,
    rows: list[dict[str, Any]],
    metrics: dict[str, Any],
    summary: dict[str, Any],
    result: EvaluationResult,
) -> int:
    from store.export import write_csv, write_jsonl

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

    print(
        f"accuracy {summary['accuracy']:.3f} · {result.n_computed} computed, "
        f"{result.n_cached} cached · {summary['duration']:.1f} s"
    )
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
