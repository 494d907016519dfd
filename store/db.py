"""The one place that opens SQLite.

One connection per database file, opened lazily on first use (never at import: Gradio runs
handlers on worker threads), shared across threads behind a lock. Each write is one
transaction: it lands whole or not at all, and takes the write lock before it reads
(``BEGIN IMMEDIATE``), so a second process writing the same file makes it wait, not fail.
WAL where the filesystem allows; on Hugging Face Spaces (bucket mounts) rollback journal and
exclusive locking instead.

Schemas are created by sqlite-utils ``Migrations`` sets declared in the ``store`` modules that
own each table; ``Store`` applies every pending set when it opens.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from sqlite_utils import Migrations

T = TypeVar("T")


def on_spaces() -> bool:
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


# Where a Space mounts its storage bucket (Space settings → Volumes); the disk elsewhere on a
# Space is wiped on restart.
SPACE_VOLUME = "/data"


def default_db_path() -> Path:
    """``CONFIDANT_DB`` if set; on Spaces ``/data/confidant.db`` when a volume is mounted
    there; else ``~/.local/share/confidant/confidant.db`` (outside any checkout)."""
    env = os.environ.get("CONFIDANT_DB")
    if env:
        return Path(env)
    if on_spaces() and os.path.isdir(SPACE_VOLUME) and os.access(SPACE_VOLUME, os.W_OK):
        return Path(SPACE_VOLUME) / "confidant.db"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "confidant" / "confidant.db"


def all_migrations() -> list[Migrations]:
    """Every ``migrations`` set declared by a module of the ``store`` package, by module name."""
    import store

    found = []
    for info in sorted(pkgutil.iter_modules(store.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"store.{info.name}")
        m = getattr(module, "migrations", None)
        if isinstance(m, Migrations):
            found.append(m)
    return found


class Store:
    """A SQLite database shared by all threads of the process."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.RLock()
        self._db: sqlite_utils.Database | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            with self._lock:
                if self._db is None:
                    self._db = self._open()
        return self._db

    def _open(self) -> sqlite_utils.Database:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        db = sqlite_utils.Database(conn)
        conn.execute("PRAGMA foreign_keys=ON")
        if on_spaces():
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        elif str(self.path) != ":memory:":
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError:
                pass  # filesystems without shared memory keep the rollback journal
        conn.execute("PRAGMA synchronous=NORMAL" if not on_spaces() else "PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        for m in all_migrations():
            m.apply(db)
        return db

    def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn(db)`` in one transaction under the lock; on any error nothing is kept.

        The transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before its
        first read, so a second writer (the CLI beside the app) makes it wait up to the busy
        timeout instead of failing at once with "database is locked" when a read-then-write
        transaction finds its snapshot stale. A write inside a write is a savepoint."""
        with self._lock:
            db = self.db
            conn = db.conn
            if conn.in_transaction:
                with db.atomic():  # nested: a savepoint inside the outer transaction
                    return fn(db)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        with self._lock:
            return fn(self.db)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
