"""The 20 Questions tab's benchmark and game review handlers, mixed into
:class:`ui.tabs.cip_handlers.CipHandlers` (which provides ``ctx``, ``settings``, ``posterior``
and ``calibration_steps``)."""

from __future__ import annotations

import gradio as gr

from backends.base import check_seed
from core.errors import ConfidantError
from core.text import md_text
from store.export import export_dir, write_csv
from store.games import get_game, list_games
from ui.components.exports import offer
from ui.components.inputs import number, whole_number
from ui.context import annotator_of, owner_scope
from ui.plots.cip import coverage_figure, game_figure, review_markdown
from uq.cip.benchmark import run_benchmark
from uq.cip.conformal import HYPOTHESIS_MODES, METHOD_NAMES, METHODS

BENCH_COLUMNS = [
    "Method", "Q", "A", "Avg. len", "Avg. success len", "Success rate", "Final accuracy",
    "Hypothetical labels", "Games",
]  # fmt: skip


class CipBenchmarkMixin:
    """Benchmark (the paper's Table 2) and the review of stored games."""

    def benchmark(self, key, posterior_kind, methods, seeds, hypotheses, both, classes, alpha,
                  finite, n_cal, max_len, cal_seed, n_est, epsilon,
                  progress=gr.Progress(), request: gr.Request = None):  # fmt: skip  # noqa: B008
        """Table 2 over the class set: yields the calibration's progress in the note, then
        (table rows, coverage plot, CSV path, note)."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        methods = [m for m in (methods or []) if m in METHODS]
        if not methods:
            raise ConfidantError("Choose at least one querier to benchmark.")
        # Each seed is checked (and named) on its own: "Seed must be a whole number from 0 to…".
        seed_list = [check_seed(x) for x in str(seeds or "").replace(" ", "").split(",") if x]
        if not seed_list or len(seed_list) > 20:
            raise ConfidantError("Give 1 to 20 seeds separated by commas, e.g. 0,1,2.")
        names = [c.strip() for c in str(classes or "").split(",") if c.strip()] or None
        if hypotheses not in HYPOTHESIS_MODES:
            raise ConfidantError("Choose how hypothetical labels are drawn.")
        posterior, _ = self.posterior(s)
        for text, cal in self.calibration_steps(s, posterior):
            if cal is None:
                yield gr.update(), gr.update(), gr.update(), text
        yield gr.update(), gr.update(), gr.update(), f"{text} Playing the games…"

        def report(done, total):
            if progress is not None:
                progress(done / total, desc=f"Game {done} of {total}")

        result = run_benchmark(
            s["class_set"], posterior, cal, methods=methods, seeds=seed_list, classes=names,
            n_est=whole_number(n_est, "n_est", 1, 32), max_queries=s["max_length"],
            epsilon=number(epsilon, "ε", low=0, high=100) or None,
            hypotheses=HYPOTHESIS_MODES if both else hypotheses, progress=report,
        )  # fmt: skip
        table = result.table()
        path = export_dir() / "cip_benchmark.csv"
        path.write_text(result.to_csv(), encoding="utf-8")
        games_path = write_csv(
            result.games,
            ["method", "hypotheses", "seed", "class", "won", "first_correct_turn",
             "n_questions", "final_guess", "stop_reason"],
            path.parent / "cip_benchmark_games.csv",
        )  # fmt: skip
        note = (
            f"{len(result.games)} games · posterior: {md_text(posterior.label)} · α = {cal.alpha:g} · "
            f"closed bank, binary answers from the bank. Per-game results: `{games_path.name}`.\n\n"
            f"Coverage ≥ 1 − α = {1 - cal.alpha:g} is guaranteed on average over histories like "
            "the calibration ones (random questions); along a querier's own histories it can "
            "be lower, and the coverage column shows by how much."
        )
        rows = [[r[c] for c in BENCH_COLUMNS] for r in table]
        plot = coverage_figure([r.__dict__ for r in result.rows], alpha=cal.alpha)
        yield rows, plot, offer(path, annotator_of(request)), note

    def games_table(self, request: gr.Request = None) -> list[list]:
        """The stored games, newest first (with login on: the user's own; an admin's: all)."""
        return [
            [g["id"], g["created"], g["mode"], METHOD_NAMES.get(g["method"], g["method"]),
             g["model"], g["truth"] or "", g["final_guess"] or "", g["n_questions"], g["status"]]
            for g in list_games(self.ctx.store, owner=owner_scope(self.ctx, request))
        ]  # fmt: skip

    def review(self, game_id: str, request: gr.Request = None):
        """(markdown, plot) of a stored game, finished or not, rebuilt without a model; with
        login on, only the user's own games (an admin's: any)."""
        gid = (game_id or "").strip()
        if not gid:
            raise ConfidantError("Pick a game from the table (or paste its id) first.")
        game = get_game(self.ctx.store, gid, owner=owner_scope(self.ctx, request))
        if game is None:
            raise ConfidantError(f"No game with id {gid!r}.")
        return review_markdown(game), game_figure(game["turns"]) if game["turns"] else None
