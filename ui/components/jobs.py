"""A per-user cap on the jobs that wait for (or hold) the shared model.

Every event that runs the model shares one Gradio concurrency slot (``concurrency_id="model"``),
so one person's pile of queued jobs would make everyone else wait behind it. A
:class:`JobLimiter` counts each user's jobs from the moment Gradio queues them until their
handler returns: a job past the cap is refused at once with :data:`BUSY` and never enters the
queue. The user is the logged-in name when login is on, else the browser session.

:func:`limit_jobs` applies it to a built app: each model event gets a Gradio ``validator``
(run when the job is queued, before it waits for the slot) that first runs the event's cheap
input checks, if any (an oversized upload is refused without waiting), then takes a place; the
handler is wrapped so that its place is given back when it ends. A job that never runs (the
page was closed while it waited) gives its place back when its session ends, or at the latest
after ``max_age_s``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from core.errors import ConfidantError
from core.secrets import redact

DEFAULT_JOBS_PER_USER = 4
BUSY = (
    "Busy: you already have {cap} job(s) queued or running. Wait for one to finish, then try again."
)


class Refused(gr.Error):
    """A job refused before it was queued; ``str()`` is the message itself (Gradio sends it to
    the page as the reason)."""

    def __str__(self) -> str:
        return str(self.message)


def _request_of(args: tuple, kwargs: Mapping[str, Any]) -> gr.Request | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            return value
    try:  # the request Gradio is serving on this thread (set around every handler call)
        from gradio.context import LocalContext

        return LocalContext.request.get(None)
    except (ImportError, AttributeError, LookupError):
        return None


class JobLimiter:
    """Counts each user's queued and running jobs; thread-safe."""

    def __init__(
        self,
        per_user: int = DEFAULT_JOBS_PER_USER,
        *,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_user < 1:
            raise ValueError("the per-user cap must be at least 1")
        self.per_user, self.max_age_s, self._clock = per_user, max_age_s, clock
        # user -> [(session, time taken)], oldest first
        self._places: dict[str, list[tuple[str, float]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def user_of(request: gr.Request | None) -> tuple[str, str]:
        """(user key, session): the logged-in name, else the session hash."""
        session = str(getattr(request, "session_hash", None) or "")
        name = getattr(request, "username", None) if request is not None else None
        return (f"user:{name}" if name else f"session:{session}"), session

    def _live(self, user: str, now: float) -> list[tuple[str, float]]:
        places = [p for p in self._places.get(user, []) if now - p[1] <= self.max_age_s]
        if places:
            self._places[user] = places
        else:
            self._places.pop(user, None)
        return places

    def take(self, request: gr.Request | None) -> None:
        """Take a place for one job, or raise :class:`Refused` with :data:`BUSY`."""
        user, session = self.user_of(request)
        with self._lock:
            now = self._clock()
            places = self._live(user, now)
            if len(places) >= self.per_user:
                raise Refused(BUSY.format(cap=self.per_user))
            self._places[user] = [*places, (session, now)]

    def give_back(self, request: gr.Request | None) -> None:
        """A job of this user ended: its place (this session's oldest) is free again."""
        user, session = self.user_of(request)
        with self._lock:
            places = self._places.get(user, [])
            mine = next((i for i, p in enumerate(places) if p[0] == session), None)
            if mine is None and places:
                mine = 0
            if mine is not None:
                del places[mine]
            self._live(user, self._clock())

    def session_ended(self, request: gr.Request | None) -> None:
        """The browser session closed: its jobs will not run, their places are free."""
        _, session = self.user_of(request)
        with self._lock:
            for user in list(self._places):
                self._places[user] = [p for p in self._places[user] if p[0] != session]
                self._live(user, self._clock())

    def held(self, request: gr.Request | None) -> int:
        """How many places this user holds now."""
        user, _ = self.user_of(request)
        with self._lock:
            return len(self._live(user, self._clock()))

    def total(self) -> int:
        """How many places all users hold now."""
        with self._lock:
            now = self._clock()
            return sum(len(self._live(user, now)) for user in list(self._places))

    def validator(self, check: Callable[..., Any] | None = None) -> Callable[..., None]:
        """A Gradio ``validator``: runs ``check`` on the event's inputs (a ``ConfidantError``
        refuses the job with its message), then takes a place."""

        def validate(*inputs: Any) -> Any:
            if check is not None:
                try:
                    check(*inputs)
                except ConfidantError as exc:
                    raise Refused(redact(str(exc))) from None
                except Exception:  # noqa: BLE001 - not the check's to report: the handler says it
                    pass
            self.take(_request_of((), {}))
            # Gradio reads one value per input (None: no remark on it).
            return [None] * len(inputs) if len(inputs) > 1 else None

        return validate

    def releasing(self, fn: Callable, *, generator: bool | None = None) -> Callable:
        """``fn`` that gives its job's place back when it returns, fails or stops (for a
        generator, ``generator=True`` or a generator function: when it is exhausted)."""
        if generator or (generator is None and inspect.isgeneratorfunction(fn)):

            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                request = _request_of(args, kwargs)
                try:
                    yield from fn(*args, **kwargs)
                finally:
                    self.give_back(request)

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            request = _request_of(args, kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                self.give_back(request)

        return wrapper


def limit_jobs(
    demo: gr.Blocks,
    limiter: JobLimiter,
    *,
    concurrency_id: str = "model",
    checks: Mapping[str, Callable[..., Any]] | None = None,
) -> int:
    """Put every event of ``demo`` in the ``concurrency_id`` group under ``limiter``; ``checks``
    maps an event's ``api_name`` to its input checks, run before the job is queued. Places of
    a closed session are given back on the page's unload. Returns how many events."""
    checks = checks or {}
    count = 0
    for block_fn in demo.fns.values():
        fn = block_fn.fn
        if block_fn.concurrency_id != concurrency_id or fn is None:
            continue
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"{block_fn.name}: only plain handlers are counted")
        block_fn.validator = limiter.validator(checks.get(block_fn.api_name or ""))
        generator = bool(getattr(block_fn, "types_generator", inspect.isgeneratorfunction(fn)))
        block_fn.fn = limiter.releasing(fn, generator=generator)
        count += 1
    with demo:
        demo.unload(limiter.session_ended)
    return count
