"""Pairwise comparison: the judge's verdict between two answers in both orders."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backends.base import Generation, LanguageModel, capabilities_of, prompt_sent
from core.errors import ConfidantError
from judge.config import JudgeConfig, Progress
from judge.grading import (
    emitted_first,
    emitted_value,
    generate_judgements,
    sample_with_top,
    top_k_distribution,
)
from judge.prompts import (
    SCORE_CLOSE,
    VERDICT_LETTERS,
    VERDICT_MARKER,
    pairwise_prompt,
    rationale_of,
    verdict_prefix,
)
from judge.verdicts import judgement_perplexity, pairwise_relation, ppl_relation

# ----------------------------------------------------------------------------------------------
# Pairwise comparison
# ----------------------------------------------------------------------------------------------


@dataclass
class VerdictRead:
    """The judge's verdict in one presentation order.

    ``raw`` maps A / B / C to the judge's probability at the verdict position (unnormalised, the
    emitted letter first); ``perplexity`` is exp(−mean log p) over the whole judgement (rationale
    and verdict), the PPL rule's input.
    """

    prompt: str
    judgement: str
    rationale: str
    raw: dict[str, float]
    emitted: str | None
    perplexity: float | None
    judgement_tokens: int
    source: str
    truncated: bool
    prompt_sent: str | None = None  # ``prompt`` with the chat template, as the judge saw it

    @property
    def probs(self) -> dict[str, float]:
        mass = sum(self.raw.values())
        return {k: (self.raw.get(k, 0.0) / mass if mass > 0 else 0.0) for k in VERDICT_LETTERS}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["raw"] = [[k, float(p)] for k, p in self.raw.items()]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VerdictRead:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["raw"] = {k: float(p) for k, p in d["raw"]}
        return cls(**fields)


@dataclass
class PairwiseResult:
    """A pair (x, y) judged in both orders: first x as A, then y as A.

    ``relations`` holds 1 (x better), 0 (tie) or −1 (y better) by each rule, None when a rule
    cannot decide (a verdict missing).
    """

    question: str
    response_x: str
    response_y: str
    model: str
    config: dict[str, Any]
    first: VerdictRead
    second: VerdictRead
    relations: dict[str, int | None]
    likelihood_tolerance: float = 0.0
    ppl_tolerance: float = 0.0
    item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = "pairwise"
        d["first"], d["second"] = self.first.to_dict(), self.second.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairwiseResult:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["first"] = VerdictRead.from_dict(d["first"])
        fields["second"] = VerdictRead.from_dict(d["second"])
        return cls(**fields)

    def judge_view(self) -> dict[str, Any]:
        """Verdict probabilities of both orders with the second mapped back (A = x better)."""
        second = self.second.probs
        return {
            "first_order": self.first.probs,
            "second_order_swapped": {"A": second["B"], "B": second["A"], "C": second["C"]},
            "emitted": [self.first.emitted, self.second.emitted],
            "perplexity": [self.first.perplexity, self.second.perplexity],
            "relations": self.relations,
        }


def relations_of(
    first: VerdictRead,
    second: VerdictRead,
    likelihood_tolerance: float = 0.0,
    ppl_tolerance: float = 0.0,
) -> dict[str, int | None]:
    """The relation of the pair by the baseline, likelihood and perplexity rules
    (:func:`judge.verdicts.pairwise_relation`, :func:`judge.verdicts.ppl_relation`)."""
    out: dict[str, int | None] = {}
    both = first.emitted is not None and second.emitted is not None
    out["baseline"] = (
        pairwise_relation(first.raw, second.raw, "baseline") if both and first.raw else None
    )
    if first.raw or second.raw:
        out["likelihood"] = pairwise_relation(
            first.raw, second.raw, "likelihood", likelihood_tolerance
        )
    else:
        out["likelihood"] = None
    if both and first.perplexity is not None and second.perplexity is not None:
        out["ppl"] = ppl_relation(
            first.emitted, first.perplexity, second.emitted, second.perplexity, ppl_tolerance
        )
    else:
        out["ppl"] = None
    return out


def _read_verdict_local(
    lm: LanguageModel, prompt: str, gen: Generation, config: JudgeConfig, index: int
) -> VerdictRead:
    rationale = rationale_of(gen.text)
    prefix = verdict_prefix(rationale)
    # One call scores the judgement as the judge writes it (rationale, marker, verdict letter,
    # bracket) for each letter; the rows share the rationale, which the backend computes once.
    rows = lm.score_tree(prompt, [""], [f"{prefix}{k}{SCORE_CLOSE}" for k in VERDICT_LETTERS])[0]
    shared = 0
    while all(
        shared < len(r.tokens) - 1 and r.tokens[shared] == rows[0].tokens[shared] for r in rows
    ):
        shared += 1
    probs = [math.exp(sum(r.token_logprobs[shared:])) for r in rows]
    total = sum(probs)
    if total > 1.0:
        probs = [p / total for p in probs]
    raw = dict(zip(VERDICT_LETTERS, probs, strict=True))
    emitted = emitted_value(raw, config, index)
    perplexity = None
    n_tokens = 0
    if emitted is not None:
        raw = emitted_first(raw, emitted)
        logprobs = rows[VERDICT_LETTERS.index(emitted)].token_logprobs
        perplexity = judgement_perplexity(logprobs)
        n_tokens = len(logprobs)
    return VerdictRead(
        prompt=prompt,
        judgement=gen.text,
        rationale=rationale,
        raw=raw,
        emitted=emitted,
        perplexity=perplexity,
        judgement_tokens=n_tokens,
        source="exact",
        truncated=False,
        prompt_sent=prompt_sent(lm, prompt),
    )


def _read_verdict_http(lm, prompt: str, config: JudgeConfig) -> VerdictRead:
    gen = sample_with_top(lm, prompt, config)
    produced, dist = top_k_distribution(gen.tokens, list(VERDICT_LETTERS))
    logprobs = [t.logprob for t in gen.tokens]
    return VerdictRead(
        prompt=prompt,
        judgement=gen.text,
        rationale=rationale_of(gen.text),
        raw=dist,
        emitted=produced,
        perplexity=judgement_perplexity(logprobs) if logprobs else None,
        judgement_tokens=len(logprobs),
        source="top_logprobs",
        truncated=True,
        prompt_sent=prompt_sent(lm, prompt),
    )


def compare_batch(
    lm: LanguageModel,
    pairs: Sequence[tuple[str, str, str]],
    config: JudgeConfig | None = None,
    *,
    likelihood_tolerance: float = 0.0,
    ppl_tolerance: float = 0.0,
    item_ids: Sequence[str | None] | None = None,
    progress: Progress | None = None,
) -> list[PairwiseResult]:
    """Compare each (question, x, y) in both presentation orders (x as A, then y as A) and
    derive the relations by every rule (TrustJudge §2). ``config.scale`` is not used."""
    config = (config or JudgeConfig()).validate()
    if item_ids is not None and len(item_ids) != len(pairs):
        raise ConfidantError("item_ids must have one id per pair")
    prompts = []
    for q, x, y in pairs:
        prompts += [
            pairwise_prompt(q, x, y, config.direct),
            pairwise_prompt(q, y, x, config.direct),
        ]
    if not capabilities_of(lm).exact_scoring:
        reads = [_read_verdict_http(lm, p, config) for p in prompts]
    else:
        if progress:
            progress(0.0, f"writing {len(prompts)} judgement(s)")
        generations = generate_judgements(lm, prompts, config, VERDICT_MARKER)
        reads = []
        for i, (prompt, gen) in enumerate(zip(prompts, generations, strict=True)):
            if progress:
                progress(i / max(1, len(prompts)), f"reading verdict {i + 1}/{len(prompts)}")
            reads.append(_read_verdict_local(lm, prompt, gen, config, i))
    results = []
    for n, (question, x, y) in enumerate(pairs):
        first, second = reads[2 * n], reads[2 * n + 1]
        results.append(
            PairwiseResult(
                question=question,
                response_x=x,
                response_y=y,
                model=lm.model_id,
                config=config.to_dict(),
                first=first,
                second=second,
                relations=relations_of(first, second, likelihood_tolerance, ppl_tolerance),
                likelihood_tolerance=float(likelihood_tolerance),
                ppl_tolerance=float(ppl_tolerance),
                item_id=item_ids[n] if item_ids else None,
            )
        )
    return results


def compare(
    lm: LanguageModel,
    question: str,
    response_x: str,
    response_y: str,
    config: JudgeConfig | None = None,
    **kwargs: Any,
) -> PairwiseResult:
    """Compare one pair in both orders (see :func:`compare_batch`)."""
    return compare_batch(lm, [(question, response_x, response_y)], config, **kwargs)[0]
