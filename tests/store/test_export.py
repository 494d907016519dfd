"""CSV export: formula-like cells are neutralised in every spelling a spreadsheet reads."""

from __future__ import annotations

import csv
import json

import pytest

from store.export import neutralise, write_csv, write_jsonl

FORMULAS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width ＝
    "\uff0b1+1",  # full-width ＋
    "\uff0d1+1",  # full-width －
    "\uff20SUM(A1:A2)",  # full-width ＠
    "\ufe621+1",  # small ﹢
    " =1+1",
    "\t\uff1d1+1",
    "\r\n\uff20SUM(A1)",
    "\u3000\uff0b1",  # ideographic space, then full-width ＋
    " " * 200 + "=1+1",
]
PLAIN = ["hello", " hello", "1+1=2", "a\uff1db", "\uff28ello", "", "e-mail"]


@pytest.mark.parametrize("text", FORMULAS, ids=lambda t: ascii(t[:12]))
def test_formula_like_text_gets_an_apostrophe(text, tmp_path):
    assert neutralise(text) == "'" + text
    path = write_csv([{"cell": text}], ["cell"], tmp_path / "out.csv")
    with open(path, newline="", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["cell"] == "'" + text


@pytest.mark.parametrize("text", PLAIN, ids=ascii)
def test_plain_text_and_numbers_are_written_as_they_are(text):
    assert neutralise(text) == text
    assert neutralise(-5) == -5 and neutralise(2.5) == 2.5


def test_a_list_is_json_text_neutralised_the_same_way():
    assert neutralise(["\uff1dx"]) == '["\uff1dx"]'
    assert neutralise({"a": 1}) == '{"a": 1}'


def test_jsonl_exports_are_raw(tmp_path):
    path = write_jsonl([{"cell": "\uff1d1+1"}, {"cell": "=1"}], tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["cell"] for r in rows] == ["\uff1d1+1", "=1"]
