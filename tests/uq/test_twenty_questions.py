from __future__ import annotations

import numpy as np
import pytest

import uq.cip.class_sets as tq
from core.errors import ConfidantError
from uq.cip.class_sets import (
    ClassSetError,
    load_default_class_set,
    normalize_answer,
    oracle_posterior,
    oracle_posterior_batch,
    parse_class_set,
    posterior_prompt,
    read_class_set,
)

SMALL = """class,question,answer
cat,Does it bark?,no
cat,Does it purr?,yes
dog,Does it bark?,yes
dog,Does it purr?,no
fish,Does it bark?,no
fish,Does it purr?,no
"""


@pytest.fixture(scope="module")
def animals():
    return load_default_class_set()


def test_default_class_set_is_complete_and_discriminating(animals):
    assert animals.n_classes >= 24
    assert animals.n_questions >= 64
    assert animals.answers.shape == (animals.n_classes, animals.n_questions)
    assert animals.indistinguishable_groups() == []
    columns = {animals.answers[:, j].tobytes() for j in range(animals.n_questions)}
    assert len(columns) == animals.n_questions, "two questions have identical answers"
    yes_share = animals.answers.mean(axis=0)
    assert np.all(yes_share > 0) and np.all(yes_share < 1), (
        "a question is answered the same for all"
    )


@pytest.mark.parametrize(
    "label, query, expected",
    [
        ("penguin", "Can it fly?", "no"),
        ("bat", "Can it fly?", "yes"),
        ("dolphin", "Is it a mammal?", "yes"),
        ("great white shark", "Is it a mammal?", "no"),
        ("great white shark", "Does it lay eggs?", "no"),
        ("blue whale", "Is it larger than an elephant?", "yes"),
        ("elephant", "Does it have a trunk?", "yes"),
        ("octopus", "Does it have eight arms?", "yes"),
        ("honeybee", "Is it an insect?", "yes"),
        ("frog", "Is it an amphibian?", "yes"),
    ],
)
def test_default_answers_spot_checks(animals, label, query, expected):
    assert animals.answer(label, query) == expected


def test_parse_small_set_and_lookups():
    cs = parse_class_set(SMALL, name="pets")
    assert cs.classes == ("cat", "dog", "fish")
    assert cs.questions == ("Does it bark?", "Does it purr?")
    assert cs.answers.tolist() == [[False, True], [True, False], [False, False]]
    assert cs.answer("dog", "Does it bark?") == "yes"
    with pytest.raises(ClassSetError, match="unknown class"):
        cs.answer("cow", "Does it bark?")
    with pytest.raises(ClassSetError, match="not in the bank"):
        cs.answer("dog", "Does it moo?")


def test_parse_is_lenient_on_case_whitespace_bom_and_extra_columns():
    text = "\ufeffClass , Question,ANSWER,note\n" + "\n".join(
        f" {c} ,{q}, {a.upper()} ,x" for c, q, a in (r.split(",") for r in SMALL.splitlines()[1:])
    )
    cs = parse_class_set(text)
    assert cs.classes == ("cat", "dog", "fish")
    assert cs.answer("cat", "Does it purr?") == "yes"


def test_csv_round_trip_and_fingerprint(animals):
    again = parse_class_set(animals.to_csv(), name="again")
    assert again.classes == animals.classes
    assert again.questions == animals.questions
    assert np.array_equal(again.answers, animals.answers)
    assert again.fingerprint() == animals.fingerprint()
    flipped = SMALL.replace("fish,Does it purr?,no", "fish,Does it purr?,yes")
    assert parse_class_set(flipped).fingerprint() != parse_class_set(SMALL).fingerprint()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("class,question,answer\n", "no rows"),
        ("class,question\ncat,Does it purr?\n", "missing column.*answer"),
        ("animal,q,a\ncat,x,yes\n", "missing column"),
        (SMALL + "cat,Does it bark?,no\n", "duplicate pair"),
        (SMALL.replace("dog,Does it bark?,yes", "dog,Does it bark?,maybe"), "yes or no"),
        (SMALL.replace("dog,Does it bark?,yes", "dog,Does it bark?,"), "yes or no"),
        (SMALL.replace("dog,Does it bark?,yes\n", ""), "1 .*pair.*no answer"),
        (SMALL.replace("dog,Does it bark?,yes", ",Does it bark?,yes"), "must not be blank"),
        ("class,question,answer\ncat,Does it purr?,yes\ncat,Does it bark?,no\n", "at least 2"),
        (SMALL + "Cat,Does it bark?,no\nCat,Does it purr?,yes\n", "differ only in case"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ClassSetError, match=message):
        parse_class_set(text)


def test_class_set_errors_are_confidant_errors():
    assert issubclass(ClassSetError, ConfidantError)


def test_too_many_classes(monkeypatch):
    monkeypatch.setattr(tq, "MAX_CLASSES", 2)
    with pytest.raises(ClassSetError, match="too many classes"):
        parse_class_set(SMALL)


def test_too_many_questions(monkeypatch):
    monkeypatch.setattr(tq, "MAX_QUESTIONS", 1)
    with pytest.raises(ClassSetError, match="too many questions"):
        parse_class_set(SMALL)


def test_read_class_set_missing_file(tmp_path):
    with pytest.raises(ClassSetError, match="cannot read"):
        read_class_set(tmp_path / "nope.csv")
    path = tmp_path / "mine.csv"
    path.write_text(SMALL, encoding="utf-8")
    assert read_class_set(path).name == "mine"


@pytest.mark.parametrize(
    "text, expected",
    [("Yes", "yes"), (" yes. ", "yes"), ("Y", "yes"), ("NO!", "no"), ("n", "no")],
)
def test_normalize_answer_binary(text, expected):
    assert normalize_answer(text) == expected


def test_normalize_answer_free_text_and_empty():
    assert normalize_answer("  It lives in Africa. ") == "It lives in Africa."
    with pytest.raises(ConfidantError):
        normalize_answer("   ")


def test_posterior_prompt_shape():
    classes = ["cat", "polar bear"]
    prompt = posterior_prompt([("Does it purr?", "yes"), ("Where?", "In the Arctic.")], classes)
    assert prompt.assistant_prefix == "The animal is:"
    assert prompt.options == (" cat", " polar bear")
    assert "1. Does it purr? Yes." in prompt.user
    assert "2. Where? In the Arctic." in prompt.user
    assert "'polar bear'" in prompt.system
    assert prompt.as_text().endswith("The animal is:")
    empty = posterior_prompt([], classes)
    assert "not gathered any information" in empty.user
    with pytest.raises(ConfidantError):
        posterior_prompt([], ["cat"])


def test_oracle_posterior_uniform_over_consistent_classes():
    cs = parse_class_set(SMALL)
    p = oracle_posterior(cs, [("Does it bark?", "no")], floor=1e-3)
    # cat and fish are consistent, dog is one answer away
    assert p[0] == pytest.approx(p[2])
    assert p[1] == pytest.approx(1e-3 * p[0])
    assert p.sum() == pytest.approx(1.0)
    assert np.allclose(oracle_posterior(cs, []), 1 / 3)


def test_oracle_posterior_ignores_free_text_and_unknown_questions():
    cs = parse_class_set(SMALL)
    history = [("Does it purr?", "It does, loudly."), ("Does it moo?", "no")]
    assert np.allclose(oracle_posterior(cs, history), 1 / 3)


def test_oracle_posterior_contradictions_favour_fewest_mismatches():
    cs = parse_class_set(SMALL)
    # barks and purrs: dog and cat each disagree once, fish twice
    p = oracle_posterior(cs, [("Does it bark?", "yes"), ("Does it purr?", "yes")])
    assert p[0] == pytest.approx(p[1])
    assert p[2] < p[0] / 100
    with pytest.raises(ConfidantError):
        oracle_posterior(cs, [], floor=0.0)


def test_oracle_posterior_batch_is_labelled(animals):
    batch = oracle_posterior_batch(animals)
    out = batch([[], [("Is it a bird?", "yes")]])
    assert out.shape == (2, animals.n_classes)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert "not a language model" in batch.label
    assert batch([]).shape == (0, animals.n_classes)


def test_oracle_posterior_batch_matches_the_single_history_oracle(animals):
    batch = oracle_posterior_batch(animals, floor=0.01)
    rng = np.random.default_rng(0)
    histories = []
    for _ in range(20):
        picked = rng.choice(animals.n_questions, size=6, replace=False)
        histories.append(
            [(animals.questions[j], str(rng.choice(["yes", "no", "maybe so"]))) for j in picked]
        )
    expected = np.stack([oracle_posterior(animals, h, floor=0.01) for h in histories])
    assert np.allclose(batch(histories), expected)
