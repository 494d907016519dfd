"""``python -m cli evaluate``: the dataset evaluation harness from the command line.

    python -m cli evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/
    python -m cli evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/ \\
        --limit 5 --inv-entropy --inv-n 3 --inv-replicates 2
    python -m cli evaluate --samples data/samples/example.jsonl --out results/  # no generator

Finished questions are cached in SQLite (``--db``; default the app's database), so a repeated or
interrupted run computes only what is missing (Ctrl-C says how many are cached; exit code 130).
Against a served model several questions are in flight at once (``--questions-in-flight``). A
progress bar with throughput and time left goes to stderr when it is a terminal (``--quiet``:
none). ``--inv-entropy`` passes the Inv-Entropy measure
provider (:class:`uq.inv.provider.InvEntropyProvider`) to the harness: columns ``inv.*``. By default the first 5 questions are the answer prompt's
examples (``--few-shot``) and an answer is correct when it contains a gold answer
(``--correctness contains``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cli.common import add_model_arguments, backends_from_args, run_cli, seed_arg
from core.errors import ConfidantError
from uq.evaluation.datasets import load_dataset
from uq.evaluation.external import load_hf_dataset, load_parquet
from uq.evaluation.harness import EvalSettings, run_evaluation
from uq.evaluation.samples import load_samples
from uq.evaluation.settings import CORRECTNESS_NAMES, DEFAULT_CORRECTNESS, DEFAULT_FEW_SHOT
from uq.semantic.entailment import DEFAULT_EMBEDDING_THRESHOLD
from uq.semantic.measures import measures_without_pair_matrix, select_measures
from uq.semantic.pipeline import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_N,
    DEFAULT_TEMPERATURE,
)

# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m cli evaluate",
        description="Score every uncertainty measure on a dataset of questions with gold answers.",
    )
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", help="a .jsonl or .csv file (id, question, answers), or a .parquet file"
    )
    source.add_argument(
        "--hf-dataset",
        metavar="NAME",
        help="a Hugging Face dataset by name (needs the datasets package and the hub)",
    )
    source.add_argument(
        "--samples",
        help="score your own generations with no generator: a .jsonl or .csv samples file "
        "(question, gold, samples, optional reference; see data/samples/README.md)",
    )
    ap.add_argument("--hf-split", default="validation", help="--hf-dataset's split")
    ap.add_argument("--hf-config", default=None, help="--hf-dataset's configuration, if any")
    ap.add_argument(
        "--question-column",
        default="question",
        help="--hf-dataset / parquet column of the questions (default question)",
    )
    ap.add_argument(
        "--gold-column",
        default="answers",
        help="--hf-dataset / parquet column of the gold answers: texts, a list, or a dict "
        "column read with a dotted name such as answers.text (default answers)",
    )
    ap.add_argument("--id-column", default=None, help="--hf-dataset / parquet id column")
    ap.add_argument("--out", required=True, help="directory for the CSV and JSON results")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help="sampled answers per question")
    ap.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    ap.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument(
        "--entailment",
        choices=["nli", "embedding", "generator"],
        default=None,
        help="how meanings are compared (default: nli when the NLI model can be loaded here, "
        "else embedding, with a message saying why)",
    )
    ap.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_EMBEDDING_THRESHOLD,
        help="cosine threshold for --entailment embedding",
    )
    ap.add_argument("--lenient", action="store_true", help="lenient instead of strict rule")
    ap.add_argument(
        "--no-question",
        action="store_true",
        help="do not prepend the question to each answer (NLI and embedding entailment)",
    )
    ap.add_argument(
        "--correctness",
        choices=list(CORRECTNESS_NAMES),
        default=DEFAULT_CORRECTNESS,
        help="contains: some normalised gold answer appears in the answer as whole words "
        f"(default {DEFAULT_CORRECTNESS}); squad_f1: SQuAD F1 >= 0.5; em: exact match; "
        "rougeL: ROUGE-L >= 0.3; judge: the generator asked whether the answer is right",
    )
    ap.add_argument("--correctness-threshold", type=float, default=None)
    ap.add_argument("--measures", default=None, help="comma-separated measure keys (default all)")
    ap.add_argument(
        "--no-pair-measures",
        action="store_true",
        help="leave out EigV, Degree, Eccentricity and KLE, which need every ordered pair "
        "labelled; then only the clustering's pairs go to the entailment model",
    )
    ap.add_argument(
        "--p-true-fewshot",
        type=int,
        default=0,
        metavar="K",
        help="the first K questions become worked p(True) examples (Farquhar et al. use 20); "
        "the metrics cover the rest. Default 0: zero-shot p(True)",
    )
    ap.add_argument(
        "--few-shot",
        type=int,
        default=DEFAULT_FEW_SHOT,
        metavar="K",
        help="the first K questions, with their first gold answers, become examples in the "
        f"answer prompt so that answers are brief (Farquhar et al. use 5; default "
        f"{DEFAULT_FEW_SHOT}: on the embedded 135M model 5 examples lowered accuracy); the "
        "metrics cover the rest. 0: the zero-shot prompt",
    )
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument(
        "--calibration-split",
        type=float,
        default=0.5,
        help="fraction of the questions Platt and isotonic calibration are fitted on; the "
        "rest score them (default 0.5, seeded)",
    )
    ap.add_argument(
        "--calibration-bins", type=int, default=10, help="ECE and reliability bins (default 10)"
    )
    ap.add_argument("--db", default=None, help="SQLite file for the resume cache")
    ap.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    ap.add_argument(
        "--inv-entropy",
        action="store_true",
        help="add Inv-Entropy and its variants (columns inv.*) beside semantic entropy",
    )
    ap.add_argument("--inv-n", type=int, default=9, help="perturbations per question")
    ap.add_argument("--inv-replicates", type=int, default=5, help="answers per perturbation")
    ap.add_argument(
        "--questions-in-flight",
        type=int,
        default=None,
        metavar="K",
        help="questions computed at once against a served model (--openai-base-url; default "
        "its --concurrency); an in-process model computes one batch at a time",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar or per-question lines")
    add_model_arguments(ap)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _run_cli(_parser().parse_args(a)), argv)


def _items(args: argparse.Namespace) -> list:
    """The questions the source flags name: --samples, --hf-dataset, or --data (a parquet
    file read with the column flags)."""
    columns = dict(
        question_column=args.question_column,
        gold_column=args.gold_column,
        id_column=args.id_column,
    )
    if args.samples:
        return load_samples(args.samples)
    if args.hf_dataset:
        return load_hf_dataset(
            args.hf_dataset, args.hf_split, config=args.hf_config, limit=args.limit, **columns
        )
    if args.data.lower().endswith(".parquet"):
        return load_parquet(args.data, limit=args.limit, **columns)
    return load_dataset(args.data)


def _run_cli(args: argparse.Namespace) -> int:
    # The CLI is an entry point: it wires the backends and the SQLite cache around the harness.
    from store.db import Store
    from store.eval_cache import EvalCache, export_evaluation
    from uq.semantic.entailment import make_entailment

    if args.limit is not None and args.limit < 1:
        raise ConfidantError(f"--limit must be at least 1, got {args.limit}")
    items = _items(args)
    if args.samples and args.inv_entropy:
        raise ConfidantError("--inv-entropy needs a generator; it cannot score --samples")
    if args.samples and args.entailment == "generator":
        raise ConfidantError("--samples are compared with --entailment nli or embedding")
    if args.limit:
        items = items[: args.limit]
    measures = [m.strip() for m in args.measures.split(",") if m.strip()] if args.measures else None
    if args.no_pair_measures:
        without = measures_without_pair_matrix()
        if measures is not None:
            select_measures(measures)  # an unknown key is still an error
        measures = [m for m in (measures or without) if m in without]
        if not measures:
            raise ConfidantError("--no-pair-measures leaves none of the --measures given")
    settings = EvalSettings(
        n=args.n,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        strict=not args.lenient,
        correctness=args.correctness,
        correctness_threshold=args.correctness_threshold,
        measures=measures,
        p_true_fewshot=args.p_true_fewshot,
        few_shot=args.few_shot,
        n_boot=args.bootstrap,
        calibration_fraction=args.calibration_split,
        calibration_bins=args.calibration_bins,
    ).validate()
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidantError(f"--out {out_dir} exists and is not a directory")
    backends = backends_from_args(args)
    lm = None if args.samples else backends.generator()
    if args.entailment is None:
        default = backends.default_entailment()
        args.entailment = default.method
        if default.message:
            print(default.message.replace("`", ""), file=sys.stderr)
    entailment = make_entailment(
        args.entailment,
        nli=backends.nli() if args.entailment == "nli" else None,
        embedder=backends.embedder() if args.entailment == "embedding" else None,
        lm=lm,
        condition_on_question=not args.no_question,
        threshold=args.threshold,
    )
    providers = []
    if args.inv_entropy:
        from uq.inv.provider import make_inv_entropy_provider

        providers.append(
            make_inv_entropy_provider(
                backends.embedder(), n=args.inv_n, replicates=args.inv_replicates
            )
        )
    cache = None if args.no_cache else EvalCache(Store(args.db) if args.db else Store())
    what = "your own samples, no generator" if lm is None else lm.model_id
    print(
        f"evaluating {len(items)} questions from {args.data or args.samples} ({what})", flush=True
    )

    shown = {"done": 0}
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        # The harness's own rate and time left: tqdm's would count cached questions too.
        bar = tqdm(
            total=len(items), unit="question", file=sys.stderr, dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}] {postfix}",
        )  # fmt: skip

    def progress(done: int, total: int, message: str) -> None:
        shown["done"] = done
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix_str(message.rpartition(" · ")[2], refresh=True)
        elif not args.quiet:
            print(f"[{done}/{total}] {message}", flush=True)

    try:
        result = run_evaluation(
            items, lm, entailment, settings, providers=providers, cache=cache,
            progress=progress, questions_in_flight=args.questions_in_flight,
        )  # fmt: skip
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        saved = (
            f"{shown['done']} finished questions are cached; run the same command again to resume"
            if cache is not None
            else "nothing is cached (--no-cache): a new run starts from the beginning"
        )
        print(f"interrupted: {saved}", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    paths = export_evaluation(result, out_dir)
    print(
        f"accuracy {result.accuracy:.3f} · {result.n_computed} computed, {result.n_cached} cached"
        f" · {result.duration:.1f} s"
    )
    calibrated = {}
    for row in result.calibration_table()[1]:
        if row["ece"] is not None and row["method"] in ("platt", "raw"):
            calibrated.setdefault(row["measure"], []).append(
                f"ECE ({row['method']}) {row['ece']:.3f}"
            )
    for row in result.metric_table()[1]:
        auroc = row["auroc"]
        line = f"  {row['measure']:<32} AUROC {'—' if auroc is None else f'{auroc:.3f}'}"
        line += f" ({row['note']})" if row["note"] else ""
        print(" · ".join([line, *calibrated.get(row["measure"], [])]))
    for path in paths:
        print(f"wrote {path}")
    return 0
