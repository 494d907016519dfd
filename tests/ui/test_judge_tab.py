"""The Judge tab: handlers called directly (blind mode, identity, bad uploads and inputs,
agreement, export, consistency) and the endpoints driven with gradio_client."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from judge.scores import SCORE_METHODS
from store.db import Store
from store.export import neutralise
from store.judgements import list_judgements
from store.runs import get_run, list_runs
from tests.helpers import serving
from ui.app import build_app
from ui.context import AppContext
from ui.tabs.history import HistoryHandlers
from ui.tabs.judge import create_judge_tab
from ui.tabs.judge_handlers import HIDDEN, JudgeHandlers

MAX_NEW = 4


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def user(name: str | None):
    return SimpleNamespace(username=name, session_hash="session-1")


def show(h, items, index, blind, scale=5):
    return h.show_item(items, index, scale, False, MAX_NEW, blind)


def _numbers_of(result: dict) -> list[str]:
    """Strings that would betray the judge's numbers if they reached the browser."""
    if result.get("type") == "pairwise":
        probs = [p for _, p in result["first"]["raw"]]
        return [f"{p:.3f}" for p in probs] + [repr(p) for p in probs]
    s = result["summary"]
    return [f"{s['expectation']:.3f}", f"{s['trustjudge']:.3f}", repr(s["expectation"])]


def test_blind_mode_sends_nothing_of_the_judge_until_the_answer_is_saved(ctx):
    h = JudgeHandlers(ctx)
    items, status, first = h.load_items("Demo set", None, "single")
    assert len(items) == 50 and first == 1 and "50 single" in status
    out = show(h, items, 2, blind=True)
    state = out[8]
    visible = [o for k, o in enumerate(out) if k != 8]  # gr.State stays on the server
    assert out[6] is None and out[7] == HIDDEN
    dumped = json.dumps(visible, default=str)
    for secret in _numbers_of(state["result"]):
        assert secret not in dumped
    assert state["result"]["summary"] is not None and state["item_id"] == items[1]["item_id"]
    status, plot, md = h.submit(items, state, out[9], out[10], 3, None, "ok", "ada", None)
    assert "Saved judgement" in status and "ada" in status
    assert plot is not None and f"{state['result']['summary']['expectation']:.3f}" in md
    rows = list_judgements(ctx.store)
    assert len(rows) == 1 and rows[0]["blind"] == 1 and rows[0]["human_score"] == 3
    assert rows[0]["scale"] == 5 and rows[0]["shown"] == out[10]
    # A retried submit (same client key) stores nothing new, neither judgement nor run.
    h.submit(items, state, out[9], out[10], 3, None, "ok", "ada", None)
    assert len(list_judgements(ctx.store)) == 1
    assert len(list_runs(ctx.store, kind="judge")) == 1


def test_judge_shown_when_not_blind_and_pairwise_flow(ctx):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "pairwise")
    assert len(items) == 100 and items[0]["kind"] == "pairwise"
    out = show(h, items, 1, blind=False)
    assert len(out[6].data) == 2  # both presentation orders
    assert "order 2 (swapped back)" in out[7]
    status, _, _ = h.submit(items, out[8], out[9], out[10], None, "C (tie)", "", "ada", None)
    row = list_judgements(ctx.store)[0]
    assert row["human_preference"] == "C" and row["kind"] == "pairwise"
    assert set(json.loads(row["scores"])["relations"]) == {"baseline", "likelihood", "ppl"}
    run = get_run(ctx.store, row["run_id"])
    view = HistoryHandlers(ctx.__class__(**{**ctx.__dict__, "history_renderers": {}})).run_view(
        run["id"]
    )
    assert "no view" in view["markdown"]  # without the renderer: the raw result only
    ctx.history_renderers.clear()
    with gr.Blocks():
        create_judge_tab(ctx)
    view = HistoryHandlers(ctx).run_view(run["id"])
    assert "tie" in view["markdown"] and view["plot"] is not None


def test_the_same_item_gets_the_same_judge_for_every_annotator(ctx, monkeypatch):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    first = show(h, items, 1, blind=True)[8]["result"]
    import ui.tabs.judge_handlers as tab

    monkeypatch.setattr(tab, "grade", lambda *a, **k: pytest.fail("the judge ran twice"))
    assert show(h, items, 1, blind=True)[8]["result"] == first


def test_login_identity_wins_over_a_typed_name_and_scopes_export(ctx):
    ctx.auth_enabled = True
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = show(h, items, 1, blind=True)
    with pytest.raises(gr.Error, match="Log in"):
        h.submit(items, out[8], out[9], out[10], 4, None, "", "mallory", user(None))
    h.submit(items, out[8], out[9], out[10], 4, None, "", "mallory", user("bob"))
    out2 = show(h, items, 2, blind=True)
    h.submit(items, out2[8], out2[9], out2[10], 2, None, "", "", user("carol"))
    assert [r["annotator"] for r in list_judgements(ctx.store)] == ["bob", "carol"]
    with pytest.raises(gr.Error, match="another annotator"):  # carol replays bob's key
        h.submit(items, out[8], out[9], out[10], 1, None, "", "", user("carol"))
    assert len(list_judgements(ctx.store)) == 2
    with open(h.export("CSV", "carol", user("bob")), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["annotator"] for r in rows] == ["bob"]
    with pytest.raises(gr.Error, match="Log in"):
        h.export("CSV", "bob", user(None))


BAD_UPLOADS = [
    ("missing.csv", b"question,answer\nq,a\n", "single", "missing column"),
    ("missing.jsonl", b'{"question": "q", "response_a": "a"}\n', "pairwise", "response_b"),
    ("empty-row.csv", b"question,response\nq,a\n,\n", "single", "row 2 is empty"),
    ("empty-field.csv", b"question,response\nq,   \n", "single", "'response' field is empty"),
    ("big.csv", b"question,response\n" + b"q,a\n" * 1_300_000, "single", "limit"),
    ("latin1.csv", "question,response\nq,caf\u00e9\n".encode("latin-1"), "single", "UTF-8"),
    ("broken.jsonl", b'{"question": "q", "response": \n', "single", "not valid JSON"),
    ("nul.csv", b"question,response\nq,a\x00b\n", "single", "NUL"),
    ("items.txt", b"question,response\nq,a\n", "single", "unsupported file type"),
    ("header-only.csv", b"question,response\n", "single", "no items"),
    ("dupes.csv", b"item_id,question,response\nx,q,a\nx,q,b\n", "single", "more than once"),
    ("array.jsonl", b"[1, 2]\n", "single", "JSON object"),
]


@pytest.mark.parametrize(
    "filename, data, kind, match", BAD_UPLOADS, ids=[row[0] for row in BAD_UPLOADS]
)
def test_bad_uploads_are_clear_messages(ctx, tmp_path, filename, data, kind, match):
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(gr.Error, match=match):
        JudgeHandlers(ctx).load_items("Import file", str(path), kind)


def test_formula_text_is_kept_as_data_and_neutralised_on_export(ctx, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('question,response\n=SUM(A1:A9),"@cmd|x"\n', encoding="utf-8")
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Import file", str(path), "single")
    assert items[0]["question"] == "=SUM(A1:A9)" and items[0]["response"] == "@cmd|x"
    out = show(h, items, 1, blind=False)
    h.submit(items, out[8], out[9], out[10], 5, None, "-2 points", "ada", None)
    with open(h.export("CSV", "", None), encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["question"] == "'=SUM(A1:A9)" and row["response"] == "'@cmd|x"
    assert row["note"] == "'-2 points"
    jsonl = h.export("JSONL", "", None)
    with open(jsonl, encoding="utf-8") as f:
        stored = json.loads(f.readline())
    assert stored["question"] == "=SUM(A1:A9)" and stored["scores"]["scale"] == 5


@pytest.mark.parametrize(
    "score, note, name, match",
    [
        (None, "", "ada", "Give your score"),
        (0, "", "ada", "from 1 to 5"),
        (6, "", "ada", "from 1 to 5"),
        (2.5, "", "ada", "whole number"),
        (float("nan"), "", "ada", "finite"),
        (3, "x" * 6000, "ada", "limit"),
        (3, "a\x00b", "ada", "NUL"),
        (3, "", "   ", "Type your name"),
    ],
)
def test_bad_answers_are_messages_and_store_nothing(ctx, score, note, name, match):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = show(h, items, 1, blind=True)
    with pytest.raises(gr.Error, match=match):
        h.submit(items, out[8], out[9], out[10], score, None, note, name, None)
    assert list_judgements(ctx.store) == [] and list_runs(ctx.store) == []


@pytest.mark.parametrize(
    "index, match", [(0, "between 1 and 50"), (51, "between 1 and 50"), ("x", "whole number")]
)
def test_bad_item_numbers(ctx, index, match):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    with pytest.raises(gr.Error, match=match):
        show(h, items, index, blind=True)
    with pytest.raises(gr.Error, match="Load items first"):
        show(h, [], 1, blind=True)


def test_agreement_between_annotators_and_the_judge(ctx):
    h = JudgeHandlers(ctx)
    with pytest.raises(gr.Error, match="No judgements"):
        h.agreement()
    items, _, _ = h.load_items("Demo set", None, "single")
    for index, (ada, bob) in enumerate([(1, 2), (3, 3), (5, 4), (2, 1)], start=1):
        out = show(h, items, index, blind=True)
        h.submit(items, out[8], out[9], out[10], ada, None, "", "ada", None)
        out = show(h, items, index, blind=True)
        h.submit(items, out[8], out[9], out[10], bob, None, "", "bob", None)
    table, md = h.agreement()
    pairs = {(r[1], r[2]): r for r in table}
    assert ("ada", "bob") in pairs and pairs[("ada", "bob")][3] == 4
    assert float(pairs[("ada", "bob")][4]) == pytest.approx(0.8)  # Spearman by hand
    assert ("ada", "judge: TrustJudge") in pairs
    assert "Krippendorff" in md and "ada, bob" in md


def test_consistency_section_streams_then_saves_and_history_rebuilds(ctx):
    h = JudgeHandlers(ctx)
    steps = list(h.consistency(2, True, 4, 5, 100, 0.0, None))
    assert len(steps) == 4 and "question 1 of 2" in steps[0][0]
    status, rows, fig = steps[-1]
    assert "Saved as run" in status
    assert [r[0] for r in rows] == ["Baseline", "G-Eval", "TrustJudge", "TrustJudge (PPL)"]
    assert len(fig.data) >= 3
    run_id = status.split("`")[1]
    ctx.history_renderers.clear()
    with gr.Blocks():
        create_judge_tab(ctx)
    view = HistoryHandlers(ctx).run_view(run_id)
    assert "Consistency run" in view["markdown"] and view["plot"] is not None
    with pytest.raises(gr.Error, match="between 1 and 10"):
        list(h.consistency(11, True, 4, 5, 100, 0.0, None))
    with pytest.raises(gr.Error, match="tolerance"):
        list(h.consistency(1, True, 4, 5, 100, -1.0, None))


def test_judge_endpoints_with_gradio_client(ctx):
    demo = build_app(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for name in (
            "/judge_load",
            "/judge_show",
            "/judge_submit",
            "/judge_agreement",
            "/judge_export",
            "/judge_consistency",
        ):
            assert name in api
        loaded = client.predict("Demo set", None, "single", api_name="/judge_load")
        assert "50 single" in loaded[0]
        shown = client.predict(3, 5, False, MAX_NEW, True, api_name="/judge_show")
        position, question, response, _, _, _, plot, md, key = shown[:9]
        assert "3 of 50" in position and md == HIDDEN and plot is None
        status, plot, md = client.predict(key, 4, None, "via api", "ada", api_name="/judge_submit")
        assert "Saved judgement" in status and "expectation" in md
        client.predict(key, 4, None, "via api", "ada", api_name="/judge_submit")
        assert len(list_judgements(ctx.store)) == 1
        path = client.predict("CSV", "", api_name="/judge_export")
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows[0]["annotator"] == "ada" and rows[0]["human_score"] in ("4", "4.0")
        with pytest.raises(Exception, match="Load items first|item number"):
            Client(url, verbose=False).predict(1, 5, False, MAX_NEW, True, api_name="/judge_show")


# --------------------------------------------------------------------------------------------
# No score nobody chose, Save locked while loading, saves checked against the loaded item
# (issue 12, item 2)
# --------------------------------------------------------------------------------------------


def test_the_score_has_no_preset_value_and_save_refuses_without_one(ctx):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = show(h, items, 1, blind=True)
    assert out[4]["value"] is None and out[4]["choices"] == [1, 2, 3, 4, 5]
    with pytest.raises(gr.Error, match="Give your score"):
        h.submit(items, out[8], out[9], out[10], None, None, "", "ada", None)
    assert list_judgements(ctx.store) == []
    with gr.Blocks() as demo:
        create_judge_tab(ctx)
    score = [b for b in demo.blocks.values() if getattr(b, "label", "") == "Your score"]
    assert len(score) == 1 and score[0].value is None


def test_a_save_whose_token_is_not_the_loaded_item_is_refused(ctx):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    first = show(h, items, 1, blind=True)
    second = show(h, items, 2, blind=True)
    assert items[1]["item_id"] in second[9]  # the token names the item shown
    # The page still holds item 1's token while the server has loaded item 2.
    with pytest.raises(gr.Error, match="not the item loaded"):
        h.submit(items, second[8], first[9], first[10], 3, None, "", "ada", None)
    assert list_judgements(ctx.store) == []
    h.submit(items, second[8], second[9], second[10], 3, None, "", "ada", None)
    assert [r["item_id"] for r in list_judgements(ctx.store)] == [items[1]["item_id"]]


def test_save_is_disabled_while_an_item_loads(ctx):
    with gr.Blocks() as demo:
        create_judge_tab(ctx)
    deps = demo.config["dependencies"]
    by_id = {d["id"]: d for d in deps}
    save = next(b._id for b in demo.blocks.values() if getattr(b, "value", None) == "Save my "
                "judgement")  # fmt: skip
    show_fns = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "show_item"]
    assert len(show_fns) == 2  # Show item, and Next item
    for f in show_fns:
        before = by_id[f.get_config()["trigger_after"]]
        assert save in before["outputs"], "Save is not disabled before the item loads"
        after = [d for d in deps if d["trigger_after"] == f._id]
        assert after and save in after[0]["outputs"] and not after[0]["trigger_only_on_success"]
    locks = [f for f in demo.fns.values() if save in [b._id for b in f.outputs]]
    states = {f.fn.__name__: f.fn() for f in locks if f.fn.__name__ in ("lock", "unlock")}
    assert states["lock"]["interactive"] is False and states["unlock"]["interactive"] is True


def test_a_replayed_save_with_another_answer_is_refused_and_says_what_is_stored(ctx):
    """The browser keeps the save token after a save: a second save with another score must
    not be acknowledged as if it were stored."""
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = show(h, items, 1, blind=False)
    status, _, _ = h.submit(items, out[8], out[9], out[10], 2, None, "first", "ada", None)
    assert "(2 / 5)" in status
    with pytest.raises(gr.Error) as refused:
        h.submit(items, out[8], out[9], out[10], 5, None, "first", "ada", None)
    assert "already saved" in refused.value.message and "(2 / 5)" in refused.value.message
    with pytest.raises(gr.Error):  # another note is another answer too
        h.submit(items, out[8], out[9], out[10], 2, None, "changed", "ada", None)
    rows = list_judgements(ctx.store)
    assert [(r["human_score"], r["note"]) for r in rows] == [(2.0, "first")]
    # The same answer again (a retried request) is acknowledged with what is stored.
    again, _, _ = h.submit(items, out[8], out[9], out[10], 2, None, "first", "ada", None)
    assert "(2 / 5)" in again and len(list_judgements(ctx.store)) == 1
    # Showing the item again gives a new token: a new judgement may be saved.
    out2 = show(h, items, 1, blind=False)
    status, _, _ = h.submit(items, out2[8], out2[9], out2[10], 5, None, "", "ada", None)
    assert "(5 / 5)" in status and len(list_judgements(ctx.store)) == 2


def test_blind_cannot_be_claimed_after_the_judge_was_shown(ctx):
    """Show with blind off, show again with blind on, save: stored as not blind (the server
    knows the numbers went out). Another session that never saw them saves blind."""
    demo = build_app(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        client.predict("Demo set", None, "single", api_name="/judge_load")
        seen = client.predict(4, 5, False, MAX_NEW, False, api_name="/judge_show")
        assert seen[7] != HIDDEN  # the judge's numbers reached this session
        claimed = client.predict(4, 5, False, MAX_NEW, True, api_name="/judge_show")
        assert claimed[7] == HIDDEN
        client.predict(claimed[8], 3, None, "", "ada", api_name="/judge_submit")
        fresh = Client(url, verbose=False)
        fresh.predict("Demo set", None, "single", api_name="/judge_load")
        blind = fresh.predict(4, 5, False, MAX_NEW, True, api_name="/judge_show")
        fresh.predict(blind[8], 2, None, "", "bea", api_name="/judge_submit")
        # After its blind save this session has seen the numbers: a second save is not blind.
        again = fresh.predict(4, 5, False, MAX_NEW, True, api_name="/judge_show")
        fresh.predict(again[8], 2, None, "", "bea", api_name="/judge_submit")
    stored = [(r["annotator"], r["blind"]) for r in list_judgements(ctx.store)]
    assert sorted(stored) == [("ada", 0), ("bea", 0), ("bea", 1)]


def test_judgement_export_has_a_column_per_score_method_and_the_rationale(ctx):
    h = JudgeHandlers(ctx)
    items, _, _ = h.load_items("Demo set", None, "single")
    out = show(h, items, 1, blind=False)
    h.submit(items, out[8], out[9], out[10], 4, None, "", "ada", None)
    pairs, _, _ = h.load_items("Demo set", None, "pairwise")
    out = show(h, pairs, 1, blind=False)
    h.submit(pairs, out[8], out[9], out[10], None, "A", "", "ada", None)
    stored = list_judgements(ctx.store)
    single_run = get_run(ctx.store, stored[0]["run_id"])["result"]["judge"]
    # An older row, saved before the rationale had its column: filled from its run.
    ctx.store.write(lambda db: db["judgements"].update(stored[0]["id"], {"judge_rationale": None}))
    with open(h.export("CSV", "", None), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert "scores" not in reader.fieldnames
    for method in SCORE_METHODS:
        assert f"score_{method.key}" in reader.fieldnames
    single, pair = rows
    assert float(single["score_geval"]) == pytest.approx(single_run["summary"]["geval"])
    assert single["judge_rationale"] == neutralise(single_run["rationale"]) != ""
    assert single["score_relations_baseline"] == ""
    assert pair["score_relations_baseline"] in ("-1", "0", "1")
    assert pair["judge_rationale"].startswith("[x as A]") and "[y as A]" in pair["judge_rationale"]
    assert pair["score_geval"] == ""
