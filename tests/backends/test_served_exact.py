"""Exact scoring through a real server process on 127.0.0.1 (``python -m cli serve`` on the
tiny model): echoed prompt log-probabilities on token ids from ``/tokenize`` give the judge's
distributions and C-IP's class posteriors exactly as the in-process model does; a server that
refuses echo (``--no-echo``) gets the top-20 fallback, marked truncated."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from backends.base import capabilities_of
from backends.openai_compat import OpenAICompatLM
from backends.openai_scoring import ECHO, TOP_LOGPROBS, UNDETECTED
from judge.config import JudgeConfig
from judge.grading import grade_batch
from tests.helpers import free_port
from uq.cip.llm_posterior import LLMPosterior

ROOT = Path(__file__).resolve().parents[2]
NAME = "tiny"


def start_server(model_dir, log: Path, *extra: str):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("CONFIDANT_SERVE_API_KEY", None)
    command = [sys.executable, "-m", "cli", "serve", "--model", str(model_dir)]
    command += ["--served-model-name", NAME, "--port", str(port), "--device", "cpu", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def servers(tiny_lm_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve")
    echo, echo_url = start_server(tiny_lm_dir, logs / "echo.log")
    try:
        plain, plain_url = start_server(tiny_lm_dir, logs / "no-echo.log", "--no-echo")
    except BaseException:
        echo.kill()
        raise
    yield {"echo": echo_url, "no_echo": plain_url}
    for proc in (echo, plain):
        proc.kill()
        proc.wait(timeout=30)


ITEMS = [("What is the capital of France?", "Paris."), ("Who wrote Hamlet?", "Dickens.")]


def test_echo_is_detected_once_and_declared(servers):
    assert OpenAICompatLM.capabilities.scoring == UNDETECTED
    remote = OpenAICompatLM(servers["echo"], NAME)
    caps = capabilities_of(remote)
    assert caps.exact_scoring and caps.scoring == ECHO and caps.truncated_logprobs
    again = OpenAICompatLM(servers["echo"], NAME)
    assert again.scoring_mode() == ECHO  # cached per server: no request needed
    plain = OpenAICompatLM(servers["no_echo"], NAME)
    assert plain.scoring_mode() == TOP_LOGPROBS and not capabilities_of(plain).exact_scoring


@pytest.mark.parametrize("chat", [True, False])
def test_score_tree_through_the_server_equals_the_local_model(servers, tiny_lm, chat):
    remote = OpenAICompatLM(servers["echo"], NAME)
    prefix, suffixes = "Rate the answer.", ["", " The score is [", "Score: ["]
    continuations = ["5]", "57]", "100]", " Paris is big"]
    got = remote.score_tree(prefix, suffixes, continuations, chat=chat)
    want = tiny_lm.score_tree(prefix, suffixes, continuations, chat=chat)
    for g_row, w_row in zip(got, want, strict=True):
        for g, w in zip(g_row, w_row, strict=True):
            assert len(g.token_logprobs) == len(w.token_logprobs)
            assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-5)
    probs = remote.choice_probs(prefix, [" yes", " no", " maybe so"], chat=chat)
    local = tiny_lm.choice_probs(prefix, [" yes", " no", " maybe so"], chat=chat)
    assert probs == pytest.approx(local, abs=1e-5)


@pytest.mark.parametrize("scale", [5, 100])
def test_judge_distributions_through_the_server_are_exact(servers, tiny_lm, scale):
    config = JudgeConfig(scale=scale, max_new_tokens=10)
    got = grade_batch(OpenAICompatLM(servers["echo"], NAME), ITEMS, config)
    want = grade_batch(tiny_lm, ITEMS, config)
    for g, w in zip(got, want, strict=True):
        assert g.judgement == w.judgement
        assert not g.truncated and g.source == "exact" and g.scoring == ECHO
        assert w.scoring == "local"
        dist_g, dist_w = g.distribution, w.distribution
        assert list(dist_g) == list(dist_w)
        assert list(dist_g.values()) == pytest.approx(list(dist_w.values()), abs=1e-5)
        assert sum(g.raw.values()) == pytest.approx(sum(w.raw.values()), abs=1e-5)


def test_cip_posterior_through_the_server_is_exact(servers, tiny_lm):
    classes = ["dog", "cat", "golden eagle"]
    remote = LLMPosterior(OpenAICompatLM(servers["echo"], NAME), classes)
    histories = [[], [("Does it fly?", "no")], [("Does it fly?", "no"), ("Is it big?", "yes")]]
    got = remote.posterior_batch(histories)
    for h, row in zip(histories, got, strict=True):
        # the server backend has no local tokenizer: the plain prompt text, scored whole
        totals = [
            s.total_logprob
            for s in tiny_lm.score(remote.prompt_text(h), remote.options, chat=False)
        ]
        want = np.exp(np.array(totals) - max(totals))
        assert row == pytest.approx(want / want.sum(), abs=1e-5)


def test_a_server_without_echo_falls_back_to_top_20_marked_truncated(servers):
    remote = OpenAICompatLM(servers["no_echo"], NAME)
    r = httpx.post(
        servers["no_echo"] + "/completions",
        json={"model": NAME, "prompt": "x y", "echo": True, "max_tokens": 0, "logprobs": 1},
        timeout=10,
    )
    assert r.status_code == 400 and "echo" in r.json()["error"]["message"]
    (result,) = grade_batch(remote, ITEMS[:1], JudgeConfig(scale=5, max_new_tokens=10))
    assert result.truncated and result.source == "top_logprobs"
    assert result.scoring == TOP_LOGPROBS
