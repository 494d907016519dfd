"""The 20 Questions tab: handlers called directly, bad uploads, and its endpoints over
gradio_client."""

from __future__ import annotations

import csv
import io

import gradio as gr
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from core.errors import ConfidantError
from store.cip import list_calibrations
from store.db import Store
from store.games import get_game, list_games
from store.runs import get_run, list_runs
from tests.helpers import serving
from ui.app import build_app
from ui.context import AppContext
from ui.plots.cip import render_cip_game, set_markdown
from ui.tabs.cip_handlers import CipHandlers

# class key, posterior, method, hypotheses, alpha, finite, n_cal, L, cal seed, n_est, ε, seed
SETTINGS = ["", "oracle", "cip", "posterior", 0.1, False, 30, 6, 0, 4, 0, 0]


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def last(outputs):
    """The final output of a streaming handler (the game view after any progress)."""
    *_, final = outputs
    return final


class Tab:
    """CipHandlers with start_human and benchmark run to their final output."""

    def __init__(self, ctx):
        self.h = CipHandlers(ctx)

    def __getattr__(self, name):
        fn = getattr(self.h, name)
        if name in ("start_human", "benchmark", "calibrate"):
            return lambda *a, **k: last(fn(*a, **k))
        return fn


@pytest.fixture
def tab(ctx):
    return Tab(ctx)


def test_human_game_turn_by_turn_stored_and_reviewable(tab, ctx):
    gid, question, set_md, fig, turns_md = tab.start_human(*SETTINGS)
    assert question.startswith("### Question 1:") and "Prediction set: 33 of 33" in set_md
    assert len(get_game(ctx.store, gid)["turns"]) == 1
    answers = ["yes", "No", "It lives on farms.", "y", "n", "yes"]
    for i, text in enumerate(answers, start=1):
        gid2, question, set_md, fig, turns_md = tab.answer(gid, text)
        assert gid2 == gid
        assert len(get_game(ctx.store, gid)["turns"]) == i + 1
        if "final guess" in question:
            break
    assert "My final guess" in question and "History tab" in question
    game = get_game(ctx.store, gid)
    assert game["status"] == "finished" and game["mode"] == "human"
    assert game["turns"][3]["answer"] == "It lives on farms."
    assert list(fig.data[0].y) == [t["set_size"] for t in game["turns"]]
    with pytest.raises(ConfidantError, match="over"):
        tab.answer(gid, "yes")
    md, review_fig = tab.review(gid)
    assert "human game" in md and "not a language model" in md
    run = get_run(ctx.store, game["run_id"])
    view = render_cip_game(run)
    assert list(view["plot"].data[0].y) == list(review_fig.data[0].y)
    # calibration was stored once and reused by a second game
    tab.start_human(*SETTINGS)
    assert len(list_calibrations(ctx.store)) == 1


@pytest.mark.parametrize(
    "text, message",
    [("", "Type an answer"), ("   ", "Type an answer"), ("x" * 1000, "at most"),
     ("a\x00b", "at most")],
)  # fmt: skip
def test_bad_answers_are_messages(tab, text, message):
    gid = tab.start_human(*SETTINGS)[0]
    with pytest.raises(ConfidantError, match=message):
        tab.answer(gid, text)
    with pytest.raises(ConfidantError, match="Start a game"):
        tab.answer("nope", "yes")


def test_auto_play_streams_turns_and_stores_them(tab, ctx):
    outputs = list(tab.auto_play(*SETTINGS, "penguin", "bank"))
    assert len(outputs) >= 2
    gid = outputs[-1][0]
    game = get_game(ctx.store, gid)
    assert game["status"] == "finished" and game["truth"] == "penguin"
    questions = [o[1] for o in outputs if str(o[1]).startswith("### Question")]
    assert len(questions) == len(game["turns"]) - 1  # every turn shown as it is played
    assert "Calibration needed" in outputs[0][1]  # the cost before the calibration runs
    assert "My final guess" in outputs[-1][1]
    assert len(game["turns"]) <= 7


def test_auto_play_with_tiny_model_posterior_and_llm_answerer(tab, ctx, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(
        "class,question,answer\ncat,Can it fly?,no\nowl,Can it fly?,yes\n"
        "cat,Does it purr?,yes\nowl,Does it purr?,no\n",
        encoding="utf-8",
    )
    _, key, _ = tab.upload(str(path))
    settings = [key, "llm", "ip", "uniform", 0.2, False, 2, 2, 0, 1, 0, 0]
    outputs = list(tab.auto_play(*settings, "owl", "llm"))
    game = get_game(ctx.store, outputs[-1][0])
    assert game["status"] == "finished" and len(game["turns"]) <= 3
    assert "language model" in game["posterior_label"]


@pytest.mark.parametrize(
    "settings, message",
    [
        (["", "oracle", "cip", "uniform", 0.9, False, 30, 6, 0, 4, 0, 0], "α"),
        (["", "oracle", "cip", "uniform", float("nan"), False, 30, 6, 0, 4, 0, 0], "finite"),
        (["", "oracle", "cip", "uniform", 0.1, False, 0, 6, 0, 4, 0, 0], "calibration"),
        (["", "oracle", "cip", "uniform", 0.1, False, 30, 500, 0, 4, 0, 0], "max questions"),
        (["", "oracle", "cip", "uniform", 0.1, False, 30, 2.5, 0, 4, 0, 0], "whole"),
        (["", "oracle", "best", "uniform", 0.1, False, 30, 6, 0, 4, 0, 0], "querier"),
        (["", "psychic", "cip", "uniform", 0.1, False, 30, 6, 0, 4, 0, 0], "posterior"),
        (["", "oracle", "cip", "uniform", 0.1, False, 30, 6, 0, 0, 0, 0], "n_est"),
        (["", "oracle", "cip", "uniform", 0.1, False, 30, 6, 0, 4, -1, 0], "ε"),
        (["gone", "oracle", "cip", "uniform", 0.1, False, 30, 6, 0, 4, 0, 0], "upload it"),
    ],
)
def test_bad_settings_are_messages_and_store_nothing(tab, ctx, settings, message):
    with pytest.raises(ConfidantError, match=message):
        tab.start_human(*settings)
    assert list_games(ctx.store) == []


GOOD = "class,question,answer\ncat,Does it purr?,yes\ndog,Does it purr?,no\n"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("name,question,answer\ncat,Q?,yes\n", "missing column"),
        ("class,question,answer\ncat,Q?,maybe\ndog,Q?,no\n", "yes or no"),
        ("class,question,answer\ncat,Q?,yes\n", "at least 2 classes"),
        ("class,question,answer\ncat,Q?,yes\ndog,Q?,no\ncat,Q?,no\n", "duplicate"),
        ("class,question,answer\ncat,Q?,yes\ndog,R?,no\n", "no answer"),
        ("class,question,answer\n,Q?,yes\ndog,Q?,no\n", "blank"),
        ("class,question,answer\nCat,Q?,yes\ncat,Q?,no\n", "differ only in case"),
        ("class,question,answer\n" + "x" * 200 + ",Q?,yes\ndog,Q?,no\n", "longer than"),
        ('class,question,answer\n"cat,Q?,yes\n', "no rows|CSV|expected"),
        ("class,question,answer\n=cmd(),Q?,yes\ndog,Q?,no\n", None),
    ],
)
def test_upload_table(tab, tmp_path, content, message):
    path = tmp_path / "set.csv"
    path.write_text(content, encoding="utf-8")
    if message is None:
        msg, key, update = tab.upload(str(path))
        assert "2 classes" in msg and tab.class_set(key).classes[0] == "=cmd()"
        return
    with pytest.raises(ConfidantError, match=message):
        tab.upload(str(path))


def test_upload_non_utf8_and_missing_file(tab, tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00class")
    with pytest.raises(ConfidantError, match="UTF-8"):
        tab.upload(str(path))
    with pytest.raises(ConfidantError, match="Choose a CSV"):
        tab.upload(None)


def test_uploaded_class_set_plays_and_benchmark_exports_csv(tab, ctx, tmp_path):
    rows = ["class,question,answer"]
    names = ["=sum(A1)", "beta", "gamma", "delta"]
    questions = ["Q1?", "Q2?", "Q3?"]
    bits = {"=sum(A1)": "yyn", "beta": "ynn", "gamma": "nyy", "delta": "nny"}
    for n in names:
        for q, b in zip(questions, bits[n], strict=True):
            rows.append(f"{n},{q},{'yes' if b == 'y' else 'no'}")
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    _, key, _ = tab.upload(str(path))
    table, fig, csv_path, note = tab.benchmark(
        key, "oracle", ["cip", "ip", "random"], "0,1", "uniform", True, "", 0.2, False, 40, 3,
        0, 2, 0,
    )  # fmt: skip
    methods = [r[0] for r in table]
    assert methods == [
        "C-IP α=0.2 (uniform labels)", "C-IP α=0.2 (posterior labels)",
        "IP (uniform labels)", "IP (posterior labels)", "Random",
    ]  # fmt: skip
    with open(csv_path, encoding="utf-8") as f:
        parsed = list(csv.DictReader(io.StringIO(f.read())))
    assert len(parsed) == 5 and "coverage_turn_1" in parsed[0]
    assert len(fig.data) == 5
    assert "1 − α = 0.8 is guaranteed on average" in note
    with pytest.raises(ConfidantError, match="Seed must be a whole number"):
        tab.benchmark(key, "oracle", ["cip"], "a,b", "uniform", False, "", 0.2, False, 40, 3,
                      0, 2, 0)  # fmt: skip
    with pytest.raises(ConfidantError, match="at least one"):
        tab.benchmark(key, "oracle", [], "0", "uniform", False, "", 0.2, False, 40, 3, 0, 2, 0)
    with pytest.raises(ConfidantError, match="unknown class"):
        tab.benchmark(key, "oracle", ["ip"], "0", "uniform", False, "zeta", 0.2, False, 40, 3,
                      0, 2, 0)  # fmt: skip


def test_tab_endpoints_over_gradio_client(ctx):
    demo = build_app(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for name in ("/cip_calibrate", "/cip_start", "/cip_answer", "/cip_auto_play",
                     "/cip_benchmark", "/cip_upload", "/cip_games", "/cip_review"):  # fmt: skip
            assert name in api, name
        md = client.predict("oracle", 0.1, False, 30, 5, 0, api_name="/cip_calibrate")
        assert "Calibrated and stored" in md
        out = client.predict(*SETTINGS[1:7], 5, 0, 4, 0, 0, "closed", api_name="/cip_start")
        assert "Question 1" in out[0]  # session state is not part of the API
        out = client.predict("yes", api_name="/cip_answer")  # the game id is in session state
        assert "Question 2" in out[0] or "final guess" in out[0]
        out = client.predict(*SETTINGS[1:7], 5, 0, 4, 0, 0, "frog", "bank", "closed",
                             api_name="/cip_auto_play")  # fmt: skip
        assert "My final guess" in out[0]
        table = client.predict(api_name="/cip_games")
        assert len(table["data"]) == 2
        auto_id = [r[0] for r in table["data"] if r[2] == "auto"][0]
        md, plot = client.predict(auto_id, api_name="/cip_review")
        assert "frog" in md
        with pytest.raises(Exception, match="No game"):
            client.predict("missing", api_name="/cip_review")
        kinds = {r["kind"] for r in list_runs(ctx.store)}
        assert kinds == {"cip_game"}


def test_user_errors_wrap_gives_gradio_message(ctx):
    from ui.context import user_errors

    tab = CipHandlers(ctx)
    with pytest.raises(gr.Error, match="Start a game"):
        user_errors(tab.answer)("", "yes")


def test_set_markdown_explains_an_empty_set():
    turn = {"set_size": 0, "set_members": [], "tau": 0.4, "guess": "cow",
            "posterior_top": [("cow", 0.3)]}  # fmt: skip
    md = set_markdown(turn, 33)
    assert "0 of 33" in md and "Empty" in md and "α" in md
    full = set_markdown({**turn, "set_size": 1, "set_members": ["cow"]}, 33)
    assert "Empty" not in full and "cow" in full


# --------------------------------------------------------------------------------------------
# Long work: own queue, cost before starting, short steps, Stop (issue 12, items 1, 3 and 4)
# --------------------------------------------------------------------------------------------


def _counting(h, calls):
    real = h.posterior

    def posterior(s):
        post, lm = real(s)

        def wrapped(histories):
            calls.append(len(histories))
            return post(histories)

        wrapped.model_key, wrapped.label = post.model_key, post.label
        return wrapped, lm

    h.posterior = posterior


def test_calibration_shows_its_cost_first_then_short_steps_and_stops_when_closed(ctx):
    from ui.tabs.cip_calibration import BATCH

    h = CipHandlers(ctx)
    calls: list[int] = []
    _counting(h, calls)
    settings = ["", "oracle", 0.1, False, 40, 5, 0]
    assert "not measured yet" in h.cost(*settings)
    steps = h.calibrate(*settings)
    first = next(steps)
    assert "Calibration needed" in first and "200 histories" in first and "Stop" in first
    assert calls == []  # the cost is on the page before any posterior call
    second = next(steps)
    assert "s per history" in second and "left" in second
    n = len(calls)
    assert n >= 1 and max(calls) <= BATCH
    steps.close()  # what Gradio does when Stop is pressed or the tab is closed
    assert len(calls) == n and list_calibrations(ctx.store) == []  # nothing stored half-way
    # A finished calibration stores its rate: other settings show an expected time up front.
    assert "Calibrated and stored" in last(h.calibrate(*settings))
    assert "expected" in h.cost("", "oracle", 0.1, False, 40, 6, 0)
    assert "stored for these settings" in h.cost(*settings)


def test_long_work_has_its_own_queue_generators_and_a_stop_button(ctx):
    import inspect

    from ui.tabs.cip import CALIBRATION_DEFAULTS

    demo = build_app(ctx)
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    names = ("cip_calibrate", "cip_start", "cip_auto_play", "cip_benchmark")
    long = [fns[n] for n in names]
    for f in long:
        assert f.concurrency_id != fns["generate"].concurrency_id, f.api_name
        assert inspect.isgeneratorfunction(f.fn), f.api_name  # a closed tab stops it
    ids = {f._id for f in long}
    assert any(ids <= set(f.cancels) for f in demo.fns.values()), "no Stop for long work"
    n_cal, length = CALIBRATION_DEFAULTS["llm"]
    assert n_cal * length <= 50  # about a minute with SmolLM2-135M on a CPU, not half an hour
    hyp = [b for b in demo.blocks.values() if getattr(b, "label", "") == "Hypothetical labels"]
    assert hyp and hyp[0].value == "posterior"


def test_auto_play_with_llm_role_play_shows_the_cost_and_progress_before_the_turn(tab, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(
        "class,question,answer\ncat,Can it fly?,no\nowl,Can it fly?,yes\n"
        "cat,Does it purr?,yes\nowl,Does it purr?,no\n",
        encoding="utf-8",
    )
    _, key, _ = tab.upload(str(path))
    cost = tab.roleplay_cost(key, "llm", 3, "closed")
    assert "3 × 2 = 6 yes/no calls" in cost
    assert "no model calls" in tab.roleplay_cost(key, "bank", 3, "closed")
    settings = [key, "oracle", "ip", "posterior", 0.2, False, 5, 2, 0, 3, 0, 0]
    texts = [o[1] for o in tab.auto_play(*settings, "owl", "llm")]
    first_question = next(i for i, t in enumerate(texts) if str(t).startswith("### Question"))
    progress = [t for t in texts[:first_question] if "role-plays the imagined animals" in t]
    assert progress and "s per call" in progress[-1]
    assert "My final guess" in texts[-1]


def test_the_game_says_it_stops_at_a_single_animal(tab, ctx):
    settings = ["", "oracle", "ip", "posterior", 0.1, False, 100, 20, 0, 4, 0, 0]
    final = last(tab.auto_play(*settings, "penguin", "bank"))
    assert "single animal, **penguin**" in final[1]
    game = get_game(ctx.store, final[0])
    assert game["stop_reason"] == "single_class" and game["n_questions"] < 20


def test_tied_scores_are_explained_not_silent():
    from ui.plots.cip import choice_note

    tied = choice_note({"method": "cip", "scores": [2.5, 2.5, 2.5]})
    assert "All 3 candidate questions scored the same bound" in tied and "bank order" in tied
    assert choice_note({"method": "cip", "scores": [2.5, 1.0]}) == ""
    assert choice_note({"method": "random", "scores": None}) == ""
