"""Few-shot answer prompts: K question/answer pairs taken from the dataset's other questions
put before the question, so that a chat model answers briefly (Farquhar et al. 2024's code
uses 5). The examples' answers are their first gold answers, in the format of the brief-answer
prompt of :data:`uq.semantic.pipeline.DEFAULT_PROMPT`::

    Answer the following question as briefly as possible.
    Question: What is the capital of France?
    Answer: Paris

    Question: {question}
    Answer:

No examples give :data:`~uq.semantic.pipeline.DEFAULT_PROMPT` itself, the zero-shot prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import ConfidantError
from uq.evaluation.datasets import EvalItem
from uq.semantic.pipeline import DEFAULT_PROMPT

BRIEF_INSTRUCTION = DEFAULT_PROMPT.replace("{question}", "").strip()


def _one_line(text: str, what: str) -> str:
    text = " ".join(str(text).split())
    if "{question}" in text:
        raise ConfidantError(f"a few-shot example's {what} contains the placeholder {{question}}")
    return text


def few_shot_prompt(examples: Sequence[EvalItem]) -> str:
    """The answer prompt template (with ``{question}``) that shows ``examples`` first: the
    brief-answer instruction, then ``Question: q\\nAnswer: a`` for each example (a = its first
    gold answer; blank lines between), then ``Question: {question}\\nAnswer:``. With no
    examples, the zero-shot :data:`~uq.semantic.pipeline.DEFAULT_PROMPT` unchanged."""
    if not examples:
        return DEFAULT_PROMPT
    shots = [
        f"Question: {_one_line(item.question, 'question')}\n"
        f"Answer: {_one_line(item.answers[0], 'answer')}\n\n"
        for item in examples
    ]
    return BRIEF_INSTRUCTION + "\n" + "".join(shots) + "Question: {question}\nAnswer:"
