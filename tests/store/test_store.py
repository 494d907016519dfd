import csv
import sqlite3
import threading

import pytest

from backends.base import Generation, TokenRecord
from store.db import Store
from store.export import export_runs, export_runs_csv, neutralise, write_csv
from store.judgements import export_judgements, list_judgements, save_judgement
from store.runs import get_run, list_runs, save_run


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "t.db")
    yield s
    s.close()


def _gen(text="hi"):
    return Generation(
        text=text,
        tokens=[
            TokenRecord(text=text, logprob=-0.5, entropy=1.0, varentropy=0.2, top=[(text, 0.6)])
        ],
    )


def test_run_round_trip_rebuilds_generations(store):
    rid = save_run(
        store,
        kind="trace",
        model="m",
        params={"t": 1.0},
        result={"x": [1, 2]},
        seed=3,
        generations=[("answer", _gen('héllo, "w"\n'))],
        annotator="ann",
    )
    run = get_run(store, rid)
    assert run["params"] == {"t": 1.0} and run["result"] == {"x": [1, 2]} and run["seed"] == 3
    role, g = run["generations"][0]
    assert role == "answer" and g == _gen('héllo, "w"\n')
    assert [r["id"] for r in list_runs(store)] == [rid]
    assert get_run(store, "nope") is None


def test_a_failed_write_stores_nothing(store):
    with pytest.raises(ValueError):
        save_run(store, kind="trace", model="m", params={}, result={"bad": float("nan")})

    def half_then_fail(db):
        db["runs"].insert({"id": "x", "kind": "k", "created": "now"})
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        store.write(half_then_fail)
    assert list_runs(store) == []


def test_eight_threads_writing_at_once_lose_nothing(store):
    errors = []

    def worker(w):
        try:
            for i in range(25):
                save_run(
                    store,
                    kind="trace",
                    model="m",
                    params={"w": w, "i": i},
                    result={},
                    generations=[("a", _gen())],
                    annotator=f"a{w}",
                )
                save_judgement(
                    store,
                    {
                        "kind": "single",
                        "annotator": f"a{w}",
                        "item_id": f"{w}-{i}",
                        "human_score": i,
                        "client_key": f"{w}-{i}",
                    },
                )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(list_runs(store, limit=1000)) == 200
    assert len(list_judgements(store)) == 200
    assert store.read(lambda db: db["generations"].count) == 200
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_judgement_client_key_is_idempotent(store):
    a = save_judgement(
        store, {"kind": "single", "annotator": "x", "client_key": "k1", "human_score": 3}
    )
    b = save_judgement(
        store, {"kind": "single", "annotator": "x", "client_key": "k1", "human_score": 3}
    )
    assert a == b and len(list_judgements(store)) == 1


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_formula_cells_are_neutralised(text):
    assert neutralise(text) == "'" + text


def test_numbers_and_plain_text_are_untouched():
    assert neutralise(-1.5) == -1.5 and neutralise("a=b") == "a=b"


def test_csv_round_trips_unicode_commas_quotes_newlines(tmp_path, store):
    tricky = ['naïve, "quoted"', "line1\nline2\r\nline3", "日本語 🎉", '=HYPERLINK("x")', ""]
    rows = [{"a": t, "b": i} for i, t in enumerate(tricky)]
    path = write_csv(rows, ["a", "b"], tmp_path / "x.csv")
    with open(path, newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert [r["a"] for r in back] == [neutralise(t) for t in tricky]
    assert [int(r["b"]) for r in back] == list(range(len(tricky)))

    for t in tricky:
        save_judgement(
            store,
            {"kind": "single", "annotator": "ann", "note": t, "question": t, "human_score": 1},
        )
    with open(export_judgements(store), newline="", encoding="utf-8") as f:
        notes = [r["note"] for r in csv.DictReader(f)]
    assert notes == [neutralise(t) for t in tricky]
    save_run(store, kind="trace", model="m", params={"q": "=cmd()"}, result={}, title="=evil")
    with open(export_runs_csv(store), newline="", encoding="utf-8") as f:
        run = next(csv.DictReader(f))
    assert run["title"] == "'=evil"


def test_a_submission_key_cannot_overwrite_or_hide_another_annotators_judgement(store):
    from core.errors import ConfidantError

    save_judgement(
        store, {"kind": "single", "annotator": "alice", "client_key": "k", "human_score": 5}
    )
    with pytest.raises(ConfidantError, match="another annotator"):
        save_judgement(
            store, {"kind": "single", "annotator": "bob", "client_key": "k", "human_score": 1}
        )
    rows = list_judgements(store)
    assert [(r["annotator"], r["human_score"]) for r in rows] == [("alice", 5)]


def test_a_replayed_key_with_another_answer_is_refused(store):
    from core.errors import ConfidantError

    first = {"client_key": "k", "kind": "single", "annotator": "a", "human_score": 2.0, "scale": 5}
    jid = save_judgement(store, first)
    assert save_judgement(store, dict(first)) == jid
    with pytest.raises(ConfidantError, match=r"already saved as judgement #\d+ \(2 / 5\)"):
        save_judgement(store, {**first, "human_score": 5.0})
    assert [r["human_score"] for r in list_judgements(store)] == [2.0]


def test_runs_export_wide_and_long_with_answers_and_measures(tmp_path):
    store = Store(tmp_path / "x.db")

    def gen(text: str) -> Generation:
        return Generation(
            text=text, tokens=[TokenRecord(text=text, logprob=-0.25, entropy=1.0, varentropy=0.0)]
        )

    first = save_run(
        store, kind="a", model="m", params={"n": 2}, result={"x": 0.5},
        generations=[("sample", gen("Paris")), ("sample", gen("=Lyon"))],
    )  # fmt: skip
    second = save_run(store, kind="b", model="m", params={}, result={}, generations=[])
    third = save_run(store, kind="a", model="m", params={}, result={"old": 1})  # no "x"
    measures = {"a": lambda r: {"x": r["x"], "twice": 2 * r["x"]}}
    wide, long = export_runs(store, measures=measures)
    assert wide.parent == long.parent
    with open(wide, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = {r["id"]: r for r in reader}
    assert reader.fieldnames[-5:] == [
        "measure_x",
        "measure_twice",
        "n_answers",
        "answer_1",
        "answer_2",
    ]
    assert (rows[first]["measure_x"], rows[first]["measure_twice"]) == ("0.5", "1.0")
    assert (rows[first]["answer_1"], rows[first]["answer_2"]) == ("Paris", "'=Lyon")
    assert rows[second]["measure_x"] == "" and rows[second]["n_answers"] == "0"
    assert rows[third]["measure_x"] == ""  # a result of an older shape: no measures, no error
    with open(long, encoding="utf-8", newline="") as f:
        answers = list(csv.DictReader(f))
    assert [(a["run_id"], a["idx"], a["role"], a["text"]) for a in answers] == [
        (first, "0", "sample", "Paris"),
        (first, "1", "sample", "'=Lyon"),
    ]
    assert float(answers[0]["total_logprob"]) == -0.25
    # Only one annotator's runs when an owner is given.
    assert [r["id"] for r in csv.DictReader(open(export_runs_csv(store, owner="nobody")))] == []
