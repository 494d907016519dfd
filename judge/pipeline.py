"""Judging pipelines: single-answer grading, pairwise comparison in both orders, and the
consistency run of TrustJudge (Wang, Song et al., arXiv 2509.21117).

The judge writes its rationale (greedy, or sampled with a recorded seed), then the pipeline reads
its probability for every value of the scale at the score position:

- **local models** (``backends.hf.HFCausalLM``): exactly, by teacher forcing. The text up to the
  score position is ``judge prompt + rationale + "Score: ["`` and every value is scored as the
  continuation ``"<value>]"``, so a number the tokenizer splits into several tokens ("57" → "5",
  "7") is scored with all its tokens and the closing bracket: p(57) = p("5" "7" "]" | prefix). The
  prompt's KV cache is shared by every value. These are the model's raw probabilities; their sum
  is the ``mass`` the model put on the scale, and the distribution is renormalised over the scale.
- **OpenAI-compatible servers**: the top-k log-probabilities at the score token of the generated
  judgement, as TrustJudge's code reads them; values outside the top-k get 0 and the result is
  flagged ``truncated``. Only values that are a single token can be seen this way.

Pairwise comparison reads the verdict distribution over A / B / C the same way in both
presentation orders, and the perplexity of each order's judgement for the PPL rule.

Heavy statistics (rationales, distributions, verdict probabilities, perplexities) are computed
once into result dataclasses; every score and relation is a cheap function of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from backends.base import ConfidantError, Generation, LanguageModel, SamplingParams, TokenRecord
from judge.consistency import conflicting_pairs, non_transitivity_ratio
from judge.prompts import (
    SCALES,
    SCORE_CLOSE,
    SCORE_MARKER,
    VERDICT_LETTERS,
    VERDICT_MARKER,
    grading_prompt,
    pairwise_prompt,
    rationale_of,
    score_prefix,
    score_values,
    verdict_prefix,
)
from judge.trustjudge import (
    ScoreSummary,
    clean_token,
    judgement_perplexity,
    pairwise_relation,
    ppl_relation,
    rescale_score,
    score_summary,
)

Progress = Callable[[float, str], None]
RELATION_RULES = ("baseline", "likelihood", "ppl")
NTR_SIZES = (3, 4, 5)
# Reference code: look at most this many positions past "[" for the closing "]".
_BRACKET_LOOKAHEAD = 5


def _is_http(lm: Any) -> bool:
    from backends.openai_compat import OpenAICompatLM

    return isinstance(lm, OpenAICompatLM)


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass
class JudgeConfig:
    """How the judge is run. ``temperature`` is the rationale's decoding temperature (0 =
    greedy); ``seed`` seeds the rationale and the draw of the emitted score or verdict when
    sampling; ``trustjudge_temperature`` is T of the TrustJudge score; ``top_logprobs`` the k
    asked of an OpenAI-compatible server."""

    scale: int = 5
    direct: bool = False
    temperature: float = 0.0
    max_new_tokens: int = 256
    seed: int = 0
    trustjudge_temperature: float = 0.2
    top_logprobs: int = 20

    def validate(self) -> JudgeConfig:
        if self.scale not in SCALES:
            raise ConfidantError(f"the scale must be one of {SCALES} points, got {self.scale!r}")
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 5.0):
            raise ConfidantError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not 1 <= int(self.max_new_tokens) <= 4096:
            raise ConfidantError(
                f"max new tokens must be between 1 and 4096, got {self.max_new_tokens}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ConfidantError(f"the seed must be an integer, got {self.seed!r}")
        t = self.trustjudge_temperature
        if not (math.isfinite(t) and t > 0.0):
            raise ConfidantError(f"the TrustJudge temperature must be positive, got {t!r}")
        if not 1 <= int(self.top_logprobs) <= 20:
            raise ConfidantError(f"top log-probabilities must be 1..20, got {self.top_logprobs}")
        self.seed = int(self.seed)
        self.max_new_tokens = int(self.max_new_tokens)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JudgeConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _params(config: JudgeConfig, marker: str) -> SamplingParams:
    return SamplingParams(
        n=1,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop=[marker],
    ).validate()


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
        """One score: "emitted", "argmax", "geval", "expectation" or "trustjudge"."""
        if self.summary is None:
            return None
        if method == "emitted":
            return float(self.summary.first)
        if method in ("argmax", "geval", "expectation", "trustjudge"):
            return float(getattr(self.summary, method))
        raise ConfidantError(f"unknown score {method!r}")

    def scores(self) -> dict[str, Any]:
        """Every score and statistic, for storing beside a human judgement."""
        if self.summary is None:
            return {"scale": self.scale, "scored": False}
        s = self.summary
        return {
            "scale": self.scale,
            "scored": True,
            "emitted": s.first,
            "argmax": s.argmax,
            "geval": s.geval,
            "expectation": s.expectation,
            "trustjudge": s.trustjudge,
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


def _emitted_first(raw: Mapping[Any, float], emitted: Any) -> dict:
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


def _emit(raw: Mapping[Any, float], config: JudgeConfig, index: int) -> Any:
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


def _generate(
    lm: LanguageModel, prompts: Sequence[str], config: JudgeConfig, marker: str
) -> list[Generation]:
    if config.direct:
        return [Generation(text="", tokens=[], finish_reason="stop") for _ in prompts]
    return [g[0] for g in lm.sample_batch(list(prompts), _params(config, marker))]


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
    if _is_http(lm):
        return [
            _grade_http(lm, prompts[i], q, r, config, i, item_ids[i] if item_ids else None)
            for i, (q, r) in enumerate(items)
        ]
    if progress:
        progress(0.0, f"writing {len(prompts)} rationale(s)")
    generations = _generate(lm, prompts, config, SCORE_MARKER)
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
        emitted = _emit(raw, config, i)
        notes = []
        summary = None
        if emitted is None:
            notes.append("the judge gave no probability to any value of the scale")
        else:
            raw = _emitted_first(raw, emitted)
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
            )
        )
    return results


def _sample_with_top(lm, prompt: str, config: JudgeConfig) -> Generation:
    params = SamplingParams(
        n=1, temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed
    ).validate()
    return lm.sample_with_top(prompt, params, top_logprobs=config.top_logprobs)[0]


def _grade_http(lm, prompt, question, response, config, index, item_id) -> GradeResult:
    gen = _sample_with_top(lm, prompt, config)
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
    (:func:`judge.trustjudge.pairwise_relation`, :func:`judge.trustjudge.ppl_relation`)."""
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
    emitted = _emit(raw, config, index)
    perplexity = None
    n_tokens = 0
    if emitted is not None:
        raw = _emitted_first(raw, emitted)
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
    )


def _read_verdict_http(lm, prompt: str, config: JudgeConfig) -> VerdictRead:
    gen = _sample_with_top(lm, prompt, config)
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
    if _is_http(lm):
        reads = [_read_verdict_http(lm, p, config) for p in prompts]
    else:
        if progress:
            progress(0.0, f"writing {len(prompts)} judgement(s)")
        generations = _generate(lm, prompts, config, VERDICT_MARKER)
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


# ----------------------------------------------------------------------------------------------
# Consistency run
# ----------------------------------------------------------------------------------------------


@dataclass
class ConsistencyConfig:
    """A consistency run: baseline and G-Eval scores on ``baseline_scale`` (5 points in
    TrustJudge), TrustJudge scores on ``trustjudge_scale`` (100 points) rescaled to the baseline
    scale; ``tolerance`` δ in baseline-scale points; NTR_k for every k in ``ks``."""

    judge: JudgeConfig = field(default_factory=JudgeConfig)
    baseline_scale: int = 5
    trustjudge_scale: int = 100
    tolerance: float = 0.0
    likelihood_tolerance: float = 0.0
    ppl_tolerance: float = 0.0
    ks: tuple[int, ...] = NTR_SIZES

    def validate(self) -> ConsistencyConfig:
        self.judge.validate()
        for scale in (self.baseline_scale, self.trustjudge_scale):
            if scale not in SCALES:
                raise ConfidantError(f"scales must be one of {SCALES}, got {scale!r}")
        for name in ("tolerance", "likelihood_tolerance", "ppl_tolerance"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0.0):
                raise ConfidantError(f"{name.replace('_', ' ')} must be non-negative, got {v!r}")
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or any(k < 3 for k in self.ks):
            raise ConfidantError(f"NTR sizes must be at least 3, got {self.ks!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ks"] = list(self.ks)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyConfig:
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["judge"] = JudgeConfig.from_dict(d["judge"])
        fields["ks"] = tuple(d.get("ks", NTR_SIZES))
        return cls(**fields)


@dataclass
class QuestionRun:
    """One question's candidates, their grades on each scale and every pair in both orders."""

    question_id: str
    category: str
    question: str
    candidate_ids: list[str]
    grades: dict[int, list[GradeResult]]  # scale → one grade per candidate
    pairs: list[tuple[int, int, PairwiseResult]]

    def relations(self, rule: str) -> dict[tuple[int, int], int]:
        return {
            (i, j): p.relations[rule] for i, j, p in self.pairs if p.relations[rule] is not None
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "category": self.category,
            "question": self.question,
            "candidate_ids": self.candidate_ids,
            "grades": {str(s): [g.to_dict() for g in gs] for s, gs in self.grades.items()},
            "pairs": [[i, j, p.to_dict()] for i, j, p in self.pairs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuestionRun:
        return cls(
            question_id=d["question_id"],
            category=d.get("category", ""),
            question=d["question"],
            candidate_ids=list(d["candidate_ids"]),
            grades={
                int(s): [GradeResult.from_dict(g) for g in gs] for s, gs in d["grades"].items()
            },
            pairs=[(int(i), int(j), PairwiseResult.from_dict(p)) for i, j, p in d["pairs"]],
        )


# (method, the single score it uses for CR, the pairwise rule it uses for NTR)
CONSISTENCY_METHODS = (
    ("baseline", "emitted", "baseline"),
    ("geval", "geval", None),
    ("trustjudge", "trustjudge", "likelihood"),
    ("trustjudge_ppl", None, "ppl"),
)
METHOD_LABELS = {
    "baseline": "Baseline",
    "geval": "G-Eval",
    "trustjudge": "TrustJudge",
    "trustjudge_ppl": "TrustJudge (PPL)",
}


@dataclass
class ConsistencyRow:
    """One method's Conflict Ratio and NTR_k (pooled over questions); None where the method
    has no score or no pairwise rule."""

    method: str
    score: str | None
    relation: str | None
    conflict_ratio: float | None
    conflicts: int
    compared: int
    ntr: dict[int, dict[str, Any]]  # k → NonTransitivity.to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ntr"] = {str(k): v for k, v in self.ntr.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyRow:
        return cls(**{**d, "ntr": {int(k): v for k, v in d["ntr"].items()}})


@dataclass
class ConsistencyResult:
    model: str
    config: ConsistencyConfig
    questions: list[QuestionRun]
    table: list[ConsistencyRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "consistency",
            "model": self.model,
            "config": self.config.to_dict(),
            "questions": [q.to_dict() for q in self.questions],
            "table": [r.to_dict() for r in self.table],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyResult:
        return cls(
            model=d["model"],
            config=ConsistencyConfig.from_dict(d["config"]),
            questions=[QuestionRun.from_dict(q) for q in d["questions"]],
            table=[ConsistencyRow.from_dict(r) for r in d["table"]],
        )


def _single_scores(run: QuestionRun, score: str, config: ConsistencyConfig) -> list[float | None]:
    scale = config.trustjudge_scale if score == "trustjudge" else config.baseline_scale
    out: list[float | None] = []
    for g in run.grades[scale]:
        value = g.score(score)
        if value is not None and scale != config.baseline_scale:
            value = rescale_score(value, scale, config.baseline_scale)
        out.append(value)
    return out


def consistency_table(
    questions: Sequence[QuestionRun], config: ConsistencyConfig
) -> list[ConsistencyRow]:
    """Conflict Ratio and NTR_k per method, pooled over questions (TrustJudge, arXiv
    2509.21117, Defs. 2.1 and 2.2).

    CR compares each method's single scores with the baseline two-pass pairwise relations, as
    the reference code does (only the scoring method varies); TrustJudge's scores are on its
    own scale rescaled to the baseline scale, so δ is in baseline points. NTR_k counts k-subsets
    with a violating triple under each pairwise rule (baseline; likelihood for TrustJudge; PPL),
    circular and equivalence violations counted separately.
    """
    rows = []
    for method, score, rule in CONSISTENCY_METHODS:
        conflicts = compared = 0
        if score is not None:
            for run in questions:
                found, n = conflicting_pairs(
                    _single_scores(run, score, config), run.relations("baseline"), config.tolerance
                )
                conflicts += len(found)
                compared += n
        ntr: dict[int, dict[str, Any]] = {}
        if rule is not None:
            for k in config.ks:
                pooled = None
                for run in questions:
                    n = len(run.candidate_ids)
                    if n < k:
                        continue
                    counts = non_transitivity_ratio(run.relations(rule), n, k)
                    pooled = counts if pooled is None else pooled + counts
                if pooled is not None:
                    ntr[k] = pooled.to_dict()
        rows.append(
            ConsistencyRow(
                method=method,
                score=score,
                relation=rule,
                conflict_ratio=conflicts / compared if compared else None,
                conflicts=conflicts,
                compared=compared,
                ntr=ntr,
            )
        )
    return rows


def run_consistency(
    lm: LanguageModel,
    questions: Sequence[Mapping[str, Any]],
    config: ConsistencyConfig | None = None,
    *,
    progress: Progress | None = None,
) -> ConsistencyResult:
    """The consistency run on questions with several candidates (demo-set layout): every
    candidate graded on each scale, every pair i < j compared in both orders, then
    :func:`consistency_table`."""
    config = (config or ConsistencyConfig()).validate()
    if not questions:
        raise ConfidantError("a consistency run needs at least one question")
    scales = sorted({config.baseline_scale, config.trustjudge_scale})
    runs = []
    steps = len(questions) * (len(scales) + 1)
    step = 0
    for q in questions:
        cands = q["candidates"]
        if len(cands) < 3:
            raise ConfidantError(
                f"question {q.get('question_id')!r} has {len(cands)} candidates; NTR needs 3"
            )
        texts = [c["text"] for c in cands]
        grades = {}
        for scale in scales:
            if progress:
                progress(step / steps, f"{q['question_id']}: grading on 1..{scale}")
            step += 1
            cfg = JudgeConfig.from_dict({**config.judge.to_dict(), "scale": scale})
            grades[scale] = grade_batch(
                lm,
                [(q["question"], t) for t in texts],
                cfg,
                item_ids=[c["candidate_id"] for c in cands],
            )
        if progress:
            progress(step / steps, f"{q['question_id']}: comparing pairs in both orders")
        step += 1
        index_pairs = list(combinations(range(len(cands)), 2))
        compared = compare_batch(
            lm,
            [(q["question"], texts[i], texts[j]) for i, j in index_pairs],
            config.judge,
            likelihood_tolerance=config.likelihood_tolerance,
            ppl_tolerance=config.ppl_tolerance,
            item_ids=[
                f"{cands[i]['candidate_id']}|{cands[j]['candidate_id']}" for i, j in index_pairs
            ],
        )
        runs.append(
            QuestionRun(
                question_id=str(q["question_id"]),
                category=str(q.get("category", "")),
                question=q["question"],
                candidate_ids=[c["candidate_id"] for c in cands],
                grades=grades,
                pairs=[(i, j, p) for (i, j), p in zip(index_pairs, compared, strict=True)],
            )
        )
    if progress:
        progress(1.0, "computing Conflict Ratio and NTR_k")
    return ConsistencyResult(
        model=lm.model_id, config=config, questions=runs, table=consistency_table(runs, config)
    )
