"""Errors a user can cause or fix. The UI shows their message as-is; the CLI prints it
without a traceback (exit code 2).
"""

from __future__ import annotations


class ConfidantError(Exception):
    """An error a user can cause or fix (bad input, a model that will not load...).

    The UI shows its message as-is; the CLI prints it without a traceback.
    """


class ModelLoadError(ConfidantError):
    """A model could not be loaded; the message says how to fix it."""


class BackendError(ConfidantError):
    """A backend failed while answering (HTTP error, time-out, malformed reply)."""


class PromptTooLongError(ConfidantError):
    """A prompt has more tokens than the model's context window."""

    def __init__(self, n_tokens: int | None, limit: int | None, model: str) -> None:
        if n_tokens is None or limit is None:
            message = f"The prompt is longer than {model} can take (its context window)."
        else:
            message = f"The prompt is {n_tokens:,} tokens long; {model} takes at most {limit:,}."
        super().__init__(message + " Shorten it.")
        self.n_tokens, self.limit = n_tokens, limit
