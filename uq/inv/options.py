"""Inv-Entropy's options: defaults, limits and the checks of user input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends.base import check_seed as check_seed_value
from core.errors import ConfidantError
from uq.inv.measures import (
    draw_bootstrap_indices,
)
from uq.inv.paraphrase import (
    DEFAULT_N_PERTURBATIONS,
)

DEFAULT_REPLICATES = 5
DEFAULT_BOOTSTRAPS = 20
DEFAULT_ANSWER_INSTRUCTION = "Answer concisely."
DEFAULT_SE_COSINE_THRESHOLD = 0.85
PARAPHRASE_TEMPERATURE = 0.7  # the authors' paraphrasing call (gpt-3.5-turbo, T = 0.7)

SIMILARITIES = {
    "embedding": "sentence-embedding cosine mapped to (1 + cos)/2 (the paper)",
    "embedding_abs": "sentence-embedding |cos| (the authors' code and package)",
    "nli": "NLI entailment probability averaged over both directions",
}
# The default similarity, chosen on real answers by bench/inv_similarity.py: see
# SIMILARITY_DEFAULT_WHY and the README's Inv-Entropy section.
DEFAULT_SIMILARITY = "embedding_abs"
SIMILARITY_DEFAULT_WHY = (
    "**Similarity: |cos| by default.** Measured on 15 trivia questions with the embedded "
    "model (n = 4, r = 3): with (1 + cos)/2 Inv-Entropy stayed within 0.038 of ln(n+1) "
    "(std 0.014, AUROC 0.648); with |cos| it spread with std 0.082 (AUROC 0.648). "
    "`bench/inv_similarity.py`; NLI not measured (needs an NLI model)."
)
PERTURBATION_METHODS = ("paraphrase", "gaap", "given")

MAX_TEXT_CHARS = 20_000
MAX_INPUTS = 51
MAX_REPLICATES = 50
MAX_BOOTSTRAPS = 10_000
MAX_RESPONSES = 600
MAX_NLI_DISTINCT_RESPONSES = 150
MAX_OFFLINE_BYTES = 5_000_000

Embed = Callable[[list[str]], np.ndarray]


# --------------------------------------------------------------------------- validation


def check_positive_int(value: Any, name: str, upper: int) -> int:
    if isinstance(value, bool):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number):
        raise ConfidantError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= int(number) <= upper:
        raise ConfidantError(f"{name} must be between 1 and {upper}, got {int(number)}")
    return int(number)


def check_seed(value: Any) -> int:
    if value is None or value == "":
        return 0
    return check_seed_value(value)


def check_text(value: Any, what: str) -> str:
    if value is None or not isinstance(value, str):
        raise ConfidantError(f"{what} must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise ConfidantError(f"{what} contains a NUL character; remove it and try again")
    text = "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()
    if not text:
        raise ConfidantError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ConfidantError(
            f"{what} is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}"
        )
    return text


def check_similarity(similarity: str) -> str:
    if similarity not in SIMILARITIES:
        raise ConfidantError(
            f"unknown similarity {similarity!r}; use one of {', '.join(SIMILARITIES)}"
        )
    return similarity


def check_sizes(n_inputs: int, replicates: int, bootstraps: int) -> None:
    if n_inputs * replicates > MAX_RESPONSES:
        raise ConfidantError(
            f"{n_inputs} inputs × {replicates} replicates = {n_inputs * replicates} responses; "
            f"the limit is {MAX_RESPONSES}"
        )
    draw_bootstrap_indices(n_inputs, replicates, bootstraps, 0)  # validates the counts


def semantic_entropy_rule(similarity: str, threshold: float) -> str:
    if similarity == "nli":
        return "NLI labels, entailment both ways"
    return f"embedding cosine ≥ {threshold}"


def check_options(
    *,
    perturbation: str = "paraphrase",
    n: Any = DEFAULT_N_PERTURBATIONS,
    replicates: Any = DEFAULT_REPLICATES,
    similarity: str = DEFAULT_SIMILARITY,
    bootstraps: Any = DEFAULT_BOOTSTRAPS,
    seed: Any = 0,
) -> dict[str, Any]:
    """The run options validated and normalised, before any model is loaded.

    Raises :class:`ConfidantError` naming the first option a user typed wrong.
    """
    if perturbation not in PERTURBATION_METHODS:
        raise ConfidantError(
            f"unknown perturbation method {perturbation!r}; use one of "
            f"{', '.join(PERTURBATION_METHODS)}"
        )
    options = {
        "perturbation": perturbation,
        "n": check_positive_int(n, "n (the number of perturbations)", MAX_INPUTS - 1),
        "replicates": check_positive_int(replicates, "r (replicates per input)", MAX_REPLICATES),
        "similarity": check_similarity(similarity),
        "bootstraps": check_positive_int(bootstraps, "B (bootstraps)", MAX_BOOTSTRAPS),
        "seed": check_seed(seed),
    }
    if perturbation != "given":
        check_sizes(options["n"] + 1, options["replicates"], options["bootstraps"])
    return options


def model_name_of(obj: Any) -> str | None:
    return getattr(obj, "model_id", None) if obj is not None else None
