"""A second process writing the same database makes a write wait, not fail: every write
transaction takes the write lock before it reads (``BEGIN IMMEDIATE``), so SQLite's busy timeout
applies. The app's store and the ``python -m cli cip`` command write one file at once and lose
nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from store.db import Store
from store.judgements import list_judgements, save_judgement

ROOT = Path(__file__).resolve().parents[2]

HOLD_THE_WRITE_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO annotators (name, created) VALUES ('other process', 'now')")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


def judgement(i: int) -> dict:
    return {"client_key": f"k{i}", "kind": "single", "annotator": "alice", "human_score": 3.0}


def test_a_read_then_write_waits_for_another_process_instead_of_failing(tmp_path):
    db = tmp_path / "shared.db"
    store = Store(db)
    save_judgement(store, judgement(0))  # the tables exist; the store has read the file
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(db), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    # save_judgement reads (is the key known?) and then inserts: with a deferred transaction
    # its snapshot is stale once the other process commits, and SQLite fails it at once.
    save_judgement(store, judgement(1))
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0
    assert {j["client_key"] for j in list_judgements(store)} == {"k0", "k1"}
    assert waited > 0.5  # it really waited for the other process's lock
    names = store.read(lambda d: [r["name"] for r in d["annotators"].rows])
    assert "other process" in names
    store.close()


def test_the_app_and_the_cli_write_one_database_at_once_and_lose_nothing(tmp_path):
    db = tmp_path / "shared.db"
    store = Store(db)
    save_judgement(store, judgement(-1))
    classes = ["owl", "frog", "penguin", "cat", "dog"]
    plays = " && ".join(
        f"{sys.executable} -m cli cip play --posterior oracle --n-cal 10 --max-length 8 "
        f"--hidden {c} --db {db}"
        for c in classes
    )
    cli = subprocess.Popen(
        ["bash", "-c", plays],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[BaseException] = []
    saved = []

    def app_writes(offset: int) -> None:
        i = offset
        while cli.poll() is None or i < offset + 50:
            try:
                save_judgement(store, judgement(i))
                saved.append(i)
            except BaseException as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)
                return
            i += 2

    threads = [threading.Thread(target=app_writes, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    _, err = cli.communicate(timeout=300)
    for t in threads:
        t.join(timeout=60)
    assert cli.returncode == 0, err
    assert "locked" not in err
    assert errors == []
    stored = {j["client_key"] for j in list_judgements(store)}
    assert stored == {"k-1"} | {f"k{i}" for i in saved}
    games = store.read(lambda d: [r["truth"] for r in d["cip_games"].rows])
    assert sorted(games) == sorted(classes)  # every game the CLI played was recorded
    assert store.read(lambda d: d["cip_turns"].count) >= len(classes)
    store.close()
