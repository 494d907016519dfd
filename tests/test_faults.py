"""Faults cost no data: a writer killed with SIGKILL in the middle of its transactions leaves a
whole database holding every acknowledged write; a model that will not load, an NLI model
that fails, an OpenAI-compatible server that answers 500, times out or sends garbage are each
a clear message, and the app keeps serving the other endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from backends.registry import BackendConfig, Backends
from core.errors import ModelLoadError
from store.db import Store
from store.judgements import save_judgement
from store.runs import list_runs
from tests.backends.fake_openai import FakeOpenAI
from tests.helpers import free_port
from ui.app import build_app
from ui.context import AppContext
from ui.tabs.generate import GenerateHandlers

ROOT = Path(__file__).resolve().parent.parent

# -- SIGKILL in the middle of writes ------------------------------------------------------------

WRITER = r"""
import sys
import threading

from backends.base import Generation, TokenRecord
from store.db import Store
from store.judgements import save_judgement
from store.runs import save_run

store = Store(sys.argv[1])
prefix = sys.argv[2]
tokens = [
    TokenRecord(text=f" t{j}", logprob=-0.01 * j, entropy=0.5, varentropy=0.1, top=[("a", 0.5)])
    for j in range(150)
]
answer = Generation(text="".join(t.text for t in tokens), tokens=tokens)
out = threading.Lock()


def ack(line):
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def worker(w):
    i = 0
    while True:
        key = f"{prefix}-{w}-{i}"
        score = i % 5 + 1
        jid = save_judgement(store, {
            "client_key": key, "item_id": f"item-{i}", "kind": "single",
            "annotator": f"annotator-{w}", "question": "q" * 300, "response": "r" * 3000,
            "human_score": float(score), "judge": {"p": [0.2] * 5}, "scores": {"g_eval": 3.0},
        })
        ack(f"J {key} {jid} annotator-{w} {score}")
        run_id = save_run(
            store, kind="trace", model="m", params={"i": i}, result={"key": key}, seed=i,
            generations=[("answer", answer), ("sample", answer), ("sample", answer)],
            title=key, annotator=f"annotator-{w}",
        )
        ack(f"R {run_id} {key}")
        i += 1


for w in range(2):  # two writers, as Gradio's worker threads would be
    threading.Thread(target=worker, args=(w,), daemon=True).start()
ack("READY")
threading.Event().wait()
"""


def run_writer_and_kill(tmp_path: Path, db: Path, acks_before_kill: int, env: dict) -> list[str]:
    """Start the writer, SIGKILL it once ``acks_before_kill`` writes were acknowledged, and
    return every acknowledged line (complete lines only: a torn last line is not an ack)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), f"k{acks_before_kill}"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[bytes] = []

    def read():
        for line in iter(proc.stdout.readline, b""):
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            acks = sum(1 for x in list(lines) if x[:2] in (b"J ", b"R "))
            if lines and acks >= acks_before_kill:
                break
            time.sleep(0.002)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return [x.decode().rstrip("\n") for x in lines if x.endswith(b"\n")]


@pytest.mark.parametrize(
    "journal, acks_before_kill",
    [("wal", 0), ("wal", 7), ("wal", 60), ("spaces", 3), ("spaces", 40)],
)
def test_sigkill_mid_write_keeps_every_acknowledged_judgement(tmp_path, journal, acks_before_kill):
    db = tmp_path / "confidant.db"
    env = {"SYSTEM": "spaces"} if journal == "spaces" else {"SYSTEM": "", "SPACE_ID": ""}
    acked = run_writer_and_kill(tmp_path, db, acks_before_kill, env)
    assert acked[0] == "READY"
    judged = [line.split() for line in acked if line.startswith("J ")]
    runs = [line.split() for line in acked if line.startswith("R ")]
    assert len(judged) + len(runs) >= acks_before_kill

    store = Store(db)
    try:
        assert store.read(lambda d: d.execute("PRAGMA integrity_check").fetchall()) == [("ok",)]
        assert store.read(lambda d: d.execute("PRAGMA foreign_key_check").fetchall()) == []
        rows = {r["client_key"]: r for r in store.read(lambda d: list(d["judgements"].rows))}
        for _, key, jid, annotator, score in judged:
            row = rows.get(key)
            assert row is not None, f"acknowledged judgement {key} is missing"
            assert (row["id"], row["annotator"], row["human_score"]) == (
                int(jid),
                annotator,
                float(score),
            )
        # Nothing half-written: every stored judgement is whole, every run has its 3 answers.
        for row in rows.values():
            assert row["created"] and len(row["response"]) == 3000
            assert json.loads(row["judge"]) == {"p": [0.2] * 5}
        per_run = dict(
            store.read(
                lambda d: d.execute(
                    "SELECT runs.id, count(generations.id) FROM runs "
                    "LEFT JOIN generations ON generations.run_id = runs.id GROUP BY runs.id"
                ).fetchall()
            )
        )
        assert all(n == 3 for n in per_run.values()), per_run
        assert {run_id for _, run_id, _ in runs} <= set(per_run)
        # The database keeps working, and a retried submission is not stored twice.
        if judged:
            _, key, jid, annotator, score = judged[0]
            again = {"client_key": key, "kind": "single", "annotator": annotator}
            assert save_judgement(store, again) == int(jid)
        assert save_judgement(store, {"client_key": "after", "kind": "single"}) > 0
    finally:
        store.close()


# -- failing models and servers -----------------------------------------------------------------


@pytest.fixture
def fake_server():
    with FakeOpenAI() as server:
        yield server


def context_from_flags(*flags: str) -> AppContext:
    """The context ``python app.py <flags>`` builds, through the same argument parsing."""
    import app

    ctx, _ = app.make_context(app.parse_args(list(flags)))
    return ctx


def test_openai_server_500_is_a_message_and_the_app_keeps_serving(tmp_path, fake_server):
    ctx = context_from_flags(
        "--openai-base-url", fake_server.url, "--model", "served", "--db", str(tmp_path / "a.db")
    )
    demo = build_app(ctx)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        fake_server.mode = "500"
        with pytest.raises(Exception, match="answered HTTP 500"):
            client.predict("Capital of France?", 0.0, 1.0, 0, 8, 0, api_name="/generate")
        assert client.predict("all", api_name="/list_runs")["data"] == []
        assert list_runs(ctx.store) == []
        fake_server.mode = "ok"  # the server recovers: so does the app, without a restart
        text, *_, status = client.predict(
            "Capital of France?", 0.0, 1.0, 0, 8, 0, api_name="/generate"
        )
        assert text == "Paris is the capital." and "Saved as run" in status
        assert len(client.predict("all", api_name="/list_runs")["data"]) == 1
        client.close()
    finally:
        demo.close()


@pytest.mark.parametrize(
    "mode, message",
    [("slow", "did not answer in time"), ("garbage", "not JSON"), ("500", "HTTP 500")],
)
def test_openai_server_failures_reach_the_generate_handler_as_messages(
    tmp_path, fake_server, monkeypatch, mode, message
):
    import backends.openai_compat as openai_compat

    # A short client time-out so the "slow" server (2 s) times out quickly.
    monkeypatch.setattr(
        openai_compat, "OpenAICompatLM", _with_timeout(openai_compat.OpenAICompatLM, 0.5)
    )
    ctx = context_from_flags(
        "--openai-base-url", fake_server.url, "--model", "served", "--db", str(tmp_path / "a.db")
    )
    fake_server.mode = mode
    with pytest.raises(gr.Error, match=message):
        list(GenerateHandlers(ctx).generate("Capital of France?", 0.0, 1.0, 0, 8, 0, None))
    assert list_runs(ctx.store) == []


def _with_timeout(cls, seconds: float):
    def build(*args, **kwargs):
        kwargs.setdefault("timeout", seconds)
        return cls(*args, **kwargs)

    return build


def test_an_unreachable_server_is_a_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    ctx = context_from_flags("--openai-base-url", url, "--db", str(tmp_path / "a.db"))
    with pytest.raises(gr.Error, match="Could not reach the server"):
        list(GenerateHandlers(ctx).generate("hi", 0.0, 1.0, 0, 4, 0, None))


def test_an_nli_model_that_fails_to_load_is_a_clear_message_and_not_cached(tmp_path, tiny_lm_dir):
    backends = Backends(
        BackendConfig(model=str(tiny_lm_dir), nli_model=str(tmp_path / "no-such-nli"))
    )
    for _ in range(2):  # a failed load is retried, and fails the same clear way
        with pytest.raises(ModelLoadError, match="Could not load model .*no such directory"):
            backends.nli()
    broken = tmp_path / "broken-nli"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="Could not load model"):
        Backends(BackendConfig(model=str(tiny_lm_dir), nli_model=str(broken))).nli()
    # The generator, and with it the Generate tab, is unaffected.
    assert backends.generator().greedy("Is it a cat?", 3).tokens


def test_a_generator_that_fails_to_load_leaves_history_working(tmp_path):
    ctx = context_from_flags("--model", str(tmp_path / "missing"), "--db", str(tmp_path / "a.db"))
    demo = build_app(ctx)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(Exception, match="Could not load model"):
            client.predict("hi", 0.0, 1.0, 0, 4, 0, api_name="/generate")
        assert client.predict("all", api_name="/list_runs")["data"] == []
        assert [Path(p).name for p in client.predict(api_name="/export_runs")] == [
            "confidant-runs.csv",
            "confidant-runs-answers.csv",
        ]
        client.close()
    finally:
        demo.close()
