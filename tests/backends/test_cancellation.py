"""Cancelling a batch sent to a slow server (our server with ``latency_s``, on 127.0.0.1):
what was not yet sent is never sent, and the call returns with ``RequestsCancelled`` without
waiting for the batch."""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn

from backends.base import SamplingParams
from backends.openai_compat import OpenAICompatLM
from backends.requests_pool import RequestsCancelled, cancel_scope
from backends.serve_openai import create_app
from core.errors import ConfidantError
from tests.helpers import free_port

BATCH = 40


@pytest.fixture(scope="module")
def slow_server(tiny_lm):
    app = create_app(tiny_lm, model_name="tiny", latency_s=0.3)
    seen: list[str] = []

    @app.middleware("http")
    async def count(request, call_next):
        seen.append(request.url.path)
        return await call_next(request)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", seen
    server.should_exit = True
    thread.join(timeout=10)


def test_a_cancelled_batch_stops_sending_and_returns_at_once(slow_server):
    url, seen = slow_server
    lm = OpenAICompatLM(url, "tiny", concurrency=2)
    prompts = [f"Question {i}?" for i in range(BATCH)]
    params = SamplingParams(n=1, max_new_tokens=2, seed=0)
    outcome: dict = {}

    def work(event):
        with cancel_scope(event):
            try:
                lm.sample_batch(prompts, params, chat=False)
                outcome["finished"] = True
            except ConfidantError as exc:
                outcome["error"] = exc
            outcome["sent_by_then"] = seen.count("/v1/completions")

    event = threading.Event()
    worker = threading.Thread(target=work, args=(event,))
    worker.start()
    while seen.count("/v1/completions") < 2:
        time.sleep(0.01)
    event.set()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert "finished" not in outcome
    assert isinstance(outcome["error"], RequestsCancelled)
    assert "Cancelled" in str(outcome["error"])
    # the call returned while the batch was far from done, and nothing more goes out
    assert outcome["sent_by_then"] < BATCH
    time.sleep(1.0)
    assert seen.count("/v1/completions") <= outcome["sent_by_then"] + 2 < BATCH


def test_a_scope_cancelled_before_the_call_sends_nothing(slow_server):
    url, seen = slow_server
    lm = OpenAICompatLM(url, "tiny", concurrency=4)
    before = len(seen)
    with cancel_scope() as event:
        event.set()
        with pytest.raises(RequestsCancelled):
            lm.sample_batch(["a", "b", "c"], SamplingParams(n=1, max_new_tokens=2), chat=False)
        with pytest.raises(RequestsCancelled):
            lm.greedy("a", 2)
    assert len(seen) == before
    # outside the scope the same model works
    assert lm.greedy("a", 2, chat=False).text is not None
