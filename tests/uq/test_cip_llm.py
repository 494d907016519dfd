"""The language-model posterior, answerer and open-query proposals, on the tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backends.base import Capabilities, Generation
from core.errors import ConfidantError
from uq.cip.calibration import CalibrationResult, calibrate_thresholds
from uq.cip.class_sets import ORACLE_POSTERIOR_LABEL, parse_class_set
from uq.cip.game import Game
from uq.cip.llm_posterior import (
    ORACLE_MODEL_KEY,
    LLMAnswerer,
    LLMPosterior,
    make_posterior,
    parse_proposed_questions,
    propose_questions,
    query_proposer,
)
from uq.cip.selection import select_query

CLASSES = ["cat", "polar bear", "great white shark", "eagle"]
QUESTIONS = ["Is it a mammal?", "Can it fly?", "Does it live in water?", "Is it white?"]
ANSWERS = {
    "cat": "yes no no no",
    "polar bear": "yes no no yes",
    "great white shark": "no no yes no",
    "eagle": "no yes no no",
}


@pytest.fixture(scope="module")
def small_set():
    rows = ["class,question,answer"]
    for c in CLASSES:
        for q, a in zip(QUESTIONS, ANSWERS[c].split(), strict=True):
            rows.append(f"{c},{q},{a}")
    return parse_class_set("\n".join(rows), name="small")


def exact_posterior(lm, text, classes):
    """p(" " + name | text) by hand: one forward of text + name per class, every token."""
    ids = lm._prompt_ids(text, False)
    totals = []
    for name in classes:
        full = lm._prompt_ids(text + " " + name, False)
        assert full[: len(ids)] == ids
        with torch.inference_mode():
            logp = lm.model(torch.tensor([full])).logits[0].float().log_softmax(-1)
        totals.append(sum(float(logp[i - 1, full[i]]) for i in range(len(ids), len(full))))
    totals = np.array(totals)
    p = np.exp(totals - totals.max())
    return p / p.sum()


def test_posterior_equals_exact_multi_token_class_probabilities(tiny_lm, small_set):
    post = LLMPosterior(tiny_lm, small_set.classes)
    assert max(len(tiny_lm._encode(" " + c)) for c in CLASSES) >= 3  # names of several tokens
    base = [("Is it a mammal?", "yes")]
    histories = [
        base + [("Can it fly?", "no")],
        base + [("Can it fly?", "yes")],
        [("Is it white?", "yes"), ("Does it live in water?", "It swims in the sea.")],
        [],
    ]
    probs = post(histories)
    assert probs.shape == (4, 4)
    for h, row in zip(histories, probs, strict=True):
        text = post.prompt_text(h)
        assert text.endswith("<|im_start|>assistant\nThe animal is:")
        np.testing.assert_allclose(row, exact_posterior(tiny_lm, text, CLASSES), atol=1e-4)


def test_selection_step_scores_all_distinct_histories_in_one_shared_prefix_call(
    tiny_lm, small_set, monkeypatch
):
    post = LLMPosterior(tiny_lm, small_set.classes)
    calls = []
    original = tiny_lm.score_tree

    def spy(prefix, suffixes, continuations, **kw):
        calls.append((prefix, list(suffixes), list(continuations)))
        return original(prefix, suffixes, continuations, **kw)

    monkeypatch.setattr(tiny_lm, "score_tree", spy)
    history = [("Is it a mammal?", "yes")]
    candidates = [q for q in QUESTIONS if q != "Is it a mammal?"]
    step = select_query(
        "cip",
        history,
        candidates,
        small_set.classes,
        post,
        small_set.answer,
        np.random.default_rng(0),
        tau=0.1,
        alpha=0.1,
        n_est=4,
    )
    distinct = {
        (q, small_set.answer(small_set.classes[small_set.class_index(y)], q))
        for q in candidates
        for y in step.hypothetical_labels
    }
    assert len(calls) == 1
    prefix, suffixes, continuations = calls[0]
    assert prefix == post.split_text(history + [("Can it fly?", "no")], 1)[0]
    assert prefix.endswith("1. Is it a mammal? Yes.\n")
    assert len(suffixes) == len(distinct) == step.n_scored
    assert continuations == [" " + c for c in CLASSES]
    assert all(s.startswith("2. ") and s.endswith("The animal is:") for s in suffixes)


def test_answerer_uses_choice_probs_and_caches(tiny_lm, monkeypatch):
    answerer = LLMAnswerer(tiny_lm)
    seen = []
    original = tiny_lm.choice_probs

    def spy(prompt, options, **kw):
        seen.append(options)
        return original(prompt, options, **kw)

    monkeypatch.setattr(tiny_lm, "choice_probs", spy)
    a = answerer("polar bear", "Is it white?")
    assert a in ("yes", "no")
    assert answerer("polar bear", "Is it white?") == a
    assert seen == [[" Yes", " No"]]
    p = answerer.yes_probability("polar bear", "Is it white?")
    assert (p >= 0.5) == (a == "yes")


def test_make_posterior_labels_the_oracle(tiny_lm, small_set):
    oracle = make_posterior("oracle", small_set)
    assert oracle.label == ORACLE_POSTERIOR_LABEL and "not a language model" in oracle.label
    assert oracle.model_key == ORACLE_MODEL_KEY
    llm = make_posterior("llm", small_set, tiny_lm)
    assert llm.model_key == tiny_lm.model_id
    with pytest.raises(ConfidantError):
        make_posterior("llm", small_set)
    with pytest.raises(ConfidantError):
        make_posterior("psychic", small_set)


def test_full_game_with_tiny_model_ends_within_l_turns(tiny_lm, small_set):
    post = LLMPosterior(tiny_lm, small_set.classes)
    cal = calibrate_thresholds(small_set, post, alpha=0.2, max_length=3, n_cal=6, seed=0)
    assert isinstance(cal, CalibrationResult) and len(cal.thresholds) == 3
    game = Game(small_set, post, cal, method="cip", n_est=2, max_queries=3, truth="eagle")
    turns = game.play(lambda q: small_set.answer("eagle", q))
    assert game.finished and 1 <= len(game.history) <= 3
    assert [t.turn for t in turns] == list(range(len(turns)))
    assert all(t.guess in CLASSES for t in turns)


# --------------------------------------------------------------------------------------------
# Open queries
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"questions": ["Is it big?", "Does it swim"]}', ["Is it big?", "Does it swim?"]),
        ('Sure! {"questions": ["Is it big?"]} done', ["Is it big?"]),
        ('{"x": 1} then {"questions": ["Can it fly?", "Is it round?"]}', ["Is it round?"]),
        (
            '{"questions": ["Is it big?", "is it BIG?", "", 7, "???", "Can it fly?"]}',
            ["Is it big?"],
        ),  # fmt: skip
        ('{"questions": ["Is  it\\n big?"]}', ["Is it big?"]),
        ('{"questions": []}', []),
        ('{"questions": "Is it big?"}', []),
        ("no json here", []),
        ('{"questions": ["Is it big?"', []),
        ('{"questions": ["' + "a" * 400 + '"]}', []),
    ],
)
def test_parse_proposed_questions(text, expected):
    assert parse_proposed_questions(text, exclude=["Can it fly?"]) == expected


class ScriptedLM:
    """Replies from a list, one per sample call; records the seeds."""

    model_id = "scripted"
    capabilities = Capabilities()

    def __init__(self, replies):
        self.replies = list(replies)
        self.seeds = []

    def sample(self, prompt, params, chat=True):
        self.seeds.append(params.seed)
        return [Generation(text=self.replies.pop(0), tokens=[])]


def test_propose_questions_retries_until_valid_json():
    lm = ScriptedLM(["gibberish", '{"questions": []}', '{"questions": ["Is it big?"]}'])
    out = propose_questions(lm, CLASSES, [("Can it fly?", "no")], m=3, max_attempts=3, seed=5)
    assert out == ["Is it big?"]
    assert lm.seeds == [5, 6, 7]


def test_propose_questions_gives_up_with_a_clear_message():
    lm = ScriptedLM(["nope", "still nope"])
    with pytest.raises(ConfidantError, match="did not propose usable questions"):
        propose_questions(lm, CLASSES, [], max_attempts=2)


def test_game_with_open_queries_from_the_model(small_set):
    lm = ScriptedLM(['{"questions": ["Is it white?", "Can it fly?"]}'] * 5)
    oracle = make_posterior("oracle", small_set)
    cal = calibrate_thresholds(small_set, oracle, alpha=0.2, max_length=2, n_cal=20, seed=0)
    game = Game(
        small_set,
        oracle,
        cal,
        method="ip",
        max_queries=2,
        propose_queries=query_proposer(lm, CLASSES, m=2),
        truth="polar bear",
        stop_on_single_class=False,
    )
    game.play(lambda q: small_set.answer("polar bear", q))
    assert [q for q, _ in game.history] == ["Is it white?", "Can it fly?"] or len(game.history) == 2
    assert lm.seeds[:2] == [0, 100]
