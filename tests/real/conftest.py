"""The embedded real model (SmolLM2-135M-Instruct) for the tests marked ``real``.

It is prepared once per machine by ``python -m backends.embedded`` (``.ci/run`` does it). When
it is missing the tier is skipped with that command, except on CI (``CI=true``), where a
missing model is a failure: CI must run this tier.
"""

from __future__ import annotations

import os

import pytest

PREPARE = "python -m backends.embedded"


@pytest.fixture(scope="session")
def real_lm():
    """The embedded model through the same path the app takes (``--model smollm2-135m``)."""
    from backends.embedded import EMBEDDED_MODEL_ID, is_prepared, model_dir

    if not is_prepared():
        message = (
            f"the embedded model {EMBEDDED_MODEL_ID} is not prepared in {model_dir()}; "
            f"prepare it with: {PREPARE}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run the real-model tests)", pytrace=False)
        pytest.skip(message)
    from backends.registry import BackendConfig, Backends

    return Backends(BackendConfig(model=EMBEDDED_MODEL_ID)).generator()
