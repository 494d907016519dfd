"""Paraphrases that answer instead of asking are rejected, asked for again, and recorded."""

from __future__ import annotations

import pytest

from backends.base import Capabilities, Generation, SamplingParams
from core.errors import ConfidantError
from uq.inv.paraphrase import answer_instead_of_question, screen_paraphrases
from uq.inv.perturbation import MAX_PARAPHRASE_ROUNDS, paraphrase_questions

QUESTION = "What is the capital of Australia?"

# Written by SmolLM2-135M-Instruct when asked for paraphrases of QUESTION.
ANSWERS = [
    "The capital of Australia is Sydney.",
    "Sydney is the capital city of Australia.",
    "What is the capital of Australia? It is Canberra.",
]
QUESTIONS = [
    "Which city is the capital of Australia?",
    "Name the capital of Australia.",
    "In which city is Australia's government seated?",
    "Australia's capital is which city?",
    "Tell me the capital of Australia",
    "Could you say what Australia's capital is?",
]


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_rejected_with_a_reason(text):
    reason = answer_instead_of_question(text, QUESTION)
    assert reason and ("statement" in reason or "answers after asking" in reason)


@pytest.mark.parametrize("text", QUESTIONS)
def test_questions_and_requests_are_kept(text):
    assert answer_instead_of_question(text, QUESTION) is None


def test_screen_splits_in_order():
    kept, rejected = screen_paraphrases([QUESTIONS[0], ANSWERS[0], QUESTIONS[1]], QUESTION)
    assert kept == QUESTIONS[:2]
    assert [r["text"] for r in rejected] == [ANSWERS[0]]
    assert rejected[0]["reason"]


class ScriptedLM:
    """Gives the n-th paraphrase call the n-th reply; records the seeds it was called with."""

    model_id = "scripted"
    capabilities = Capabilities()

    def __init__(self, replies):
        self.replies = list(replies)
        self.seeds: list[int] = []
        self.prompts: list[int] = []

    def sample_batch(self, prompts, params: SamplingParams, *, chat=True):
        self.seeds.append(params.seed)
        self.prompts.append(len(prompts))
        reply = self.replies[min(len(self.seeds), len(self.replies)) - 1]
        return [[Generation(text=reply, tokens=[])] for _ in prompts]


def _numbered(items):
    return "\n".join(f"{i}. {t}" for i, t in enumerate(items, start=1))


def test_rejected_answers_are_replaced_by_asking_again():
    lm = ScriptedLM([_numbered([QUESTIONS[0], *ANSWERS]), _numbered(QUESTIONS[1:3])])
    (p,) = paraphrase_questions(lm, [QUESTION], 3, seed=5)
    assert lm.seeds == [5, 6]  # asked again with a new seed
    assert p.perturbations == QUESTIONS[:3]
    assert [r["text"] for r in p.details["rejected"]] == ANSWERS
    assert p.details["rounds"] == 2 and len(p.details["replies"]) == 2


def test_asking_again_is_bounded_and_only_answers_fails_clearly():
    lm = ScriptedLM([_numbered(ANSWERS)])
    with pytest.raises(ConfidantError, match="answered instead of asking") as caught:
        paraphrase_questions(lm, [QUESTION], 3, seed=0)
    assert "Sydney" in str(caught.value)
    assert len(lm.seeds) == MAX_PARAPHRASE_ROUNDS


def test_too_few_but_none_rejected_is_duplicated_without_asking_again():
    lm = ScriptedLM([_numbered(QUESTIONS[:2])])
    (p,) = paraphrase_questions(lm, [QUESTION], 4, seed=0)
    assert lm.seeds == [0] and len(p.perturbations) == 4
    assert set(p.perturbations) == set(QUESTIONS[:2]) and p.details["rejected"] == []


def test_only_the_questions_short_of_paraphrases_are_asked_again():
    class PerQuestionLM(ScriptedLM):
        def sample_batch(self, prompts, params, *, chat=True):
            self.seeds.append(params.seed)
            self.prompts.append(len(prompts))
            return [
                [Generation(text=_numbered(QUESTIONS[:2] + ANSWERS[:1])
                            if "Australia" in p else "1. Which city is France's capital?",
                            tokens=[])]
                for p in prompts
            ]  # fmt: skip

    lm = PerQuestionLM([])
    first, second = paraphrase_questions(
        lm, [QUESTION, "What is the capital of France?"], 1, seed=0
    )
    assert lm.prompts == [2]  # two kept ≥ n = 1: nobody is asked again
    lm = PerQuestionLM([])
    first, second = paraphrase_questions(
        lm, [QUESTION, "What is the capital of France?"], 3, seed=0
    )
    assert lm.prompts == [2, 1, 1]  # France has no rejection, so only Australia is asked again
    assert first.details["rejected"] == [
        {"text": ANSWERS[0], "reason": answer_instead_of_question(ANSWERS[0], QUESTION)}
    ]
    assert second.details["rejected"] == []


def test_a_study_can_skip_a_question_whose_paraphrases_all_answered():
    class PerQuestionLM(ScriptedLM):
        def sample_batch(self, prompts, params, *, chat=True):
            self.seeds.append(params.seed)
            return [
                [Generation(text=_numbered(ANSWERS) if "Australia" in p
                            else "1. Which city is France's capital?", tokens=[])]
                for p in prompts
            ]  # fmt: skip

    lost, kept = paraphrase_questions(
        PerQuestionLM([]), [QUESTION, "What is the capital of France?"], 2, skip_unusable=True
    )
    assert lost is None and kept.perturbations == ["Which city is France's capital?"] * 2
