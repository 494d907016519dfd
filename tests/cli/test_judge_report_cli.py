"""``python -m cli judge-report`` on the tiny random model: CSV + JSON that match the report."""

from __future__ import annotations

import csv
import json

from cli.__main__ import main
from judge.reliability import RELIABILITY_MEASURES
from judge.report import ReliabilityReport

DATA = "data/judge/reliability.jsonl"


def test_judge_report_writes_csv_and_json(tmp_path, capsys):
    out = tmp_path / "rel"
    argv = ["judge-report", "--items", DATA, "--model", "tiny-random", "--out", str(out)]
    argv += ["--limit", "1", "--k", "2", "--max-new-tokens", "3", "--bootstrap", "10"]
    assert main(argv) == 0
    assert "position flip rate" in capsys.readouterr().out
    report = ReliabilityReport.from_dict(json.loads((out / "report.json").read_text("utf-8")))
    with (out / "measures.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["key"] for r in rows] == [m.key for m in RELIABILITY_MEASURES]
    for row, stored in zip(rows, report.measures, strict=True):
        if stored["value"] is None:
            assert row["value"] == ""
        else:
            assert float(row["value"]) == stored["value"]
    assert report.config.k == 2 and report.config.temperature == 1.0
    assert all(len(s.runs) == 2 for s in report.statistics.singles)
    with (out / "pairs.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert (out / "methods.csv").exists() and (out / "singles.csv").exists()


def test_a_bad_items_file_is_an_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n', encoding="utf-8")
    argv = ["judge-report", "--items", str(bad), "--model", "tiny-random", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_a_saved_report_reopens_in_history_without_a_model(tmp_path, capsys):
    import gradio as gr

    from store.db import Store
    from store.runs import list_runs
    from ui.context import AppContext
    from ui.tabs.history import HistoryHandlers
    from ui.tabs.judge import create_judge_tab

    db = tmp_path / "app.db"
    argv = ["judge-report", "--items", DATA, "--model", "tiny-random", "--out", str(tmp_path / "o")]
    argv += ["--limit", "1", "--k", "2", "--max-new-tokens", "3", "--bootstrap", "5"]
    assert main([*argv, "--db", str(db)]) == 0
    runs = list_runs(Store(db), kind="judge_reliability")
    assert len(runs) == 1 and "saved run" in capsys.readouterr().out
    ctx = AppContext(backends=None, store=Store(db))  # no model: the view is rebuilt from SQLite
    with gr.Blocks():
        create_judge_tab(ctx)
    view = HistoryHandlers(ctx).run_view(runs[0]["id"])
    assert (
        "position flip rate" in view["markdown"]
        and "Score methods side by side" in view["markdown"]
    )
    assert [t.name for t in view["plot"].data] == ["position flip rate", "Conflict Ratio"]
    assert view["plot2"].data[0].mode == "markers"
    assert view["json"]["result"]["type"] == "reliability"
