"""The request fields of the OpenAI-compatible server (``backends.serve_openai``), checked at
the boundary: a field of the wrong type or out of range is refused with HTTP 400 and a message
naming the field, before any model work.
"""

from __future__ import annotations

from backends.base import SamplingParams
from core.errors import ConfidantError


class RequestError(ConfidantError):
    """A request the server refuses (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def int_field(body: dict, key: str, default: int | None, low: int, high: int) -> int | None:
    """``body[key]`` as an integer in [low, high] (``default`` when absent or null); a bool,
    a float or a value out of range is refused."""
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{key} must be an integer between {low} and {high}, got {value!r}")
    return value


def float_field(body: dict, key: str, default: float) -> float:
    """``body[key]`` as a float (``default`` when absent or null); a bool or a non-number is
    refused. The range is checked by ``SamplingParams.validate``."""
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{key} must be a number, got {value!r}")
    return float(value)


def sampling_params(body: dict, max_tokens: int) -> SamplingParams:
    """The request's sampling fields as validated ``SamplingParams`` (``max_tokens`` ≥ 1)."""
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise RequestError("stop must be a string or a list of non-empty strings")
    if len(stop) > 4:
        raise RequestError("stop takes at most 4 sequences")
    top_k = int_field(body, "top_k", 0, -1, 100_000)
    return SamplingParams(
        n=int_field(body, "n", 1, 1, 256),
        temperature=float_field(body, "temperature", 1.0),
        top_p=float_field(body, "top_p", 1.0),
        top_k=max(0, top_k),  # vLLM's -1 means off, like our 0
        max_new_tokens=max_tokens,
        seed=int_field(body, "seed", None, -(2**63), 2**63 - 1),
        stop=stop,
    ).validate()
