"""Many questions in flight at once against a served model, and the run's throughput.

A server (vLLM, our ``backends.serve_openai``) batches whatever requests arrive together, so
the harness keeps several questions (batches of ``batch_size``) in flight on threads that share
the backend's one request pool. Only a backend whose capabilities declare ``concurrent_calls``
gets more than one; an in-process model runs one forward at a time and keeps its batches.

:func:`run_in_flight` hands each finished unit to ``on_done`` on the calling thread, so the
cache is written there as units finish. On a failure or Ctrl-C it starts nothing new, lets the
units already running finish (and hands them over: a resumed run computes none of them again),
then raises; a second Ctrl-C stops at once. :class:`Throughput` turns the questions computed so
far into a rate and the time left (cached questions are not counted: they cost nothing).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from backends.base import capabilities_of
from core.errors import ConfidantError

MAX_IN_FLIGHT = 512


def in_flight_width(lm: Any, requested: int | None = None) -> int:
    """How many units to keep in flight: 1 for a backend without ``concurrent_calls``;
    otherwise ``requested``, or by default the backend's ``concurrency`` (its request pool)."""
    if requested is not None and (
        isinstance(requested, bool)
        or not isinstance(requested, int)
        or not 1 <= requested <= MAX_IN_FLIGHT
    ):
        raise ConfidantError(
            f"questions in flight must be a whole number from 1 to {MAX_IN_FLIGHT}, "
            f"got {requested!r}"
        )
    if not capabilities_of(lm).concurrent_calls:
        return 1
    if requested is not None:
        return requested
    return max(1, min(MAX_IN_FLIGHT, int(getattr(lm, "concurrency", 1) or 1)))


def run_in_flight(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    width: int,
    on_done: Callable[[Any, Any], None],
) -> None:
    """``on_done(job, fn(job))`` for every job, up to ``width`` jobs running at once on worker
    threads; ``on_done`` runs on the calling thread, in the order the jobs finish (in input
    order when ``width`` is 1, which runs everything on the calling thread)."""
    jobs = list(jobs)
    if width <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_done(job, fn(job))
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    finished: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((job, fn(job), None))
            except BaseException as exc:  # KeyboardInterrupt too: the caller re-raises it
                stop.set()
                finished.put((job, None, exc))

    threads = [
        threading.Thread(target=worker, daemon=True, name=f"question-{k}")
        for k in range(min(width, len(jobs)))
    ]
    for thread in threads:
        thread.start()
    failure: BaseException | None = None

    def deliver(block: bool) -> None:
        nonlocal failure
        try:
            job, result, exc = finished.get(timeout=0.1) if block else finished.get_nowait()
        except queue.Empty:
            return
        if exc is None:
            try:
                on_done(job, result)
            except BaseException as err:
                exc = err
        if exc is not None and failure is None:
            failure = exc
            stop.set()

    try:
        while any(t.is_alive() for t in threads) or not finished.empty():
            deliver(block=True)
    except KeyboardInterrupt as exc:  # Ctrl-C: finish and hand over what is running
        failure = failure or exc
        stop.set()
        while any(t.is_alive() for t in threads) or not finished.empty():
            deliver(block=True)
    if failure is not None:
        raise failure


class Throughput:
    """Questions computed per second since the first one began, and the time the rest take."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.started = clock()
        self.computed = 0

    def add(self, n: int = 1) -> None:
        self.computed += n

    def text(self, remaining: int) -> str:
        """e.g. "2.4 questions/s, about 1:05 left"; empty before the first computed question."""
        elapsed = self.clock() - self.started
        if not self.computed or elapsed <= 0:
            return ""
        rate = self.computed / elapsed
        left = int(round(max(0, remaining) / rate))
        hours, rest = divmod(left, 3600)
        clock = (
            f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
            if hours
            else f"{rest // 60}:{rest % 60:02d}"
        )
        return f"{rate:.2f} questions/s, about {clock} left"
