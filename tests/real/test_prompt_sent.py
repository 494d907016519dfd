"""The prompt a result records is exactly what the real model was conditioned on: scoring the
answer after the recorded text (no template added again) gives the log-probability the tab
reports; and the Semantic entropy tab's prompt, which adds a brief-answer instruction, gives the
same answer another log-probability (why each tab labels its prompt)."""

from __future__ import annotations

import pytest

from backends.base import SamplingParams
from uq.semantic.pipeline import DEFAULT_PROMPT
from uq.trace import run_trace

pytestmark = pytest.mark.real

QUESTION = "What is the capital of Australia?"


def test_the_recorded_prompt_is_what_the_answer_was_conditioned_on(real_lm):
    trace = run_trace(real_lm, QUESTION, SamplingParams(temperature=0.0, max_new_tokens=24))
    answer = trace.generation.text
    assert "Canberra" in answer
    assert trace.prompt_sent == real_lm.format_prompt(QUESTION)
    assert "<|im_start|>user\n" + QUESTION in trace.prompt_sent
    again = real_lm.score(trace.prompt_sent, [answer], chat=False)[0]
    assert again.total_logprob == pytest.approx(trace.generation.total_logprob, abs=1e-3)

    semantic_prompt = real_lm.format_prompt(DEFAULT_PROMPT.replace("{question}", QUESTION))
    semantic = real_lm.score(semantic_prompt, [answer], chat=False)[0]
    # The instruction makes this short answer more likely: another number for the same text.
    assert semantic.total_logprob > trace.generation.total_logprob + 0.5
