"""The 20 Questions tab: conformal information pursuit (C-IP) as a game and a benchmark."""

from __future__ import annotations

import math
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
from ui.context import AppContext, annotator_of, session_of, user_errors
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

POSTERIOR_CHOICES = [
    ("Language model: p(animal | answers so far)", "llm"),
    ("Bank oracle: answers looked up in the class set (NOT a language model, offline)", "oracle"),
]
METHOD_CHOICES = [(METHOD_NAMES[m], m) for m in METHODS]
HYPOTHESIS_CHOICES = [
    ("uniform over the classes (the paper)", "uniform"),
    ("from the current posterior", "posterior"),
]
MAX_ANSWER_CHARS = 500
MAX_LIVE_GAMES = 200
BENCH_COLUMNS = [
    "Method", "Q", "A", "Avg. len", "Avg. success len", "Success rate", "Final accuracy",
    "Hypothetical labels", "Games",
]  # fmt: skip

EXPLAINER = """
**How it works.** The querier asks the question whose answer is expected to leave the smallest
*conformal prediction set* of animals (C-IP, Chan et al. 2025). The set holds every animal whose
posterior probability is at least a threshold τ calibrated so that, on random games, the hidden
animal is inside with probability about 1 − α. **IP** instead minimises the expected posterior
entropy; **Random** picks any unasked question.

**Hypothetical labels.** To score a question, C-IP imagines a few hidden animals (n_est), answers
the question as each would, and computes an entropy bound from the resulting sets. The paper
draws these animals *uniformly*. Late in a game most uniform draws are animals already ruled out;
their sets usually miss them, and the bound's uncovered term α·log2(K − |C|) is largest for
*small or empty* sets. So the uniform bound can prefer questions that leave the set empty, and
C-IP then plays worse than IP. Drawing the labels *from the current posterior* removes this: the
imagined animals are the plausible ones, and C-IP then plays best. Both options are kept; the
benchmark with "both" shows them side by side.

**Posterior.** With a language model, p(animal | answers) is the probability of each full animal
name (every token) after the prompt "… The animal is:", normalised over the animals. The
**bank oracle** is not a language model: it counts which animals agree with the answers. It is
offered so the game is playable offline (e.g. with the random `tiny-random` model, whose
posterior is exact but meaningless).
"""


def _number(value: Any, name: str, *, lo: float, hi: float, integer: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ConfidantError(f"{name} must be a finite number")
    if integer and x != int(x):
        raise ConfidantError(f"{name} must be a whole number, got {value}")
    if not lo <= x <= hi:
        raise ConfidantError(f"{name} must be between {lo:g} and {hi:g}, got {x:g}")
    return int(x) if integer else x


class CipTab:
    """Handlers of the 20 Questions tab (plain methods, so tests can call them directly)."""

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
            "alpha": _number(alpha, "α", lo=0.01, hi=0.49),
            "finite_sample": bool(finite),
            "n_cal": _number(
                n_cal, "calibration histories per length", lo=1, hi=5000, integer=True
            ),  # fmt: skip
            "max_length": _number(
                max_len, "max questions L", lo=1, hi=min(60, cs.n_questions), integer=True
            ),  # fmt: skip
            "cal_seed": _number(cal_seed, "calibration seed", lo=0, hi=2**31, integer=True),
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
                  progress=None) -> str:  # fmt: skip
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
        eps = _number(epsilon, "ε", lo=0, hi=100)
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
            n_est=_number(n_est, "n_est", lo=1, hi=32, integer=True),
            max_queries=s["max_length"],
            epsilon=eps or None,
            hypotheses=hypotheses,
            answerer=answerer,
            propose_queries=propose,
            seed=_number(seed, "seed", lo=0, hi=2**31, integer=True),
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
                    cal_seed, n_est, epsilon, seed, query_set="closed", request=None,
                    progress=None):  # fmt: skip
        """Start a game where the person answers; returns (game id, question, set, plot,
        turns)."""
        s = self.settings(key, posterior_kind, alpha, finite, n_cal, max_len, cal_seed)
        posterior, lm = self.posterior(s)
        cal, _ = self.calibration(s, posterior, progress)
        game = self._new_game(s, posterior, lm, cal, method=method, hypotheses=hypotheses,
                              n_est=n_est, epsilon=epsilon, seed=seed, query_set=query_set)  # fmt: skip
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
                  request=None, progress=None):  # fmt: skip
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
                  finite, n_cal, max_len, cal_seed, n_est, epsilon, progress=None):  # fmt: skip
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
            n_est=_number(n_est, "n_est", lo=1, hi=32, integer=True), max_queries=s["max_length"],
            epsilon=_number(epsilon, "ε", lo=0, hi=100) or None,
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


def create_cip_tab(ctx: AppContext) -> None:
    ctx.history_renderers["cip_game"] = render_cip_game
    tab = CipTab(ctx)
    animals = tab.default_set
    model_kw = dict(concurrency_id="model", concurrency_limit=1)
    with gr.Tab("20 Questions", id="cip"):
        gr.Markdown(
            "Think of an animal; the model asks yes/no questions chosen by **conformal "
            "information pursuit** and shows its calibrated *prediction set* shrinking."
        )
        with gr.Accordion("How it works, and the settings", open=False):
            gr.Markdown(EXPLAINER)
        class_key = gr.State("")
        game_id = gr.State("")
        with gr.Row():
            posterior = gr.Radio(POSTERIOR_CHOICES, value="oracle" if ctx.tiny else "llm",
                                 label="Posterior", scale=3)  # fmt: skip
            method = gr.Radio(METHOD_CHOICES, value="cip", label="Querier", scale=1)
            hypotheses = gr.Radio(HYPOTHESIS_CHOICES, value="uniform",
                                  label="Hypothetical labels", scale=2)  # fmt: skip
        with gr.Accordion("Calibration and game settings", open=False):
            with gr.Row():
                alpha = gr.Number(value=0.1, label="α (target miscoverage)")
                finite = gr.Checkbox(value=False, label="finite-sample (n+1) correction")
                n_cal = gr.Number(value=100, precision=0, label="calibration histories / length")
                max_len = gr.Number(value=20, precision=0, label="max questions L")
                cal_seed = gr.Number(value=0, precision=0, label="calibration seed")
            with gr.Row():
                n_est = gr.Number(value=4, precision=0, label="hypothetical labels n_est")
                epsilon = gr.Number(value=0, label="stop when std of scores < ε (0 = off)")
                seed = gr.Number(value=0, precision=0, label="game seed")
                query_set = gr.Radio(
                    [("closed bank", "closed"), ("open: proposed by the model", "open")],
                    value="closed", label="Questions",
                )  # fmt: skip
            calibrate_btn = gr.Button("Calibrate (or reuse stored thresholds)")
            calibration_md = gr.Markdown()
        with gr.Accordion("Class set", open=False):
            class_md = gr.Markdown(
                f"Using the built-in **animals**: {animals.n_classes} classes × "
                f"{animals.n_questions} questions."
            )
            upload = gr.File(label="Your class set (CSV: class,question,answer)", type="filepath",
                             file_types=[".csv"])  # fmt: skip
            default_btn = gr.Button("Use the built-in animals")
        with gr.Tab("Play (you answer)"):
            start_btn = gr.Button("I have an animal in mind: start", variant="primary")
            question_md = gr.Markdown()
            with gr.Row():
                yes_btn = gr.Button("Yes")
                no_btn = gr.Button("No")
            with gr.Row():
                free_text = gr.Textbox(label="…or answer in your own words", scale=4)
                send_btn = gr.Button("Answer", scale=1)
        with gr.Tab("Auto play"):
            with gr.Row():
                hidden = gr.Dropdown(list(animals.classes), value=animals.classes[0],
                                     label="Hidden animal")  # fmt: skip
                answerer = gr.Radio([("bank lookup", "bank"), ("LLM role-play", "llm")],
                                    value="bank", label="Answerer")  # fmt: skip
            auto_btn = gr.Button("Play automatically", variant="primary")
            # The Play tab's question box is hidden while this tab is open.
            auto_md = gr.Markdown()
        set_md = gr.Markdown()
        plot = gr.Plot(label="Set size and entropy bound per turn")
        turns_md = gr.Markdown()
        with gr.Tab("Benchmark"):
            gr.Markdown(
                "Auto-play every class with each querier (answers from the bank): success "
                "rate, average number of questions, per-turn coverage (the paper's Table 2)."
            )
            with gr.Row():
                methods = gr.CheckboxGroup(METHOD_CHOICES, value=list(METHODS), label="Queriers")
                seeds = gr.Textbox(value="0", label="Seeds (comma-separated)")
                both = gr.Checkbox(value=True, label="rows for both hypothetical-label modes")
                classes = gr.Textbox(label="Only these classes (comma-separated; empty = all)")
            bench_btn = gr.Button("Run benchmark", variant="primary")
            bench_note = gr.Markdown()
            bench_table = gr.Dataframe(headers=BENCH_COLUMNS, interactive=False, wrap=True)
            bench_plot = gr.Plot(label="Coverage of the prediction sets per turn")
            bench_file = gr.File(label="Table as CSV", interactive=False)
        with gr.Tab("Review a game"):
            refresh_btn = gr.Button("Refresh")
            games = gr.Dataframe(
                headers=["id", "created", "mode", "querier", "model", "hidden", "final guess",
                         "questions", "status"],
                interactive=False, wrap=True,
            )  # fmt: skip
            with gr.Row():
                review_id = gr.Textbox(label="Game id", scale=3)
                review_btn = gr.Button("Review game", scale=1)
            review_md = gr.Markdown()
            review_plot = gr.Plot(label="Set size and bound per turn")

        settings = [class_key, posterior, method, hypotheses, alpha, finite, n_cal, max_len,
                    cal_seed, n_est, epsilon, seed, query_set]  # fmt: skip
        game_out = [game_id, question_md, set_md, plot, turns_md]

        @user_errors
        def do_calibrate(key, post, a, fin, n, L, cs, progress=gr.Progress()):  # noqa: B008 - gradio's progress bar
            return tab.calibrate(key, post, a, fin, n, L, cs, progress=progress)

        @user_errors
        def do_start(key, post, meth, hyp, a, fin, n, L, cs, ne, eps, sd, qs,
                     request: gr.Request = None, progress=gr.Progress()):  # fmt: skip  # noqa: B008
            return tab.start_human(key, post, meth, hyp, a, fin, n, L, cs, ne, eps, sd, qs,
                                   request=request, progress=progress)  # fmt: skip

        @user_errors
        def do_answer(gid, text):
            return tab.answer(gid, text)

        @user_errors
        def do_auto(key, post, meth, hyp, a, fin, n, L, cs, ne, eps, sd, hid, ans, qs,
                    request: gr.Request = None, progress=gr.Progress()):  # fmt: skip  # noqa: B008
            yield from tab.auto_play(key, post, meth, hyp, a, fin, n, L, cs, ne, eps, sd, hid,
                                     ans, qs, request=request, progress=progress)  # fmt: skip

        @user_errors
        def do_bench(key, post, ms, sd, hyp, bo, cl, a, fin, n, L, cs, ne, eps,
                     progress=gr.Progress()):  # fmt: skip  # noqa: B008
            return tab.benchmark(key, post, ms, sd, hyp, bo, cl, a, fin, n, L, cs, ne, eps,
                                 progress=progress)  # fmt: skip

        @user_errors
        def do_upload(path):
            return tab.upload(path)

        @user_errors
        def do_review(gid):
            return tab.review(gid)

        @user_errors
        def do_games():
            return tab.games_table()

        def pick(evt: gr.SelectData, data):
            try:
                row = evt.index[0]
                return data.iloc[row, 0] if hasattr(data, "iloc") else data[row][0]
            except Exception:  # noqa: BLE001
                return gr.skip()

        calibrate_btn.click(do_calibrate, settings[:2] + [alpha, finite, n_cal, max_len, cal_seed],
                            [calibration_md], api_name="cip_calibrate", **model_kw)  # fmt: skip
        start_btn.click(do_start, settings, game_out, api_name="cip_start", **model_kw)
        send_btn.click(do_answer, [game_id, free_text], game_out, api_name="cip_answer",
                       **model_kw)  # fmt: skip
        yes_btn.click(lambda g: do_answer(g, "yes"), [game_id], game_out,
                      api_visibility="private", **model_kw)  # fmt: skip
        no_btn.click(lambda g: do_answer(g, "no"), [game_id], game_out,
                     api_visibility="private", **model_kw)  # fmt: skip
        auto_out = [game_id, auto_md, *game_out[2:]]
        auto_btn.click(do_auto, settings[:12] + [hidden, answerer, query_set], auto_out,
                       api_name="cip_auto_play", **model_kw)  # fmt: skip
        bench_btn.click(
            do_bench,
            [class_key, posterior, methods, seeds, hypotheses, both, classes, alpha, finite,
             n_cal, max_len, cal_seed, n_est, epsilon],
            [bench_table, bench_plot, bench_file, bench_note],
            api_name="cip_benchmark", **model_kw,
        )  # fmt: skip
        upload.upload(do_upload, [upload], [class_md, class_key, hidden], api_name="cip_upload")
        default_btn.click(tab.use_default, None, [class_md, class_key, hidden],
                          api_visibility="private")  # fmt: skip
        refresh_btn.click(do_games, None, [games], api_name="cip_games")
        games.select(pick, [games], [review_id], api_visibility="private")
        review_btn.click(do_review, [review_id], [review_md, review_plot], api_name="cip_review")
