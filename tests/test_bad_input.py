"""Bad input a person can give any tab, in one table: each case is answered with a message that
says what is wrong (never a traceback), nothing is stored half-way (every table has the same
number of rows before and after), and the same handler then answers a valid call. Formula-like
text is data: it is accepted, stored, and neutralised in the CSV export.

The handlers are the ones the app wires to its buttons, called directly with the tiny models and
a temporary database."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest

from backends.registry import BackendConfig, Backends
from store.db import Store
from store.export import export_runs_csv
from store.runs import get_run
from ui.context import AppContext, user_errors
from ui.tabs.cip_handlers import CipHandlers
from ui.tabs.generate import GenerateHandlers
from ui.tabs.history import HistoryHandlers
from ui.tabs.inv import OFFLINE_EXAMPLE, InvHandlers
from ui.tabs.semantic_handlers import SemanticHandlers

NLI = "NLI cross-encoder"
LONG = "x" * 100_000
FORMULA = '=HYPERLINK("http://example.com","click")'
SEED_MESSAGE = "Seed must be a whole number from 0 to 4294967295"
DEEP = "[" * 5_000 + "]" * 5_000


def csv_text(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


def class_set(classes=("cat", "dog", "owl")) -> str:
    """Three classes told apart by three yes/no questions."""
    bank = {"Does it purr?": "ynn", "Can it fly?": "nny", "Does it bark?": "nyn"}
    rows = [[c, q, "yes" if a[i] == "y" else "no"] for q, a in bank.items()
            for i, c in enumerate(classes)]  # fmt: skip
    return csv_text(["class", "question", "answer"], rows)


CLASS_SET = class_set()
# class key, posterior, method, hypotheses, alpha, finite, n_cal, L, cal seed, n_est, ε, seed
CIP = ["", "oracle", "cip", "posterior", 0.1, False, 20, 3, 0, 2, 0, 0]


@dataclass
class App:
    ctx: AppContext
    cip: CipHandlers
    tmp: Path

    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return str(path)

    def sparse(self, name: str, size: int) -> str:
        """A file of ``size`` bytes (a sparse file: nothing is written)."""
        path = self.tmp / name
        with open(path, "wb") as f:
            f.truncate(size)
        return str(path)

    def game(self) -> str:
        """A human game waiting for its first answer."""
        return list(self.cip.start_human(*CIP))[-1][0]  # a generator: its last view


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_lm_dir, tiny_nli_dir, minilm):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(tiny_nli_dir)))
    backends._objects["embedder"] = minilm  # the session's loaded MiniLM
    tmp = tmp_path_factory.mktemp("bad-input")
    ctx = AppContext(backends=backends, store=Store(tmp / "app.db"))
    return App(ctx=ctx, cip=CipHandlers(ctx), tmp=tmp)


def no_progress(*args, **kwargs):
    return None


# -- the handlers, as the buttons call them, with valid defaults -------------------------------


def generate(app, question="What is the capital of France?", temperature=0.0, top_p=1.0,
             top_k=0, max_new_tokens=2, seed=0):  # fmt: skip
    return list(GenerateHandlers(app.ctx).generate(question, temperature, top_p, top_k,
                                                   max_new_tokens, seed))[-1]  # fmt: skip


def ask(app, question="What is the capital of France?", n=2, temperature=1.0, max_new=2,
        entailment=NLI, threshold=0.75, seed=0):  # fmt: skip
    return SemanticHandlers(app.ctx).ask(question, n, temperature, max_new, entailment, True,
                                         True, threshold, seed)  # fmt: skip


def pasted(app, answers="Paris\nLondon", upload=None, lls="", entailment=NLI, question="q"):
    return SemanticHandlers(app.ctx).score_pasted(question, answers, upload, lls, entailment,
                                                  True, True, 0.75)  # fmt: skip


def evaluate(app, upload=None, bundled=True, limit=1, n=2, max_new=2, seed=0):
    return SemanticHandlers(app.ctx).evaluate(upload, bundled, limit, n, max_new, NLI,
                                              "SQuAD F1 ≥ 0.5", seed,
                                              progress=no_progress)  # fmt: skip


def inv(app, question="What is the capital of France?", method="given",
        own="Name the French capital.", n=1, replicates=2, bootstraps=2, temperature=0.7,
        max_new=2, delta=0.7, seed=0):  # fmt: skip
    return InvHandlers(app.ctx).measure(question, method, own, n, replicates, "embedding",
                                        bootstraps, seed, temperature, max_new, delta)  # fmt: skip


def offline(app, table=OFFLINE_EXAMPLE, upload=None, bootstraps=2):
    return InvHandlers(app.ctx).measure_offline(table, upload, "embedding", bootstraps, 0)


def cip_start(app, **changes):
    settings = list(CIP)
    names = ["key", "posterior", "method", "hypotheses", "alpha", "finite", "n_cal", "max_len",
             "cal_seed", "n_est", "epsilon", "seed"]  # fmt: skip
    for name, value in changes.items():
        settings[names.index(name)] = value
    return list(user_errors(app.cip.start_human)(*settings))[-1]


def cip_answer(app, text="yes", game_id=None):
    return user_errors(app.cip.answer)(game_id if game_id is not None else app.game(), text)


def cip_auto(app, hidden="cat", key=None):
    key = key if key is not None else cip_upload(app)[1]
    settings = [key, *CIP[1:]]
    return list(user_errors(app.cip.auto_play)(*settings, hidden, "bank"))[-1]


def cip_upload(app, content=CLASS_SET, name="animals.csv"):
    path = content if name is None else app.file(name, content)
    return user_errors(app.cip.upload)(path)


def cip_benchmark(app, seeds="0", classes="", key=None):
    key = key if key is not None else cip_upload(app)[1]
    return list(user_errors(app.cip.benchmark)(key, "oracle", ["cip", "random"], seeds,
                "posterior", False, classes, 0.1, False, 20, 2, 0, 2, 0))[-1]  # fmt: skip


def history_open(app, run_id=None):
    if run_id is None:
        run_id = _saved_run(app)
    return HistoryHandlers(app.ctx).open_run(run_id)


def _saved_run(app) -> str:
    return app.ctx.store.read(lambda db: next(db.query("select id from runs limit 1"))["id"])


HANDLERS: dict[str, Callable] = {
    "generate": generate,
    "ask": ask,
    "pasted": pasted,
    "evaluate": evaluate,
    "inv": inv,
    "offline": offline,
    "cip_start": cip_start,
    "cip_answer": cip_answer,
    "cip_auto": cip_auto,
    "cip_upload": cip_upload,
    "cip_benchmark": cip_benchmark,
    "history_open": history_open,
}


# -- what a formula must look like after export ------------------------------------------------


def _title_neutralised(text: str):
    """One whole run stored with the text as typed; the runs CSV neutralises it."""

    def check(app, output, added: dict[str, int]) -> None:
        assert added["runs"] == 1
        newest = "select title from runs order by created desc limit 1"
        assert app.ctx.store.read(lambda db: next(db.query(newest)))["title"] == text
        with open(export_runs_csv(app.ctx.store), newline="", encoding="utf-8") as f:
            assert next(csv.DictReader(f))["title"] == "'" + text

    return check


def _evaluation_csv_neutralised(question: str):
    """The uploaded question is evaluated (and cached); its CSV cell is neutralised."""

    def check(app, output, added: dict[str, int]) -> None:
        assert sum(added.values()) >= 1
        path = next(f for f in output[4] if f.endswith("questions.csv"))
        with open(path, newline="", encoding="utf-8") as f:
            assert [r["question"] for r in csv.DictReader(f)] == ["'" + question]

    return check


def _games_csv_neutralised(label: str):
    """A class named like a formula is played like any other; the games CSV (one row per
    game: 3 classes × 2 queriers) neutralises its name."""

    def check(app, output, added: dict[str, int]) -> None:
        with open(Path(output[2]).parent / "cip_benchmark_games.csv", encoding="utf-8") as f:
            games = list(csv.DictReader(f))
        assert len(games) == 6
        assert sorted({g["class"] for g in games}) == sorted(["'" + label, "dog", "owl"])

    return check


# -- the table ---------------------------------------------------------------------------------
# (handler, keyword arguments or a function of the app returning them, the phrase the message
# must contain — or a check for input that is accepted as data)

CASES = [
    # Generate
    ("generate", {"question": ""}, "type a question"),
    ("generate", {"question": " \n\t  "}, "type a question"),
    ("generate", {"question": LONG}, "the limit is 20,000"),
    ("generate", {"question": "What\x00 is"}, "NUL character"),
    ("generate", {"question": "\x07\x1b\x08\x7f"}, "no printable text"),
    ("generate", {"temperature": -0.5}, "temperature"),
    ("generate", {"temperature": float("nan")}, "temperature"),
    ("generate", {"top_p": 1.5}, "top-p must be in (0, 1]"),
    ("generate", {"max_new_tokens": 0}, "max new tokens must be between 1 and"),
    ("generate", {"max_new_tokens": 10**9}, "max new tokens must be between 1 and"),
    ("generate", {"question": FORMULA}, _title_neutralised(FORMULA)),
    ("generate", {"seed": 2**64}, SEED_MESSAGE),
    ("generate", {"seed": -1}, SEED_MESSAGE),
    ("generate", {"seed": 1e400}, SEED_MESSAGE),
    # Semantic entropy: ask
    ("ask", {"question": ""}, "type a question"),
    ("ask", {"question": "   "}, "type a question"),
    ("ask", {"question": LONG}, "limit"),
    ("ask", {"question": "a\x00b"}, "NUL"),
    ("ask", {"n": 1}, "N must be between 2 and 50"),
    ("ask", {"n": 51}, "N must be between 2 and 50"),
    ("ask", {"n": float("inf")}, "N must be a whole number"),
    ("ask", {"temperature": float("inf")}, "temperature must be a finite number"),
    ("ask", {"temperature": -1}, "temperature"),
    ("ask", {"seed": 2**64}, SEED_MESSAGE),
    ("ask", {"question": "+SUM(A1:A9)"}, _title_neutralised("+SUM(A1:A9)")),
    # Semantic entropy: pasted answers (text and uploads)
    ("pasted", {"answers": ""}, "Paste some answers"),
    ("pasted", {"answers": "  \n \t \n"}, "Paste some answers"),
    ("pasted", {"answers": LONG + "\nParis"}, "the limit is 5,000"),
    ("pasted", {"answers": "Paris\x00\nLondon"}, "NUL"),
    ("pasted", {"answers": "Paris\nLondon", "lls": "-0.5\nnan"}, "finite"),
    ("pasted", {"answers": "Paris\nLondon", "lls": "inf\n-1"}, "finite"),
    ("pasted", {"answers": "Paris\nLondon", "lls": "-1\n-inf"}, "finite"),
    (
        "pasted",
        {
            "answers": '[{"answer": "Paris", "log_likelihood": NaN}, {"answer": "Rome", '
            '"log_likelihood": -1}]'
        },
        "finite",
    ),  # fmt: skip
    ("pasted", lambda a: {"upload": a.file("a.csv", b"answer\n\xff\xfe\x00Paris\n")}, "UTF-8"),
    ("pasted", lambda a: {"upload": a.file("a.jsonl", '{"answer": "Paris"\n')}, "not JSON"),
    ("pasted", lambda a: {"upload": a.file("a.csv", "reply\nParis\nRome\n")}, "answer"),
    ("pasted", {"answers": DEEP}, "the pasted list is JSON nested more than 20 levels deep"),
    ("pasted", lambda a: {"upload": a.file("deep.json", DEEP)}, "deep.json is JSON nested more"),
    (
        "pasted",
        lambda a: {"upload": a.file("deep.jsonl", '{"answer": ' + DEEP + "}\n")},
        "deep.jsonl, line 1 is JSON nested more than 20 levels deep",
    ),
    (
        "pasted",
        lambda a: {"upload": a.file("a.csv", "answer,log_likelihood\nParis,-1\nRome,nan\n")},
        "finite",
    ),
    ("pasted", lambda a: {"upload": a.file("a.csv", "answer\nPar\x00is\nRome\n")}, "NUL"),
    ("pasted", lambda a: {"upload": a.sparse("big.csv", 20_000_001)}, "larger than 4 MB"),
    ("pasted", lambda a: {"upload": a.sparse("big.txt", 4_000_001)}, "larger than 4 MB"),
    ("pasted", {"answers": "Paris\n" * 700_000}, "the pasted text is too large (larger than 4 MB"),
    ("pasted", {"answers": "[" + '"a",' * 500_000 + '"a"]'}, "more than 200 answers"),
    ("pasted", {"answers": "Paris\n" * 201}, "more than 200 answers"),
    (
        "pasted",
        {"question": "", "answers": f"{FORMULA}\nParis"},
        _title_neutralised(FORMULA),
    ),
    # Semantic entropy: dataset evaluation
    ("evaluate", {"limit": 0}, "number of questions"),
    ("evaluate", {"n": 200}, "N must be between"),
    ("evaluate", {"max_new": -3}, "max new tokens"),
    ("evaluate", {"bundled": False}, "Upload a dataset"),
    ("evaluate", {"seed": -1}, SEED_MESSAGE),
    # (uploads with the bundled set still ticked, its default: the upload is what counts)
    ("evaluate", lambda a: {"upload": a.file("d.jsonl", b'{"question": "\xe9t\xe9?"}\n')}, "UTF-8"),
    (
        "evaluate",
        lambda a: {"upload": a.file("d.jsonl", '{"question": "q", "answers": ["a"]\n')},
        "not JSON",
    ),
    (
        "evaluate",
        lambda a: {"upload": a.file("d.csv", "prompt,gold\nq,a\n")},
        "columns 'question' and 'answers'",
    ),
    ("evaluate", lambda a: {"upload": a.sparse("d.csv", 50_000_001)}, "larger than 50 MB"),
    (
        "evaluate",
        lambda a: {"upload": a.file("d.csv", csv_text(["question", "answers"], [[FORMULA, "a"]]))},
        _evaluation_csv_neutralised(FORMULA),
    ),
    # Inv-Entropy
    ("inv", {"question": ""}, "type a question"),
    ("inv", {"question": LONG}, "limit"),
    ("inv", {"own": "Name the French capital.\x00"}, "NUL"),
    ("inv", {"own": " \n \n"}, "at least one perturbed"),
    ("inv", {"replicates": 0}, "replicates"),
    ("inv", {"temperature": float("nan")}, "finite"),
    ("inv", {"temperature": -1}, "temperature"),
    ("inv", {"seed": 2**64}, SEED_MESSAGE),
    ("inv", {"question": "-2+3 = ?"}, _title_neutralised("-2+3 = ?")),
    # Inv-Entropy: answers collected elsewhere
    ("offline", {"table": "   "}, "paste a CSV"),
    ("offline", {"table": "input,response\nq,a\x00\np,b\n"}, "NUL"),
    ("offline", {"table": "input,text\nq,a\np,b\n"}, "no response column"),
    ("offline", {"table": '{"input": "q", "responses": ["a"]}\n{"input": "p"'}, "JSON"),
    ("offline", {"bootstraps": float("inf")}, "bootstraps"),
    (
        "offline",
        lambda a: {"table": "", "upload": a.file("t.csv", b"input,response\nq,\xff\np,b\n")},
        "UTF-8",
    ),
    (
        "offline",
        lambda a: {"table": "", "upload": a.sparse("t.csv", 5_000_001)},
        "larger than 5 MB",
    ),
    (
        "offline",
        {
            "table": csv_text(
                ["input", "response"], [[FORMULA, "a"], [FORMULA, "b"], ["@x", "c"], ["@x", "d"]]
            )
        },  # fmt: skip
        _title_neutralised(FORMULA),
    ),
    # 20 Questions
    ("cip_start", {"alpha": float("nan")}, "finite"),
    ("cip_start", {"alpha": 2}, "α must be between"),
    ("cip_start", {"n_cal": 10**9}, "calibration histories"),
    ("cip_start", {"max_len": -1}, "max questions"),
    ("cip_start", {"posterior": "=psychic()"}, "Choose the posterior"),
    ("cip_start", {"cal_seed": 2**64}, "Calibration seed must be a whole number from 0 to"),
    ("cip_start", {"seed": -1}, "Game seed must be a whole number from 0 to 4294967295"),
    ("cip_answer", {"text": ""}, "Type an answer"),
    ("cip_answer", {"text": "  \t\n"}, "Type an answer"),
    ("cip_answer", {"text": LONG}, "at most 500 characters"),
    ("cip_answer", {"text": "ye\x00s"}, "NUL character"),
    ("cip_answer", {"game_id": "no-such-game"}, "Start a game first"),
    ("cip_auto", {"hidden": "unicorn"}, "hidden animal"),
    ("cip_upload", {"content": ""}, "empty"),
    ("cip_upload", {"content": b"class,question,answer\ncat,Q?,yes\n\xffdog,Q?,no\n"}, "UTF-8"),
    ("cip_upload", {"content": "name,question,answer\ncat,Q?,yes\n"}, "missing column"),
    ("cip_upload", {"content": 'class,question,answer\n"cat,Q?,yes\ndog,Q?,no\n'}, "3 cells"),
    (
        "cip_upload",
        lambda a: {"content": a.sparse("big.csv", 20_000_001), "name": None},
        "too large",
    ),  # fmt: skip
    ("cip_upload", {"content": "class,question,answer\nca\x00t,Q?,yes\ndog,Q?,no\n"}, "NUL"),
    ("cip_benchmark", {"seeds": "0,=1"}, SEED_MESSAGE),
    ("cip_benchmark", {"seeds": "-1"}, SEED_MESSAGE),
    ("cip_benchmark", {"seeds": "0,18446744073709551616"}, SEED_MESSAGE),
    (
        "cip_benchmark",
        lambda a: {"key": cip_upload(a, class_set((FORMULA, "dog", "owl")), "f.csv")[1]},
        _games_csv_neutralised(FORMULA),
    ),
    # History
    ("history_open", {"run_id": "   "}, "Pick a run"),
    ("history_open", {"run_id": "x" * 100_000}, "No run with id"),
    ("history_open", {"run_id": "'; drop table runs; --"}, "No run with id"),
]


def _counts(store: Store) -> dict[str, int]:
    return store.read(lambda db: {name: db[name].count for name in db.table_names()})


def _case_id(case) -> str:
    handler, kwargs, expect = case
    what = expect if isinstance(expect, str) else "accepted as data"
    return f"{handler}-{what}"


@pytest.mark.parametrize(("handler", "kwargs", "expect"), CASES, ids=map(_case_id, CASES))
def test_bad_input_gets_a_clear_answer_and_costs_nothing(app, handler, kwargs, expect):
    call = HANDLERS[handler]
    kwargs = kwargs(app) if callable(kwargs) else kwargs
    if handler == "cip_answer" and "game_id" not in kwargs:
        kwargs = {**kwargs, "game_id": app.game()}
    if handler in ("cip_auto", "cip_benchmark") and "key" not in kwargs:
        kwargs = {**kwargs, "key": cip_upload(app)[1]}
    if handler == "history_open" and not _counts(app.ctx.store).get("runs"):
        generate(app)
    before = _counts(app.ctx.store)
    if isinstance(expect, str):
        with pytest.raises(gr.Error) as raised:
            call(app, **kwargs)
        message = str(raised.value.message)
        assert expect.lower() in message.lower(), message
        assert "Something went wrong" not in message and "Traceback" not in message
        assert _counts(app.ctx.store) == before  # nothing stored half-way
    else:
        output = call(app, **kwargs)
        after = _counts(app.ctx.store)
        expect(app, output, {t: n - before.get(t, 0) for t, n in after.items()})
    # The app still answers: a valid call to the same handler works.
    assert call(app) is not None


def test_the_table_is_broad():
    handlers = {handler for handler, _, _ in CASES}
    assert len(CASES) >= 40 and handlers == set(HANDLERS)


def test_formula_answers_are_kept_verbatim(app):
    """Formula-like answers are data: stored exactly, shown escaped, neutralised on export."""
    texts = [FORMULA, "-1+2", "@cmd"]
    *_, status = pasted(app, answers="\n".join(texts))
    run_id = status.split("`")[1]
    assert get_run(app.ctx.store, run_id)["result"]["texts"] == texts
