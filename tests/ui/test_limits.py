"""One user cannot exhaust the queue or the memory (issue 13, item 4).

- each user's model jobs are capped from queueing to their end: past the cap a job is refused
  with the busy message, and another user's Generate is still served;
- an oversized pasted-answers upload is refused when queued, without waiting for the model;
- the caches kept between requests are bounded in count and in idle age.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client, handle_file

import ui.tabs.generate as generate_tab
from backends.registry import BackendConfig, Backends
from store.db import Store
from tests.helpers import serving
from ui.app import build_app
from ui.components.cache import BoundedCache, CachedSequence
from ui.components.jobs import BUSY, JobLimiter
from ui.context import AppContext
from ui.tabs.cip_handlers import MAX_CLASS_SETS, CipHandlers
from ui.tabs.judge_handlers import EXPIRED, KEPT_FOR_S, MAX_IMPORTS, JudgeHandlers

CAP = 2
GENERATE = ("Say hi", 0.0, 1.0, 0, 3, 0)


def _refusal(job) -> str:
    """The reason the server gave for refusing ``job`` when it was queued."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the client raises httpx's error
        job.result(timeout=120)
    response = getattr(raised.value, "response", None)
    return response.json()["detail"] if response is not None else str(raised.value)


def _held(ctx, user: str) -> int:
    return ctx.jobs.held(SimpleNamespace(username=user, session_hash=""))


def _wait_until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def ctx(tmp_path, tiny_lm_dir, tiny_nli_dir):
    backends = Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(tiny_nli_dir)))
    return AppContext(
        backends=backends,
        store=Store(tmp_path / "app.db"),
        auth_enabled=True,
        jobs=JobLimiter(CAP),
    )


def test_a_user_past_the_cap_is_refused_and_another_users_generate_is_served(
    ctx, tmp_path, monkeypatch
):
    gate, started = threading.Event(), threading.Event()
    real = generate_tab.run_trace

    def held_for_alice(lm, question, params, **kwargs):
        if question.startswith("alice"):
            started.set()
            assert gate.wait(120), "the test never opened the gate"
        return real(lm, question, params, **kwargs)

    monkeypatch.setattr(generate_tab, "run_trace", held_for_alice)
    demo = build_app(ctx)
    big = tmp_path / "answers.txt"
    big.write_bytes(b"Paris\n" * 3_300_000)  # 19.8 MB: under the upload limit, over 4 MB
    with serving(demo, auth=[("alice", "pw-a"), ("bob", "pw-b")]) as url:
        alice = Client(url, auth=("alice", "pw-a"), verbose=False)
        bob = Client(url, auth=("bob", "pw-b"), verbose=False)
        first = alice.submit("alice 1", *GENERATE[1:], api_name="/generate")
        assert started.wait(120), "alice's first job never started"
        second = alice.submit("alice 2", *GENERATE[1:], api_name="/generate")
        _wait_until(lambda: _held(ctx, "alice") == CAP, "alice's second job to be queued")
        # Alice's next job (from another tab: the cap is per user) is refused at once.
        other_tab = Client(url, auth=("alice", "pw-a"), verbose=False)
        refused = other_tab.submit("alice 3", *GENERATE[1:], api_name="/generate")
        assert _refusal(refused) == BUSY.format(cap=CAP)
        # While alice's job holds the model, bob's oversized upload is refused before it waits.
        pasted = bob.submit(
            "", "", handle_file(str(big)), "", "NLI cross-encoder", True, True, 0.75,
            api_name="/score_answers",
        )  # fmt: skip
        assert "answers.txt is too large (larger than 4 MB" in _refusal(pasted)
        assert not gate.is_set() and _held(ctx, "bob") == 0
        # Bob's Generate is queued (behind at most CAP of alice's jobs) and served.
        served = bob.submit("bob 1", *GENERATE[1:], api_name="/generate")
        _wait_until(lambda: _held(ctx, "bob") == 1, "bob's job to be queued")
        gate.set()
        assert "Saved as run" in served.result(timeout=120)[-1]
        assert "Saved as run" in first.result(timeout=120)[-1]
        assert "Saved as run" in second.result(timeout=120)[-1]
        _wait_until(lambda: _held(ctx, "alice") == 0, "alice's places to be given back")
        # With her jobs done, alice is served again.
        assert "Saved as run" in alice.predict("alice 4", *GENERATE[1:], api_name="/generate")[-1]
    assert _held(ctx, "bob") == 0


def test_the_limiter_counts_per_user_and_gives_places_back():
    clock = [0.0]
    jobs = JobLimiter(2, max_age_s=60, clock=lambda: clock[0])
    a1 = SimpleNamespace(username="alice", session_hash="s1")
    a2 = SimpleNamespace(username="alice", session_hash="s2")
    anon = SimpleNamespace(username=None, session_hash="s3")
    jobs.take(a1)
    jobs.take(a2)
    with pytest.raises(gr.Error, match="Busy: you already have 2 job"):
        jobs.take(a1)
    jobs.take(anon)  # another user (a session without login) is counted apart
    jobs.give_back(a1)
    jobs.take(a1)
    jobs.session_ended(a2)  # a closed page's queued job will not run
    assert jobs.held(a1) == 1 and jobs.total() == 2
    clock[0] = 61.0  # a place never given back expires
    assert jobs.held(a1) == 0 and jobs.held(anon) == 0
    jobs.give_back(a1)  # more releases than places never go below zero
    assert jobs.held(a1) == 0


def test_released_when_a_handler_fails_or_a_stream_ends():
    jobs = JobLimiter(1)
    request = gr.Request(username="ada", session_hash="s")

    def fails(request: gr.Request = None):
        raise ValueError("boom")

    def streams(request: gr.Request = None):
        yield 1
        yield 2

    jobs.take(request)
    with pytest.raises(ValueError):
        jobs.releasing(fails)(request)
    assert jobs.held(request) == 0
    jobs.take(request)
    assert list(jobs.releasing(streams)(request)) == [1, 2]
    assert jobs.held(request) == 0


def test_bounded_cache_evicts_the_least_recently_used_and_the_idle():
    clock = [0.0]
    cache = BoundedCache(3, 100, clock=lambda: clock[0])
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") == "A"  # a is used: b is now the least recently used
    cache.put("d", "D")
    assert "b" not in cache and len(cache) == 3
    clock[0] = 50.0
    assert cache.get("c") == "C"
    clock[0] = 120.0  # a and d idle for 120 s, c for 70 s
    assert "a" not in cache and "d" not in cache and cache.get("c") == "C"
    handle = CachedSequence(cache, "c")
    assert len(handle) == 1 and not handle.expired
    clock[0] = 500.0
    assert len(handle) == 0 and handle.expired and not handle


def test_uploaded_class_sets_are_bounded(tmp_path, tiny_lm_dir):
    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=Store(tmp_path / "a.db")
    )
    tab = CipHandlers(ctx)
    keys = []
    for k in range(MAX_CLASS_SETS + 1):
        path = tmp_path / f"set{k}.csv"
        rows = [f"cat{k},Purrs?,yes", f"dog{k},Purrs?,no"]
        path.write_text("class,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
        keys.append(tab.upload(str(path))[1])
    assert len(tab.class_sets) == MAX_CLASS_SETS
    with pytest.raises(Exception, match="no longer loaded; upload it again"):
        tab.class_set(keys[0])
    assert tab.class_set(keys[-1]).classes == (f"cat{MAX_CLASS_SETS}", f"dog{MAX_CLASS_SETS}")


def test_imported_judge_items_are_shared_bounded_and_expire(tmp_path, tiny_lm_dir):
    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=Store(tmp_path / "a.db")
    )
    h = JudgeHandlers(ctx)
    clock = [0.0]
    h._imports._clock = lambda: clock[0]
    path = tmp_path / "items.csv"
    path.write_text("question,response\nWhy?,Because.\n", encoding="utf-8")
    # Forty sessions importing the same file hold one copy of its items.
    handles = [h.load_items("Import file", str(path), "single")[0] for _ in range(40)]
    assert len(h._imports) == 1 and all(x[0]["question"] == "Why?" for x in handles)
    for k in range(MAX_IMPORTS + 5):
        other = tmp_path / f"items{k}.csv"
        other.write_text(f"question,response\nQ{k}?,A{k}.\n", encoding="utf-8")
        h.load_items("Import file", str(other), "single")
    assert len(h._imports) == MAX_IMPORTS
    assert handles[0].expired  # the first import was the least recently used
    fresh, _, _ = h.load_items("Import file", str(path), "single")
    clock[0] = KEPT_FOR_S + 1
    with pytest.raises(gr.Error, match=EXPIRED.split(";")[0]):
        h.show_item(fresh, 1, 5, False, 16, True, None)


# The app's memory may grow by at most this much (peak resident set, VmHWM, over the resident
# set before) while two 19.8 MB pasted-answers uploads, a file and a text, are refused.
MEMORY_BOUND_MB = 150


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        line = next(x for x in f if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def test_an_oversized_answers_upload_is_refused_within_a_memory_bound(tmp_path):
    from tests.test_app_subprocess import running_app

    big = tmp_path / "answers.jsonl"
    big.write_bytes(b'{"answer": "Paris"}\n' * 990_000)  # 19.8 MB
    text = "Paris\n" * 3_300_000
    with running_app(tmp_path, "--model", "tiny-random") as app:
        pid = app.proc.pid
        client = Client(app.url, verbose=False)
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # the peak (VmHWM) restarts from the resident set now
        before = _status_mb(pid, "VmRSS")
        by_file = client.submit(
            "", "", handle_file(str(big)), "", "NLI cross-encoder", True, True, 0.75,
            api_name="/score_answers",
        )  # fmt: skip
        assert "answers.jsonl is too large (larger than 4 MB" in _refusal(by_file)
        by_text = client.submit(
            "", text, None, "", "NLI cross-encoder", True, True, 0.75, api_name="/score_answers"
        )
        assert "the pasted text is too large (larger than 4 MB" in _refusal(by_text)
        peak = _status_mb(pid, "VmHWM")
        print(f"app memory: {before:.0f} MB before, peak {peak:.0f} MB")
        assert peak - before < MEMORY_BOUND_MB, (before, peak)


def test_a_queue_check_refuses_with_its_message_and_leaves_other_errors_to_the_handler(
    tmp_path, monkeypatch
):
    from core.errors import ConfidantError
    from ui.components import jobs as jobs_module
    from ui.tabs.semantic_handlers import check_dataset_upload

    big = tmp_path / "d.csv"
    with open(big, "wb") as f:
        f.truncate(50_000_001)
    with pytest.raises(ConfidantError, match="d.csv is too large \\(larger than 50 MB"):
        check_dataset_upload(str(big))
    check_dataset_upload(None)  # the bundled set: nothing to check

    request = SimpleNamespace(username="ada", session_hash="s")
    monkeypatch.setattr(jobs_module, "_request_of", lambda args, kwargs: request)
    limiter = JobLimiter(2)

    def refuses(*inputs):
        raise ConfidantError("too big")

    def breaks(*inputs):
        raise OSError("the check itself failed")

    with pytest.raises(gr.Error) as refused:
        limiter.validator(refuses)("a", "b")
    assert str(refused.value) == "too big" and limiter.held(request) == 0
    assert limiter.validator(breaks)("a", "b") == [None, None]
    assert limiter.held(request) == 1
