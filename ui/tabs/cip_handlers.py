"""Handlers of the 20 Questions tab (conformal information pursuit as a game and a benchmark).

Everything that can take long (a calibration, a game whose answers the model role-plays) is a
generator that yields after short steps: the page shows progress and the expected time, and
Stop or closing the tab ends it at the next step (Gradio stops iterating a cancelled event).
The History view of a stored game is :func:`ui.plots.cip.render_cip_game`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr

from backends.base import check_seed
from core.errors import ConfidantError
from core.text import md_text
from store.games import GameRecorder, get_game
from ui.components.cache import BoundedCache
from ui.components.inputs import number, whole_number
from ui.components.prompt import prompt_update
from ui.context import AppContext, annotator_of, owner_scope, session_of
from ui.plots.cip import (
    choice_note,
    game_figure,
    set_markdown,
    stop_text,
    turns_markdown,
)
from ui.tabs.cip_benchmark import CipBenchmarkMixin
from ui.tabs.cip_calibration import Calibrations, duration_text
from uq.cip.class_sets import (
    MAX_CSV_BYTES,
    ClassSet,
    load_default_class_set,
    normalize_answer,
    read_class_set,
)
from uq.cip.conformal import HYPOTHESIS_MODES, METHODS
from uq.cip.game import Game
from uq.cip.llm_posterior import ORACLE_MODEL_KEY, LLMAnswerer, make_posterior, query_proposer

MAX_ANSWER_CHARS = 500
MAX_LIVE_GAMES = 200
NO_POSTERIOR_PROMPT = "Posterior prompt: none (no game yet, or the bank oracle posterior)"
NO_ROLEPLAY_PROMPT = "Role-play prompt: none (the answers come from a person or the bank)"
POSTERIOR_PROMPT_NAME = "Posterior prompt of the last turn"
ROLEPLAY_PROMPT_NAME = "Role-play prompt of the last answer"
MAX_CLASS_SETS = 32  # uploaded class sets kept in memory, for all users together
KEPT_FOR_S = 4 * 3600  # a live game or an uploaded class set unused this long is forgotten
# Role-play answers asked between two progress updates of an auto-played game.
ROLEPLAY_BATCH = 8


class CipHandlers(CipBenchmarkMixin):
    """The 20 Questions tab's event handlers. They raise ``ConfidantError`` for bad input (the
    tests call them directly and check it); ``create_cip_tab`` wires each one wrapped in
    ``user_errors``, which turns that error into a message in the page."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.default_set = load_default_class_set()
        # key -> ClassSet; game id -> (Game, GameRecorder, its lock)
        self.class_sets = BoundedCache(MAX_CLASS_SETS, KEPT_FOR_S)
        self.live = BoundedCache(MAX_LIVE_GAMES, KEPT_FOR_S)
        self.calibrations = Calibrations(ctx.store)

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
        self.class_sets.put(key, cs)
        same = cs.indistinguishable_groups()
        note = ""
        if same:
            groups = "; ".join(", ".join(md_text(c) for c in g) for g in same[:3])
            note = f"\n\nNo question tells these apart: {groups}."
        msg = (
            f"Loaded **{md_text(cs.name)}**: {cs.n_classes} classes × {cs.n_questions} questions. "
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
            "cal_seed": check_seed(cal_seed, "calibration seed"),
        }

    def posterior(self, s: dict):
        lm = self.ctx.backends.generator() if s["posterior_kind"] == "llm" else None
        return make_posterior(s["posterior_kind"], s["class_set"], lm), lm

    def model_key(self, s: dict) -> str:
        """The key calibrations of this posterior are stored under, without loading a model."""
        if s["posterior_kind"] == "oracle":
            return ORACLE_MODEL_KEY
        return str(self.ctx.backends.generator().model_id)

    def cost(self, key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed) -> str:
        """The expected cost of the calibration these settings need, shown before starting."""
        try:
            s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        except ConfidantError as exc:
            return f"*{exc}*"
        return self.calibrations.cost_text(s, self.model_key(s))

    def roleplay_cost(self, key, answerer_kind, n_est, query_set="closed") -> str:
        """The number of LLM calls one auto-play turn costs with LLM role-play."""
        if answerer_kind != "llm":
            return "Bank lookup: the answers are read from the class set (no model calls)."
        try:
            cs = self.class_set(key)
            n = whole_number(n_est, "n_est", 1, 32)
        except ConfidantError as exc:
            return f"*{exc}*"
        questions = 5 if query_set == "open" else cs.n_questions
        lm = self.ctx.backends.generator()
        return self.calibrations.roleplay_cost_text(n, questions, str(lm.model_id))

    def calibration_steps(self, s: dict, posterior):
        """Yields (progress markdown, None) and, last, (summary, CalibrationResult)."""
        yield from self.calibrations.stream(s, posterior)

    # -- calibration --------------------------------------------------------------------------

    def calibrate(self, key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed):
        """Calibrate (or reuse stored thresholds), yielding progress; ends with the table."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        posterior, _ = self.posterior(s)
        for text, cal in self.calibration_steps(s, posterior):
            if cal is None:
                yield text
        rows = ["| k | τ | coverage | mean set size |", "|---|---|---|---|"]
        for k, (tau, cov, size) in enumerate(
            zip(cal.thresholds, cal.coverage, cal.mean_set_size, strict=True), start=1
        ):
            rows.append(f"| {k} | {tau:.3g} | {cov:.2f} | {size:.1f} |")
        yield (
            f"{text} Posterior: {md_text(posterior.label)}. α = {cal.alpha:g}"
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
        seed = check_seed(seed, "game seed")
        answerer = propose = None
        if query_set == "open" or answerer_kind == "llm":
            lm = lm or self.ctx.backends.generator()
            answerer = LLMAnswerer(lm)
        if query_set == "open":
            propose = query_proposer(lm, s["class_set"].classes, seed=seed)
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
            seed=seed,
            truth=truth,
        )

    def _register(self, game: Game, recorder: GameRecorder) -> None:
        self.live.put(recorder.game_id, (game, recorder, threading.Lock()))

    def _view(self, game: Game, recorder: GameRecorder, note: str = ""):
        turns = [t.to_dict() for t in game.turns]
        last = turns[-1]
        if game.finished:
            run_id = recorder.finish()
            question = (
                f"### My final guess: **{md_text(last['guess'])}**\n\n"
                f"{stop_text(game.stop_reason, last)} "
                f"Saved as game `{recorder.game_id}` (run `{run_id}`, History tab)."
            )
        else:
            question = f"### Question {len(game.history) + 1}: {md_text(game.pending.chosen)}"
            question += choice_note(game.pending.to_dict())
        if note:
            question += f"\n\n{note}"
        return (
            recorder.game_id,
            question,
            set_markdown(last, game.class_set.n_classes),
            game_figure(turns),
            turns_markdown(turns, truth=game.truth),
        )

    def turn_prompts(self, game_id: str, request: gr.Request = None):
        """(posterior prompt, role-play prompt) of a game's last stored turn (human or auto
        play: each turn is stored as it is played); none of another annotator's game."""
        owner = owner_scope(self.ctx, request)
        game = get_game(self.ctx.store, game_id, owner=owner) if (game_id or "").strip() else None
        turn = game["turns"][-1] if game and game["turns"] else {}
        return (
            prompt_update(turn.get("prompt_sent"), missing=NO_POSTERIOR_PROMPT,
                          name=POSTERIOR_PROMPT_NAME),
            prompt_update(turn.get("roleplay_prompt_sent"), missing=NO_ROLEPLAY_PROMPT,
                          name=ROLEPLAY_PROMPT_NAME),
        )  # fmt: skip

    @staticmethod
    def _progress(text: str, n_outputs: int = 5):
        """A progress message in the question box; every other output left as it is."""
        return (gr.update(), text, *(gr.update() for _ in range(n_outputs - 2)))

    def start_human(self, key, posterior_kind, method, hypotheses, alpha, finite, n_cal, max_len,
                    cal_seed, n_est, epsilon, seed, query_set="closed",
                    request: gr.Request = None):  # fmt: skip
        """Start a game where the person answers. Yields progress while calibrating, then
        (game id, question, set, plot, turns)."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        posterior, lm = self.posterior(s)
        for text, cal in self.calibration_steps(s, posterior):
            if cal is None:
                yield self._progress(text)
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
        yield self._progress("Choosing the first question…")
        game.next_question()
        self._register(game, recorder)
        yield self._view(game, recorder)

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
                  request: gr.Request = None):  # fmt: skip
        """Stream a game between the answerer (bank or LLM role-play) and the querier: the
        calibration's progress, then every turn as it is played; with LLM role-play, the
        role-play answers each choice needs are asked in short steps with progress."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        cs = s["class_set"]
        if hidden not in cs.classes:
            raise ConfidantError("Choose the hidden animal from the class set.")
        if answerer_kind not in ("bank", "llm"):
            raise ConfidantError("Choose the answerer: bank lookup or the language model.")
        if query_set == "open" and answerer_kind != "llm":
            raise ConfidantError("Open questions are not in the bank: use the LLM answerer.")
        posterior, lm = self.posterior(s)
        for text, cal in self.calibration_steps(s, posterior):
            if cal is None:
                yield self._progress(text)
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
        while True:
            turn = len(game.history) + 1
            yield self._note(game, recorder, f"*Turn {turn}: choosing the question "
                             f"({self._cost_line(game)})…*", full=True)  # fmt: skip
            if isinstance(game.answerer, LLMAnswerer):
                yield from self._roleplay_steps(game, recorder)
            query = game.next_question()
            if query is None:
                break
            yield self._view(game, recorder)
            game.answer(reply(hidden, query))
            recorder.sync()
        yield self._view(game, recorder)

    def _note(self, game: Game, recorder: GameRecorder, note: str, full: bool = False):
        """The game so far with ``note`` in the question box; ``full`` redraws set and plot."""
        if not full:
            return (recorder.game_id, note, gr.update(), gr.update(), gr.update())
        turns = [t.to_dict() for t in game.turns]
        return (
            recorder.game_id,
            note,
            set_markdown(turns[-1], game.class_set.n_classes),
            game_figure(turns),
            turns_markdown(turns, truth=game.truth),
        )

    @staticmethod
    def _cost_line(game: Game) -> str:
        pairs = len(game.upcoming_answers())
        if not isinstance(game.answerer, LLMAnswerer) or not pairs:
            return "hypothetical answers from the bank"
        return f"{pairs} role-play calls of the model"

    def _roleplay_steps(self, game: Game, recorder: GameRecorder):
        """Ask the role-playing model the answers the next choice needs, a few at a time,
        yielding progress with the measured time per call; cached answers are not asked."""
        answerer = game.answerer
        todo = [p for p in game.upcoming_answers() if not answerer.knows(*p)]
        model_key = str(getattr(answerer.lm, "model_id", "?"))
        started = time.perf_counter()
        for start in range(0, len(todo), ROLEPLAY_BATCH):
            for label, query in todo[start : start + ROLEPLAY_BATCH]:
                answerer(label, query)
            done = min(start + ROLEPLAY_BATCH, len(todo))
            rate = (time.perf_counter() - started) / done
            self.calibrations.note_roleplay_rate(model_key, rate)
            yield self._note(game, recorder, (
                f"*Turn {len(game.history) + 1}: the model role-plays the imagined animals: "
                f"{done} of {len(todo)} yes/no calls, {duration_text(rate * (len(todo) - done))}"
                f" left ({rate:.3g} s per call). **Stop** ends the game.*"
            ))  # fmt: skip
