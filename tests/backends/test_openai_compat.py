import math

import pytest

from backends.base import SamplingParams
from backends.openai_compat import OpenAICompatLM
from core.errors import BackendError
from tests.backends.fake_openai import LOGPROBS, TOKENS, FakeOpenAI, expected_truncated_entropy


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def test_chat_sampling_fills_token_records_and_flags_truncation(server, monkeypatch):
    monkeypatch.setenv("CONFIDANT_OPENAI_API_KEY", "sk-test-secret")
    lm = OpenAICompatLM(server.url, "fake-model", top_logprobs=3)
    gens = lm.sample(
        "Capital of France?",
        SamplingParams(n=2, temperature=0.7, max_new_tokens=8, seed=4, stop=["\n"]),
    )
    assert len(gens) == 2
    g = gens[0]
    assert g.text == "".join(TOKENS) and g.logprob_source == "server" and g.truncated
    assert [t.text for t in g.tokens] == TOKENS
    assert [t.logprob for t in g.tokens] == LOGPROBS
    for i, t in enumerate(g.tokens):
        assert t.truncated
        assert t.entropy == pytest.approx(expected_truncated_entropy(i, 3))
        assert t.top[0] == (TOKENS[i], pytest.approx(math.exp(LOGPROBS[i])))
    body = server.requests[-1]["body"]
    assert body["n"] == 2 and body["logprobs"] is True and body["top_logprobs"] == 3
    assert body["seed"] == 4 and body["stop"] == ["\n"] and body["temperature"] == 0.7
    assert server.requests[-1]["auth"] == "Bearer sk-test-secret"


def test_completion_sampling(server):
    lm = OpenAICompatLM(server.url, "fake-model", top_logprobs=2)
    g = lm.sample("x", SamplingParams(n=1), chat=False)[0]
    assert [t.logprob for t in g.tokens] == LOGPROBS
    assert g.tokens[3].entropy == pytest.approx(expected_truncated_entropy(3, 2))


def test_score_reads_echoed_prompt_logprobs(server):
    lm = OpenAICompatLM(server.url, "fake-model")
    s = lm.score("abc", ["de"])[0]
    # characters 3 and 4 of "abcde": −0.1 × (3 % 7 + 1), −0.1 × (4 % 7 + 1)
    assert s.token_logprobs == pytest.approx([-0.4, -0.5])
    probs = lm.choice_probs("abc", ["d", "de"])
    assert sum(probs) == pytest.approx(1.0) and probs[0] > probs[1]


@pytest.mark.parametrize("mode, match", [("500", "HTTP 500"), ("garbage", "not JSON")])
def test_server_failures_are_clear_errors(server, mode, match):
    server.mode = mode
    with pytest.raises(BackendError, match=match):
        OpenAICompatLM(server.url, "m").sample("x", SamplingParams())


def test_time_out_is_a_clear_error(server):
    server.mode = "slow"
    with pytest.raises(BackendError, match="did not answer in time"):
        OpenAICompatLM(server.url, "m", timeout=0.3).sample("x", SamplingParams())


def test_unreachable_server_says_how_to_fix():
    with pytest.raises(BackendError, match="Fix"):
        OpenAICompatLM("http://127.0.0.1:9/v1", "m", timeout=2).sample("x", SamplingParams())


@pytest.mark.parametrize(
    ("status", "text", "numbers"),
    [
        (400, '{"error": {"message": "This model\'s maximum context length is 4096 tokens. '
              'However, you requested 5000 tokens (4990 in the messages, 10 in the completion)."'
              ', "code": "context_length_exceeded"}}', (5000, 4096)),
        (400, "This model's maximum context length is 8,192 tokens. However, your messages "
              "resulted in 9,001 tokens.", (9001, 8192)),
        (400, '{"error": {"message": "The prompt is 3,000 tokens long; m takes at most 2,048. '
              'Shorten it."}}', (3000, 2048)),
        (400, '{"error": {"code": "context_length_exceeded"}}', (None, None)),
    ],
)  # fmt: skip
def test_context_length_replies_become_prompt_too_long_errors(status, text, numbers):
    from backends.openai_compat import context_length_error

    err = context_length_error(status, text, "m")
    assert (err.n_tokens, err.limit) == numbers and "Shorten it" in str(err)


def test_other_errors_are_not_context_length_errors():
    from backends.openai_compat import context_length_error

    assert context_length_error(400, "bad temperature", "m") is None
    assert context_length_error(500, "maximum context length is 4 tokens", "m") is None
