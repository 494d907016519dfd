"""Sending many requests to one server at once, and trying again when it is busy.

:class:`RequestPool` runs ``fn`` over a batch with up to ``concurrency`` calls in flight, results
in input order; the first failure cancels what was not yet sent and is raised, so a batch never
comes back half-done. :func:`retry_wait` is the wait before another attempt: the server's
``Retry-After`` when it sent one (at most a minute), else ``backoff · 2^(attempt − 1)`` seconds
plus as much again of random jitter.

Cancellation: a caller (a browser session the user left or stopped) runs its work inside
``with cancel_scope() as cancel:`` and calls ``cancel.set()`` from elsewhere; every batch the
pool runs in that scope then stops sending, drops what was not yet sent, returns at once
without waiting for the requests still in flight, and raises :class:`RequestsCancelled`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from core.errors import ConfidantError

_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "confidant_cancel", default=None
)


class RequestsCancelled(ConfidantError):
    """The user cancelled the work: the requests not yet sent were dropped."""


@contextlib.contextmanager
def cancel_scope(event: threading.Event | None = None) -> Iterator[threading.Event]:
    """Run the block with ``event`` (a new one when None) as its cancel signal."""
    event = event or threading.Event()
    token = _CANCEL.set(event)
    try:
        yield event
    finally:
        _CANCEL.reset(token)


def check_cancelled(event: threading.Event | None = None) -> None:
    """Raise :class:`RequestsCancelled` when ``event`` (default: the scope's) is set."""
    event = event if event is not None else _CANCEL.get()
    if event is not None and event.is_set():
        raise RequestsCancelled("Cancelled: the requests not yet sent to the server were dropped.")


CONCURRENCY_ENV = "CONFIDANT_CONCURRENCY"
DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 512
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 4  # one request and three retries
BACKOFF_S = 0.5  # the first retry waits 0.5–1 s, the second 1–2 s, the third 2–4 s
MAX_WAIT_S = 60.0


def check_concurrency(value: Any) -> int:
    """The number of requests in flight at once: a whole number from 1 to 512."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and 1 <= number <= MAX_CONCURRENCY):
        raise ConfidantError(
            f"Concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}."
        )
    return int(number)


def retry_wait(attempt: int, retry_after: str | None, backoff_s: float = BACKOFF_S) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, …)."""
    if retry_after is not None:
        try:
            return min(MAX_WAIT_S, max(0.0, float(retry_after)))
        except ValueError:
            pass  # an HTTP date: use the exponential wait
    wait = backoff_s * 2 ** (attempt - 1)
    return min(MAX_WAIT_S, wait + random.uniform(0, wait))


class RequestPool:
    """A thread pool of ``concurrency`` workers for one server, shared by every caller."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.concurrency = check_concurrency(concurrency)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="server-request")
        self._inside = threading.local()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, up to ``concurrency`` at once, in input order. Called
        from inside the pool it runs serially (waiting there could starve the pool)."""
        items = list(items)
        cancel = _CANCEL.get()
        if len(items) <= 1 or self.concurrency == 1 or getattr(self._inside, "on", False):
            out = []
            for x in items:
                check_cancelled(cancel)
                out.append(fn(x))
            return out

        def run(x):
            self._inside.on = True
            check_cancelled(cancel)  # queued when the user cancelled: never sent
            token = _CANCEL.set(cancel)  # retries inside fn see the same signal
            try:
                return fn(x)
            finally:
                _CANCEL.reset(token)

        check_cancelled(cancel)
        futures = [self._pool.submit(run, x) for x in items]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # the first failure fails the batch
                check_cancelled(cancel)
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
