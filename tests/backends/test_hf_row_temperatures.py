"""Answers at different temperatures in one batch (``sample_batch(..., temperatures=)``)."""

import pytest
import torch

from backends.base import SamplingParams
from core.errors import ConfidantError


def test_each_prompt_is_sampled_at_its_own_temperature_in_one_generate_call(
    tiny_lm, generate_calls
):
    calls = generate_calls
    temps = [1.0, 0.1, 2.0]
    out = tiny_lm.sample_batch(
        ["Who wrote Hamlet?"] * 3,
        SamplingParams(n=2, max_new_tokens=5, seed=4),
        temperatures=temps,
    )
    assert calls == [6] and [len(x) for x in out] == [2, 2, 2]
    prompt_ids = tiny_lm._prompt_ids("Who wrote Hamlet?", True)
    for gens, temp in zip(out, temps, strict=True):
        for g in gens:
            ids = list(prompt_ids)
            for tok in g.tokens:
                with torch.no_grad():
                    logits = tiny_lm.model(input_ids=torch.tensor([ids])).logits[0, -1].double()
                raw = torch.log_softmax(logits, -1)
                samp = torch.log_softmax(logits / temp, -1)
                assert tok.logprob == pytest.approx(float(raw[tok.token_id]), abs=1e-4)
                assert tok.sampling_logprob == pytest.approx(float(samp[tok.token_id]), abs=1e-4)
                ids.append(tok.token_id)


def test_per_prompt_temperatures_are_validated(tiny_lm):
    params = SamplingParams(n=1, max_new_tokens=2, seed=0)
    with pytest.raises(ConfidantError, match="temperatures"):
        tiny_lm.sample_batch(["a", "b"], params, temperatures=[1.0, 0.0])
    with pytest.raises(ValueError, match="2 temperatures for 1 prompts"):
        tiny_lm.sample_batch(["a"], params, temperatures=[1.0, 0.5])
