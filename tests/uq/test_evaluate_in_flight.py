"""The harness with many questions in flight against our OpenAI-protocol server on 127.0.0.1:
rows identical to a serial run, and an interrupted run resumed with no question computed twice."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from backends.openai_compat import OpenAICompatLM
from core.errors import ConfidantError
from store.db import Store
from store.eval_cache import EvalCache
from tests.helpers import free_port
from tests.uq.test_evaluate import DATA, FAST, RuleNLI
from uq.evaluation.concurrency import Throughput, in_flight_width, run_in_flight
from uq.evaluation.datasets import load_dataset
from uq.evaluation.harness import EvalSettings, run_evaluation
from uq.evaluation.providers import measure_provider
from uq.semantic.entailment import NLIEntailment

ROOT = Path(__file__).resolve().parents[2]
MEASURES = ["discrete_semantic_entropy", "semantic_entropy", "p_true"]


@pytest.fixture(scope="module")
def server_url(tiny_lm_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("CONFIDANT_SERVE_API_KEY", None)
    command = [sys.executable, "-m", "cli", "serve", "--model", str(tiny_lm_dir)]
    command += ["--served-model-name", "tiny", "--port", str(port), "--device", "cpu"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
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
    return OpenAICompatLM(server_url, "tiny", concurrency=8)


def _settings():
    return EvalSettings(**FAST, measures=MEASURES)


def test_rows_are_identical_serially_and_with_four_questions_in_flight(remote):
    items = load_dataset(DATA)[:12]
    ent = NLIEntailment(RuleNLI())
    serial = run_evaluation(items, remote, ent, _settings(), questions_in_flight=1)
    progress = []
    concurrent = run_evaluation(
        items, remote, ent, _settings(), questions_in_flight=4,
        progress=lambda *a: progress.append(a),
    )  # fmt: skip
    assert serial.params["questions_in_flight"] == 1
    assert concurrent.params["questions_in_flight"] == 4
    assert [r["id"] for r in concurrent.rows] == [i.id for i in items]
    assert concurrent.rows == serial.rows and concurrent.metrics == serial.metrics
    assert [p[:2] for p in progress] == [(k, 12) for k in range(1, 13)]
    assert "questions/s" in progress[-1][2] and "left" in progress[-1][2]


def test_an_interrupted_run_resumes_with_every_question_computed_once(remote, tmp_path):
    items = load_dataset(DATA)[:12]
    ent = NLIEntailment(RuleNLI())
    cache = EvalCache(Store(tmp_path / "e.db"))
    computed: Counter = Counter()
    lock = threading.Lock()
    interrupt_after = [5]

    def counting(context):
        with lock:
            if interrupt_after[0] is not None and sum(computed.values()) >= interrupt_after[0]:
                interrupt_after[0] = None
                raise KeyboardInterrupt
            computed[context.item.id] += 1
        return {"words": len(context.answer.split())}

    provider = measure_provider("count", counting)
    run = dict(providers=[provider], cache=cache, questions_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(items, remote, ent, _settings(), **run)
    first = sum(computed.values())
    # Every question finished before the interrupt, or in flight with it, is cached.
    assert 5 <= first < 12 and cache.count() == first
    again = run_evaluation(items, remote, ent, _settings(), **run)
    assert again.n_cached == first and again.n_computed == 12 - first
    assert computed == Counter({item.id: 1 for item in items})
    assert [r["id"] for r in again.rows] == [i.id for i in items]


def test_the_in_process_model_keeps_its_batches(tiny_lm, remote):
    assert in_flight_width(tiny_lm, 8) == 1 and in_flight_width(tiny_lm) == 1
    assert in_flight_width(remote) == 8 and in_flight_width(remote, 3) == 3
    with pytest.raises(ConfidantError, match="questions in flight"):
        in_flight_width(remote, 0)


def test_run_in_flight_runs_width_jobs_at_once_and_hands_over_running_ones_on_failure():
    barrier = threading.Barrier(4, timeout=20)
    got = []
    run_in_flight(lambda j: (barrier.wait(), j)[1], range(4), 4, lambda j, r: got.append(r))
    assert sorted(got) == [0, 1, 2, 3]

    started, release = threading.Barrier(3, timeout=20), threading.Event()

    def job(j):
        if j == 0:
            started.wait()
            raise RuntimeError("boom")
        if j in (1, 2):
            started.wait()
            release.wait(20)
        return j

    done = []

    def on_done(j, r):
        done.append(r)

    def fail_then_release(j):
        try:
            return job(j)
        finally:
            if j == 0:  # the running jobs end a little after the failure has stopped the rest
                threading.Timer(0.5, release.set).start()

    with pytest.raises(RuntimeError, match="boom"):
        run_in_flight(fail_then_release, range(10), 3, on_done)
    assert sorted(done) == [1, 2]  # the running ones finished and were handed over, no more


def test_throughput_text():
    now = [0.0]
    clock = Throughput(clock=lambda: now[0])
    assert clock.text(10) == ""
    now[0] = 4.0
    clock.add(2)
    assert clock.text(30) == "0.50 questions/s, about 1:00 left"
    now[0] = 4000.0
    assert clock.text(10).endswith("about 5:33:20 left")


def _cli_args(tmp_path, *more):
    return [
        "--data", DATA, "--model", "tiny-random", "--out", str(tmp_path / "res"),
        "--limit", "3", "--n", "2", "--max-new-tokens", "4", "--bootstrap", "10",
        "--db", str(tmp_path / "c.db"), "--measures", "discrete_semantic_entropy", *more,
    ]  # fmt: skip


def test_ctrl_c_in_the_cli_says_what_is_cached_and_exits_130(tmp_path, capsys, monkeypatch):
    import cli.evaluate as evaluate_cli

    real = evaluate_cli.run_evaluation

    def interrupted(*args, progress, **kwargs):
        def tick(done, total, message):
            progress(done, total, message)
            if done == 2:
                raise KeyboardInterrupt

        return real(*args, progress=tick, **kwargs)

    monkeypatch.setattr(evaluate_cli, "run_evaluation", interrupted)
    assert evaluate_cli.main(_cli_args(tmp_path)) == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 finished questions are cached" in err and "again to resume" in err
    assert "Traceback" not in err
    monkeypatch.setattr(evaluate_cli, "run_evaluation", real)
    assert evaluate_cli.main(_cli_args(tmp_path, "--quiet")) == 0
    out = capsys.readouterr().out
    assert "1 computed, 2 cached" in out and "[1/3]" not in out


def test_the_cli_draws_a_progress_bar_with_throughput_on_a_terminal(tmp_path, capsys, monkeypatch):
    from cli.evaluate import main

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(_cli_args(tmp_path, "--no-cache", "--questions-in-flight", "2")) == 0
    captured = capsys.readouterr()
    assert "3/3" in captured.err and "questions/s" in captured.err
    assert "[1/3]" not in captured.out and "3 computed, 0 cached" in captured.out
