"""Load: 16 annotators, each logged in as themselves through their own gradio_client, judge 100
items at once while generations run on the same server. Nothing is lost, nothing is stored
twice (retried submissions included; the same submission sent several times at once is the
handler test in this file), every row belongs to the person who sent it, and no request fails.
Prints the figures (``pytest -s`` shows them)."""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import Counter

import gradio as gr
import pytest
from gradio_client import Client

import app as app_module
from backends.registry import BackendConfig, Backends
from core.text import md_text
from judge.items import demo_items
from store.db import Store
from store.judgements import list_judgements
from store.runs import list_runs
from tests.helpers import free_port
from ui.app import build_app
from ui.context import AppContext
from ui.tabs.judge_handlers import JudgeHandlers

ANNOTATORS = 16
PER_ANNOTATOR = 100
ITEMS = 50  # the demo set's single items
USERS = [(f"annotator-{k:02d}", f"pw-{k:02d}-secret") for k in range(ANNOTATORS)]
GENERATOR = ("generator", "pw-generator-secret")


def item_for(k: int, seq: int) -> int:
    """Annotators start at different items, so several judge the same item at the same time."""
    return (seq + 7 * k) % ITEMS + 1


def connect(url: str, auth: tuple[str, str]) -> Client:
    """A logged-in client. The server speaks plain HTTP on 127.0.0.1, so there is no
    certificate to verify; gradio_client opens a new HTTP client for every request, and with
    verification on each one loads the CA bundle (tens of ms of CPU), which in this one-process
    test would be charged to the server under test."""
    return Client(url, auth=auth, verbose=False, ssl_verify=False)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.fixture
def handlers(tmp_path, tiny_lm_dir):
    store = Store(tmp_path / "app.db")
    ctx = AppContext(backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=store)
    yield JudgeHandlers(ctx)
    store.close()


def test_a_submission_sent_several_times_at_once_is_stored_once(handlers):
    """A double click or a retried request while the first is still being saved: one judgement
    and one run, and every reply names the same judgement."""
    items, _, _ = handlers.load_items("Demo set", None, "single")
    out = handlers.show_item(items, 1, 5, True, 4, True)
    barrier = threading.Barrier(8)
    statuses: list[str] = []

    def send() -> None:
        barrier.wait()
        status, _, _ = handlers.submit(items, out[8], out[9], out[10], 3, None, "", "ada", None)
        statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 8 and len({s.split(" by ")[0] for s in statuses}) == 1
    assert len(list_judgements(handlers.ctx.store)) == 1
    assert len(list_runs(handlers.ctx.store, kind="judge")) == 1


def test_a_judgement_that_fails_to_save_leaves_no_run(handlers, monkeypatch):
    import store.judgements as tab

    items, _, _ = handlers.load_items("Demo set", None, "single")
    out = handlers.show_item(items, 1, 5, True, 4, True)

    def fail(store, row):
        raise OSError("disk full")

    monkeypatch.setattr(tab, "save_judgement", fail)
    with pytest.raises(gr.Error, match="disk full"):
        handlers.submit(items, out[8], out[9], out[10], 3, None, "", "ada", None)
    assert list_runs(handlers.ctx.store) == [] and list_judgements(handlers.ctx.store) == []


@pytest.fixture
def served(tmp_path, tiny_lm_dir):
    store = Store(tmp_path / "load.db")
    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=store, auth_enabled=True
    )
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=4)  # as app.py serves it
    port = free_port()
    options = app_module.launch_options(
        argparse.Namespace(host="127.0.0.1", port=port), [*USERS, GENERATOR]
    )
    demo.launch(**options, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", ctx
    finally:
        demo.close()
        store.close()


@pytest.mark.slow
def test_sixteen_annotators_at_once_while_generating_lose_nothing(served):
    url, ctx = served
    errors: list[str] = []
    submit_latency: list[float] = []
    show_latency: list[float] = []
    generation_latency: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    start = threading.Barrier(ANNOTATORS + 1)

    def annotate(k: int) -> None:
        who, password = USERS[k]
        stage = "login"
        try:
            client = connect(url, (who, password))
            client.predict("Demo set", None, "single", api_name="/judge_load")
            start.wait()
            for seq in range(PER_ANNOTATOR):
                stage = f"show {seq}"
                t0 = time.perf_counter()
                shown = client.predict(item_for(k, seq), 5, True, 4, True, api_name="/judge_show")
                t1 = time.perf_counter()
                args = (shown[8], seq % 5 + 1, None, f"{who} seq {seq}", "")
                stage = f"submit {seq}"
                status = client.predict(*args, api_name="/judge_submit")[0]
                t2 = time.perf_counter()
                if seq % 10 == 9:  # a retried request: the same submission again
                    stage = f"retried submit {seq}"
                    again = client.predict(*args, api_name="/judge_submit")[0]
                    if again != status:
                        raise AssertionError(f"a retried submission was saved twice: {again}")
                if f"by **{md_text(who)}**" not in status:
                    raise AssertionError(f"unexpected status for {who}: {status}")
                with lock:
                    show_latency.append(t1 - t0)
                    submit_latency.append(t2 - t1)
            client.close()
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            start.abort()
            with lock:
                errors.append(f"{who} at {stage}: {type(exc).__name__}: {exc}")

    def generate() -> None:
        try:
            client = connect(url, GENERATOR)
            n = 0
            while not done.is_set():
                t0 = time.perf_counter()
                client.predict(f"Question {n}?", 0.7, 1.0, 0, 3, n, api_name="/generate")
                generation_latency.append(time.perf_counter() - t0)
                n += 1
            client.close()
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(f"generator: {type(exc).__name__}: {exc}")

    annotators = [threading.Thread(target=annotate, args=(k,)) for k in range(ANNOTATORS)]
    generator = threading.Thread(target=generate)
    for t in annotators:
        t.start()
    try:
        start.wait()  # every annotator logged in with items loaded
    except threading.BrokenBarrierError:
        pass
    began = time.perf_counter()
    generator.start()
    for t in annotators:
        t.join()
    elapsed = time.perf_counter() - began
    done.set()
    generator.join()

    total = ANNOTATORS * PER_ANNOTATOR
    print(
        f"\nload: {ANNOTATORS} annotators x {PER_ANNOTATOR} judgements in {elapsed:.1f} s = "
        f"{len(submit_latency) / elapsed:.1f} submissions/s; submit latency p50 "
        f"{statistics.median(submit_latency or [0]) * 1000:.0f} ms, p95 "
        f"{percentile(submit_latency or [0], 0.95) * 1000:.0f} ms; show (judge cached after "
        f"the first) p50 {statistics.median(show_latency or [0]) * 1000:.0f} ms, p95 "
        f"{percentile(show_latency or [0], 0.95) * 1000:.0f} ms; {len(generation_latency)} "
        f"generations completed during the run (p50 "
        f"{statistics.median(generation_latency or [0]) * 1000:.0f} ms)"
    )
    assert errors == []
    assert generation_latency, "no generation completed while annotators worked"

    rows = list_judgements(ctx.store)
    assert len(rows) == total
    seen = Counter((r["annotator"], r["item_id"], r["note"]) for r in rows)
    assert len(seen) == total and max(seen.values()) == 1
    item_ids = [item["item_id"] for item in demo_items("single")]
    for k, (who, _) in enumerate(USERS):
        mine = [r for r in rows if r["annotator"] == who]
        assert len(mine) == PER_ANNOTATOR
        mine.sort(key=lambda r: int(r["note"].removeprefix(f"{who} seq ")))
        # Each row is the one this annotator sent: the note, the score and the item shown.
        assert [r["note"] for r in mine] == [f"{who} seq {seq}" for seq in range(PER_ANNOTATOR)]
        assert [r["human_score"] for r in mine] == [seq % 5 + 1 for seq in range(PER_ANNOTATOR)]
        assert [r["item_id"] for r in mine] == [
            item_ids[item_for(k, seq) - 1] for seq in range(PER_ANNOTATOR)
        ]
    assert len({r["client_key"] for r in rows}) == total
    runs = {r["id"]: r for r in list_runs(ctx.store, kind="judge", limit=10 * total)}
    assert len(runs) == total
    assert all(runs[r["run_id"]]["annotator"] == r["annotator"] for r in rows)
    generated = list_runs(ctx.store, kind="trace", limit=10 * total)
    assert len(generated) >= len(generation_latency)
    assert {r["annotator"] for r in generated} == {GENERATOR[0]}
    assert ctx.store.read(lambda db: db.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"
