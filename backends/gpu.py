"""ZeroGPU on Hugging Face Spaces: ``gpu(duration=...)`` applies ``spaces.GPU`` to a compute
function when the app runs on ZeroGPU hardware, and returns the function unchanged anywhere
else (``spaces`` is then never imported).

ZeroGPU sets ``SPACES_ZERO_GPU``. ``spaces`` must be imported before torch touches CUDA, so
this module imports it on its own import when ZeroGPU is on, and ``app.py`` imports this
module before anything else.

On ZeroGPU a decorated call runs in a forked worker that holds the GPU for at most
``duration`` seconds: its arguments reach the worker by fork and only its return value comes
back. So what a call would change in its arguments is lost, and two things are done in the app
process instead: ``prepare(*args, **kwargs)`` runs before the call (e.g. drawing the seed that
``sample_batch`` writes back into its params), and a ``streamer`` keyword argument is kept back
and ended when the call returns (the answer then appears whole instead of streaming).

    from backends.gpu import gpu

    @gpu(duration=120)
    def sample_everything(...): ...
"""

from __future__ import annotations

import functools
import logging
import os
import random
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable)


def zero_gpu_enabled() -> bool:
    """True on ZeroGPU hardware (the Space runtime sets ``SPACES_ZERO_GPU``)."""
    # the same rule as the ``spaces`` package's own settings
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


def _spaces_module():
    """The ``spaces`` package on ZeroGPU, else None (never imported elsewhere)."""
    if not zero_gpu_enabled():
        return None
    try:
        import spaces
    except ImportError:
        logging.getLogger("confidant").warning(
            "SPACES_ZERO_GPU is set but the spaces package is missing: compute functions run "
            "without a GPU. Fix: add spaces to requirements.txt."
        )
        return None
    return spaces


_spaces_module()  # on ZeroGPU: import ``spaces`` now, before torch initialises CUDA


def gpu(
    duration: float | Callable[..., float] = 60,
    *,
    size: str | None = None,
    prepare: Callable[..., Any] | None = None,
):
    """Decorator: ``spaces.GPU(fn, duration=duration)`` on ZeroGPU, ``fn`` unchanged elsewhere.

    ``duration`` is the longest time (seconds) one call may hold the GPU, or a function of the
    call's arguments returning it; shorter durations get better queue priority on a Space.
    ``size`` is ``"large"`` (default) or ``"xlarge"`` (a full GPU, twice the quota).
    ``prepare`` runs in the app process before each call, with the call's arguments.
    """

    def decorate(fn: F) -> F:
        spaces = _spaces_module()
        if spaces is None:
            return fn
        options: dict[str, Any] = {"duration": duration}
        if size is not None:
            options["size"] = size
        on_gpu = spaces.GPU(fn, **options)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if prepare is not None:
                prepare(*args, **kwargs)
            streamer = kwargs.pop("streamer", None)
            try:
                return on_gpu(*args, **kwargs)
            finally:
                if streamer is not None:
                    streamer.end()

        return call  # type: ignore[return-value]

    return decorate


def generation_seconds(model, prompts, params, *args, **kwargs) -> float:
    """GPU time to ask for ``HFCausalLM.sample_batch(prompts, params)``: a setup allowance plus
    about 50 ms per decoding step for each batch of ``max_batch`` rows, between 30 and 240 s."""
    rows = max(1, len(prompts)) * max(1, int(getattr(params, "n", 1)))
    batches = -(-rows // max(1, int(getattr(model, "max_batch", 64))))
    steps = int(getattr(params, "max_new_tokens", 64))
    return float(min(240.0, max(30.0, 15.0 + 0.05 * batches * steps)))


def draw_seed(model, prompts, params, *args, **kwargs) -> None:
    """Draw ``params.seed`` in the app process when it is None, as ``sample_batch`` would, so
    the seed it records survives a call made in a forked GPU worker."""
    if getattr(params, "seed", 0) is None:
        params.seed = random.randrange(2**31)
