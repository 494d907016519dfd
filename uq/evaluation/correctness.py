"""Is an answer correct? Automatic correctness against a list of gold answers.

SQuAD F1 and exact match follow the SQuAD (v1.1/v2.0) evaluation script's normalisation:
lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (Rajpurkar et al.
2016). Farquhar et al. 2024 call an answer correct when its SQuAD F1 against the references is
≥ 0.5 (50 on their 0–100 scale); Kuhn et al. 2023 use ROUGE-L > 0.3. Scores here are in [0, 1]
and each is the maximum over the gold answers.

``contains`` (the harness's default, :data:`uq.evaluation.settings.DEFAULT_CORRECTNESS`) asks
whether some normalised gold answer occurs in the normalised answer as a whole-word sequence.
Chat models answer in sentences: "The capital of Romania is Bucharest." has SQuAD F1 0.33
against "Bucharest", so F1 ≥ 0.5 calls it wrong, while ``contains`` calls it right.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from core.errors import ConfidantError
from uq.semantic.black_box import rouge_l

METHODS = ("contains", "squad_f1", "exact_match", "rouge_l")

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalise_squad(text: str) -> str:
    """SQuAD answer normalisation: lower-case, remove punctuation, remove articles
    (a, an, the), collapse whitespace — in that order, as the SQuAD evaluation script does."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(golds: str | Sequence[str]) -> list[str]:
    if isinstance(golds, str):
        golds = [golds]
    golds = list(golds)
    if not golds:
        raise ConfidantError("need at least one gold answer")
    if not all(isinstance(g, str) for g in golds):
        raise ConfidantError("gold answers must be strings")
    return golds


def _check_prediction(prediction: str) -> str:
    if not isinstance(prediction, str):
        raise ConfidantError(f"the prediction must be a string, got {type(prediction).__name__}")
    return prediction


def _f1_one(prediction: str, gold: str) -> float:
    pred_tokens = normalise_squad(prediction).split()
    gold_tokens = normalise_squad(gold).split()
    if not pred_tokens or not gold_tokens:
        # As in the SQuAD v2 script: an empty answer only matches an empty answer.
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, golds: str | Sequence[str]) -> float:
    """SQuAD token F1, max over golds: with normalised token bags, common = |pred ∩ gold|
    (multiset), P = common/|pred|, R = common/|gold|, F1 = 2PR/(P + R); in [0, 1]."""
    prediction = _check_prediction(prediction)
    return max(_f1_one(prediction, g) for g in _golds(golds))


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 when the SQuAD-normalised prediction equals some normalised gold answer, else 0.0."""
    prediction = _check_prediction(prediction)
    norm = normalise_squad(prediction)
    return float(any(norm == normalise_squad(g) for g in _golds(golds)))


def contains_gold(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 when some SQuAD-normalised gold answer appears in the normalised prediction as a
    whole-word sequence, else 0.0: with tokens p = norm(prediction).split() and
    g = norm(gold).split(), correct when g = p[i : i + |g|] for some i. So "paris" is in
    "the capital is paris" but "rome" is not in "romeo". A gold that normalises to nothing
    (e.g. "The") matches nothing."""
    prediction = _check_prediction(prediction)
    pred = normalise_squad(prediction).split()
    for gold in _golds(golds):
        g = normalise_squad(gold).split()
        if g and any(pred[i : i + len(g)] == g for i in range(len(pred) - len(g) + 1)):
            return 1.0
    return 0.0


def rouge_l_score(prediction: str, golds: str | Sequence[str]) -> float:
    """ROUGE-L F-measure of the prediction, max over golds (see :func:`uq.semantic.black_box.rouge_l`)."""
    prediction = _check_prediction(prediction)
    return max(rouge_l(prediction, g) for g in _golds(golds))


def correctness_score(
    prediction: str, golds: str | Sequence[str], method: str = "squad_f1"
) -> float:
    """The score in [0, 1] that ``method`` ("contains", "squad_f1", "exact_match" or
    "rouge_l") gives the prediction against the gold answers; usable as the quality in PRR."""
    if method == "contains":
        return contains_gold(prediction, golds)
    if method == "squad_f1":
        return squad_f1(prediction, golds)
    if method == "exact_match":
        return exact_match(prediction, golds)
    if method == "rouge_l":
        return rouge_l_score(prediction, golds)
    raise ConfidantError(f"unknown correctness method {method!r}; use one of {', '.join(METHODS)}")


def is_correct(
    prediction: str,
    golds: str | Sequence[str],
    method: str = "squad_f1",
    threshold: float = 0.5,
) -> bool:
    """Correct when :func:`correctness_score` ≥ ``threshold``.

    The default is Farquhar et al.'s SQuAD F1 ≥ 0.5. Kuhn et al.'s rule is ROUGE-L > 0.3
    (``method="rouge_l"``, threshold just above 0.3). Exact match and contains are 0 or 1, so
    any threshold in (0, 1] means a match."""
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ConfidantError(f"the correctness threshold must be in [0, 1], got {threshold}")
    return correctness_score(prediction, golds, method) >= threshold


def judge_prompt(question: str, golds: str | Sequence[str], prediction: str) -> str:
    """The LLM-judge correctness prompt (after Farquhar et al.'s "does the proposed answer mean
    the same as the expected answer?"); the judge's answer is read as p("yes") vs p("no")."""
    golds = _golds(golds)
    prediction = _check_prediction(prediction)
    expected = golds[0] if len(golds) == 1 else "; ".join(golds)
    return (
        "We are assessing the quality of answers to the following question: "
        f"{question}\n"
        f"The expected answer is: {expected}.\n"
        f"The proposed answer is: {prediction}\n"
        "Within the context of the question, does the proposed answer mean the same as the "
        "expected answer? Respond only with yes or no."
    )
