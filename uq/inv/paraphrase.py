"""Paraphrase perturbation (Song et al. 2025): the prompt that asks the model for rewordings
of a question, a robust parser for the lists small models write, and the screen that rejects
"paraphrases" which answer the question instead of asking it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from core.errors import ConfidantError

DEFAULT_N_PERTURBATIONS = 9
PARAPHRASE_SYSTEM_PROMPT = "You are a helpful assistant that paraphrases sentences."


# --------------------------------------------------------------------------- paraphrases


def paraphrase_prompt(question: str, n: int = DEFAULT_N_PERTURBATIONS) -> str:
    """The user message asking an LLM for n paraphrases.

    Song et al. (2025), Appendix: "Please provide {n} paraphrases for this sentence: …", with a
    format request so the reply is easy to parse (send with :data:`PARAPHRASE_SYSTEM_PROMPT`).
    """
    if not question or not question.strip():
        raise ConfidantError("the question is empty")
    if n < 1:
        raise ConfidantError(f"n must be at least 1, got {n}")
    return (
        f"Please provide {n} paraphrases for this sentence: {question.strip()}\n"
        f"Write each paraphrase on its own line, numbered 1 to {n}, with no other text."
    )


def force_count(items: Sequence[str], n: int, rng: np.random.Generator | int | None) -> list[str]:
    """Exactly n items: random duplicates appended if too few, a random subset if too many.

    Song et al. (2025), §2.6: the perturbation count must be equal for every question. The
    subset keeps the original order; ``rng`` is a numpy Generator or a seed.
    """
    if n < 1:
        raise ConfidantError(f"n must be at least 1, got {n}")
    if not items:
        raise ConfidantError("there is nothing to duplicate: no perturbation was found")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    items = list(items)
    if len(items) > n:
        keep = np.sort(generator.choice(len(items), size=n, replace=False))
        return [items[i] for i in keep]
    extra = generator.choice(len(items), size=n - len(items), replace=True)
    return items + [items[i] for i in extra]


_LIST_MARKER = re.compile(
    r"^\s*(?:\(?\d{1,3}\s*[.):\]]|\d{1,3}\s+-|[-*•·–—+]|\(?[a-zA-Z][.)](?=\s))\s*"
)
_LABEL = re.compile(
    r"^\s*(?:paraphrase|version|option|rephrased|variant)\s*\d*\s*[:.)\-–]\s*", re.I
)
_QUOTES = "\"'“”‘’`«»"


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _clean_item(text: str) -> str:
    # Control characters (a model can emit any byte) never belong in a question.
    text = "".join(ch for ch in text if ch.isprintable())
    text = re.sub(r"\*\*|__", "", text).strip()
    text = text.rstrip(",").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text.strip(_QUOTES).strip()


def _json_items(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    candidates = [text[start : end + 1]] if 0 <= start < end else []
    brace_start, brace_end = text.find("{"), text.rfind("}")
    if 0 <= brace_start < brace_end:
        candidates.append(text[brace_start : brace_end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):  # a model's text may nest brackets without end
            continue
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            value = lists[0] if lists else None
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    return None


def _line_items(text: str) -> list[str]:
    lines = [re.sub(r"\*\*|__", "", line) for line in text.splitlines() if line.strip()]
    marked = [bool(_LIST_MARKER.match(line) or _LABEL.match(line)) for line in lines]
    if any(marked):
        # A list with a preamble or a closing remark: keep only the list entries.
        lines = [line for line, is_item in zip(lines, marked, strict=True) if is_item]
    items = []
    for line in lines:
        item = _LABEL.sub("", _LIST_MARKER.sub("", line, count=1), count=1)
        stripped = item.strip()
        if not stripped or (stripped.endswith(":") and not _LIST_MARKER.match(line)):
            continue  # "Here are 9 paraphrases:"
        if stripped.startswith("```"):
            continue
        items.append(item)
    return items


def read_paraphrases(text: str, question: str | None = None) -> list[str]:
    """Every distinct paraphrase in an LLM's reply, in order (no count forced).

    Accepts numbered or bulleted lists, JSON arrays (or an object holding one), quoted lines,
    blank lines, a preamble line and a closing remark; drops the original question if it is
    echoed back (when ``question`` is given) and exact duplicates. Raises
    :class:`ConfidantError` if the reply holds no paraphrase.
    """
    if text is None or not str(text).strip():
        raise ConfidantError("the paraphrase reply is empty")
    raw = _json_items(text)
    if raw is None:
        raw = _line_items(text)
    original = _normalised(question) if question else None
    seen: set[str] = set()
    items: list[str] = []
    for candidate in raw:
        item = _clean_item(candidate)
        key = _normalised(item)
        if not key or key == original or key in seen:
            continue
        if original and re.match(r"^(?:original(?: question| sentence)?)\s*:", item, re.I):
            continue
        seen.add(key)
        items.append(item)
    if not items:
        raise ConfidantError("no paraphrase could be read from the reply")
    return items


def parse_paraphrases(
    text: str,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int | np.random.Generator | None = 0,
    question: str | None = None,
) -> list[str]:
    """Read an LLM's list of paraphrases (:func:`read_paraphrases`) and return exactly n:
    the count forced as in Song et al. (2025), §2.6 — random duplication if fewer than n,
    seeded sampling if more (:func:`force_count`)."""
    return force_count(read_paraphrases(text, question), n, seed)


# --------------------------------------------------------------------------- screening

# A reworded question either ends with "?" or opens the way a request opens: an imperative
# ("Name the capital of Australia."), an auxiliary ("Is Canberra …"), or a wh-word within the
# first three words ("In which year …").
_WH_WORDS = frozenset("what which who whom whose when where why how".split())
_ASK_OPENERS = _WH_WORDS | frozenset(
    "name tell identify give list state say find explain describe define can could would will "
    "do does did is are was were has have had should please".split()
)


_STOPWORDS = frozenset(
    "the and for are was were this that with from into onto its his her their our your you "
    "who what which whom whose when where why how does did has have had not any all one".split()
)


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.casefold()) if len(w) >= 3} - _STOPWORDS


def answer_instead_of_question(paraphrase: str, question: str) -> str | None:
    """Why ``paraphrase`` answers ``question`` instead of asking it, or None when it asks.

    Small models asked for paraphrases often write an answer ("The capital of Australia is
    Sydney." for "What is the capital of Australia?"). A paraphrase is rejected when

    - it asks and then goes on: text after its last "?" ("What is it? It is Canberra."), or
    - it is a statement about the question's subject: no "?", it does not open as a request
      (its first word is no imperative or auxiliary of :data:`_ASK_OPENERS`, and no wh-word is
      among its first three words), and it shares a content word (three letters or more, not a
      stop word) with the question.

    Text that shares nothing with the question is left alone (it is no answer to it; a model
    that writes noise is shown by the low similarity to the original). A bare answer ("Sydney.")
    is not caught: it shares no word with the question.

    >>> answer_instead_of_question(
    ...     "The capital of Australia is Sydney.", "What is the capital of Australia?")
    'a statement about the question (no "?", no question or request form)'
    >>> answer_instead_of_question(
    ...     "Name the capital of Australia.", "What is the capital of Australia?") is None
    True
    """
    text = paraphrase.strip()
    if "?" in text:
        after = text[text.rindex("?") + 1 :].strip(" \t\"'”’)]")
        if after:
            return f'answers after asking: "{after[:60]}" follows the question mark'
        return None
    words = re.findall(r"[a-z']+", text.casefold())
    if words and (words[0] in _ASK_OPENERS or _WH_WORDS.intersection(words[:3])):
        return None
    if _content_words(text) & _content_words(question):
        return 'a statement about the question (no "?", no question or request form)'
    return None


def screen_paraphrases(
    items: Sequence[str], question: str
) -> tuple[list[str], list[dict[str, str]]]:
    """Split paraphrases of ``question`` into those that ask and those that answer
    (:func:`answer_instead_of_question`): (kept, rejected as ``{"text", "reason"}``)."""
    kept, rejected = [], []
    for item in items:
        reason = answer_instead_of_question(item, question)
        if reason is None:
            kept.append(item)
        else:
            rejected.append({"text": item, "reason": reason})
    return kept, rejected
