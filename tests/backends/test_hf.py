import math

import numpy as np
import pytest
import torch

from backends.base import SamplingParams
from backends.hf import HFCausalLM, entropy_and_varentropy
from core.errors import ModelLoadError


def _manual_next_token_logp(lm, ids):
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    return torch.log_softmax(logits, -1)


def test_token_records_match_a_softmax_computed_by_hand(tiny_lm):
    params = SamplingParams(n=2, temperature=0.7, top_k=40, max_new_tokens=8, seed=3)
    gens = tiny_lm.sample("Who wrote Hamlet?", params)
    prompt_ids = tiny_lm._prompt_ids("Who wrote Hamlet?", True)
    for g in gens:
        ids = list(prompt_ids)
        for tok in g.tokens:
            logp = _manual_next_token_logp(tiny_lm, ids)
            p = logp.exp()
            h = float(-(p * logp).sum())
            v = float((p * logp * logp).sum()) - h * h
            assert tok.logprob == pytest.approx(float(logp[tok.token_id]), abs=1e-4)
            assert tok.entropy == pytest.approx(h, abs=1e-4)
            assert tok.varentropy == pytest.approx(v, abs=1e-3)
            top = torch.topk(p, 5)
            assert [t for t, _ in tok.top][0] == tiny_lm.tokenizer.decode([int(top.indices[0])])
            assert tok.top[0][1] == pytest.approx(float(top.values[0]), abs=1e-5)
            # Sampling distribution: temperature 0.7 then top-40, renormalised.
            scaled = torch.log_softmax(logp / 0.7, -1)
            kth = torch.topk(scaled, 40).values[-1]
            kept = torch.where(scaled >= kth, scaled, torch.tensor(-math.inf, dtype=scaled.dtype))
            samp = torch.log_softmax(kept, -1)
            assert tok.sampling_logprob == pytest.approx(float(samp[tok.token_id]), abs=1e-4)
            ids.append(tok.token_id)
        assert g.total_logprob == pytest.approx(sum(t.logprob for t in g.tokens))


def test_n_samples_come_from_one_generate_call(tiny_lm, generate_calls):
    calls = generate_calls
    gens = tiny_lm.sample("hi", SamplingParams(n=7, max_new_tokens=5, seed=1))
    assert len(gens) == 7
    assert calls == [7]


def test_sample_batch_covers_every_prompt_in_one_call(tiny_lm, generate_calls):
    calls = generate_calls
    out = tiny_lm.sample_batch(
        ["a", "a longer prompt here"], SamplingParams(n=3, max_new_tokens=4, seed=2)
    )
    assert [len(x) for x in out] == [3, 3]
    assert calls == [6]


def test_same_seed_same_samples_and_seed_is_recorded(tiny_lm):
    a = tiny_lm.sample("x", SamplingParams(n=3, max_new_tokens=6, seed=11))
    b = tiny_lm.sample("x", SamplingParams(n=3, max_new_tokens=6, seed=11))
    assert [g.text for g in a] == [g.text for g in b]
    params = SamplingParams(n=1, max_new_tokens=3)
    tiny_lm.sample("x", params)
    assert isinstance(params.seed, int)


def test_greedy_is_the_argmax_path(tiny_lm):
    g = tiny_lm.greedy("Is it a mammal?", max_new_tokens=6)
    ids = tiny_lm._prompt_ids("Is it a mammal?", True)
    for tok in g.tokens:
        logp = _manual_next_token_logp(tiny_lm, ids)
        assert tok.token_id == int(logp.argmax())
        assert tok.sampling_logprob == 0.0
        ids.append(tok.token_id)


def test_stop_string_is_excluded_from_the_answer(tiny_lm):
    free = tiny_lm.greedy("Score:", max_new_tokens=12)
    assert len(free.text) > 3
    stop = free.text[2:4]
    g = tiny_lm.greedy("Score:", max_new_tokens=12, stop=[stop])
    assert stop not in g.text
    assert free.text.startswith(g.text)
    assert g.finish_reason == "stop"
    assert "".join(t.text for t in g.tokens) == g.text


def test_token_pieces_concatenate_to_the_answer(tiny_lm):
    for g in tiny_lm.sample("Numbers:", SamplingParams(n=4, max_new_tokens=16, seed=5)):
        assert "".join(t.text for t in g.tokens) == g.text


def test_score_matches_token_by_token_computation(tiny_lm):
    prompt = "Score: ["
    conts = ["42]", "7]", "100]"]
    scores = tiny_lm.score(prompt, conts)
    base = tiny_lm._prompt_ids(prompt, True)
    for c, s in zip(conts, scores, strict=True):
        ids = list(base)
        expected = 0.0
        for t in tiny_lm._encode(c):
            expected += float(_manual_next_token_logp(tiny_lm, ids)[t])
            ids.append(t)
        assert s.total_logprob == pytest.approx(expected, abs=1e-3)
        assert len(s.token_logprobs) == len(tiny_lm._encode(c))


def test_score_tree_matches_separate_scoring(tiny_lm):
    tree = tiny_lm.score_tree(
        "Q: Is it a mammal?", [" A: yes.", " A: no."], [" cat", " dog"], max_rows=3
    )
    for si, suffix in enumerate([" A: yes.", " A: no."]):
        ids = tiny_lm._prompt_ids("Q: Is it a mammal?", True) + tiny_lm._encode(suffix)
        for ci, cont in enumerate([" cat", " dog"]):
            run, expected = list(ids), 0.0
            for t in tiny_lm._encode(suffix + cont)[len(tiny_lm._encode(suffix)) :]:
                expected += float(_manual_next_token_logp(tiny_lm, run)[t])
                run.append(t)
            assert tree[si][ci].total_logprob == pytest.approx(expected, abs=1e-3)


def test_choice_probs_are_exact_and_normalised(tiny_lm):
    options = [" cat", " eagle", " Shakespeare"]
    probs = tiny_lm.choice_probs("The animal is:", options)
    totals = np.array([s.total_logprob for s in tiny_lm.score("The animal is:", options)])
    expected = np.exp(totals - totals.max())
    expected /= expected.sum()
    assert sum(probs) == pytest.approx(1.0)
    assert np.allclose(probs, expected)
    assert len(tiny_lm._encode(" Shakespeare")) > 1


def test_entropy_and_varentropy_handle_masked_tokens():
    logp = torch.log_softmax(torch.tensor([[0.0, 0.0, -math.inf, -math.inf]]), -1)
    h, v = entropy_and_varentropy(logp)
    assert float(h) == pytest.approx(math.log(2))
    assert float(v) == pytest.approx(0.0, abs=1e-9)


def test_a_model_that_cannot_load_says_how_to_fix_it(tmp_path):
    lm = HFCausalLM(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="Fix:"):
        lm.load()
    lm = HFCausalLM("no-such-org/no-such-model-xyz")
    with pytest.raises(ModelLoadError, match="hub id"):
        lm.load()


def test_untruncated_temperature_one_samples_from_the_raw_distribution(tiny_lm):
    g = tiny_lm.sample("x", SamplingParams(n=1, temperature=1.0, max_new_tokens=6, seed=9))[0]
    assert g.tokens and all(t.sampling_logprob == t.logprob for t in g.tokens)


def test_a_prompt_longer_than_the_context_window_is_a_clear_error(tiny_lm):
    from core.errors import PromptTooLongError

    limit = tiny_lm.model.config.max_position_embeddings
    with pytest.raises(PromptTooLongError, match=f"takes at most {limit:,}"):
        tiny_lm.choice_probs("word " * (limit + 10), ["A", "B"])
    with pytest.raises(PromptTooLongError):
        tiny_lm.sample("word " * (limit + 10), SamplingParams(n=1, max_new_tokens=2))
    assert len(tiny_lm.choice_probs("word " * 10, ["A", "B"])) == 2
