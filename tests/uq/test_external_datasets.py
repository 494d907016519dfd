"""Datasets from elsewhere: a Hugging Face dataset through a fake loader (the ``datasets``
package is not installed here, and the hub is not reached), its column mapping, and parquet."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfidantError
from uq.evaluation.external import items_from_records, load_hf_dataset, load_parquet

SQUAD_LIKE = [
    {"id": "q1", "question": " Capital of France? ", "answers": {"text": ["Paris", "Paris"], "answer_start": [0, 0]}},  # noqa: E501
    {"id": "q2", "question": "Two plus two?", "answers": {"text": np.array(["4", "four"])}},
]  # fmt: skip


class FakeHub:
    def __init__(self, rows):
        self.rows, self.calls = rows, []

    def __call__(self, name, *config, split):
        self.calls.append((name, config, split))
        return self.rows


def test_the_mapping_reads_dotted_columns_and_dedupes_golds():
    hub = FakeHub(SQUAD_LIKE)
    items = load_hf_dataset(
        "someone/squad-like", "validation", question_column="question",
        gold_column="answers.text", id_column="id", loader=hub,
    )  # fmt: skip
    assert hub.calls == [("someone/squad-like", (), "validation")]
    assert [(i.id, i.question, i.answers) for i in items] == [
        ("q1", "Capital of France?", ["Paris"]), ("q2", "Two plus two?", ["4", "four"]),
    ]  # fmt: skip


def test_dict_gold_columns_and_a_config():
    rows = [{"q": "Who?", "a": {"aliases": ["Austen", "Jane Austen"], "value": "Jane Austen"}},
            {"q": "Year?", "a": 1066}]  # fmt: skip
    hub = FakeHub(rows)
    items = load_hf_dataset("trivia", "train", config="rc", question_column="q",
                            gold_column="a", loader=hub, limit=5)  # fmt: skip
    assert hub.calls[0] == ("trivia", ("rc",), "train")
    assert [i.answers for i in items] == [["Austen", "Jane Austen"], ["1066"]]
    assert [i.id for i in items] == ["1", "2"]


@pytest.mark.parametrize(
    ("records", "kwargs", "message"),
    [
        ([{"question": "q", "answers": "a"}], {"gold_column": "gold"}, "no column 'gold'"),
        ([{"question": "q", "answers": {"x": 1}}], {"gold_column": "answers.text"}, "no column"),
        ([{"question": "", "answers": "a"}], {}, "is empty"),
        ([{"question": "q", "answers": []}], {}, "no gold answer"),
        ([{"question": "q", "answers": {"start": 3}}], {}, "holds no text"),
        ([{"question": "q", "answers": [{"a": 1}]}], {}, "must be texts"),
        ([], {}, "has no questions"),
        ([{"id": 1, "question": "q", "answers": "a"}] * 2, {"id_column": "id"}, "duplicate id"),
    ],
)
def test_bad_mappings_are_clear_errors(records, kwargs, message):
    with pytest.raises(ConfidantError, match=message):
        items_from_records(records, **kwargs)


def test_without_the_datasets_package_the_message_says_so(monkeypatch):
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(ConfidantError, match="needs the `datasets` package.*pip install datasets"):
        load_hf_dataset("rajpurkar/squad", "validation")


def test_an_unreachable_hub_is_a_clear_error():
    def offline(name, *config, split):
        raise ConnectionError("Couldn't reach the hub")

    with pytest.raises(ConfidantError, match="could not load .*'x/y'.*split 'test'.*reachable"):
        load_hf_dataset("x/y", "test", loader=offline)


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame(
        {"id": ["a", "b"], "question": ["Capital?", "Two?"], "answers": [["Paris"], ["2", "two"]]}
    ).to_parquet(path)
    items = load_parquet(path)
    assert [(i.id, i.answers) for i in items] == [("a", ["Paris"]), ("b", ["2", "two"])]
    assert len(load_parquet(path, limit=1)) == 1


def test_a_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_text("not parquet")
    with pytest.raises(ConfidantError, match="cannot read d.parquet as parquet"):
        load_parquet(path)


def test_the_cli_reads_parquet_and_reports_a_missing_datasets_package(
    tmp_path, capsys, monkeypatch
):
    from cli.evaluate import main

    path = tmp_path / "d.parquet"
    pd.DataFrame({"q": ["Capital?"], "gold": [["Paris"]]}).to_parquet(path)
    # the column flags reach the parquet reader: a wrong one names the columns there are
    argv = ["--data", str(path), "--out", str(tmp_path / "r"), "--model", "tiny-random"]
    assert main([*argv, "--question-column", "question"]) == 2
    assert "no column 'question' (the columns are q, gold)" in capsys.readouterr().err
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    hub = ["--hf-dataset", "rajpurkar/squad", "--hf-split", "validation", "--out", str(tmp_path)]
    assert main([*hub, "--gold-column", "answers.text"]) == 2
    assert "pip install datasets" in capsys.readouterr().err
