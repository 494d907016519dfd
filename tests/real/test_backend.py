"""The transformers backend on the embedded real model: token records against a softmax of
its own logits, n samples from one generate call, a right answer, and ``choice_probs`` over
names of several tokens."""

from __future__ import annotations

import math

import pytest
import torch

from backends.base import SamplingParams

pytestmark = pytest.mark.real

QUESTION = "What is the capital of France?"
TEMPERATURE = 0.7


def _log_softmax_rows(lm, ids: list[int]) -> torch.Tensor:
    """log p(next token | ids[:i+1]) for every position, from ONE plain forward pass (no cache,
    no logits processors): row i predicts ids[i + 1]."""
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.model.device)).logits[0]
    return torch.log_softmax(logits.double(), -1)


@pytest.fixture(scope="module")
def sampled(real_lm):
    """Four answers at temperature 0.7, with every ``model.generate`` call counted."""
    calls: list[int] = []
    original = real_lm.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(real_lm.model, "generate", counting)
        params = SamplingParams(n=4, temperature=TEMPERATURE, max_new_tokens=8, seed=0)
        gens = real_lm.sample(QUESTION, params)
    return gens, calls


def test_n_samples_come_from_one_generate_call(sampled):
    gens, calls = sampled
    assert len(gens) == 4 and all(g.tokens for g in gens)
    assert calls == [4]  # one call, the prompt repeated in 4 rows


def test_token_logprobs_and_entropies_equal_a_softmax_of_the_logits(real_lm, sampled):
    gens, _ = sampled
    prompt_ids = real_lm._prompt_ids(QUESTION, True)
    checked = 0
    for g in gens:
        ids = prompt_ids + [t.token_id for t in g.tokens]
        logp = _log_softmax_rows(real_lm, ids)
        for j, tok in enumerate(g.tokens):
            row = logp[len(prompt_ids) - 1 + j]
            p = row.exp()
            entropy = float(-(p * row).sum())
            varentropy = float((p * row * row).sum()) - entropy**2
            assert tok.logprob == pytest.approx(float(row[tok.token_id]), abs=1e-4)
            assert tok.entropy == pytest.approx(entropy, abs=1e-4)
            # float32 sums over the 49,152-token vocabulary: the varentropy agrees to ~2.5e-3.
            assert tok.varentropy == pytest.approx(varentropy, abs=5e-3)
            # What was sampled from: the same logits divided by the temperature.
            sampling = torch.log_softmax(row / TEMPERATURE, -1)
            assert tok.sampling_logprob == pytest.approx(float(sampling[tok.token_id]), abs=1e-4)
            assert tok.top[0][0] == real_lm.tokenizer.decode([int(row.argmax())])
            checked += 1
        assert g.total_logprob == pytest.approx(sum(t.logprob for t in g.tokens))
    assert checked >= 8
    # A real model is sure of some tokens and unsure of others (random weights are not).
    entropies = [t.entropy for g in gens for t in g.tokens]
    assert min(entropies) < 0.5 < max(entropies)


def test_the_greedy_answer_is_right(real_lm):
    answer = real_lm.greedy(QUESTION, 12)
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"  # it ends its sentence with the end-of-turn token


ANIMAL_PROMPT = (
    "Which animal has a bill like a duck, lays eggs and lives in Australia? "
    "Answer with the animal's name only."
)
ANIMALS = ["platypus", "hippopotamus", "armadillo", "rhinoceros"]


def test_choice_probs_over_multi_token_names_equal_separate_passes(real_lm):
    pieces = {a: real_lm._encode(a) for a in ANIMALS}
    assert all(len(ids) >= 2 for ids in pieces.values()), pieces  # every name several tokens
    probs = real_lm.choice_probs(ANIMAL_PROMPT, ANIMALS)
    prompt_ids = real_lm._prompt_ids(ANIMAL_PROMPT, True)
    totals = []
    for animal in ANIMALS:
        ids = prompt_ids + pieces[animal]
        logp = _log_softmax_rows(real_lm, ids)
        per_token = [float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(pieces[animal])]
        totals.append(sum(per_token))  # log of the product of per-token probabilities
    norm = sum(math.exp(t) for t in totals)
    expected = [math.exp(t) / norm for t in totals]
    assert probs == pytest.approx(expected, abs=1e-5)
    assert sum(probs) == pytest.approx(1.0, abs=1e-9)
