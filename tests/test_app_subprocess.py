"""``python app.py --model tiny-random`` as a user starts it from a fresh clone: a separate
process (the tiny model built fresh in an empty cache), driven over HTTP with gradio_client;
then killed with SIGKILL in the middle of generations, and its database checked."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from store.db import Store
from store.runs import get_run, list_runs
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0


class AppProcess:
    """A running ``python app.py`` with its URL, its log file and its process."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up code in the app runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@contextlib.contextmanager
def running_app(tmp_path: Path, *flags: str, env: dict | None = None, cache: Path | None = None):
    """Start ``python app.py <flags> --port <free> --db <tmp>`` and wait until it answers 200.

    The tiny model cache (``CONFIDANT_CACHE``) is ``cache`` or a fresh directory, so the model is
    built exactly as on a fresh clone. The process is killed by its PID on exit."""
    port = free_port()
    log = tmp_path / f"app-{port}.log"
    full_env = dict(os.environ)
    full_env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        CONFIDANT_CACHE=str(cache or tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
    )
    full_env.update(env or {})
    if "--db" not in flags:
        flags = (*flags, "--db", str(tmp_path / "confidant.db"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", *flags, "--port", str(port)],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    app = AppProcess(proc, f"http://127.0.0.1:{port}/", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{app.log_text()[-3000:]}")
            try:
                if httpx.get(app.url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer within {START_TIMEOUT} s:\n{app.log_text()}")
            time.sleep(0.3)
        yield app
    finally:
        app.kill()


RUN_ID = re.compile(r"Saved as run `([0-9a-f]{32})`")


def test_python_app_tiny_random_from_a_fresh_clone_then_sigkill(tmp_path):
    db = tmp_path / "confidant.db"
    acked: list[str] = []
    # One client queues 12 jobs at once: above the default per-user cap, so the cap is raised.
    with running_app(tmp_path, "--model", "tiny-random", "--jobs-per-user", "16") as app:
        assert not (tmp_path / "cache").exists()  # models load lazily, on first use
        client = Client(app.url, verbose=False)
        text, plot, highlights, summary, _prompt, status = client.predict(
            "Who wrote Hamlet?", 0.0, 1.0, 0, 8, 0, api_name="/generate"
        )
        assert highlights and "".join(h["token"] for h in highlights) == text
        acked.append(RUN_ID.search(status).group(1))
        assert any((tmp_path / "cache").iterdir()), "the tiny model was not built in the cache"

        # Many generations queued; kill -9 once some have been acknowledged.
        jobs = [
            client.submit(f"Question {i}?", 1.0, 1.0, 0, 16, i, api_name="/generate")
            for i in range(12)
        ]
        deadline = time.monotonic() + 60
        while sum(j.done() for j in jobs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        app.kill()
        for job in jobs:
            if job.done():
                with contextlib.suppress(Exception):
                    acked.append(RUN_ID.search(job.result()[-1]).group(1))
        client.close()
    assert len(acked) >= 2

    # What the restarted app reads: the database is whole, every acknowledged run is there
    # with its generation, and nothing is half-written.
    store = Store(db)
    try:
        assert store.read(lambda d: d.execute("PRAGMA integrity_check").fetchall()) == [("ok",)]
        assert store.read(lambda d: d.execute("PRAGMA foreign_key_check").fetchall()) == []
        orphans = store.read(
            lambda d: d.execute(
                "SELECT count(*) FROM runs WHERE id NOT IN (SELECT run_id FROM generations)"
            ).fetchone()[0]
        )
        assert orphans == 0, "a run was stored without its generation"
        assert {r["id"] for r in list_runs(store)} >= set(acked)
        first = get_run(store, acked[0])
        assert first["result"]["generation"]["text"] == text
        assert [role for role, _ in first["generations"]] == ["answer"]
    finally:
        store.close()


@pytest.mark.real
def test_python_app_with_no_flags_runs_the_embedded_real_model(tmp_path):
    """What the README promises: ``python app.py`` on a machine without Hub access serves a
    real model. The embedded model is prepared once per machine (``.ci/run`` does it), so the
    test uses the user's cache rather than a fresh one."""
    from backends.embedded import cache_root, is_prepared

    if not is_prepared():
        message = "the embedded model is not prepared: run python -m backends.embedded"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = {"CONFIDANT_MODEL": ""}
    with running_app(tmp_path, env=env, cache=cache_root()) as app:
        head = httpx.get(app.url + "config", timeout=10).text
        assert "smollm2-135m" in head and "Embedded real model" in head
        client = Client(app.url, verbose=False)
        text, _plot, highlights, _summary, _prompt, status = client.predict(
            "What is the capital of France?", 0.0, 1.0, 0, 16, 0, api_name="/generate"
        )
        client.close()
    assert "Paris" in text
    assert RUN_ID.search(status)
    assert "".join(h["token"] for h in highlights) == text


def test_uploads_exports_and_the_database_are_readable_by_the_app_user_only(tmp_path, tiny_lm_dir):
    """Files the app writes (its database, uploads and exports in Gradio's cache, the export
    folders) are 0600 in 0700 folders, whatever the umask it was started with."""
    temp, gradio_temp = tmp_path / "tmp", tmp_path / "gradio"
    temp.mkdir()
    env = {"TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(gradio_temp)}
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "question": "Who wrote Hamlet?", "response": "Shakespeare"}\n')
    old = os.umask(0o022)  # the usual umask, inherited by the app
    try:
        with running_app(
            tmp_path, "--model", str(tiny_lm_dir), "--auth", "alice:pw-alice", env=env
        ) as app:
            client = Client(app.url, auth=("alice", "pw-alice"), verbose=False)
            from gradio_client import handle_file

            loaded = client.predict(
                "Import file", handle_file(str(items)), "single", api_name="/judge_load"
            )
            assert "Loaded 1 single item" in loaded[0]
            wide, _ = client.predict(api_name="/export_runs")
            assert Path(wide).read_text(encoding="utf-8").startswith("id,kind")
            client.close()
    finally:
        os.umask(old)
    written = [p for p in (*gradio_temp.rglob("*"), *(temp / "confidant-exports").rglob("*"))]
    files = [p for p in written if p.is_file()]
    assert any(p.name == "items.jsonl" for p in files), "the upload was not in Gradio's cache"
    assert any(p.name == "confidant-runs.csv" for p in files), "no export was written"
    for p in [*files, tmp_path / "confidant.db"]:
        assert oct(p.stat().st_mode & 0o777) == oct(0o600), p
    for p in written:
        if p.is_dir():
            assert oct(p.stat().st_mode & 0o777) == oct(0o700), p
