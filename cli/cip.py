"""``python -m cli cip``: C-IP 20 Questions from the command line — calibrate, play, benchmark.

    python -m cli cip calibrate --model tiny-random --alpha 0.1
    python -m cli cip play --model tiny-random --posterior oracle --hidden penguin
    python -m cli cip play --model tiny-random --posterior oracle --human
    python -m cli cip benchmark --model tiny-random --posterior oracle --out table.csv

Calibrations are stored in the app's SQLite database (``--db``, default ``CONFIDANT_DB`` or the
app's default path) per (model, class set, α, finite-sample flag, n_cal, L, seed) and reused;
games are stored turn by turn. Progress goes to stderr, results to stdout. A mistake the user
can fix (bad option, bad class-set CSV, a model that will not load) prints ``error: ...`` and
exits with status 2.

As an entry point it wires the pipelines of ``uq.cip.conformal`` to the store (``store.cip``), importing
it only when a command runs: importing ``cli.cip`` does not import ``store/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from cli.common import add_model_arguments, backends_from_args, positive_int, run_cli, seed_arg
from core.errors import ConfidantError
from uq.cip.benchmark import BenchmarkResult, run_benchmark
from uq.cip.calibration import CalibrationResult, get_or_calibrate
from uq.cip.class_sets import ClassSet, load_default_class_set, read_class_set
from uq.cip.conformal import HYPOTHESIS_MODES, METHODS
from uq.cip.game import Game, TurnRecord
from uq.cip.llm_posterior import ANSWERER_KINDS, POSTERIOR_KINDS, LLMAnswerer, make_posterior


def describe_turn(record: TurnRecord) -> str:
    """One line per turn for the CLI and logs."""
    head = "prior" if record.turn == 0 else f"{record.turn:>2}. {record.query} -> {record.answer}"
    bound = "" if record.bound is None else f" bound={record.bound:.3f}"
    cover = "" if record.covered is None else f" covered={'yes' if record.covered else 'no'}"
    return f"{head} | set {record.set_size}{bound}{cover} | guess {record.guess}"


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number, got {text!r}") from None
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"alpha must be in (0, 0.5), got {value}")
    return value


def _seeds(text: str) -> list[int]:
    seeds = [seed_arg(x) for x in text.split(",") if x.strip()]  # each says what a seed is
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_model_arguments(common, embedding=False, nli=False)
    common.add_argument(
        "--posterior",
        choices=POSTERIOR_KINDS,
        default="llm",
        help="llm: the model's p(class | history); oracle: bank lookup (not a language model)",
    )
    common.add_argument("--class-set", default=None, help="CSV class,question,answer")
    common.add_argument("--db", default=None, help="SQLite database (default: the app's)")
    common.add_argument("--alpha", type=_alpha, default=0.1)
    common.add_argument("--finite-sample", action="store_true", help="(n+1) conformal rule")
    common.add_argument("--n-cal", type=positive_int, default=100)
    common.add_argument("--max-length", type=positive_int, default=20, help="L, max questions")
    common.add_argument("--calibration-seed", type=seed_arg, default=0)

    game = argparse.ArgumentParser(add_help=False)
    game.add_argument("--n-est", type=positive_int, default=4)
    game.add_argument("--hypotheses", choices=HYPOTHESIS_MODES, default="posterior")
    game.add_argument("--epsilon", type=float, default=None, help="stop when std of bounds < ε")
    game.add_argument("--answerer", choices=ANSWERER_KINDS, default="bank")

    parser = argparse.ArgumentParser(prog="python -m cli cip", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("calibrate", parents=[common], help="compute (or reuse) the thresholds")
    play = sub.add_parser("play", parents=[common, game], help="play one game")
    play.add_argument("--method", choices=METHODS, default="cip")
    who = play.add_mutually_exclusive_group(required=True)
    who.add_argument("--hidden", help="the hidden class; the answerer plays it")
    who.add_argument("--human", action="store_true", help="you answer on the terminal")
    play.add_argument("--seed", type=seed_arg, default=0)
    bench = sub.add_parser("benchmark", parents=[common, game], help="Table 2 over every class")
    bench.add_argument("--methods", default="cip,ip,random")
    bench.add_argument("--seeds", type=_seeds, default=[0])
    bench.add_argument("--classes", default=None, help="comma-separated subset of classes")
    bench.add_argument(
        "--both-hypotheses", action="store_true", help="rows for uniform AND posterior labels"
    )
    bench.add_argument("--out", default=None, help="write the table as CSV here")
    return parser


def _progress(label: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def _setup(args) -> tuple[Any, ClassSet, Callable, Any]:
    class_set = read_class_set(args.class_set) if args.class_set else load_default_class_set()
    if args.max_length > class_set.n_questions:
        raise ConfidantError(
            f"--max-length {args.max_length} is more than the {class_set.n_questions} questions "
            "of the class set"
        )
    lm = None
    needs_lm = args.posterior == "llm" or getattr(args, "answerer", "bank") == "llm"
    if needs_lm:
        lm = backends_from_args(args).generator()
    posterior = make_posterior(args.posterior, class_set, lm)
    if args.posterior == "oracle":
        print(f"posterior: {posterior.label}", file=sys.stderr)
    from store.db import Store  # the entry point wires the store; the pipelines never do

    store = Store(Path(args.db)) if args.db else Store()
    return store, class_set, posterior, lm


def _calibration(args, store, class_set, posterior) -> CalibrationResult:
    from store.cip import cached_calibration

    calibration, reused = get_or_calibrate(
        class_set,
        posterior,
        cache=partial(cached_calibration, store),
        alpha=args.alpha,
        finite_sample=args.finite_sample,
        n_cal=args.n_cal,
        max_length=args.max_length,
        seed=args.calibration_seed,
        progress=_progress("calibrating, history length"),
    )
    print(
        "calibration: " + ("reused the stored thresholds" if reused else "computed and stored"),
        file=sys.stderr,
    )
    return calibration


def cmd_calibrate(args) -> int:
    store, class_set, posterior, _ = _setup(args)
    cal = _calibration(args, store, class_set, posterior)
    print("k\ttau\tcoverage\tmean_set_size")
    for k, (tau, cov, size) in enumerate(
        zip(cal.thresholds, cal.coverage, cal.mean_set_size, strict=True), start=1
    ):
        print(f"{k}\t{tau:.6g}\t{cov:.3f}\t{size:.2f}")
    return 0


def cmd_play(args) -> int:
    store, class_set, posterior, lm = _setup(args)
    if args.hidden is not None:
        class_set.class_index(args.hidden)
    cal = _calibration(args, store, class_set, posterior)
    answerer = LLMAnswerer(lm) if args.answerer == "llm" else None
    game = Game(
        class_set,
        posterior,
        cal,
        method=args.method,
        n_est=args.n_est,
        max_queries=args.max_length,
        epsilon=args.epsilon,
        hypotheses=args.hypotheses,
        answerer=answerer,
        seed=args.seed,
        truth=args.hidden,
    )
    from store.games import GameRecorder

    mode = "human" if args.human else "auto"
    recorder = GameRecorder(
        store,
        game,
        mode=mode,
        model=str(getattr(posterior, "model_key", args.model)),
        posterior_label=str(getattr(posterior, "label", "")),
        extra={"answerer": "human" if args.human else args.answerer},
    )
    game.start()
    recorder.sync()
    print(describe_turn(game.turns[0]))
    reply = answerer or class_set.answer
    while (query := game.next_question()) is not None:
        if args.human:
            text = ""
            while not text.strip():
                try:
                    text = input(f"{query} [yes/no/free text] ")
                except EOFError:
                    raise ConfidantError("input ended before the game did") from None
        else:
            text = reply(args.hidden, query)
        print(describe_turn(game.answer(text)))
        recorder.sync()
    run_id = recorder.finish()
    won = "" if args.hidden is None else f" ({'right' if game.guess == args.hidden else 'wrong'})"
    print(f"final guess: {game.guess}{won}; stopped: {game.stop_reason}")
    print(f"stored as game {recorder.game_id}, run {run_id}", file=sys.stderr)
    return 0


def cmd_benchmark(args) -> int:
    store, class_set, posterior, lm = _setup(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    classes = None
    if args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    cal = _calibration(args, store, class_set, posterior)
    result = run_benchmark(
        class_set,
        posterior,
        cal,
        methods=methods,
        seeds=args.seeds,
        classes=classes,
        n_est=args.n_est,
        max_queries=args.max_length,
        epsilon=args.epsilon,
        hypotheses=HYPOTHESIS_MODES if args.both_hypotheses else args.hypotheses,
        answerer=LLMAnswerer(lm) if args.answerer == "llm" else None,
        progress=_progress("games"),
    )
    print_table(result)
    if args.out:
        Path(args.out).write_text(result.to_csv(), encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def print_table(result: BenchmarkResult) -> None:
    table = result.table()
    if not table:
        return
    columns = list(table[0])
    widths = [max(len(c), *(len(str(r[c])) for r in table)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in table:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


COMMANDS = {"calibrate": cmd_calibrate, "play": cmd_play, "benchmark": cmd_benchmark}


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""

    def run(a):
        args = build_parser().parse_args(a)
        return COMMANDS[args.command](args)

    return run_cli(run, argv)
