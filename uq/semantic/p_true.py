"""p(True) (Kadavath et al. 2022; Farquhar et al. 2024): the model asked whether its own
answer is true, zero-shot or with worked examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backends.base import LanguageModel
from core.errors import PromptTooLongError


@dataclass(frozen=True)
class PTrueExample:
    """A worked p(True) example for the few-shot prompt: a question, its brainstormed (sampled)
    answers, the proposed (reference) answer and whether that answer was right."""

    question: str
    brainstorm: tuple[str, ...]
    proposed: str
    true: bool


def _p_true_block(question: str, brainstorm: Sequence[str], proposed: str) -> str:
    ideas = "\n".join(a.strip() for a in brainstorm)
    return (
        f"Question: {question}\n"
        f"Brainstormed Answers: {ideas}\n"
        f"Possible answer: {proposed.strip()}\n"
        "Is the possible answer:\nA) True\nB) False\n"
        "The possible answer is:"
    )


def p_true_prompt(
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    examples: Sequence[PTrueExample] = (),
) -> str:
    """The p(True) prompt of Kadavath et al. 2022 with sampled answers as brainstorm, in the
    layout of Farquhar et al.'s code: each worked example's block ends with its answer (" A"
    for true, " B" for false), then the question's block. Zero-shot without ``examples``
    (Farquhar et al. use 20 from the training split: ``uq.evaluation.harness --p-true-fewshot``)."""
    blocks = [
        _p_true_block(e.question, e.brainstorm, e.proposed) + (" A" if e.true else " B")
        for e in examples
    ]
    return "\n\n".join([*blocks, _p_true_block(question, brainstorm, proposed)])


def p_true_probability(
    lm: LanguageModel,
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    *,
    chat=True,
    examples: Sequence[PTrueExample] = (),
) -> float:
    """p(True) = p("A") / (p("A") + p("B")) under the generator (``choice_probs``)."""
    options = ["A", "B"] if chat else [" A", " B"]
    prompt = p_true_prompt(question, brainstorm, proposed, examples)
    probs = lm.choice_probs(prompt, options, chat=chat)
    return float(probs[0])


def fitted_p_true_probability(
    lm: LanguageModel,
    question: str,
    brainstorm: Sequence[str],
    proposed: str,
    *,
    chat=True,
    examples: Sequence[PTrueExample] = (),
) -> tuple[float, int]:
    """(p(True), examples used): as many of ``examples`` as fit the model's context window —
    when the prompt is too long the earliest examples are dropped (half at a time), as
    Farquhar et al. cut their few-shot prompt to fit."""
    examples = list(examples)
    while True:
        try:
            value = p_true_probability(
                lm, question, brainstorm, proposed, chat=chat, examples=examples
            )
            return value, len(examples)
        except PromptTooLongError:
            if not examples:
                raise
            examples = examples[len(examples) // 2 + len(examples) % 2 :]
