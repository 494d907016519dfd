"""Handlers of the 20 Questions tab (conformal information pursuit as a game and a benchmark)
and the History view of a stored game."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import ConfidantError
from store.cip import cached_calibration
from store.export import export_dir, write_csv
from store.games import GameRecorder, get_game, list_games
from ui.components.inputs import number, whole_number
from ui.context import AppContext, annotator_of, session_of
from ui.plots.cip import coverage_figure, game_figure, set_markdown, turns_markdown
from uq.cip.benchmark import run_benchmark
from uq.cip.calibration import get_or_calibrate
from uq.cip.class_sets import (
    MAX_CSV_BYTES,
    ClassSet,
    load_default_class_set,
    normalize_answer,
    read_class_set,
)
from uq.cip.conformal import HYPOTHESIS_MODES, METHOD_NAMES, METHODS
from uq.cip.game import Game
from uq.cip.llm_posterior import LLMAnswerer, make_posterior, query_proposer

MAX_ANSWER_CHARS = 500
MAX_LIVE_GAMES = 200
BENCH_COLUMNS = [
    "Method", "Q", "A", "Avg. len", "Avg. success len", "Success rate", "Final accuracy",
    "Hypothetical labels", "Games",
]  # fmt: skip


class CipHandlers:
    """The 20 Questions tab's event handlers. They raise ``ConfidantError`` for bad input (the
    tests call them directly and check it); ``create_cip_tab`` wires each one wrapped in
    ``user_errors``, which turns that error into a message in the page."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.default_set = load_default_class_set()
        self.class_sets: dict[str, ClassSet] = {}
        self.live: OrderedDict[str, tuple[Game, GameRecorder, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    # -- inputs -------------------------------------------------------------------------------

    def class_set(self, key: str | None) -> ClassSet:
        if not key:
            return self.default_set
        found = self.class_sets.get(key)
        if found is None:
            raise ConfidantError("That class set is no longer loaded; upload it again.")
        return found

    def upload(self, path: str | None):
        """Validate an uploaded CSV (class,question,answer); returns (message, key, dropdown)."""
        if not path:
            raise ConfidantError("Choose a CSV file with columns class,question,answer.")
        p = Path(path)
        if p.stat().st_size > MAX_CSV_BYTES:
            raise ConfidantError(f"The file is too large (over {MAX_CSV_BYTES:,} bytes).")
        cs = read_class_set(p, name=p.stem[:60] or "custom")
        key = cs.fingerprint()
        with self._lock:
            self.class_sets[key] = cs
        same = cs.indistinguishable_groups()
        note = ""
        if same:
            groups = "; ".join(", ".join(g) for g in same[:3])
            note = f"\n\nNo question tells these apart: {groups}."
        msg = (
            f"Loaded **{cs.name}**: {cs.n_classes} classes × {cs.n_questions} questions. "
            f"Calibrations are stored for this class set (fingerprint `{key[:12]}`).{note}"
        )
        return msg, key, gr.update(choices=list(cs.classes), value=cs.classes[0])

    def use_default(self):
        cs = self.default_set
        msg = (
            f"Using the built-in **animals**: {cs.n_classes} classes × {cs.n_questions} questions."
        )
        return msg, "", gr.update(choices=list(cs.classes), value=cs.classes[0])

    def settings(self, key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed) -> dict:
        cs = self.class_set(key)
        if posterior_kind not in ("llm", "oracle"):
            raise ConfidantError("Choose the posterior: language model or bank oracle.")
        return {
            "class_set": cs,
            "posterior_kind": posterior_kind,
            "alpha": number(alpha, "α", low=0.01, high=0.49),
            "finite_sample": bool(finite),
            "n_cal": whole_number(n_cal, "calibration histories per length", 1, 5000),
            "max_length": whole_number(max_len, "max questions L", 1, min(60, cs.n_questions)),
            "cal_seed": whole_number(cal_seed, "calibration seed", 0, 2**31),
        }

    def posterior(self, s: dict):
        lm = self.ctx.backends.generator() if s["posterior_kind"] == "llm" else None
        return make_posterior(s["posterior_kind"], s["class_set"], lm), lm

    def calibration(self, s: dict, posterior, progress=None):
        def report(k, total):
            if progress is not None:
                progress(k / total, desc=f"Calibrating: history length {k} of {total}")

        return get_or_calibrate(
            s["class_set"],
            posterior,
            cache=partial(cached_calibration, self.ctx.store),
            alpha=s["alpha"],
            finite_sample=s["finite_sample"],
            n_cal=s["n_cal"],
            max_length=s["max_length"],
            seed=s["cal_seed"],
            progress=report,
        )

    # -- calibration --------------------------------------------------------------------------

    def calibrate(self, key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed,
                  progress=gr.Progress()) -> str:  # fmt: skip  # noqa: B008 - Gradio's progress bar
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        posterior, _ = self.posterior(s)
        cal, reused = self.calibration(s, posterior, progress)
        head = "Reused the stored calibration." if reused else "Calibrated and stored."
        rows = ["| k | τ | coverage | mean set size |", "|---|---|---|---|"]
        for k, (tau, cov, size) in enumerate(
            zip(cal.thresholds, cal.coverage, cal.mean_set_size, strict=True), start=1
        ):
            rows.append(f"| {k} | {tau:.3g} | {cov:.2f} | {size:.1f} |")
        return (
            f"{head} Posterior: {posterior.label}. α = {cal.alpha:g}"
            f"{' with the (n+1) correction' if cal.finite_sample else ''}, "
            f"{cal.n_cal} random histories per length.\n\n" + "\n".join(rows)
        )

    # -- games --------------------------------------------------------------------------------

    def _new_game(self, s, posterior, lm, cal, *, method, hypotheses, n_est, epsilon, seed,
                  truth=None, answerer_kind="bank", query_set="closed") -> Game:  # fmt: skip
        if method not in METHODS:
            raise ConfidantError("Choose a querier: C-IP, IP or Random.")
        if hypotheses not in HYPOTHESIS_MODES:
            raise ConfidantError("Choose how hypothetical labels are drawn.")
        eps = number(epsilon, "ε", low=0, high=100)
        answerer = propose = None
        if query_set == "open" or answerer_kind == "llm":
            lm = lm or self.ctx.backends.generator()
            answerer = LLMAnswerer(lm)
        if query_set == "open":
            propose = query_proposer(lm, s["class_set"].classes, seed=int(seed))
        return Game(
            s["class_set"],
            posterior,
            cal,
            method=method,
            n_est=whole_number(n_est, "n_est", 1, 32),
            max_queries=s["max_length"],
            epsilon=eps or None,
            hypotheses=hypotheses,
            answerer=answerer,
            propose_queries=propose,
            seed=whole_number(seed, "seed", 0, 2**31),
            truth=truth,
        )

    def _register(self, game: Game, recorder: GameRecorder) -> None:
        with self._lock:
            self.live[recorder.game_id] = (game, recorder, threading.Lock())
            while len(self.live) > MAX_LIVE_GAMES:
                self.live.popitem(last=False)

    def _view(self, game: Game, recorder: GameRecorder):
        turns = [t.to_dict() for t in game.turns]
        last = turns[-1]
        if game.finished:
            run_id = recorder.finish()
            why = {
                "max_queries": "the question budget L was used",
                "bounds_settled": "the candidates' scores stopped differing (std < ε)",
                "no_questions_left": "no question was left",
            }.get(game.stop_reason or "", game.stop_reason)
            question = (
                f"### My final guess: **{last['guess']}**\n\nStopped because {why}. "
                f"Saved as game `{recorder.game_id}` (run `{run_id}`, History tab)."
            )
        else:
            question = f"### Question {len(game.history) + 1}: {game.pending.chosen}"
        return (
            recorder.game_id,
            question,
            set_markdown(last, game.class_set.n_classes),
            game_figure(turns),
            turns_markdown(turns, truth=game.truth),
        )

    def start_human(self, key, posterior_kind, method, hypotheses, alpha, finite, n_cal, max_len,
                    cal_seed, n_est, epsilon, seed, query_set="closed",
                    request: gr.Request = None, progress=gr.Progress()):  # fmt: skip  # noqa: B008
        """Start a game where the person answers; returns (game id, question, set, plot,
        turns)."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        posterior, lm = self.posterior(s)
        cal, _ = self.calibration(s, posterior, progress)
        game = self._new_game(s, posterior, lm, cal, method=method, hypotheses=hypotheses,
                              n_est=n_est, epsilon=epsilon, seed=seed,
                              query_set=query_set)  # fmt: skip
        game.start()
        recorder = GameRecorder(
            self.ctx.store, game, mode="human", model=str(posterior.model_key),
            posterior_label=posterior.label, extra={"answerer": "human", "query_set": query_set},
            annotator=annotator_of(request), session_id=session_of(request),
        )  # fmt: skip
        recorder.sync()
        game.next_question()
        self._register(game, recorder)
        return self._view(game, recorder)

    def answer(self, game_id: str, text: str):
        """The person's answer to the pending question (yes / no / free text)."""
        entry = self.live.get((game_id or "").strip())
        if entry is None:
            raise ConfidantError("Start a game first (or it has expired: start a new one).")
        if not isinstance(text, str) or not text.strip():
            raise ConfidantError("Type an answer, or press Yes or No.")
        if "\x00" in text:
            raise ConfidantError(
                f"The answer contains a NUL character; answers are at most {MAX_ANSWER_CHARS} "
                "characters of text."
            )
        if len(text) > MAX_ANSWER_CHARS:
            raise ConfidantError(f"Answers are at most {MAX_ANSWER_CHARS} characters of text.")
        game, recorder, lock = entry
        with lock:
            if game.finished:
                raise ConfidantError("This game is over; start a new one.")
            game.answer(normalize_answer(text))
            recorder.sync()
            game.next_question()
            return self._view(game, recorder)

    def auto_play(self, key, posterior_kind, method, hypotheses, alpha, finite, n_cal, max_len,
                  cal_seed, n_est, epsilon, seed, hidden, answerer_kind, query_set="closed",
                  request: gr.Request = None, progress=gr.Progress()):  # fmt: skip  # noqa: B008
        """Stream a game between the answerer (bank or LLM role-play) and the querier."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        cs = s["class_set"]
        if hidden not in cs.classes:
            raise ConfidantError("Choose the hidden animal from the class set.")
        if answerer_kind not in ("bank", "llm"):
            raise ConfidantError("Choose the answerer: bank lookup or the language model.")
        if query_set == "open" and answerer_kind != "llm":
            raise ConfidantError("Open questions are not in the bank: use the LLM answerer.")
        posterior, lm = self.posterior(s)
        cal, _ = self.calibration(s, posterior, progress)
        game = self._new_game(s, posterior, lm, cal, method=method, hypotheses=hypotheses,
                              n_est=n_est, epsilon=epsilon, seed=seed, truth=hidden,
                              answerer_kind=answerer_kind, query_set=query_set)  # fmt: skip
        reply = game.answerer or cs.answer
        recorder = GameRecorder(
            self.ctx.store, game, mode="auto", model=str(posterior.model_key),
            posterior_label=posterior.label,
            extra={"answerer": answerer_kind, "query_set": query_set},
            annotator=annotator_of(request), session_id=session_of(request),
        )  # fmt: skip
        game.start()
        recorder.sync()
        while (query := game.next_question()) is not None:
            yield self._view(game, recorder)
            game.answer(reply(hidden, query))
            recorder.sync()
        yield self._view(game, recorder)

    # -- benchmark ----------------------------------------------------------------------------

    def benchmark(self, key, posterior_kind, methods, seeds, hypotheses, both, classes, alpha,
                  finite, n_cal, max_len, cal_seed, n_est, epsilon,
                  progress=gr.Progress()):  # fmt: skip  # noqa: B008
        """Table 2 over the class set: (table rows, coverage plot, CSV path, note)."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        methods = [m for m in (methods or []) if m in METHODS]
        if not methods:
            raise ConfidantError("Choose at least one querier to benchmark.")
        try:
            seed_list = [int(x) for x in str(seeds or "").replace(" ", "").split(",") if x]
        except ValueError:
            raise ConfidantError(
                "Seeds are whole numbers separated by commas, e.g. 0,1,2."
            ) from None
        if not seed_list or len(seed_list) > 20 or min(seed_list) < 0:
            raise ConfidantError("Give 1 to 20 non-negative seeds, e.g. 0,1,2.")
        names = [c.strip() for c in str(classes or "").split(",") if c.strip()] or None
        if hypotheses not in HYPOTHESIS_MODES:
            raise ConfidantError("Choose how hypothetical labels are drawn.")
        posterior, _ = self.posterior(s)
        cal, _ = self.calibration(s, posterior, progress)

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
            f"{len(result.games)} games · posterior: {posterior.label} · α = {cal.alpha:g} · "
            f"closed bank, binary answers from the bank. Per-game results: `{games_path.name}`.\n\n"
            f"Coverage ≥ 1 − α = {1 - cal.alpha:g} is guaranteed on average over histories like "
            "the calibration ones (random questions); along a querier's own histories it can "
            "be lower, and the coverage column shows by how much."
        )
        rows = [[r[c] for c in BENCH_COLUMNS] for r in table]
        plot = coverage_figure([r.__dict__ for r in result.rows], alpha=cal.alpha)
        return rows, plot, str(path), note

    # -- review -------------------------------------------------------------------------------

    def games_table(self) -> list[list]:
        return [
            [g["id"], g["created"], g["mode"], METHOD_NAMES.get(g["method"], g["method"]),
             g["model"], g["truth"] or "", g["final_guess"] or "", g["n_questions"], g["status"]]
            for g in list_games(self.ctx.store)
        ]  # fmt: skip

    def review(self, game_id: str):
        """(markdown, plot) of a stored game, finished or not, rebuilt without a model."""
        gid = (game_id or "").strip()
        if not gid:
            raise ConfidantError("Pick a game from the table (or paste its id) first.")
        game = get_game(self.ctx.store, gid)
        if game is None:
            raise ConfidantError(f"No game with id {gid!r}.")
        return review_markdown(game), game_figure(game["turns"]) if game["turns"] else None


def review_markdown(game: dict[str, Any]) -> str:
    p = game.get("params", {})
    turns = game.get("turns", [])
    truth = game.get("truth")
    head = (
        f"**{game.get('mode', '?')} game**, querier {METHOD_NAMES.get(game['method'], '?')}, "
        f"posterior: {game.get('posterior_label') or p.get('posterior', '?')}, "
        f"class set {game.get('class_set_name', '?')}, α = {p.get('alpha', '?')}, "
        f"hypothetical labels {p.get('hypotheses', '?')}, status {game.get('status', '?')}"
    )
    if truth:
        head += f", hidden class **{truth}**"
    final = turns[-1]["guess"] if turns else "-"
    return f"{head}\n\nFinal guess: **{final}**\n\n" + turns_markdown(turns, truth=truth)


def render_cip_game(run: dict) -> dict:
    """History renderer for runs of kind ``cip_game`` (the whole game is in the result)."""
    result = run["result"]
    game = {
        "mode": result.get("mode"),
        "method": result.get("method"),
        "posterior_label": result.get("posterior"),
        "class_set_name": result.get("class_set"),
        "truth": result.get("truth"),
        "status": "finished" if result.get("finished") else "stopped",
        "params": run.get("params", {}),
        "turns": result.get("turns", []),
    }
    return {"markdown": review_markdown(game), "plot": game_figure(game["turns"]), "plot2": None}


