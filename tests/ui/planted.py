"""Stored data planted with markup, for the injection tests of every view (tests/ui) and of the
page (tests/browser): a fake login form that posts elsewhere, a remote image that fires a
request on view, and a javascript: link, in runs, judge items, annotator names and games."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from backends.base import Generation, TokenRecord
from uq.token_stats import summarise
from uq.trace import TraceResult

FORM = "<form action=http://127.0.0.1:9/x><input type=password name=p></form>"
IMG = "<img src=http://127.0.0.1:9/pixel.png>"
LINK = "[click](javascript:alert(1))"
PAYLOAD = f"{FORM} {IMG} {LINK}"
# Two annotators' names (a typed name is at most 100 characters).
NAMES = (FORM, f"{IMG}{LINK}")


def planted_generation() -> Generation:
    """An answer made of the payloads, one token each, with payloads as top alternatives."""
    pieces = [FORM, " ", IMG, " ", LINK]
    top = [(IMG, 0.6), (LINK, 0.2)]
    tokens = [
        TokenRecord(text=p, logprob=-0.5, entropy=1.0, varentropy=0.1, top=top) for p in pieces
    ]
    return Generation(text="".join(pieces), tokens=tokens, finish_reason="stop")


def planted_trace() -> TraceResult:
    """A Generate run whose question, answer, model and note are payloads."""
    gen = planted_generation()
    return TraceResult(
        question=PAYLOAD, model=IMG, params={}, generation=gen, summary=summarise(gen), notes=[FORM]
    )


def planted_items(folder: Path, kind: str = "single") -> Path:
    """A judge items file (CSV) whose ids, questions and responses are payloads."""
    if kind == "single":
        rows = [
            {"item_id": PAYLOAD, "question": PAYLOAD, "response": f"{LINK}\n{FORM}"},
            {"item_id": LINK, "question": IMG, "response": FORM},
        ]
    else:
        rows = [{"item_id": IMG, "question": PAYLOAD, "response_a": FORM, "response_b": LINK}]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = Path(folder) / f"{kind}.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def planted_turns() -> list[dict]:
    """Two turns of a 20 Questions game whose classes, question and answer are payloads."""
    return [
        {"turn": 0, "query": None, "answer": None, "guess": FORM, "set_size": 3, "bound": None,
         "set_members": [FORM, IMG, LINK], "posterior_top": [[FORM, 0.5], [IMG, 0.3]]},
        {"turn": 1, "query": PAYLOAD, "answer": IMG, "guess": LINK, "set_size": 1, "bound": 0.5,
         "set_members": [LINK], "posterior_top": [[LINK, 0.9]]},
    ]  # fmt: skip


def plant_game(store) -> str:
    """A finished game in the store with payloads in every text field; returns its id."""
    from store.games import add_turn, finish_game, start_game

    gid = start_game(
        store, mode="human", method="cip", model=IMG, posterior_label=FORM, class_set_name=LINK,
        class_set_fingerprint="f", params={"alpha": IMG, "hypotheses": LINK}, truth=IMG,
    )  # fmt: skip
    for turn in planted_turns():
        add_turn(store, gid, turn)
    finish_game(store, gid, stop_reason=FORM)
    return gid
