"""The Semantic entropy tab's "Evaluate a dataset" with your own samples: no generator, the
same tables, clear messages for bad files, hostile text shown as text."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from backends.registry import BackendConfig, Backends
from store.db import Store
from ui.context import AppContext
from ui.tabs.semantic_handlers import SOURCE_CHOICES, SemanticHandlers

NLI = "NLI cross-encoder"
OWN = next(k for k, v in SOURCE_CHOICES.items() if v == "samples")
HOSTILE = '<img src=x onerror="alert(1)"> **bold** [link](javascript:alert(1))'


def no_progress(*args, **kwargs):
    return None


@pytest.fixture
def ctx(tmp_path, tiny_nli_dir, monkeypatch):
    def no_generator(self):
        raise AssertionError("your own samples need no generator")

    monkeypatch.setattr(Backends, "generator", no_generator)
    backends = Backends(BackendConfig(model="no-such-model", nli_model=str(tiny_nli_dir)))
    return AppContext(backends=backends, store=Store(tmp_path / "app.db"))


def evaluate(ctx, path, entailment=NLI, correctness="Contains a gold answer"):
    handler = SemanticHandlers(ctx).evaluate
    return handler(str(path), False, 100, 2, 4, entailment, correctness, 0, 0, 0, OWN,
                   progress=no_progress)  # fmt: skip


def test_own_samples_give_the_same_tables_without_a_generator(ctx, tmp_path):
    path = tmp_path / "mine.jsonl"
    lines = [
        {"question": HOSTILE, "gold": ["Paris"], "samples": [HOSTILE, "Paris"], "reference": HOSTILE},  # noqa: E501
        {"question": "Two?", "gold": "2", "samples": [{"text": "2", "token_logprobs": [-0.1]}, {"text": "3", "token_logprobs": [-2.0]}]},  # noqa: E501
        {"question": "Sky?", "gold": "blue", "samples": ["blue", "blue"], "reference": "blue"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = evaluate(ctx, path)
    metrics, questions, roc, rej, files, status, cal, cal_measure, cal_plot, cal_state = out
    assert "3 questions" in status
    assert metrics["headers"][-1] == "note"
    by_measure = {row[0]: row for row in metrics["value"]}
    assert by_measure["p_true"][-1].startswith("needs model internals")
    assert by_measure["discrete_semantic_entropy"][-1] == ""
    # hostile text stays data in a plain-text table cell, exactly as written
    assert questions["value"][0][1] == HOSTILE
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == [
        "calibration.csv", "evaluation.json", "metrics.csv", "questions.csv",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no questions"),
        ("{oops\n", "line 1 is not JSON"),
        ('{"question": "q", "gold": "a"}\n', "missing &#x27;samples&#x27;|missing 'samples'"),
        ('{"question": "q", "gold": "a", "samples": ["<b>x</b>", {"text": 1}]}\n', "must be text"),
    ],
)
def test_bad_samples_files_are_messages(ctx, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(gr.Error, match=message):
        evaluate(ctx, path)


def test_a_hostile_file_name_is_escaped_in_the_message(ctx, tmp_path):
    path = tmp_path / "<script>x.jsonl"
    path.write_text("{oops\n")
    with pytest.raises(gr.Error) as info:
        evaluate(ctx, path)
    assert "<script>" not in str(info.value) and "&lt;script&gt;" in str(info.value)


def test_own_samples_refuse_what_needs_a_generator(ctx, tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"question": "q", "gold": "a", "samples": ["a", "b"]}\n')
    with pytest.raises(gr.Error, match="NLI or embeddings"):
        evaluate(ctx, path, entailment="The generator, prompted")
    with pytest.raises(gr.Error, match="judge needs a generator"):
        evaluate(ctx, path, correctness="LLM judge (the generator)")
    with pytest.raises(gr.Error, match="Upload a samples file"):
        SemanticHandlers(ctx).evaluate(None, True, 5, 2, 4, NLI, "Exact match", 0, 0, 0, OWN,
                                       progress=no_progress)  # fmt: skip


def test_a_parquet_upload_is_read_with_the_default_columns(ctx, tmp_path):
    import pandas as pd

    path = tmp_path / "d.parquet"
    pd.DataFrame({"q": ["Capital?"], "answers": [["Paris"]]}).to_parquet(path)
    with pytest.raises(gr.Error, match="no column &#x27;question&#x27;|no column 'question'"):
        SemanticHandlers(ctx).evaluate(str(path), False, 5, 2, 4, NLI, "Exact match", 0,
                                       progress=no_progress)  # fmt: skip
