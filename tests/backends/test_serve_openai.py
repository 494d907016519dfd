"""The OpenAI-compatible backend against a real server process on 127.0.0.1:
``python -m cli serve`` serving the tiny model. What ``OpenAICompatLM`` reads back
over HTTP must equal what the local ``HFCausalLM`` computes for the same model."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from backends.base import SamplingParams
from backends.openai_compat import OpenAICompatLM
from backends.serve_openai import create_app
from core.errors import BackendError
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
NAME = "tiny"


@pytest.fixture(scope="module")
def server_url(tiny_lm_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("CONFIDANT_SERVE_API_KEY", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--model",
                str(tiny_lm_dir),
                "--served-model-name",
                NAME,
                "--port",
                str(port),
                "--device",
                "cpu",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def remote(server_url):
    return OpenAICompatLM(server_url, NAME, top_logprobs=5)


def assert_same_generation(remote_gen, local_gen, *, keyed_by_text: bool = False):
    """Same text, tokens, log-probabilities and alternatives. ``keyed_by_text``: the legacy
    completions format sends alternatives as a dict keyed by token text, so two ids that decode
    alike (partial UTF-8 bytes, shown as U+FFFD) arrive as one entry."""
    assert remote_gen.text == local_gen.text
    assert [t.text for t in remote_gen.tokens] == [t.text for t in local_gen.tokens]
    for r, loc in zip(remote_gen.tokens, local_gen.tokens, strict=True):
        assert r.logprob == pytest.approx(loc.logprob, abs=1e-6)
        if not keyed_by_text:
            assert [t for t, _ in r.top] == [t for t, _ in loc.top]
            assert [p for _, p in r.top] == pytest.approx([p for _, p in loc.top], abs=1e-6)
        else:
            texts = [t for t, _ in loc.top]
            assert {t for t, _ in r.top} == set(texts)
            unique = {t: p for t, p in loc.top if texts.count(t) == 1}
            got = {t: p for t, p in r.top if t in unique}
            assert got == pytest.approx(unique, abs=1e-6)
    assert remote_gen.finish_reason == local_gen.finish_reason
    assert remote_gen.truncated and remote_gen.logprob_source == "server"


def test_models_route_names_the_served_model(server_url):
    data = httpx.get(server_url + "/models", timeout=10).json()
    assert [m["id"] for m in data["data"]] == [NAME]


def test_greedy_chat_answer_and_logprobs_equal_the_local_backend(remote, tiny_lm):
    question = "Who wrote Hamlet?"
    assert_same_generation(remote.greedy(question, 12), tiny_lm.greedy(question, 12))


def test_seeded_samples_and_stop_strings_equal_the_local_backend(remote, tiny_lm):
    for chat in (True, False):
        params = dict(n=3, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=11)
        got = remote.sample("Is it a mammal?", SamplingParams(**params), chat=chat)
        want = tiny_lm.sample("Is it a mammal?", SamplingParams(**params), chat=chat)
        assert len(got) == 3
        for g, w in zip(got, want, strict=True):
            assert_same_generation(g, w, keyed_by_text=not chat)
    stop = SamplingParams(n=1, temperature=0.0, max_new_tokens=24, seed=0, stop=["e"])
    (got,) = remote.sample("The capital of France is", stop)
    (want,) = tiny_lm.sample("The capital of France is", stop)
    assert_same_generation(got, want)


def test_score_matches_the_local_score_up_to_tokenisation(remote, tiny_lm):
    prompt = "The capital of France is"
    continuations = [" Paris", " Rome is big.", " 1969"]
    got = remote.score(prompt, continuations, chat=False)
    want = tiny_lm.score(prompt, continuations, chat=False)
    for g, w in zip(got, want, strict=True):
        # Tokenised together or apart, a continuation that starts at a word boundary splits
        # into the same tokens, so every log-probability must agree.
        assert g.tokens == w.tokens
        assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-4)
    probs = remote.choice_probs(prompt, [" Paris", " Rome"], chat=False)
    assert probs == pytest.approx(tiny_lm.choice_probs(prompt, [" Paris", " Rome"], chat=False))


def test_more_alternatives_than_the_backend_records(server_url, tiny_lm):
    """top_logprobs up to 20: the first five are those the backend recorded while generating,
    the rest come from scoring the answer once more."""
    r = httpx.post(
        server_url + "/chat/completions",
        json={
            "model": NAME,
            "messages": [{"role": "user", "content": "Can it fly?"}],
            "temperature": 0,
            "max_tokens": 6,
            "logprobs": True,
            "top_logprobs": 12,
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["logprobs"]["content"]
    local = tiny_lm.greedy("Can it fly?", 6)
    assert len(content) == len(local.tokens)
    for item, rec in zip(content, local.tokens, strict=True):
        alts = item["top_logprobs"]
        assert len(alts) == 12
        lps = [a["logprob"] for a in alts]
        assert lps == sorted(lps, reverse=True) and math.exp(lps[0]) <= 1.0
        assert [a["token"] for a in alts[:5]] == [t for t, _ in rec.top]
        assert lps[:5] == pytest.approx([math.log(p) for _, p in rec.top], abs=1e-4)
        assert item["logprob"] == pytest.approx(rec.logprob, abs=1e-6)


def test_echo_with_no_new_tokens_returns_the_prompt_logprobs(server_url, tiny_lm):
    prompt = "Water boils at one hundred degrees."
    r = httpx.post(
        server_url + "/completions",
        json={"model": NAME, "prompt": prompt, "echo": True, "max_tokens": 0, "logprobs": 2},
        timeout=30,
    ).json()
    choice = r["choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == prompt
    assert "".join(lp["tokens"]) == prompt
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert lp["text_offset"] == sorted(lp["text_offset"]) and lp["text_offset"][0] == 0
    ids = tiny_lm.tokenizer(prompt).input_ids
    head = tiny_lm.tokenizer.decode(ids[:1])
    (local,) = tiny_lm.score(head, [prompt[len(head) :]], chat=False)
    assert lp["tokens"][1:] == local.tokens
    assert lp["token_logprobs"][1:] == pytest.approx(local.token_logprobs, abs=1e-4)
    # keyed by token text (the legacy format): two ids that decode alike share one key
    assert all(1 <= len(t) <= 2 for t in lp["top_logprobs"][1:])
    assert r["usage"]["prompt_tokens"] == len(ids)


def test_errors_are_openai_shaped_and_reach_the_backend_as_messages(server_url, remote):
    bad = httpx.post(
        server_url + "/chat/completions",
        json={"model": NAME, "messages": [{"role": "user", "content": "x"}], "temperature": 9},
        timeout=10,
    )
    assert bad.status_code == 400 and "temperature" in bad.json()["error"]["message"]
    wrong = OpenAICompatLM(server_url, "not-served")
    with pytest.raises(BackendError, match="HTTP 404.*does not exist"):
        wrong.greedy("hi", 2)
    for body in (
        {"prompt": "x", "max_tokens": 0},  # no new tokens without echo
        {"prompt": [], "max_tokens": 3},
        {"prompt": "x", "logprobs": 21},
        {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]},
    ):
        r = httpx.post(server_url + "/completions", json=body, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["message"], body
    garbage = httpx.post(server_url + "/completions", content=b"{not json", timeout=10)
    assert garbage.status_code == 400


def test_conversations_and_the_api_key(tiny_lm):
    client = TestClient(create_app(tiny_lm, model_name=NAME, api_key="team-key-123"))
    body = {
        "model": NAME,
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Is it a cat?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": [{"type": "text", "text": "Can it fly?"}]},
        ],
        "temperature": 0,
        "max_tokens": 5,
    }
    assert client.post("/v1/chat/completions", json=body).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer team-key-123"}
    )
    assert ok.status_code == 200, ok.text
    text = tiny_lm.tokenizer.apply_chat_template(
        [
            {**m, "content": m["content"] if isinstance(m["content"], str) else "Can it fly?"}
            for m in body["messages"]
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    want = tiny_lm.greedy(text, 5, chat=False)
    assert ok.json()["choices"][0]["message"]["content"] == want.text


def test_a_prompt_too_long_for_the_served_model_is_a_prompt_too_long_error(remote, tiny_lm):
    from core.errors import PromptTooLongError

    limit = tiny_lm.model.config.max_position_embeddings
    with pytest.raises(PromptTooLongError, match=f"takes at most {limit:,}") as caught:
        remote.sample("word " * (limit + 10), SamplingParams(n=1, max_new_tokens=2))
    assert caught.value.limit == limit and caught.value.n_tokens > limit
