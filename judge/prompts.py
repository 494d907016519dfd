"""Judge prompts, the text up to the score or verdict position, and parsing of judgements.

Two tasks, as in TrustJudge (arXiv 2509.21117) and MT-Bench (Zheng et al. 2023):

- single-answer grading on a 1–5 or 1–100 scale, the judge writing a short rationale and then
  ``Score: [X]`` (or, in direct mode, only ``Score: [X]``);
- pairwise comparison of two answers, ending in ``Verdict: [A]``, ``[B]`` or ``[C]`` (tie).

The prompts are one user turn (no system message), so they work with chat templates that have
no system role. To read the judge's distribution over the scale, a pipeline generates the
rationale, builds the text up to the score position with :func:`score_prefix` and scores every
value of the scale as the continuation::

    >>> score_prefix("Accurate but terse.")
    'Accurate but terse.\\nScore: ['
    >>> parse_score("Clear and correct.\\nScore: [4]", scale=5)
    4
    >>> parse_verdict("... so A is better.\\nVerdict: [A]")
    'A'
"""

from __future__ import annotations

import re

from core.errors import ConfidantError

SCALES = (5, 100)
VERDICT_LETTERS = ("A", "B", "C")
SCORE_MARKER = "Score: ["
VERDICT_MARKER = "Verdict: ["
SCORE_CLOSE = "]"

_GRADE_INSTRUCTIONS = """\
You are an impartial, experienced reviewer of answers written by AI assistants. Judge how well \
the response below answers the question: its correctness first, then its helpfulness, \
relevance, completeness and clarity. Length alone is not a merit.

{steps}

Give the score as one whole number from 1 (very poor) to {scale} (excellent), in square \
brackets, exactly in this form:
Score: [X]

[Question]
{question}

[Response]
{response}"""

_GRADE_STEPS_RATIONALE = """\
First write a short assessment (a few sentences: what the response gets right, what is wrong \
or missing, and an overall verdict in one sentence). End with the score on its own line."""

_GRADE_STEPS_DIRECT = """\
Do not explain your judgement. Reply with the score line only."""

_PAIRWISE_INSTRUCTIONS = """\
You are an impartial, experienced reviewer comparing two answers written by AI assistants to \
the same question. Decide which answer serves the user better: correctness first, then \
helpfulness, relevance, depth and clarity. Do not let the order of the answers, their length \
or the assistants' names influence you.

{steps}

Give your verdict in square brackets, exactly in this form:
Verdict: [A] if Assistant A's answer is better, Verdict: [B] if Assistant B's answer is better, \
Verdict: [C] if they are equally good.

[User Question]
{question}

[The Start of Assistant A's Answer]
{answer_a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{answer_b}
[The End of Assistant B's Answer]"""

_PAIRWISE_STEPS_RATIONALE = """\
First compare the answers briefly: the main strengths of each, then the main weaknesses of \
each. End with the verdict on its own line."""

_PAIRWISE_STEPS_DIRECT = """\
Do not explain your judgement. Reply with the verdict line only."""


def _check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ConfidantError(f"the scale must be one of {SCALES} points, got {scale!r}")
    return scale


def _check_text(text: str, name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfidantError(f"the {name} is empty")
    return text.strip()


def score_values(scale: int) -> list[int]:
    """The values a judge may give on a scale: 1..scale."""
    return list(range(1, _check_scale(scale) + 1))


def grading_prompt(question: str, response: str, scale: int = 5, direct: bool = False) -> str:
    """The single-answer grading prompt (one user turn).

    With ``direct=False`` the judge writes a short rationale and then ``Score: [X]``
    (TrustJudge's ``single_answer_grade_{5,100}_points`` layout); with ``direct=True`` it replies
    with the score line only.
    """
    steps = _GRADE_STEPS_DIRECT if direct else _GRADE_STEPS_RATIONALE
    return _GRADE_INSTRUCTIONS.format(
        steps=steps,
        scale=_check_scale(scale),
        question=_check_text(question, "question"),
        response=_check_text(response, "response"),
    )


def pairwise_prompt(question: str, answer_a: str, answer_b: str, direct: bool = False) -> str:
    """The pairwise comparison prompt (one user turn, MT-Bench answer layout).

    The judge ends with ``Verdict: [A]`` (A better), ``[B]`` (B better) or ``[C]`` (tie); with
    ``direct=True`` it replies with the verdict line only. Build it for both orders, (x, y) and
    (y, x), to feed :func:`judge.verdicts.pairwise_relation`.
    """
    steps = _PAIRWISE_STEPS_DIRECT if direct else _PAIRWISE_STEPS_RATIONALE
    return _PAIRWISE_INSTRUCTIONS.format(
        steps=steps,
        question=_check_text(question, "question"),
        answer_a=_check_text(answer_a, "first answer"),
        answer_b=_check_text(answer_b, "second answer"),
    )


# A score or verdict line as judges write it: "Score: [4]", "**Score:** [[4]]", "score - [4/5]".
_SCORE_LINE = re.compile(
    r"(?:\*\*)?score\s*\**\s*[:=\-]?\s*\**\s*\[+\s*(\d+)\s*(?:/\s*\d+\s*)?\]+", re.IGNORECASE
)
_SCORE_BARE = re.compile(
    r"(?:\*\*)?score\s*\**\s*[:=]\s*\**\s*(\d+)(?:\s*/\s*\d+)?\b", re.IGNORECASE
)
_SCORE_ONLY = re.compile(r"^\s*\[*\s*(\d+)\s*\]*\s*\.?\s*$")
_VERDICT_LINE = re.compile(
    r"(?:\*\*)?verdict\s*\**\s*[:=\-]?\s*\**\s*\[+\s*([ABC])\s*\]+", re.IGNORECASE
)
# Bare letters must be capitals: "Verdict: a tie" is not a verdict for A.
_VERDICT_BARE = re.compile(r"(?:\*\*)?(?i:verdict)\s*\**\s*[:=]\s*\**\s*([ABC])\b")
_VERDICT_DOUBLE = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_VERDICT_ONLY = re.compile(r"^\s*\[*\s*([ABC])\s*\]*\s*\.?\s*$")
# What may precede a score line on its line: markup and "Final" / "Overall" ("- **Final Score**").
_LINE_LEAD = re.compile(r"(?:[^\S\n]|[-*#>_])*(?:final|overall)?(?:[^\S\n]|[*_])*\Z", re.IGNORECASE)


def _last_match(patterns: list[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        found = pattern.findall(text)
        if found:
            return found[-1]
    return None


def parse_score(text: str, scale: int = 5) -> int | None:
    """The score a judgement gives, or None when it gives none on the scale.

    The last ``Score: [X]`` wins (a rationale may quote numbers or an earlier draft); failing
    that the last ``Score: X``; failing that a reply that is only a number. A number off the
    scale, or no score at all, gives None: an unparsed judgement is unscored, never the worst
    score (the failure modes of Prometheus-eval #58 and DeepEval #3000).
    """
    _check_scale(scale)
    if not isinstance(text, str):
        return None
    found = _last_match([_SCORE_LINE, _SCORE_BARE, _SCORE_ONLY], text)
    if found is None:
        return None
    value = int(found)
    return value if 1 <= value <= scale else None


def parse_verdict(text: str) -> str | None:
    """The verdict letter a pairwise judgement gives ("A", "B" or "C"), or None.

    The last ``Verdict: [X]`` wins; failing that the last ``[[X]]`` (MT-Bench style); then
    ``Verdict: X``; then a reply that is only the letter.
    """
    if not isinstance(text, str):
        return None
    found = _last_match([_VERDICT_LINE, _VERDICT_DOUBLE, _VERDICT_BARE, _VERDICT_ONLY], text)
    return found.upper() if found is not None else None


def rationale_of(judgement: str) -> str:
    """The judgement's text before its last score or verdict line (all of it if there is none)."""
    if not isinstance(judgement, str):
        raise ConfidantError("a judgement must be text")
    matches = [
        m
        for pattern in (_SCORE_LINE, _SCORE_BARE, _VERDICT_LINE, _VERDICT_DOUBLE, _VERDICT_BARE)
        for m in pattern.finditer(judgement)
    ]
    if not matches:
        return judgement.strip()
    # The match that ends last, taken from its earliest start ("verdict: [[B]]", not "[[B]]").
    _, negative_start = max((m.end(), -m.start()) for m in matches)
    start = -negative_start
    head = judgement[:start]
    return head[: _LINE_LEAD.search(head).start()].strip()


def score_prefix(rationale: str = "") -> str:
    """The judge's output up to the score position: the rationale, then ``Score: [``.

    The next token(s) are the score, which a pipeline scores for every value of the scale by
    teacher forcing. A full judgement may be passed: its own score line is cut off first. With no
    rationale (direct mode) the prefix is ``Score: [`` alone.
    """
    text = rationale_of(rationale)
    return f"{text}\n{SCORE_MARKER}" if text else SCORE_MARKER


def verdict_prefix(rationale: str = "") -> str:
    """The judge's output up to the verdict position: the rationale, then ``Verdict: [``."""
    text = rationale_of(rationale)
    return f"{text}\n{VERDICT_MARKER}" if text else VERDICT_MARKER
