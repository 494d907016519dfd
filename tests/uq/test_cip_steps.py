"""C-IP work in short steps (calibration batches, role-play answers asked before the choice) and
the game's stop at a one-class prediction set."""

from __future__ import annotations

import pytest

from uq.cip.calibration import CalibrationRun, calibrate_thresholds
from uq.cip.class_sets import load_default_class_set, oracle_posterior_batch
from uq.cip.game import Game


@pytest.fixture(scope="module")
def animals():
    return load_default_class_set()


@pytest.fixture(scope="module")
def oracle(animals):
    return oracle_posterior_batch(animals)


@pytest.fixture(scope="module")
def calibration(animals, oracle):
    return calibrate_thresholds(animals, oracle, alpha=0.1, max_length=20, n_cal=100, seed=0)


class Counting:
    def __init__(self, inner):
        self.inner, self.sizes = inner, []

    def __call__(self, histories):
        self.sizes.append(len(histories))
        return self.inner(histories)


def test_calibration_in_batches_yields_between_calls_and_gives_the_same_thresholds(animals, oracle):
    counting = Counting(oracle)
    run = CalibrationRun(animals, counting, alpha=0.2, max_length=4, n_cal=10, seed=3, batch=4)
    seen = []
    for done in run.steps():
        seen.append((done, len(counting.sizes)))
    # One yield after every posterior call, each call at most `batch` histories.
    assert [calls for _, calls in seen] == list(range(1, len(seen) + 1))
    assert max(counting.sizes) <= 4 and len(seen) == 4 * 3
    assert seen[-1][0] == run.total == 40
    whole = calibrate_thresholds(animals, oracle, alpha=0.2, max_length=4, n_cal=10, seed=3)
    assert run.result.thresholds == whole.thresholds
    assert run.result.n_scored == whole.n_scored


def test_a_calibration_stopped_between_steps_makes_no_more_calls(animals, oracle):
    counting = Counting(oracle)
    steps = CalibrationRun(animals, counting, max_length=5, n_cal=20, batch=5).steps()
    next(steps)
    next(steps)
    steps.close()  # what Gradio does when the tab is closed or Stop is pressed
    assert len(counting.sizes) == 2


def test_the_game_stops_when_the_set_is_a_single_class(animals, oracle, calibration):
    game = Game(animals, oracle, calibration, method="ip", max_queries=20, seed=0, truth="penguin")
    game.play(lambda q: animals.answer("penguin", q))
    assert game.stop_reason == "single_class"
    assert game.turns[-1].set_members == ["penguin"]
    assert all(t.set_size > 1 for t in game.turns[:-1])
    assert len(game.history) < 20
    longer = Game(animals, oracle, calibration, method="ip", max_queries=20, seed=0,
                  truth="penguin", stop_on_single_class=False)  # fmt: skip
    longer.play(lambda q: animals.answer("penguin", q))
    assert len(longer.history) > len(game.history)


def test_posterior_hypotheses_are_the_default(animals, oracle, calibration):
    assert Game(animals, oracle, calibration).hypotheses == "posterior"


def test_upcoming_answers_are_exactly_what_the_choice_asks(animals, oracle, calibration):
    asked = []

    def answerer(label, query):
        asked.append((label, query))
        return animals.answer(label, query)

    game = Game(animals, oracle, calibration, n_est=3, answerer=answerer, seed=5)
    twin = Game(animals, oracle, calibration, n_est=3, seed=5)
    for _ in range(3):
        pairs = game.upcoming_answers()
        assert pairs == game.upcoming_answers()  # drawn once, kept for the choice
        assert pairs and len(pairs) % len(game._candidates()) == 0
        asked.clear()
        query = game.next_question()
        assert set(asked) == set(pairs)
        assert query == twin.next_question()  # same choice as without asking first
        game.answer(animals.answer("owl", query))
        twin.answer(animals.answer("owl", query))
    random_game = Game(animals, oracle, calibration, method="random")
    assert random_game.upcoming_answers() == []
