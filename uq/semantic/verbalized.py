"""Verbalized confidence (Tian et al. 2023, "Just Ask for Calibration"; Xiong et al. 2024): the
generator asked in words how sure it is, 0–100, and its reply parsed.

- one-stage: one prompt asks for the answer and the confidence together (the confidence is
  about the answer in that reply, which may differ from the reference answer; the reply's answer
  is kept);
- two-stage: the confidence asked in a second prompt about the reference answer.

Uncertainty = 1 − confidence / 100. A reply with no readable confidence gives None, and the
raw reply is kept with the result.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from backends.base import LanguageModel

# Worded so that the embedded SmolLM2-135M-Instruct replies with a number at all: to a
# "Reply in this format: Answer: … Confidence: …" instruction it answers and writes no number.
ONE_STAGE_PROMPT = (
    "{question} Answer as briefly as possible, then rate from 0 to 100 how sure you are that "
    "your answer is right."
)
TWO_STAGE_PROMPT = (
    "Question: {question}\nProposed answer: {answer}\n"
    "On a scale from 0 to 100, how likely is the proposed answer to be correct? Answer with "
    "just the number."
)
ONE_STAGE_TOKENS = 48
TWO_STAGE_TOKENS = 16

# A number not glued to a word or another number: "85", "85.5", "0.85", ".9", "-5".
_NUMBER = r"(?<![\w.])(?P<sign>-)?(?P<num>\d+(?:\.\d*)?|\.\d+)(?!\.?\w)"
_SCALE = r"(?:\s*(?P<pct>%|percent\b)|(?:\s*/\s*|\s+out\s+of\s+)(?P<den>\d+(?:\.\d+)?))?"
_CANDIDATE = re.compile(_NUMBER + _SCALE, re.IGNORECASE)
_KEYWORD = re.compile(r"confiden\w*|certain\w*|probabilit\w*|likel\w*|sure", re.IGNORECASE)
_ANSWER = re.compile(r"answer\s*[:\-]\s*(?P<answer>[^\n]*)", re.IGNORECASE)


def _value(match: re.Match) -> float | None:
    """The confidence 0–100 one candidate stands for, or None when out of range."""
    number = float(match["num"])
    if match["sign"]:
        return None
    if match["den"] is not None:
        den = float(match["den"])
        if den <= 0 or number > den:
            return None
        value = 100.0 * number / den
    elif match["pct"] is not None:
        value = number
    elif "." in match["num"] and number <= 1.0:
        value = 100.0 * number  # "0.85", "1.0": a probability
    else:
        value = number
    return value if math.isfinite(value) and 0.0 <= value <= 100.0 else None


def parse_confidence(text: str | None) -> float | None:
    """The confidence 0–100 in a model's reply, or None when there is none or it is out of range.

    Read: "85", "85%", "85 percent", "Confidence: 85/100", "8 out of 10", "0.85" (a decimal ≤ 1
    is a probability; a whole number is on the 0–100 scale, so "1" is 1 %), with any words
    around it. Which number, when there are several: the first after the last
    confidence-like word ("confidence", "certain", "probability", "likely", "sure"); else the
    first marked as a percentage or a fraction; else the last number. Negative or above 100 →
    None (not clipped: a reply out of range did not follow the instruction).

    >>> parse_confidence("Confidence: 85/100")
    85.0
    >>> parse_confidence("I'd say 0.9") , parse_confidence("150") , parse_confidence("high")
    (90.0, None, None)
    """
    if not text:
        return None
    candidates = list(_CANDIDATE.finditer(text))
    if not candidates:
        return None
    keywords = list(_KEYWORD.finditer(text))
    if keywords:
        after = [c for c in candidates if c.start() >= keywords[-1].end()]
        if after:
            return _value(after[0])
    marked = [c for c in candidates if c["pct"] is not None or c["den"] is not None]
    return _value(marked[0] if marked else candidates[-1])


def split_one_stage(text: str | None) -> tuple[str | None, float | None]:
    """(answer, confidence) of a one-stage reply "Answer: … Confidence: …". The answer is the
    text after "Answer:" up to the line end or the confidence word (None without "Answer:");
    the confidence is read from the rest of the reply, so a number in the answer ("Answer:
    1945") is not taken for it."""
    if not text:
        return None, None
    match = _ANSWER.search(text)
    if match is None:
        return None, parse_confidence(text)
    answer = match["answer"]
    keyword = _KEYWORD.search(answer)
    if keyword is not None:
        answer = answer[: keyword.start()]
    answer = answer.strip().rstrip(",;.").strip() or None
    rest = text[: match.start()] + " " + text[match.start("answer") + len(answer or "") :]
    return answer, parse_confidence(rest)


def confidence_uncertainty(confidence: float) -> float:
    """1 − c / 100: a verbalized confidence c ∈ [0, 100] as an uncertainty in [0, 1]."""
    return 1.0 - float(confidence) / 100.0


@dataclass
class VerbalizedReply:
    """One verbalized-confidence question and its reply: the prompt, the raw reply, the
    confidence 0–100 read from it (None when unreadable) and, one-stage, the reply's answer."""

    stage: str  # "one_stage" or "two_stage"
    prompt: str
    raw: str
    confidence: float | None
    answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ask_one_stage(lm: LanguageModel, question: str, *, chat: bool = True) -> VerbalizedReply:
    """The one-stage reply: answer and confidence from one greedy generation."""
    prompt = ONE_STAGE_PROMPT.replace("{question}", question)
    raw = lm.greedy(prompt, ONE_STAGE_TOKENS, chat=chat).text
    answer, confidence = split_one_stage(raw)
    return VerbalizedReply("one_stage", prompt, raw, confidence, answer)


def ask_two_stage(
    lm: LanguageModel, question: str, answer: str, *, chat: bool = True
) -> VerbalizedReply:
    """The two-stage reply: the confidence in ``answer`` (the reference answer), greedy."""
    prompt = TWO_STAGE_PROMPT.replace("{question}", question).replace("{answer}", answer.strip())
    raw = lm.greedy(prompt, TWO_STAGE_TOKENS, chat=chat).text
    return VerbalizedReply("two_stage", prompt, raw, parse_confidence(raw), answer.strip())
