"""Calibrations stored and reused; games stored turn by turn and reviewable."""

from __future__ import annotations

import json
from functools import partial

import pytest

from core.errors import ConfidantError
from store.cip import cached_calibration, calibration_key, list_calibrations
from store.db import Store
from store.games import GameRecorder, get_game, list_games
from store.runs import get_run
from uq.cip.calibration import get_or_calibrate
from uq.cip.class_sets import load_default_class_set
from uq.cip.game import Game
from uq.cip.llm_posterior import make_posterior


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "cip.db")


@pytest.fixture(scope="module")
def animals():
    return load_default_class_set()


FIELDS = dict(
    model="m", class_set_fingerprint="f", alpha=0.1, finite_sample=False, n_cal=10, max_length=3,
    seed=0,
)  # fmt: skip


def test_calibration_key_depends_on_every_field():
    base = calibration_key(FIELDS)
    for name, other in [("model", "m2"), ("alpha", 0.2), ("finite_sample", True), ("n_cal", 11),
                        ("max_length", 4), ("seed", 1), ("class_set_fingerprint", "g")]:  # fmt: skip
        assert calibration_key({**FIELDS, name: other}) != base
    with pytest.raises(ConfidantError):
        calibration_key({"model": "m"})


def test_cached_calibration_computes_once(store):
    calls = []

    def compute():
        calls.append(1)
        return {"thresholds": [0.1]}

    first, reused1 = cached_calibration(store, FIELDS, compute)
    second, reused2 = cached_calibration(store, FIELDS, compute)
    assert (reused1, reused2) == (False, True)
    assert first == second and len(calls) == 1
    assert len(list_calibrations(store)) == 1


def test_failed_calibration_stores_nothing(store):
    def compute():
        raise ConfidantError("boom")

    with pytest.raises(ConfidantError):
        cached_calibration(store, FIELDS, compute)
    assert list_calibrations(store) == []


def test_get_or_calibrate_second_call_computes_nothing(store, animals):
    oracle = make_posterior("oracle", animals)
    calls = []

    def counting(histories):
        calls.append(len(histories))
        return oracle(histories)

    counting.model_key, counting.label = oracle.model_key, oracle.label
    kw = dict(alpha=0.1, n_cal=20, max_length=4, seed=3)
    cal1, reused1 = get_or_calibrate(
        animals, counting, cache=partial(cached_calibration, store), **kw
    )
    n_calls = len(calls)
    cal2, reused2 = get_or_calibrate(
        animals, counting, cache=partial(cached_calibration, store), **kw
    )
    assert not reused1 and reused2
    assert n_calls == 4 and len(calls) == n_calls  # nothing computed the second time
    assert cal1.to_dict() == cal2.to_dict()
    _, reused3 = get_or_calibrate(
        animals, counting, cache=partial(cached_calibration, store), **{**kw, "finite_sample": True}
    )
    assert not reused3


def test_game_stored_turn_by_turn_and_reviewable(store, animals):
    oracle = make_posterior("oracle", animals)
    cal, _ = get_or_calibrate(
        animals, oracle, cache=partial(cached_calibration, store), alpha=0.1, n_cal=30, max_length=6
    )
    game = Game(animals, oracle, cal, method="cip", max_queries=6, truth="owl", seed=1)
    rec = GameRecorder(store, game, mode="auto", model=oracle.model_key,
                       posterior_label=oracle.label)  # fmt: skip
    game.start()
    rec.sync()
    assert len(get_game(store, rec.game_id)["turns"]) == 1
    n = 1
    while (q := game.next_question()) is not None:
        game.answer(animals.answer("owl", q))
        rec.sync()
        n += 1
        stored = get_game(store, rec.game_id)
        assert len(stored["turns"]) == n and stored["status"] == "playing"
    run_id = rec.finish()
    stored = get_game(store, rec.game_id)
    assert stored["status"] == "finished" and stored["run_id"] == run_id
    assert stored["turns"] == json.loads(json.dumps([t.to_dict() for t in game.turns]))
    assert stored["final_guess"] == game.guess
    run = get_run(store, run_id)
    assert run["kind"] == "cip_game" and run["result"]["game_id"] == rec.game_id
    assert len(run["result"]["turns"]) == len(game.turns) <= 7
    assert list_games(store)[0]["id"] == rec.game_id
    assert rec.finish() == run_id  # idempotent
    assert get_game(store, "missing") is None
