"""Verbalized confidence on the embedded real model (SmolLM2-135M-Instruct): what it says.

Two-stage, asked how likely a proposed answer is to be correct, it replies with a number, and
the same one (100) for a right and a wrong answer: its stated confidence does not tell them
apart. One-stage, it answers and writes no confidence at all, so that measure is None with a
note and the raw reply kept.
"""

from __future__ import annotations

import pytest

from uq.semantic.verbalized import ask_one_stage, ask_two_stage

pytestmark = pytest.mark.real

QUESTION = "What is the capital of France?"


def test_two_stage_gets_a_number_that_does_not_tell_right_from_wrong(real_lm):
    right = ask_two_stage(real_lm, QUESTION, "Paris")
    wrong = ask_two_stage(real_lm, QUESTION, "Berlin")
    assert right.confidence is not None and wrong.confidence is not None, (right, wrong)
    assert 0 <= wrong.confidence <= 100 and right.raw and wrong.raw
    assert right.confidence == wrong.confidence == 100.0  # what this small model says


def test_one_stage_answers_but_states_no_confidence(real_lm):
    reply = ask_one_stage(real_lm, QUESTION)
    assert "Paris" in reply.raw
    assert reply.confidence is None  # the raw reply is kept for the reader
