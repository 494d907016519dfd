"""20 Questions with the language-model posterior of the embedded real model: a short game is
played to its end and returns a conformal set of animals."""

from __future__ import annotations

import numpy as np
import pytest

from uq.cip.calibration import calibrate_thresholds
from uq.cip.class_sets import parse_class_set
from uq.cip.game import Game
from uq.cip.llm_posterior import LLMPosterior

pytestmark = pytest.mark.real

CLASSES = ["cat", "polar bear", "great white shark", "eagle"]
QUESTIONS = ["Is it a mammal?", "Can it fly?", "Does it live in water?", "Is it white?"]
ANSWERS = {
    "cat": "yes no no no",
    "polar bear": "yes no no yes",
    "great white shark": "no no yes no",
    "eagle": "no yes no no",
}


@pytest.fixture(scope="module")
def four_animals():
    rows = ["class,question,answer"]
    for c in CLASSES:
        for q, a in zip(QUESTIONS, ANSWERS[c].split(), strict=True):
            rows.append(f"{c},{q},{a}")
    return parse_class_set("\n".join(rows), name="four animals")


def test_a_game_with_the_model_posterior_runs_to_the_end(real_lm, four_animals):
    posterior = LLMPosterior(real_lm, four_animals.classes)
    assert any(len(real_lm._encode(" " + c)) > 1 for c in CLASSES)  # multi-token names
    cal = calibrate_thresholds(four_animals, posterior, alpha=0.2, max_length=2, n_cal=4, seed=0)
    assert len(cal.thresholds) == 2
    game = Game(four_animals, posterior, cal, method="cip", n_est=2, max_queries=2, truth="eagle")
    turns = game.play(lambda q: four_animals.answer("eagle", q))
    assert game.finished and game.stop_reason is not None
    assert 1 <= len(game.history) <= 2 and [t.turn for t in turns] == list(range(len(turns)))
    final = turns[-1]
    assert final.set_members and set(final.set_members) <= set(CLASSES)
    assert final.set_size == len(final.set_members)
    assert final.guess in CLASSES
    probs = [p for _, p in final.posterior_top]
    assert np.all(np.diff(probs) <= 0) and sum(probs) == pytest.approx(1.0, abs=1e-6)
