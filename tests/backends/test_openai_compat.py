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


# -- many requests at once, and retries ---------------------------------------------------------


def test_batches_go_out_concurrently_bounded_and_come_back_in_order(server):
    server.delay_s = 0.2
    lm = OpenAICompatLM(server.url, "fake-model", concurrency=4)
    continuations = ["a" * k for k in range(1, 13)]  # one token per character
    scores = lm.score("Q: ", continuations)
    assert [s.text for s in scores] == continuations
    assert [len(s.token_logprobs) for s in scores] == list(range(1, 13))
    assert 1 < server.peak_in_flight <= 4
    tree = lm.score_tree("Q: ", ["x", "yy"], ["a", "bb"])
    assert [[len(s.token_logprobs) for s in row] for row in tree] == [[1, 2], [1, 2]]
    assert tree[1][0].token_logprobs == lm.score("Q: yy", ["a"])[0].token_logprobs
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=4, seed=0)
    assert len(lm.sample_batch(["p1", "p2", "p3"], params, chat=False)) == 3

    server.peak_in_flight = 0
    serial = OpenAICompatLM(server.url, "fake-model", concurrency=1)
    assert [s.token_logprobs for s in serial.score("Q: ", continuations[:4])] == [
        s.token_logprobs for s in scores[:4]
    ]
    assert server.peak_in_flight == 1


def test_one_failure_fails_the_whole_batch(server):
    server.fail_when = "Q: bad"
    lm = OpenAICompatLM(server.url, "fake-model", concurrency=4, max_attempts=1)
    with pytest.raises(BackendError, match="HTTP 500"):
        lm.score("Q: ", ["ok", "bad", "fine"])


def test_busy_replies_are_retried_with_backoff_then_named(server):
    waits: list[float] = []
    lm = OpenAICompatLM(server.url, "fake-model", sleep=waits.append, backoff_s=0.5)
    assert lm.scoring_mode() == "server_echo_text"  # detected once: echo on text, no /tokenize
    server.requests.clear()
    server.fail_next, server.retry_after = 2, "3"  # Retry-After is honoured
    assert lm.score("Q: ", ["a"])[0].text == "a"
    assert waits == [3.0, 3.0] and len(server.requests) == 3
    waits.clear()
    server.fail_next, server.fail_status, server.retry_after = 99, 429, None
    with pytest.raises(BackendError, match=r"answered HTTP 429 for /completions after 4 attempts"):
        lm.score("Q: ", ["a"])
    assert len(waits) == 3 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0
    assert server.url.removesuffix("/v1") in str(lm.display_url)
    server.fail_next, server.fail_status = 1, 400  # a client error is not retried
    with pytest.raises(BackendError, match="HTTP 400"):
        lm.score("Q: ", ["a"])


def test_an_unreachable_server_is_retried_then_a_clear_error():
    waits: list[float] = []
    lm = OpenAICompatLM("http://127.0.0.1:9/v1", "m", sleep=waits.append, max_attempts=3)
    with pytest.raises(BackendError, match=r"Could not reach the server .*3 attempt"):
        lm.score("Q: ", ["a"])
    assert len(waits) == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, "many", 10_000])
def test_concurrency_must_be_a_sensible_whole_number(value):
    from core.errors import ConfidantError

    with pytest.raises(ConfidantError, match="Concurrency must be a whole number from 1 to 512"):
        OpenAICompatLM("http://127.0.0.1:9/v1", "m", concurrency=value)
