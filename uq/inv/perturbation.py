"""Choosing the perturbed questions for Inv-Entropy: paraphrases by the model, GAAP word
substitutions (WordNet, embeddings or the model), or the user's own list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from backends.base import LanguageModel, SamplingParams
from core.errors import ConfidantError
from core.reader import read_lines
from uq.inv.gaap import gaap
from uq.inv.options import (
    MAX_INPUTS,
    PARAPHRASE_TEMPERATURE,
    PERTURBATION_METHODS,
    Embed,
    check_positive_int,
    check_seed,
    check_text,
)
from uq.inv.paraphrase import (
    DEFAULT_N_PERTURBATIONS,
    PARAPHRASE_SYSTEM_PROMPT,
    force_count,
    paraphrase_prompt,
    parse_paraphrases,
    read_paraphrases,
    screen_paraphrases,
)

# --------------------------------------------------------------------------- perturbations


@dataclass
class Perturbation:
    """The n perturbed versions of one question and how they were made.

    ``method`` is "paraphrase", "gaap" or "given"; ``source`` says where the words came from
    ("llm" for paraphrases; "wordnet", "embedding", "llm" or "custom" for GAAP substitutes;
    "user" for a given list). ``details`` holds the paraphrase prompt and raw reply, or the
    whole GAAP record (:class:`uq.inv.gaap.GaapResult`).
    """

    method: str
    perturbations: list[str]
    source: str
    seed: int | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Perturbation:
        return cls(
            method=data["method"],
            perturbations=list(data["perturbations"]),
            source=data["source"],
            seed=data.get("seed"),
            details=dict(data.get("details", {})),
        )


class NoUsableParaphraseError(ConfidantError):
    """The model wrote no usable paraphrase of a question (every one answered it, or nothing
    could be read)."""


MAX_PARAPHRASE_ROUNDS = 3  # the first request and at most two more when answers were rejected


def paraphrase_questions(
    lm: LanguageModel,
    questions: Sequence[str],
    n: int = DEFAULT_N_PERTURBATIONS,
    *,
    seed: int = 0,
    temperature: float = PARAPHRASE_TEMPERATURE,
    max_new_tokens: int | None = None,
    skip_unusable: bool = False,
) -> list[Perturbation | None]:
    """n LLM paraphrases of every question, from batched ``sample_batch`` calls.

    The prompt is :data:`uq.inv.paraphrase.PARAPHRASE_SYSTEM_PROMPT` followed by
    :func:`uq.inv.paraphrase.paraphrase_prompt` (Song et al. 2025, Appendix); each reply is read by
    :func:`uq.inv.paraphrase.read_paraphrases` and screened by
    :func:`uq.inv.paraphrase.screen_paraphrases`, which rejects "paraphrases" that answer instead
    of asking. When some were rejected (or none could be read) and fewer than n distinct remain,
    the questions short of paraphrases are asked again (one batched call per round, new seed, at most
    :data:`MAX_PARAPHRASE_ROUNDS` rounds in all). The kept ones are forced to exactly n
    (:func:`uq.inv.paraphrase.force_count`: random duplication if fewer, seeded sampling if more);
    ``details["rejected"]`` lists the rejected ones with their reason. ``max_new_tokens`` defaults
    to 24 per paraphrase plus 32. A question left with no usable paraphrase raises
    :class:`ConfidantError`, or with ``skip_unusable`` gets None (a study over many questions).
    """
    n = check_positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
    if max_new_tokens is None:
        max_new_tokens = 24 * n + 32
    seed = check_seed(seed)
    questions = list(questions)
    prompts = [f"{PARAPHRASE_SYSTEM_PROMPT}\n\n{paraphrase_prompt(q, n)}" for q in questions]
    kept: list[list[str]] = [[] for _ in questions]
    rejected: list[list[dict]] = [[] for _ in questions]
    replies: list[list[str]] = [[] for _ in questions]
    unreadable: list[str | None] = [None] * len(questions)
    pending = list(range(len(questions)))
    generation_seed = None
    for round_index in range(MAX_PARAPHRASE_ROUNDS):
        params = SamplingParams(
            n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + round_index
        ).validate()
        answers = lm.sample_batch([prompts[i] for i in pending], params)
        if generation_seed is None:
            generation_seed = params.seed
        for i, reply in zip(pending, answers, strict=True):
            text = reply[0].text
            replies[i].append(text)
            try:
                items = read_paraphrases(text, question=questions[i])
            except ConfidantError as exc:
                unreadable[i] = str(exc)
                continue
            good, bad = screen_paraphrases(items, questions[i])
            kept[i] += [item for item in good if item not in kept[i]]
            rejected[i] += [r for r in bad if r not in rejected[i]]
        # Ask again where answers were rejected or nothing could be read, not where a clean
        # reply was merely short (that is duplicated, as the paper does).
        pending = [i for i in pending if (rejected[i] or not kept[i]) and len(kept[i]) < n]
        if not pending:
            break
    out = []
    for index in range(len(questions)):
        where = f" for question {index + 1}" if len(questions) > 1 else ""
        if not kept[index] and skip_unusable:
            out.append(None)
            continue
        if not kept[index]:
            if rejected[index]:
                shown = "; ".join(f'"{r["text"][:80]}"' for r in rejected[index][:3])
                why = f"every one answered instead of asking ({shown})"
            else:
                why = unreadable[index] or "no paraphrase could be read from the reply"
            raise NoUsableParaphraseError(
                f"the model's paraphrase reply{where} held no usable paraphrase ({why}); "
                "try GAAP or give your own perturbations"
            )
        items = force_count(kept[index], n, seed)
        out.append(
            Perturbation(
                method="paraphrase",
                perturbations=items,
                source="llm",
                seed=seed,
                details={
                    "prompt": prompts[index],
                    "reply": replies[index][0],
                    "replies": replies[index],
                    "rejected": rejected[index],
                    "rounds": len(replies[index]),
                    "n_distinct": len(dict.fromkeys(items)),
                    "temperature": temperature,
                    "max_new_tokens": max_new_tokens,
                    "generation_seed": generation_seed,
                },
            )
        )
    return out


def llm_substitutes(
    lm: LanguageModel, *, k: int = 8, max_new_tokens: int = 48
) -> Callable[[str], list[str]]:
    """GAAP substitution sets from an LLM: one greedy call per key word, parsed as a list.

    The fallback of Song et al. (2025, §2.6) when no WordNet database is installed: the model
    is asked for synonyms, broader and narrower terms; lines longer than three words are
    dropped. Results are cached per word.
    """
    cache: dict[str, list[str]] = {}

    def substitutes(word: str) -> list[str]:
        if word not in cache:
            prompt = (
                f"List {k} single words or short phrases that could replace the word "
                f"'{word}' in a question: synonyms, broader terms and narrower terms. "
                "One per line, no other text."
            )
            reply = lm.greedy(prompt, max_new_tokens=max_new_tokens).text
            try:
                items = parse_paraphrases(reply, k, seed=0, question=word)
            except ConfidantError:
                items = []
            cache[word] = [i for i in dict.fromkeys(items) if 0 < len(i.split()) <= 3][:k]
        return cache[word]

    return substitutes


def gaap_perturbation(
    question: str,
    embed: Embed,
    n: int = DEFAULT_N_PERTURBATIONS,
    *,
    seed: int = 0,
    lm: LanguageModel | None = None,
    similarity_rule: str = "shifted",
    **options: Any,
) -> Perturbation:
    """n GAAP perturbations (:func:`uq.inv.gaap.gaap`, Song et al. 2025, §2.6 and App. C).

    Fitness and the δ rule use the embedding model with ``similarity_rule`` ("shifted" =
    (1 + cos)/2, "absolute" = |cos|). Substitutes: WordNet when installed, else the LLM's
    (when ``lm`` is given), else the embedding model's nearest words; ``options`` go to
    :func:`uq.inv.gaap.gaap` (``delta``, ``max_generations``, ``source``, ...).
    """
    n = check_positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1)
    seed = check_seed(seed)
    result = gaap(
        question,
        embed,
        n,
        seed=seed,
        llm_substitutes=llm_substitutes(lm) if lm is not None else None,
        similarity_rule=similarity_rule,
        **options,
    )
    return Perturbation(
        method="gaap",
        perturbations=list(result.perturbations),
        source=result.substitution_source,
        seed=seed,
        details=result.to_dict(),
    )


def given_perturbation(perturbations: Sequence[str] | str) -> Perturbation:
    """The user's own perturbations, used as given (a list, or text with one per line)."""
    if isinstance(perturbations, str):
        perturbations = read_lines(perturbations, name="the perturbations")
    kept = [p for p in perturbations or [] if not (isinstance(p, str) and not p.strip())]
    items = [check_text(p, f"perturbation {i + 1}") for i, p in enumerate(kept)]
    if not items:
        raise ConfidantError("give at least one perturbed question (one per line)")
    if len(items) > MAX_INPUTS - 1:
        raise ConfidantError(f"at most {MAX_INPUTS - 1} perturbations, got {len(items)}")
    return Perturbation(method="given", perturbations=items, source="user")


def perturb_questions(
    questions: Sequence[str],
    method: str = "paraphrase",
    *,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int = 0,
    lm: LanguageModel | None = None,
    embed: Embed | None = None,
    perturbations: Sequence[Sequence[str] | str] | None = None,
    similarity_rule: str = "shifted",
    gaap_options: dict | None = None,
    paraphrase_max_new_tokens: int | None = None,
) -> list[Perturbation]:
    """Perturbations of every question by ``method`` ("paraphrase", "gaap" or "given").

    ``perturbations`` (for "given") holds one list (or newline-separated text) per question.
    Paraphrases of all questions come from one batched call; GAAP runs per question.
    """
    if method not in PERTURBATION_METHODS:
        raise ConfidantError(
            f"unknown perturbation method {method!r}; use one of {', '.join(PERTURBATION_METHODS)}"
        )
    if method == "given":
        if perturbations is None or len(perturbations) != len(questions):
            raise ConfidantError("give one list of perturbations per question")
        return [given_perturbation(p) for p in perturbations]
    if method == "paraphrase":
        if lm is None:
            raise ConfidantError("paraphrasing needs a generator model")
        return paraphrase_questions(
            lm, questions, n, seed=seed, max_new_tokens=paraphrase_max_new_tokens
        )
    if embed is None:
        raise ConfidantError("GAAP needs an embedding model")
    return [
        gaap_perturbation(
            q, embed, n, seed=seed, lm=lm, similarity_rule=similarity_rule, **(gaap_options or {})
        )
        for q in questions
    ]
