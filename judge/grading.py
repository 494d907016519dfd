"""Single-answer grading: the judge's score distribution over the rating scale, exact from
scoring each rating or read from the top alternatives at the score token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backends.base import (
    Generation,
    LanguageModel,
    SamplingParams,
    TokenRecord,
    capabilities_of,
    prompt_sent,
)
from core.errors import ConfidantError
from judge.config import JudgeConfig, Progress, judge_sampling_params
from judge.prompts import (
    SCORE_CLOSE,
    SCORE_MARKER,
    grading_prompt,
    rationale_of,
    score_prefix,
    score_values,
)
from judge.scores import SCORE_BY_KEY, ScoreSummary, score_summary
from judge.verdicts import clean_token

# Reference code: look at most this many positions past "[" for the closing "]".
_BRACKET_LOOKAHEAD = 5


# ----------------------------------------------------------------------------------------------
# Reading the top-k lists of a generated judgement (OpenAI-compatible servers)
# ----------------------------------------------------------------------------------------------


def _top_map(token: TokenRecord) -> dict[str, float]:
    """The position's alternatives, keys cleaned and merged; the produced token first."""
    merged: dict[str, float] = {clean_token(token.text): 0.0}
    for text, prob in token.top:
        key = clean_token(text)
        merged[key] = merged.get(key, 0.0) + float(prob)
    if merged[clean_token(token.text)] == 0.0:  # the produced token was not among the top-k
        merged[clean_token(token.text)] = math.exp(token.logprob)
    return merged


def rating_position(tokens: Sequence[TokenRecord], allowed: Sequence[str]) -> int | None:
    """Index of the rating token in a generated judgement, or None.

    As TrustJudge's ``extract_middle_dict`` (arXiv 2509.21117): a position whose token is "[",
    a position within the next five containing "]", exactly one position between them, and that
    position's token in ``allowed``. The last such match wins (a rationale may quote a score).
    """
    allowed_set = set(allowed)
    found = None
    for i, tok in enumerate(tokens):
        if clean_token(tok.text) != "[":
            continue
        for j in range(i + 1, min(len(tokens), i + 1 + _BRACKET_LOOKAHEAD + 1)):
            if "]" in tokens[j].text:
                if j == i + 2 and clean_token(tokens[i + 1].text) in allowed_set:
                    found = i + 1
                break
    return found


def top_k_distribution(
    tokens: Sequence[TokenRecord], allowed: Sequence[str]
) -> tuple[str | None, dict[str, float]]:
    """(the produced rating, allowed value → probability from the top-k list) at the rating
    position, produced value first; (None, {}) when no rating position is found."""
    pos = rating_position(tokens, allowed)
    if pos is None:
        return None, {}
    merged = _top_map(tokens[pos])
    allowed_set = set(allowed)
    dist = {k: p for k, p in merged.items() if k in allowed_set and p > 0.0}
    total = sum(dist.values())
    if total > 1.0:  # server-side rounding of near-certain tokens
        dist = {k: p / total for k, p in dist.items()}
    return clean_token(tokens[pos].text), dist


# ----------------------------------------------------------------------------------------------
# Single-answer grading
# ----------------------------------------------------------------------------------------------


@dataclass
class GradeResult:
    """One response graded by the judge, with everything needed to recompute every score.

    ``raw`` maps each value to the judge's probability as the model gives it (unnormalised; in
    emission order, the emitted value first); ``summary`` holds every score computed from it
    (G-Eval and TrustJudge on the raw probabilities, the expectation and entropy renormalised
    over the scale). ``summary`` is None when the judgement could not be scored (an
    OpenAI-compatible server whose reply has no single-token score).
    """

    question: str
    response: str
    model: str
    config: dict[str, Any]
    prompt: str
    judgement: str
    rationale: str
    raw: dict[int, float]
    emitted: int | None
    summary: ScoreSummary | None
    source: str  # "exact" (teacher forcing) or "top_logprobs"
    truncated: bool
    judgement_tokens: int = 0
    judgement_logprob: float = 0.0
    item_id: str | None = None
    notes: list[str] = field(default_factory=list)
    # ``prompt`` as sent: chat template applied (None in results stored before it was kept)
    prompt_sent: str | None = None
    # how the backend scored (``Capabilities.scoring``: "local", "server_echo", ...)
    scoring: str | None = None

    @property
    def scale(self) -> int:
        return int(self.config["scale"])

    @property
    def distribution(self) -> dict[int, float]:
        """The judge's distribution renormalised over the scale, every value present, in
        value order (0 for values it gave no probability)."""
        mass = sum(self.raw.values())
        values = score_values(self.scale)
        if mass <= 0.0:
            return {v: 0.0 for v in values}
        return {v: self.raw.get(v, 0.0) / mass for v in values}

    def score(self, method: str) -> float | None:
        """One score: a key of :data:`judge.scores.SCORE_METHODS` ("emitted", "geval", ...)."""
        if self.summary is None:
            return None
        if method not in SCORE_BY_KEY:
            raise ConfidantError(f"unknown score {method!r}")
        return float(self.summary.scores[method])

    def scores(self) -> dict[str, Any]:
        """Every score and statistic, for storing beside a human judgement: one entry per
        score method, then TrustJudge's temperature, the entropy and the mass."""
        if self.summary is None:
            return {"scale": self.scale, "scored": False}
        s = self.summary
        return {
            "scale": self.scale,
            "scored": True,
            **s.scores,
            "trustjudge_temperature": s.temperature,
            "entropy": s.entropy,
            "mass": s.mass,
            "truncated": self.truncated,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = "grade"
        d["raw"] = [[int(v), float(p)] for v, p in self.raw.items()]  # keeps emission order
        d["summary"] = self.summary.to_dict() if self.summary is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GradeResult:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["raw"] = {int(v): float(p) for v, p in d["raw"]}
        fields["summary"] = ScoreSummary.from_dict(d["summary"]) if d.get("summary") else None
        fields["notes"] = list(d.get("notes", []))
        return cls(**fields)


def emitted_first(raw: Mapping[Any, float], emitted: Any) -> dict:
    out = {emitted: raw[emitted]} if emitted in raw else {}
    out.update({k: p for k, p in raw.items() if k != emitted})
    return out


def _exact_probabilities(
    lm: LanguageModel, prompt: str, prefix: str, options: Sequence[str]
) -> list[float]:
    """p(option + "]" | prompt, prefix) for each option, every token included, one shared
    prompt cache (``score_tree`` with one suffix)."""
    rows = lm.score_tree(prompt, [prefix], [f"{o}{SCORE_CLOSE}" for o in options])[0]
    probs = [math.exp(r.total_logprob) for r in rows]
    total = sum(probs)
    if total > 1.0:  # float rounding when the model puts all its mass on the options
        probs = [p / total for p in probs]
    return probs


def emitted_value(raw: Mapping[Any, float], config: JudgeConfig, index: int) -> Any:
    """The value the judge emits when decoding goes on as the rationale did: the most likely
    one when greedy, else a seeded draw (seed + index) from the distribution."""
    positive = {k: p for k, p in raw.items() if p > 0.0}
    if not positive:
        return None
    keys = list(positive)
    probs = np.array([positive[k] for k in keys])
    if config.temperature == 0.0:
        return keys[int(np.argmax(probs))]
    rng = np.random.default_rng(config.seed + index)
    return keys[int(rng.choice(len(keys), p=probs / probs.sum()))]


def generate_judgements(
    lm: LanguageModel, prompts: Sequence[str], config: JudgeConfig, marker: str
) -> list[Generation]:
    if config.direct:
        return [Generation(text="", tokens=[], finish_reason="stop") for _ in prompts]
    return [g[0] for g in lm.sample_batch(list(prompts), judge_sampling_params(config, marker))]


def grade_batch(
    lm: LanguageModel,
    items: Sequence[tuple[str, str]],
    config: JudgeConfig | None = None,
    *,
    item_ids: Sequence[str | None] | None = None,
    progress: Progress | None = None,
) -> list[GradeResult]:
    """Grade each (question, response) on ``config.scale`` (TrustJudge §3, single-answer
    grading); rationales are generated in batched calls, then each distribution is read
    (see the module docstring)."""
    config = (config or JudgeConfig()).validate()
    if item_ids is not None and len(item_ids) != len(items):
        raise ConfidantError("item_ids must have one id per item")
    prompts = [grading_prompt(q, r, config.scale, config.direct) for q, r in items]
    caps = capabilities_of(lm)
    if not caps.exact_scoring:
        return [
            _grade_http(lm, prompts[i], q, r, config, i, item_ids[i] if item_ids else None)
            for i, (q, r) in enumerate(items)
        ]
    if progress:
        progress(0.0, f"writing {len(prompts)} rationale(s)")
    generations = generate_judgements(lm, prompts, config, SCORE_MARKER)
    values = score_values(config.scale)
    results = []
    for i, ((question, response), prompt, gen) in enumerate(
        zip(items, prompts, generations, strict=True)
    ):
        if progress:
            progress(i / max(1, len(items)), f"scoring {i + 1}/{len(items)}")
        rationale = rationale_of(gen.text)
        probs = _exact_probabilities(lm, prompt, score_prefix(rationale), [str(v) for v in values])
        raw = {v: p for v, p in zip(values, probs, strict=True)}
        emitted = emitted_value(raw, config, i)
        notes = []
        summary = None
        if emitted is None:
            notes.append("the judge gave no probability to any value of the scale")
        else:
            raw = emitted_first(raw, emitted)
            summary = score_summary(raw, config.trustjudge_temperature, config.scale)
        results.append(
            GradeResult(
                question=question,
                response=response,
                model=lm.model_id,
                config=config.to_dict(),
                prompt=prompt,
                judgement=gen.text,
                rationale=rationale,
                raw=raw,
                emitted=emitted,
                summary=summary,
                source="exact",
                truncated=False,
                judgement_tokens=len(gen.tokens),
                judgement_logprob=gen.total_logprob,
                item_id=item_ids[i] if item_ids else None,
                notes=notes,
                prompt_sent=prompt_sent(lm, prompt),
                scoring=caps.scoring,
            )
        )
    return results


def sample_with_top(lm, prompt: str, config: JudgeConfig) -> Generation:
    params = SamplingParams(
        n=1, temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed
    ).validate()
    return lm.sample_with_top(prompt, params, top_logprobs=config.top_logprobs)[0]


def _grade_http(lm, prompt, question, response, config, index, item_id) -> GradeResult:
    gen = sample_with_top(lm, prompt, config)
    produced, dist = top_k_distribution(gen.tokens, [str(v) for v in score_values(config.scale)])
    raw = {int(k): p for k, p in dist.items()}
    notes = [f"top-{config.top_logprobs} log-probabilities only: values outside them count 0"]
    summary = None
    emitted = int(produced) if produced is not None else None
    if emitted is None or not raw:
        notes.append("no single-token score in square brackets was found in the judgement")
        raw = {}
        emitted = None
    else:
        summary = score_summary(raw, config.trustjudge_temperature, config.scale)
    return GradeResult(
        question=question,
        response=response,
        model=lm.model_id,
        config=config.to_dict(),
        prompt=prompt,
        judgement=gen.text,
        rationale=rationale_of(gen.text),
        raw=raw,
        emitted=emitted,
        summary=summary,
        source="top_logprobs",
        truncated=True,
        judgement_tokens=len(gen.tokens),
        judgement_logprob=gen.total_logprob,
        item_id=item_id,
        notes=notes,
        prompt_sent=prompt_sent(lm, prompt),
        scoring=capabilities_of(lm).scoring,
    )


def grade(
    lm: LanguageModel,
    question: str,
    response: str,
    config: JudgeConfig | None = None,
    *,
    item_id: str | None = None,
) -> GradeResult:
    """Grade one response (see :func:`grade_batch`)::

    result = grade(lm, "Why is the sky blue?", "Rayleigh scattering.", JudgeConfig(scale=100))
    result.distribution[57], result.summary.trustjudge
    """
    return grade_batch(lm, [(question, response)], config, item_ids=[item_id])[0]
