"""The C-IP versus IP benchmark: many games over hidden classes and seeds, with coverage."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.errors import ConfidantError
from uq.cip.calibration import CalibrationResult
from uq.cip.class_sets import ClassSet
from uq.cip.conformal import HYPOTHESIS_MODES, METHOD_NAMES, METHODS, Answerer, PosteriorBatch
from uq.cip.game import Game

# --------------------------------------------------------------------------------------------
# Benchmark mode
# --------------------------------------------------------------------------------------------


@dataclass
class BenchmarkRow:
    """One method's row of the paper's Table 2, mean (and std across seeds).

    A game is won from the first turn whose guess names the hidden class (the UoT protocol the
    paper follows); its length is the number of questions asked by then, or all the questions
    asked if it was never won. ``final_accuracy`` is the share of games whose last guess is
    right. ``coverage_per_turn[t - 1]`` is the share of games with a turn t whose set holds the
    hidden class, pooled over seeds.
    """

    method: str
    query_set: str
    answer_type: str
    n_games: int
    n_seeds: int
    avg_len: float
    avg_len_std: float
    avg_success_len: float | None
    avg_success_len_std: float | None
    success_rate: float
    success_rate_std: float
    final_accuracy: float
    final_accuracy_std: float
    coverage_per_turn: list[float]
    mean_set_size_per_turn: list[float]
    hypotheses: str | None = None


@dataclass
class BenchmarkResult:
    rows: list[BenchmarkRow]
    games: list[dict[str, Any]]
    params: dict[str, Any]

    def table(self) -> list[dict[str, Any]]:
        """Table 2 form: Method, Q, A, Avg. len, Avg. success len, Success rate (mean ± std)."""

        def pm(mean: float | None, std: float | None) -> str:
            return "n/a" if mean is None else f"{mean:.2f}±{std:.2f}"

        return [
            {
                "Method": r.method,
                "Q": r.query_set,
                "A": r.answer_type,
                "Avg. len": pm(r.avg_len, r.avg_len_std),
                "Avg. success len": pm(r.avg_success_len, r.avg_success_len_std),
                "Success rate": pm(r.success_rate, r.success_rate_std),
                "Final accuracy": pm(r.final_accuracy, r.final_accuracy_std),
                "Hypothetical labels": r.hypotheses or "-",
                "Games": r.n_games,
            }
            for r in self.rows
        ]

    def to_csv(self) -> str:
        """The rows as CSV, numbers unrounded, per-turn coverage as one column per turn."""
        n_turns = max((len(r.coverage_per_turn) for r in self.rows), default=0)
        fields = [
            "method", "query_set", "answer_type", "n_games", "n_seeds", "avg_len", "avg_len_std",
            "avg_success_len", "avg_success_len_std", "success_rate", "success_rate_std",
            "final_accuracy", "final_accuracy_std", "hypotheses",
        ]  # fmt: skip
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields + [f"coverage_turn_{t}" for t in range(1, n_turns + 1)])
        for r in self.rows:
            values = ["" if getattr(r, f) is None else getattr(r, f) for f in fields]
            cover = r.coverage_per_turn + [""] * (n_turns - len(r.coverage_per_turn))
            writer.writerow(values + cover)
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def run_benchmark(
    class_set: ClassSet,
    posterior_batch: PosteriorBatch,
    calibration: CalibrationResult,
    *,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0,),
    classes: Sequence[str] | None = None,
    n_est: int = 4,
    max_queries: int = 20,
    epsilon: float | None = None,
    hypotheses: str | Sequence[str] = "uniform",
    answerer: Answerer | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop_on_single_class: bool = False,
) -> BenchmarkResult:
    """Auto-play every class (or ``classes``) with each method and seed; answers to the real
    questions come from the bank. Games with the same seed and class share their random
    stream across methods (paired comparison). Returns the paper's Table 2 rows (Chan et al.
    2025, Table 2) plus per-turn coverage of the conformal sets.

    ``hypotheses`` is one mode of :func:`draw_hypotheses` or several (e.g. ``("uniform",
    "posterior")``): C-IP and IP then get one row per mode, labelled with it, so the effect of
    drawing hypothetical labels uniformly (the paper) or from the posterior is visible side by
    side. Random selection draws no labels and gets one row. Games run to L or the ε rule as
    in the paper; ``stop_on_single_class`` ends them at a one-class set, as the app's games."""
    for m in methods:
        if m not in METHODS:
            raise ConfidantError(f"method must be one of {', '.join(METHODS)}, got {m!r}")
    if not methods or not seeds:
        raise ConfidantError("the benchmark needs at least one method and one seed")
    modes = [hypotheses] if isinstance(hypotheses, str) else list(dict.fromkeys(hypotheses))
    if not modes or any(h not in HYPOTHESIS_MODES for h in modes):
        raise ConfidantError(f"hypotheses must be among {', '.join(HYPOTHESIS_MODES)}")
    variants = [(m, h) for m in methods for h in (modes if m != "random" else modes[:1])]
    names = list(classes) if classes is not None else list(class_set.classes)
    if not names:
        raise ConfidantError("the benchmark needs at least one class")
    indices = [class_set.class_index(name) for name in names]
    total, done = len(variants) * len(seeds) * len(names), 0
    games: list[dict[str, Any]] = []
    rows: list[BenchmarkRow] = []
    for method, mode in variants:
        per_seed: dict[str, list[float]] = {"len": [], "success_len": [], "rate": [], "final": []}
        covered_at: list[list[bool]] = [[] for _ in range(max_queries)]
        size_at: list[list[int]] = [[] for _ in range(max_queries)]
        n_games = 0
        for seed in seeds:
            lengths, success_lengths, wins, finals = [], [], [], []
            for name, index in zip(names, indices, strict=True):
                game = Game(
                    class_set,
                    posterior_batch,
                    calibration,
                    method=method,
                    n_est=n_est,
                    max_queries=max_queries,
                    epsilon=epsilon,
                    hypotheses=mode,
                    answerer=answerer,
                    seed=(int(seed), index),
                    truth=name,
                    stop_on_single_class=stop_on_single_class,
                )
                game.play(lambda q, name=name: class_set.answer(name, q))
                first = game.first_correct_turn()
                n_asked = len(game.history)
                length = first if first is not None else n_asked
                lengths.append(length)
                wins.append(first is not None)
                if first is not None:
                    success_lengths.append(first)
                finals.append(game.guess == name)
                for t in game.turns[1:]:
                    covered_at[t.turn - 1].append(bool(t.covered))
                    size_at[t.turn - 1].append(t.set_size)
                games.append(
                    {
                        "method": method,
                        "hypotheses": None if method == "random" else mode,
                        "seed": int(seed),
                        "class": name,
                        "won": first is not None,
                        "first_correct_turn": first,
                        "n_questions": n_asked,
                        "final_guess": game.guess,
                        "stop_reason": game.stop_reason,
                    }
                )
                n_games += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            per_seed["len"].append(float(np.mean(lengths)))
            per_seed["rate"].append(float(np.mean(wins)))
            per_seed["final"].append(float(np.mean(finals)))
            if success_lengths:
                per_seed["success_len"].append(float(np.mean(success_lengths)))
        label = METHOD_NAMES[method]
        if method == "cip":
            label = f"C-IP α={calibration.alpha:g}"
        if len(modes) > 1 and method != "random":
            label += f" ({mode} labels)"
        avg_len, avg_len_std = _mean_std(per_seed["len"])
        success_len, success_len_std = _mean_std(per_seed["success_len"])
        rate, rate_std = _mean_std(per_seed["rate"])
        final, final_std = _mean_std(per_seed["final"])
        rows.append(
            BenchmarkRow(
                method=label,
                query_set="closed",
                answer_type="binary",
                n_games=n_games,
                n_seeds=len(seeds),
                avg_len=avg_len,
                avg_len_std=avg_len_std,
                avg_success_len=success_len,
                avg_success_len_std=success_len_std,
                success_rate=rate,
                success_rate_std=rate_std,
                final_accuracy=final,
                final_accuracy_std=final_std,
                coverage_per_turn=[float(np.mean(c)) for c in covered_at if c],
                mean_set_size_per_turn=[float(np.mean(s)) for s in size_at if s],
                hypotheses=None if method == "random" else mode,
            )
        )
    params = {
        "methods": list(methods),
        "seeds": [int(s) for s in seeds],
        "classes": names,
        "n_est": n_est,
        "max_queries": max_queries,
        "epsilon": epsilon,
        "hypotheses": modes,
        "alpha": calibration.alpha,
        "finite_sample": calibration.finite_sample,
        "class_set": class_set.name,
        "class_set_fingerprint": class_set.fingerprint(),
    }
    return BenchmarkResult(rows=rows, games=games, params=params)
