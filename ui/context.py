"""What every tab shares: the backends, the store, the settings, and small helpers that turn
user-caused errors into messages."""

from __future__ import annotations

import functools
import logging
import traceback
from dataclasses import dataclass, field

import gradio as gr

from backends.registry import Backends
from core.errors import ConfidantError
from core.secrets import redact
from core.text import html_text
from store.db import Store
from ui.components.jobs import JobLimiter

log = logging.getLogger("confidant")


@dataclass
class AppContext:
    backends: Backends
    store: Store
    auth_enabled: bool = False
    admins: frozenset = frozenset()  # with login on: users who see every annotator's data
    history_renderers: dict = field(default_factory=dict)
    run_measures: dict = field(default_factory=dict)  # kind → measures of a stored result
    on_load: list = field(default_factory=list)  # (fn, inputs, outputs) run when a page opens
    jobs: JobLimiter = field(default_factory=JobLimiter)  # queued model jobs per user

    @property
    def tiny(self) -> bool:
        return self.backends.config.is_tiny

    @property
    def embedded(self) -> bool:
        return self.backends.is_embedded


def annotator_of(request: gr.Request | None, typed_name: str | None = None) -> str | None:
    """The logged-in user when login is on; otherwise the name the person typed, if any."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return str(user)
    name = (typed_name or "").strip()
    return name[:100] or None


def owner_scope(ctx: AppContext, request: gr.Request | None) -> str | None:
    """Whose runs, games, judgements and exports this request may read: None for everyone's
    (login off, or an admin), else the logged-in user's name ("" — nobody's — when login is on
    and nobody is logged in)."""
    if not ctx.auth_enabled:
        return None
    user = getattr(request, "username", None) if request is not None else None
    if user and str(user) in ctx.admins:
        return None
    return str(user) if user else ""


def is_admin(ctx: AppContext, request: gr.Request | None) -> bool:
    """Whether the request may see every annotator's data (login off counts)."""
    return owner_scope(ctx, request) is None


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def user_errors(fn):
    """Show a ``ConfidantError`` (bad input, a model that will not load, a server that failed)
    as a message in the page instead of a traceback; other errors are logged and shown briefly.
    API keys are redacted from both, and the original exception is not chained to the message
    (Gradio prints the chain to the log). Gradio shows a message as HTML, and a message may
    quote a file, an item or a name, so it is HTML-escaped."""

    def convert(exc: Exception):
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, ConfidantError):
            return gr.Error(html_text(redact(str(exc)), quote=False))
        trace = "".join(traceback.format_exception(exc))
        log.error("unexpected error in %s:\n%s", fn.__name__, redact(trace))
        message = f"Something went wrong ({type(exc).__name__}: {exc}). Nothing was saved."
        return gr.Error(html_text(redact(message), quote=False))

    if _is_generator(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise convert(exc) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise convert(exc) from None

    return wrapper


def _is_generator(fn) -> bool:
    import inspect

    return inspect.isgeneratorfunction(fn)


TINY_BANNER = (
    "**Offline demo model.** This app runs `tiny-random`, a tiny model with random weights built "
    "on this machine: its text is gibberish, but every measure is computed exactly as it would be "
    "for a real model. Start with `--model <hub id or directory>` for real answers."
)

EMBEDDED_BANNER = (
    "**Embedded real model.** This app runs `smollm2-135m` (SmolLM2-135M-Instruct, 135M "
    "parameters, prepared on this machine from a PyPI wheel — no Hub needed). Its answers are "
    "real English but often wrong, and every measure is real: a good place to see whether "
    "uncertainty tracks errors. For a stronger model start with `--model <hub id or directory>` "
    "or `--openai-base-url <server>`."
)


def models_line(backends) -> str:
    """The header line naming the models that run and, offline, which entailment and why."""
    names = {k: str(v).replace("`", "'") for k, v in backends.describe().items()}
    default = backends.default_entailment()
    if default.method == "nli":
        meaning = f"NLI `{names['nli']}`"
    else:
        meaning = "entailment by embedding similarity (no NLI model here — see the Entailment box)"
    return (
        f"Models: generator `{names['generator']}` · {meaning} · embeddings `{names['embeddings']}`"
    )
