"""The judge's exact score distribution on the embedded real model, whose tokenizer splits
numbers into digits ("57" is "5" "7"): every value's probability, all its tokens included,
equals a separate teacher-forced pass of that value after the same prefix."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import DynamicCache

from judge.config import JudgeConfig
from judge.grading import grade
from judge.prompts import SCORE_CLOSE, score_prefix

pytestmark = pytest.mark.real

QUESTION = "What is the capital of France?"
RESPONSE = "The capital of France is Paris."


def test_the_tokenizer_splits_numbers_into_digits(real_lm):
    enc = real_lm._encode
    assert [real_lm.tokenizer.decode([t]) for t in enc("57]")] == ["5", "7", "]"]
    assert len(enc("100]")) == 4 and enc("100") == enc("1") + enc("0") + enc("0")


def _prefix_state(lm, result):
    """The judge's text up to the score position, run once: (its ids, log p(next), cache)."""
    ids = lm._prompt_ids(result.prompt, True) + lm._encode(score_prefix(result.rationale))
    # The text the model sees, tokenized whole, is the same sequence.
    whole = lm.format_prompt(result.prompt) + score_prefix(result.rationale)
    assert lm.tokenizer(whole, add_special_tokens=False).input_ids == ids
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=True)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    return ids, torch.log_softmax(out.logits[0, -1].double(), -1), cache


def _separate_passes(lm, last_logp, cache, continuations: list[str]) -> dict[str, float]:
    """p(continuation | prefix) for each continuation, every token's probability multiplied:
    each continuation is its own row after the prefix's cache (rows of one length share a
    batch, so no padding or custom mask is involved)."""
    by_length: dict[int, list[tuple[str, list[int]]]] = {}
    for text in continuations:
        ids = lm._encode(text)
        by_length.setdefault(len(ids), []).append((text, ids))
    out = {}
    for rows in by_length.values():
        batch = torch.tensor([ids for _, ids in rows])
        layers = [(k.expand(len(rows), *k.shape[1:]), v.expand(len(rows), *v.shape[1:]))
                  for k, v, *_ in cache]  # fmt: skip
        with torch.inference_mode():
            logits = lm.model(input_ids=batch, cache=DynamicCache(layers), use_cache=True).logits
        logp = torch.log_softmax(logits.double(), -1)
        for b, (text, ids) in enumerate(rows):
            later = sum(float(logp[b, j - 1, ids[j]]) for j in range(1, len(ids)))
            out[text] = math.exp(float(last_logp[ids[0]]) + later)
    return out


@pytest.mark.parametrize("scale", [5, 100])
def test_exact_score_distribution_equals_separate_passes(real_lm, scale):
    result = grade(real_lm, QUESTION, RESPONSE, JudgeConfig(scale=scale, direct=True))
    assert result.source == "exact" and not result.truncated
    assert sorted(result.raw) == list(range(1, scale + 1))
    _, last_logp, cache = _prefix_state(real_lm, result)
    values = range(1, scale + 1)
    passes = _separate_passes(real_lm, last_logp, cache, [f"{v}{SCORE_CLOSE}" for v in values])
    expected = {v: passes[f"{v}{SCORE_CLOSE}"] for v in values}
    for v in expected:
        assert result.raw[v] == pytest.approx(expected[v], rel=1e-3, abs=1e-9), v
    mass = sum(expected.values())
    assert sum(result.raw.values()) == pytest.approx(mass, rel=1e-3)
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert result.distribution[scale] == pytest.approx(expected[scale] / mass, rel=1e-3)
    # A real judge puts a good share of its next-token mass on the scale's values.
    assert mass > 0.1
