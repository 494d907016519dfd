"""The 20 Questions tab: conformal information pursuit (C-IP) as a game and a benchmark. The
page is laid out here; its handlers are ``ui.tabs.cip_handlers.CipHandlers``."""

from __future__ import annotations

import gradio as gr

from ui.components.prompt import PROMPT_TITLE, prompt_code
from ui.components.results import first_cell_of_selected_row
from ui.context import AppContext, user_errors
from ui.plots.cip import render_cip_game
from ui.tabs.cip_benchmark import BENCH_COLUMNS
from ui.tabs.cip_handlers import POSTERIOR_PROMPT_NAME, ROLEPLAY_PROMPT_NAME, CipHandlers
from uq.cip.conformal import METHOD_NAMES, METHODS

POSTERIOR_CHOICES = [
    ("Language model: p(animal | answers so far)", "llm"),
    ("Bank oracle: answers looked up in the class set (NOT a language model, offline)", "oracle"),
]
METHOD_CHOICES = [(METHOD_NAMES[m], m) for m in METHODS]
HYPOTHESIS_CHOICES = [
    ("from the current posterior", "posterior"),
    ("uniform over the classes (the paper)", "uniform"),
]
# Calibration defaults (histories per length, L) per posterior: a language model scores every
# history with a forward pass, so its default is a small calibration that runs in about a
# minute on a CPU; the bank oracle is arithmetic and gets the paper's size.
CALIBRATION_DEFAULTS = {"llm": (5, 8), "oracle": (100, 20)}
# Long work (calibrations, benchmarks, auto play) has its own queue, apart from the "model"
# queue of Generate and the other tabs, so it never holds theirs; the model's own lock is
# released between its short steps.
LONG_WORK = dict(concurrency_id="cip_long", concurrency_limit=2)

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
benchmark with "both" shows them side by side. Drawing from the posterior is the default.

**Stopping.** A game stops when the prediction set holds a single animal, when the question
budget L is used, or (with ε > 0) when the candidates' scores stop differing.

**Posterior.** With a language model, p(animal | answers) is the probability of each full animal
name (every token) after the prompt "… The animal is:", normalised over the animals. The
**bank oracle** is not a language model: it counts which animals agree with the answers. It is
offered so the game is playable offline (e.g. with the random `tiny-random` model, whose
posterior is exact but meaningless).
"""


CIP_PROMPT_NOTE = (
    "With the language-model posterior, the model scores every class name after this prompt "
    "(the questions and answers so far, ending “The animal is:”); with LLM role-play in auto "
    "play, the second box is what the model answered the last question from. The bank oracle "
    "and bank lookup send no prompt."
)


def create_cip_tab(ctx: AppContext) -> None:
    """Lay out the 20 Questions tab (play, auto play, benchmark, review) and wire its buttons
    to ``CipHandlers``."""
    ctx.history_renderers["cip_game"] = render_cip_game
    h = CipHandlers(ctx)
    animals = h.default_set
    model_kw = dict(concurrency_id="model", concurrency_limit=1)
    default_kind = "oracle" if ctx.tiny else "llm"
    default_cal, default_len = CALIBRATION_DEFAULTS[default_kind]
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
            posterior = gr.Radio(POSTERIOR_CHOICES, value=default_kind, label="Posterior",
                                 scale=3)  # fmt: skip
            method = gr.Radio(METHOD_CHOICES, value="cip", label="Querier", scale=1)
            hypotheses = gr.Radio(HYPOTHESIS_CHOICES, value="posterior",
                                  label="Hypothetical labels", scale=2)  # fmt: skip
        with gr.Accordion("Calibration and game settings", open=False):
            with gr.Row():
                alpha = gr.Number(value=0.1, label="α (target miscoverage)")
                finite = gr.Checkbox(value=False, label="finite-sample (n+1) correction")
                n_cal = gr.Number(value=default_cal, precision=0,
                                  label="calibration histories / length")  # fmt: skip
                max_len = gr.Number(value=default_len, precision=0, label="max questions L")
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
        with gr.Row():
            cost_md = gr.Markdown(elem_id="cip-cost")
            stop_btn = gr.Button("Stop", variant="stop", scale=0, min_width=100)
        # Playing, benchmarking and reviewing are three sub-tabs side by side, so that the
        # benchmark and the review never look like part of the game on screen.
        with gr.Tab("Play a game", id="cip_game"):
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
                roleplay_md = gr.Markdown()
                auto_btn = gr.Button("Play automatically", variant="primary")
                # The Play tab's question box is hidden while this tab is open.
                auto_md = gr.Markdown()
            set_md = gr.Markdown()
            plot = gr.Plot(label="Set size and entropy bound per turn")
            turns_md = gr.Markdown()
            with gr.Accordion(PROMPT_TITLE, open=False):
                gr.Markdown(CIP_PROMPT_NOTE)
                posterior_prompt = prompt_code(POSTERIOR_PROMPT_NAME)
                roleplay_prompt = prompt_code(ROLEPLAY_PROMPT_NAME)
            turns_md.change(h.turn_prompts, [game_id], [posterior_prompt, roleplay_prompt],
                            api_visibility="private")  # fmt: skip
        with gr.Tab("Benchmark", id="cip_benchmark"):
            gr.Markdown(
                "### Benchmark: every class, each querier\n"
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
        with gr.Tab("Review a game", id="cip_review"):
            gr.Markdown("### Review a stored game\nPick a game from the table to replay it.")
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

        # Each handler raises ConfidantError; user_errors shows it as a message in the page.
        calibrate, start, answer, auto_play, benchmark, upload_set, review, games_table = (
            user_errors(fn) for fn in (h.calibrate, h.start_human, h.answer, h.auto_play,
                                       h.benchmark, h.upload, h.review, h.games_table)
        )  # fmt: skip
        cost_in = settings[:2] + [alpha, finite, n_cal, max_len, cal_seed]
        roleplay_in = [class_key, answerer, n_est, query_set]

        cal_ev = calibrate_btn.click(calibrate, cost_in, [calibration_md],
                                     api_name="cip_calibrate", **LONG_WORK)  # fmt: skip
        start_ev = start_btn.click(start, settings, game_out, api_name="cip_start", **LONG_WORK)
        send_btn.click(answer, [game_id, free_text], game_out, api_name="cip_answer",
                       **model_kw)  # fmt: skip
        yes_btn.click(lambda g: answer(g, "yes"), [game_id], game_out,
                      api_visibility="private", **model_kw)  # fmt: skip
        no_btn.click(lambda g: answer(g, "no"), [game_id], game_out,
                     api_visibility="private", **model_kw)  # fmt: skip
        auto_out = [game_id, auto_md, *game_out[2:]]
        auto_ev = auto_btn.click(auto_play, settings[:12] + [hidden, answerer, query_set],
                                 auto_out, api_name="cip_auto_play", **LONG_WORK)  # fmt: skip
        bench_ev = bench_btn.click(
            benchmark,
            [class_key, posterior, methods, seeds, hypotheses, both, classes, alpha, finite,
             n_cal, max_len, cal_seed, n_est, epsilon],
            [bench_table, bench_plot, bench_file, bench_note],
            api_name="cip_benchmark", **LONG_WORK,
        )  # fmt: skip
        long_events = [cal_ev, start_ev, auto_ev, bench_ev]
        stop_btn.click(None, None, None, cancels=long_events, api_visibility="private")
        # The expected cost is on the page before anything starts, and follows the settings.
        for ev in long_events:
            ev.then(h.cost, cost_in, [cost_md], api_visibility="private")
        posterior.change(lambda k: CALIBRATION_DEFAULTS.get(k, (default_cal, default_len)),
                         [posterior], [n_cal, max_len], api_visibility="private")  # fmt: skip
        for box in (class_key, posterior, alpha, finite, n_cal, max_len, cal_seed):
            box.change(h.cost, cost_in, [cost_md], api_visibility="private")
        for box in roleplay_in:
            box.change(h.roleplay_cost, roleplay_in, [roleplay_md], api_visibility="private")
        ctx.on_load.append((h.cost, cost_in, [cost_md]))
        ctx.on_load.append((h.roleplay_cost, roleplay_in, [roleplay_md]))
        upload.upload(upload_set, [upload], [class_md, class_key, hidden], api_name="cip_upload")
        default_btn.click(h.use_default, None, [class_md, class_key, hidden],
                          api_visibility="private")  # fmt: skip
        refresh_btn.click(games_table, None, [games], api_name="cip_games")
        games.select(first_cell_of_selected_row, [games], [review_id], api_visibility="private")
        review_btn.click(review, [review_id], [review_md, review_plot], api_name="cip_review")
