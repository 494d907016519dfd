"""With login on, annotators do not read each other's data (issue: security, item 2).

alice and bob are annotators, carol is an admin. Over HTTP (gradio_client, and httpx for the
export file URLs), bob lists and opens only his own runs and games, his agreement view holds
only his judgements, his exports hold only his rows, and he gets 404 for alice's export file
URL; carol sees everyone's. Export files expire after ``EXPORT_TTL_S``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

import app as app_module
from backends.base import Generation, TokenRecord
from store.db import Store
from store.games import start_game
from store.judgements import save_judgement
from store.runs import save_run
from tests.helpers import free_port, serving
from ui.app import build_app
from ui.components.exports import OFFERS
from ui.context import AppContext, owner_scope

USERS = [("alice", "pw-alice"), ("bob", "pw-bob"), ("carol", "pw-carol")]
PASSWORDS = dict(USERS)


def _run(store: Store, who: str) -> str:
    text = f"{who}'s private question"
    token = TokenRecord(text=text, logprob=-0.5, entropy=1.0, varentropy=0.2)
    return save_run(  # a kind no tab renders: History shows its stored result
        store,
        kind="note",
        model="m",
        params={},
        result={"question": text},
        generations=[("answer", Generation(text=text, tokens=[token]))],
        title=text,
        annotator=who,
    )


def _game(store: Store, who: str) -> str:
    return start_game(
        store,
        mode="play",
        method="ip",
        model="m",
        posterior_label="bank",
        class_set_name=f"{who}'s animals",
        class_set_fingerprint="f",
        params={},
        truth=f"{who}-truth",
        annotator=who,
    )


@pytest.fixture(scope="module")
def team(tmp_path_factory, tiny_lm_dir):
    folder = tmp_path_factory.mktemp("team")
    store = Store(folder / "confidant.db")
    runs = {who: _run(store, who) for who in ("alice", "bob")}
    games = {who: _game(store, who) for who in ("alice", "bob")}
    for who, n in (("alice", 3), ("bob", 2)):
        for i in range(n):
            save_judgement(
                store,
                {
                    "client_key": f"{who}-{i}",
                    "item_id": f"item-{i}",
                    "kind": "single",
                    "annotator": who,
                    "question": "q",
                    "human_score": float(i + 1),
                    "judge_score": float(i + 1),
                    "note": f"note by {who}",
                },
            )
    args = app_module.parse_args(
        ["--model", str(tiny_lm_dir), "--auth", ",".join(f"{u}:{p}" for u, p in USERS)]
        + ["--admins", "carol", "--db", str(folder / "confidant.db")]
    )
    ctx, auth = app_module.make_context(args)
    assert ctx.admins == frozenset({"carol"})
    options = app_module.launch_options(
        argparse.Namespace(host="127.0.0.1", port=free_port()), auth
    )
    with serving(build_app(ctx), **options) as url:
        yield url, runs, games
    ctx.store.close()
    store.close()


def client_of(url: str, who: str, **kwargs) -> Client:
    return Client(url, auth=(who, PASSWORDS[who]), verbose=False, ssl_verify=False, **kwargs)


def http_of(url: str, who: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=30)
    r = http.post("login", data={"username": who, "password": PASSWORDS[who]})
    assert r.status_code == 200, r.text
    return http


def read_csv(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_runs_are_listed_and_opened_by_their_annotator_only(team):
    url, runs, _ = team
    bob = client_of(url, "bob")
    table = bob.predict("all", api_name="/list_runs")
    ids = {row[0] for row in table["data"]}
    assert runs["bob"] in ids and runs["alice"] not in ids
    with pytest.raises(Exception, match="No run with id"):
        bob.predict(runs["alice"], api_name="/open_run")
    mine = bob.predict(runs["bob"], api_name="/open_run")
    assert "bob" in str(mine[4])
    wide, long = bob.predict(api_name="/export_runs")
    assert {r["annotator"] for r in read_csv(wide)} == {"bob"}
    assert {r["annotator"] for r in read_csv(long)} == {"bob"}

    carol = client_of(url, "carol")  # an admin
    ids = {row[0] for row in carol.predict("all", api_name="/list_runs")["data"]}
    assert {runs["alice"], runs["bob"]} <= ids
    assert "alice" in str(carol.predict(runs["alice"], api_name="/open_run")[4])


def test_games_are_listed_and_reviewed_by_their_annotator_only(team):
    url, _, games = team
    bob = client_of(url, "bob")
    ids = {row[0] for row in bob.predict(api_name="/cip_games")["data"]}
    assert games["bob"] in ids and games["alice"] not in ids
    with pytest.raises(Exception, match="No game with id"):
        bob.predict(games["alice"], api_name="/cip_review")
    assert "bob" in bob.predict(games["bob"], api_name="/cip_review")[0]
    carol = client_of(url, "carol")
    ids = {row[0] for row in carol.predict(api_name="/cip_games")["data"]}
    assert {games["alice"], games["bob"]} <= ids


def test_agreement_across_annotators_is_for_admins_only(team):
    url, _, _ = team
    table, note = client_of(url, "bob").predict(api_name="/judge_agreement")
    shown = str(table) + note
    assert "alice" not in shown and "bob" in shown
    assert "Your judgements only" in note
    table, note = client_of(url, "carol").predict(api_name="/judge_agreement")
    assert "alice" in str(table) + note and "bob" in str(table) + note


def test_export_files_are_downloadable_by_their_annotator_only_and_expire(team):
    url, _, _ = team
    alice = client_of(url, "alice", download_files=False)
    offered = alice.predict("CSV", "", api_name="/judge_export")
    file_url = offered["url"]
    assert Path(offered["path"]).name == "confidant-judgements.csv"
    assert OFFERS.may_download(offered["path"], "alice") is True

    as_alice, as_bob, as_carol = (http_of(url, who) for who in ("alice", "bob", "carol"))
    got = as_alice.get(file_url)
    assert got.status_code == 200
    rows = list(csv.DictReader(got.text.splitlines()))
    assert {r["annotator"] for r in rows} == {"alice"} and len(rows) == 3
    for other in (as_bob, as_carol):  # nobody else, an admin neither: it is alice's file
        refused = other.get(file_url)
        assert refused.status_code == 404 and "alice" not in refused.text
    assert httpx.get(file_url).status_code in (401, 403, 404)  # without login

    # Not an export: left to Gradio. Alice's own export expires after an hour.
    assert OFFERS.may_download("/tmp/gradio/" + "0" * 64 + "/x.csv", "alice") is None
    clock = OFFERS.clock
    try:
        OFFERS.clock = lambda: clock() + OFFERS.ttl_s + 1
        assert as_alice.get(file_url).status_code == 404
    finally:
        OFFERS.clock = clock
    assert as_alice.get(file_url).status_code == 200


def test_owner_scope():
    ctx = AppContext(backends=None, store=None, auth_enabled=True, admins=frozenset({"carol"}))

    class Request:
        def __init__(self, username):
            self.username = username

    assert owner_scope(ctx, Request("bob")) == "bob"
    assert owner_scope(ctx, Request("carol")) is None
    assert owner_scope(ctx, Request(None)) == ""  # login on, nobody logged in: nothing
    assert owner_scope(ctx, None) == ""
    assert owner_scope(AppContext(backends=None, store=None), Request("bob")) is None


def test_admins_must_be_logins():
    auth = app_module.parse_auth("alice:a,bob:b")
    assert app_module.parse_admins("alice", auth) == frozenset({"alice"})
    with pytest.raises(SystemExit, match="not a login"):
        app_module.parse_admins("mallory", auth)
    with pytest.raises(SystemExit, match="needs --auth"):
        app_module.parse_admins("alice", None)


def test_stored_prompts_of_another_annotators_run_or_game_are_not_shown(tmp_path):
    from types import SimpleNamespace

    from ui.tabs.cip_handlers import CipHandlers
    from ui.tabs.history import HistoryHandlers

    store = Store(tmp_path / "x.db")
    run_id = save_run(
        store, kind="trace", model="m", params={}, annotator="alice",
        result={"question": "q", "prompt_sent": "alice's prompt"},
    )  # fmt: skip
    game_id = _game(store, "alice")
    store.write(
        lambda db: db["cip_turns"].insert(
            {"game_id": game_id, "turn": 1, "record": '{"prompt_sent": "alice posterior"}'}
        )
    )
    ctx = AppContext(backends=None, store=store, auth_enabled=True)
    bob, alice = SimpleNamespace(username="bob"), SimpleNamespace(username="alice")
    history = HistoryHandlers(ctx)
    assert "alice's prompt" not in str(history.open_prompt(run_id, bob))
    assert "alice's prompt" in str(history.open_prompt(run_id, alice))
    cip = CipHandlers(ctx)
    assert "alice posterior" not in str(cip.turn_prompts(game_id, bob))
    assert "alice posterior" in str(cip.turn_prompts(game_id, alice))
