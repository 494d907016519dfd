"""The Semantic entropy tab: handlers called directly (with a bad-input table), the History
view rebuilt without a model, and the endpoints driven in-process with gradio_client."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.runs import get_run, list_runs
from tests.helpers import serving
from tests.ui.rendering import markdown_text
from ui.context import AppContext
from ui.tabs.history import HistoryHandlers, create_history_tab
from ui.tabs.semantic import create_semantic_tab
from ui.tabs.semantic_handlers import (
    SemanticHandlers,
    generation_view,
    render_semantic,
)

NLI = "NLI cross-encoder"
EMB = "Embedding cosine similarity"


def no_progress(*args, **kwargs):
    return None


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir, tiny_nli_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(tiny_nli_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def ask(ctx, question="What is the capital of France?", n=4, temperature=1.0, max_new=6,
        entailment=NLI, strict=True, condition=True, threshold=0.75, seed=1,
        pair_measures=True):  # fmt: skip
    handler = SemanticHandlers(ctx).ask
    return handler(question, n, temperature, max_new, entailment, strict, condition, threshold,
                   seed, pair_measures, None, progress=no_progress)  # fmt: skip


def test_without_pair_matrix_measures_fewer_pairs_and_the_table_says_so(ctx):
    full = ask(ctx, n=6, max_new=8)
    walk = ask(ctx, n=6, max_new=8, pair_measures=False)
    assert "Not computed" not in full[0] and "EigV" in full[0]
    assert (
        "Not computed in this run (not selected): EigV, 1 − degree (mean similarity), Eccentricity"
        in walk[0]
    )
    assert "eigv" in full[8]["measures"] and "eigv" not in walk[8]["measures"]
    assert (
        walk[8]["measures"]["discrete_semantic_entropy"]
        == full[8]["measures"]["discrete_semantic_entropy"]
    )  # same seed, same answers, same clusters
    distinct = len(set(full[8]["clustering"]["duplicate_of"]))
    assert full[8]["work"]["entailment_pairs"] == distinct * (distinct - 1)
    assert distinct > 2  # so the walk must ask fewer pairs than the full matrix
    assert walk[8]["work"]["entailment_pairs"] < full[8]["work"]["entailment_pairs"]


def test_ask_saves_a_run_that_history_rebuilds_without_a_model(ctx):
    md, clusters, heat, answers, which, trace, highlights, reference, state, status = ask(ctx)
    assert "Saved as run" in status and "Discrete semantic entropy" in md
    assert which["choices"][0] in ("reference", ("reference", "reference"))
    assert len(which["choices"]) == 5
    assert len(heat.data[0].z) == 4
    assert sum(clusters.data[0].y) == pytest.approx(1.0)
    runs = list_runs(ctx.store, kind="semantic_entropy")
    assert len(runs) == 1
    run = get_run(ctx.store, runs[0]["id"])
    assert [role for role, _ in run["generations"]] == ["sample"] * 4 + ["reference"]
    assert run["result"]["texts"] == state["texts"]
    offline = AppContext(
        backends=Backends(BackendConfig(model="no-such-model")),
        store=ctx.store,
        history_renderers={"semantic_entropy": render_semantic},
    )
    view = HistoryHandlers(offline).run_view(runs[0]["id"])
    assert list(view["plot"].data[0].y) == list(clusters.data[0].y)
    assert view["plot2"].data[0].z.tolist() == heat.data[0].z.tolist()
    fig, hl = generation_view(state, "sample #2")
    assert len(fig.data[0].y) == len(state["samples"][2]["tokens"])
    assert generation_view(state, "sample #99") == (None, None)


def test_pasted_answers_with_embeddings(ctx):
    handler = SemanticHandlers(ctx).score_pasted
    md, clusters, heat, answers, status = handler(
        "Capital of France?", "Paris\nIt is Paris.\nLondon", None, "-0.1\n-0.2\n-3", EMB,
        True, False, 0.75, None,  # answers alone: with the question, 0.75 merges all three
    )  # fmt: skip
    assert "Saved as run" in status and "C0" in answers and "log-lik" in answers
    assert list(clusters.data[0].y) == pytest.approx([2 / 3, 1 / 3])
    assert list_runs(ctx.store)[0]["model"] == "(pasted answers)"


def test_pasted_answers_from_a_file(ctx, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("answer,log_likelihood\nParis,-0.5\nParis.,-0.7\nLyon,-2\n")
    md, clusters, heat, answers, status = SemanticHandlers(ctx).score_pasted(
        "", "", str(path), "", NLI, True, False, 0.75, None
    )
    assert "Saved as run" in status and "Semantic entropy (likelihood)" in md


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"question": ""}, "type a question"),
        ({"question": "  \n "}, "type a question"),
        ({"question": "x" * 100_000}, "limit"),
        ({"question": "a\x00b"}, "NUL"),
        ({"n": 1}, "N must be between"),
        ({"n": 2.5}, "whole number"),
        ({"n": float("nan")}, "whole number"),
        ({"temperature": float("inf")}, "finite"),
        ({"temperature": -1}, "temperature"),
        ({"max_new": 0}, "max new tokens"),
        ({"seed": -5}, "Seed must be a whole number from 0 to 4294967295"),
        ({"entailment": "telepathy"}, "unknown entailment"),
        ({"entailment": EMB, "threshold": 3}, "threshold"),
    ],
)
def test_ask_bad_input_is_a_message_and_stores_nothing(ctx, overrides, message):
    with pytest.raises(gr.Error, match=message):
        ask(ctx, **overrides)
    assert list_runs(ctx.store) == []


@pytest.mark.parametrize(
    ("answers", "lls", "entailment", "message"),
    [
        ("", "", NLI, "Paste some answers"),
        ("one", "", NLI, "at least 2"),
        ("a\nb", "-1", NLI, "2 answers"),
        ("a\nb", "-1\nnan", NLI, "finite"),
        ("a\nb", "-1\n=HYPERLINK()", NLI, "not a number"),
        (
            '[{"answer": "a", "log_likelihood": -1}, {"answer": "b", "log_likelihood": -1}]',
            "-1\n-1",
            NLI,
            "given twice",
        ),  # fmt: skip
        ("[broken", "", NLI, "does not parse"),
        ("a\x00\nb", "", NLI, "NUL"),
        ("a\nb", "", "The generator, prompted", "NLI or embeddings"),
    ],
)
def test_pasted_bad_input_is_a_message_and_stores_nothing(ctx, answers, lls, entailment, message):
    with pytest.raises(gr.Error, match=message):
        SemanticHandlers(ctx).score_pasted(
            "q", answers, None, lls, entailment, True, True, 0.75, None
        )
    assert list_runs(ctx.store) == []


def test_evaluate_handler_runs_the_bundled_set_and_resumes(ctx):
    handler = SemanticHandlers(ctx).evaluate
    args = (None, True, 2, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0)
    shown = []
    out = handler(*args, progress=lambda *a, **k: shown.append((a, k)))
    metrics, questions, roc, rej, files, status, cal, cal_measure, cal_plot, cal_state = out
    assert "2 computed, 0 from the cache" in status
    # The bar counts questions and its text gives the throughput and the time left.
    assert shown[-1][0] == ((2, 2),) and shown[-1][1]["unit"] == "questions"
    assert "questions/s, about 0:00 left" in shown[-1][1]["desc"]
    assert metrics["headers"][:3] == ["measure", "n", "auroc"]
    assert {row[0] for row in metrics["value"]} >= {"discrete_semantic_entropy", "p_true"}
    assert len(questions["value"]) == 2
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == [
        "calibration.csv", "evaluation.json", "metrics.csv", "questions.csv",
    ]  # fmt: skip
    with open(next(f for f in files if f.endswith(".json")), encoding="utf-8") as f:
        assert len(json.load(f)["rows"]) == 2
    # Two questions: each calibrator is fitted on one and scored on the other.
    assert cal["headers"][:3] == ["measure", "method", "held out"]
    assert all(row[2] == "1" for row in cal["value"])
    assert cal_measure["value"] in cal_state and set(cal_state) == set(cal_measure["choices"])
    assert cal_plot.layout.title.text.startswith("Reliability")
    status = handler(*args, progress=no_progress)[5]
    assert "0 computed, 2 from the cache" in status
    # One worked p(True) example: the first question, answered before (cached), leaves one row.
    _, questions, *_, status, _, _, _, _ = handler(*args, 1, progress=no_progress)
    assert len(questions["value"]) == 1 and "1 computed, 1 from the cache" in status


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, False, 2, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0), "Upload a dataset"),
        ((None, True, 0, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0), "number of questions"),
        ((None, True, 2, 2, 4, NLI, "vibes", 0), "unknown correctness"),
        ((None, True, 2, 99, 4, NLI, "SQuAD F1 ≥ 0.5", 0), "N must be"),
        ((None, True, 2, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0, 2), "leave none of the 2"),
        ((None, True, 4, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0, 51), "worked examples must be"),
        ((None, True, 4, 2, 4, NLI, "SQuAD F1 ≥ 0.5", 0, 1.5), "whole number"),
    ],
)
def test_evaluate_bad_input(ctx, args, message):
    with pytest.raises(gr.Error, match=message):
        SemanticHandlers(ctx).evaluate(*args, progress=no_progress)


def test_evaluate_bad_upload(ctx, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,gold\nq,a\n")
    with pytest.raises(gr.Error, match="columns"):
        SemanticHandlers(ctx).evaluate(str(path), False, 2, 2, 4, NLI, "Exact match", 0,
                                       progress=no_progress)  # fmt: skip


def test_semantic_endpoints_with_gradio_client(ctx):
    with gr.Blocks() as demo:
        create_semantic_tab(ctx)
        create_history_tab(ctx)
    with serving(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for name in ("/semantic_entropy", "/score_answers", "/evaluate_dataset"):
            assert name in api
        out = client.predict(
            "Who wrote Hamlet?", 3, 1.0, 5, NLI, True, True, 0.75, 0,
            api_name="/semantic_entropy",
        )  # fmt: skip
        md, clusters, heat, answers, which, trace, highlights, reference, status = out
        assert "Discrete semantic entropy" in md and "Saved as run" in status
        assert clusters["type"] == "plotly" and json.loads(heat["plot"])["data"]
        md, clusters, heat, answers, status = client.predict(
            "", "Paris\nParis\nLyon", None, "", NLI, True, True, 0.75,
            api_name="/score_answers",
        )  # fmt: skip
        assert "Number of semantic sets" in md
        with pytest.raises(Exception, match="at least 2"):
            client.predict("", "one", None, "", NLI, True, True, 0.75, api_name="/score_answers")
        run_id = list_runs(ctx.store, kind="semantic_entropy")[-1]["id"]
        md, hl, plot1, plot2, raw = client.predict(run_id, api_name="/open_run")
        assert "semantic_entropy" in markdown_text(md) and raw["result"]["source"] == "model"


def test_question_box_follows_each_methods_default(monkeypatch):
    import ui.tabs.semantic as tab

    monkeypatch.setitem(tab.DEFAULT_CONDITION_ON_QUESTION, "embedding", False)
    assert tab._question_default("Embedding cosine similarity") is False
    assert tab._question_default("NLI cross-encoder") is True
    assert "embedding: off" in tab._question_label() and "nli: on" in tab._question_label()


def test_runs_export_has_a_column_per_semantic_measure(ctx):
    from store.export import export_runs
    from uq.semantic.measures import MEASURES

    ask(ctx, n=3, max_new=4)
    with gr.Blocks():
        create_semantic_tab(ctx)  # registers how its runs' measures are read
    run = get_run(ctx.store, list_runs(ctx.store)[0]["id"])
    wide, long = export_runs(ctx.store, measures=ctx.run_measures)
    import csv

    with open(wide, encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    for m in MEASURES:
        stored = (run["result"]["measures"].get(m.key) or {}).get("value")
        cell = row[f"measure_{m.key}"]
        assert cell == "" if stored is None else float(cell) == pytest.approx(stored)
    assert row["n_answers"] == str(len(run["generations"])) and row["answer_1"]
    with open(long, encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(run["generations"])
