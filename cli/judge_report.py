"""``python -m cli judge-report``: the judge reliability report (position, length, run-to-run
spread, human agreement, score methods side by side), written as CSV and JSON.

    python -m cli judge-report --items data/judge/reliability.jsonl --model tiny-random --out rel/
    python -m cli judge-report --items data/judge/demo.jsonl --k 5 --temperature 1.0 --out rel/

``--items`` holds questions in the demo-set layout (``question`` + ``candidates``). The output
directory gets ``report.json`` (everything, reopenable without a model), ``measures.csv`` (one
row per reliability measure with its bootstrap interval), ``methods.csv`` (the score methods
side by side), ``singles.csv`` and ``pairs.csv`` (one row per answer / pair).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import add_model_arguments, backends_from_args, positive_int, run_cli, seed_arg
from core.errors import ConfidantError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m cli judge-report",
        description="Measure how far an LLM judge can be trusted on a set of questions.",
    )
    ap.add_argument(
        "--items", required=True, help="a .jsonl file of questions with candidate answers"
    )
    ap.add_argument("--out", default="judge-report", help="output directory (default: %(default)s)")
    ap.add_argument("--limit", type=positive_int, default=None, help="only the first N questions")
    ap.add_argument("--k", type=positive_int, default=3, help="runs per answer (default 3)")
    ap.add_argument(
        "--temperature", type=float, default=1.0, help="temperature of the k runs (default 1.0)"
    )
    ap.add_argument("--scale", type=int, default=5, help="score scale, 1..N (default 5)")
    ap.add_argument("--max-new-tokens", type=positive_int, default=256)
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (default 200)")
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument(
        "--db",
        default=None,
        help="also save the report as a run in this SQLite file (History, kind judge_reliability)",
    )
    add_model_arguments(ap, embedding=False, nli=False)
    return ap


def _write_csv(path: Path, rows: list[dict]) -> None:
    from store.export import write_csv

    write_csv(rows, list(dict.fromkeys(k for r in rows for k in r)), path)


def write_report(report, out_dir: Path) -> list[Path]:
    """``report.json`` and the four CSV files of a :class:`judge.report.ReliabilityReport`."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfidantError(f"--out {out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    paths = [out_dir / n for n in ("report.json", "measures.csv", "methods.csv")]
    paths[0].write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    _write_csv(paths[1], report.measures)
    _write_csv(paths[2], report.methods)
    singles = [
        {
            "item_id": s.item_id,
            "length": s.length,
            **{f"score.{k}": v for k, v in s.scores.items()},
            "entropy": s.entropy,
            "runs": " ".join(f"{r:g}" for r in s.runs),
            **{f"human.{k}": v for k, v in s.humans.items()},
        }
        for s in report.statistics.singles
    ]
    pairs = [
        {
            "item_id": p.item_id,
            "verdict_x_first": p.first,
            "verdict_y_first": p.second,
            "relation": p.relation,
            "length_x": p.length_x,
            "length_y": p.length_y,
            **{f"human.{k}": v for k, v in p.humans.items()},
        }
        for p in report.statistics.pairs
    ]
    for name, rows in (("singles.csv", singles), ("pairs.csv", pairs)):
        if rows:
            _write_csv(out_dir / name, rows)
            paths.append(out_dir / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m cli judge-report --items FILE [--k --temperature --out DIR]``."""
    return run_cli(_main, argv)


def _main(argv: list[str] | None) -> int:
    from judge.config import JudgeConfig
    from judge.items import load_questions
    from judge.report import RUN_KIND, ReportConfig, reliability_report

    args = _parser().parse_args(argv)
    questions = load_questions(args.items, limit=args.limit)
    config = ReportConfig(
        judge=JudgeConfig(scale=args.scale, max_new_tokens=args.max_new_tokens, seed=args.seed),
        k=args.k,
        temperature=args.temperature,
        n_boot=args.bootstrap,
    ).validate()
    lm = backends_from_args(args).generator()
    report = reliability_report(
        lm, questions, config, progress=lambda f, msg: print(f"[{f:4.0%}] {msg}", flush=True)
    )
    paths = write_report(report, Path(args.out))
    if args.db:
        from store.db import Store
        from store.runs import save_run

        run_id = save_run(
            Store(args.db),
            kind=RUN_KIND,
            model=report.model,
            params=config.to_dict(),
            result=report.to_dict(),
            seed=args.seed,
            title=f"reliability report: {Path(args.items).name}",
        )
        print(f"saved run {run_id} in {args.db}")
    for row in report.measures:
        value = "—" if row["value"] is None else f"{row['value']:.3f}"
        ci = "" if row["ci_low"] is None else f"  [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
        print(f"{row['label']:<40} {value}{ci}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
