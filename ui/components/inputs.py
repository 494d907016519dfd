"""Checks for what a person types or uploads into a tab: each returns the clean value or raises
a ``ConfidantError`` whose message names the field, which the page shows instead of a
traceback."""

from __future__ import annotations

import math
from typing import Any

from core.errors import ConfidantError


def number(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float in ``[low, high]`` (a slider or a number box may send a
    string, ``None``, NaN or infinity)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ConfidantError(f"{name} must be a finite number")
    if not low <= x <= high:
        raise ConfidantError(f"{name} must be between {low:g} and {high:g}, got {x:g}")
    return x


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; ``2.0`` is accepted, ``2.5`` and NaN are not."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}") from None
    if not math.isfinite(x) or x != int(x):
        raise ConfidantError(f"{name} must be a whole number, got {value}")
    if not low <= int(x) <= high:
        raise ConfidantError(f"{name} must be between {low} and {high}, got {int(x)}")
    return int(x)


def upload_path(upload: Any) -> str | None:
    """The file path of a ``gr.File`` value: a path string, or an object with ``.name`` (older
    Gradio file objects); ``None`` when nothing was uploaded."""
    if not upload:
        return None
    return upload if isinstance(upload, str) else getattr(upload, "name", str(upload))
