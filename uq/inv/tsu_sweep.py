"""Temperature Sensitivity of Uncertainty for Inv-Entropy: the pipeline at each temperature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.base import LanguageModel
from core.errors import ConfidantError
from uq.evaluation.tsu import DEFAULT_TSU_TEMPERATURES, TsuSweep, temperature_sweep
from uq.inv.options import Embed, check_positive_int, check_seed, check_text, model_name_of
from uq.inv.paraphrase import (
    DEFAULT_N_PERTURBATIONS,
)
from uq.inv.perturbation import Perturbation, perturb_questions
from uq.inv.pipeline import run_inv_entropy_batch
from uq.inv.result import measure_values

# --------------------------------------------------------------------------- TSU


def inv_entropy_tsu(
    questions: Sequence[str],
    lm: LanguageModel,
    embed: Embed | None,
    nli: Any = None,
    *,
    temperatures: Sequence[float] = DEFAULT_TSU_TEMPERATURES,
    perturbation: str = "paraphrase",
    perturbations: Sequence[Sequence[str] | str] | None = None,
    perturbed: Sequence[Perturbation] | None = None,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int = 0,
    batch_size: int | None = None,
    **options: Any,
) -> TsuSweep:
    """TSU of every Inv-Entropy measure and of semantic entropy over a temperature grid.

    The perturbations are made once per question (or taken from ``perturbed``) and reused at
    every temperature, so only the answering temperature changes; each temperature answers the
    questions in batches of ``batch_size`` (default: all at once) with the same seed
    (Song et al. 2025, eq. 7, Table 2). No labels needed.
    """
    questions = [check_text(q, "the question") for q in questions]
    if perturbed is None:
        perturbed = perturb_questions(
            questions,
            perturbation,
            n=n,
            seed=check_seed(seed),
            lm=lm,
            embed=embed,
            perturbations=perturbations,
            similarity_rule="absolute"
            if options.get("similarity") == "embedding_abs"
            else "shifted",
            gaap_options=options.get("gaap_options"),
            paraphrase_max_new_tokens=options.get("paraphrase_max_new_tokens"),
        )
    perturbed = list(perturbed)
    if len(perturbed) != len(questions):
        raise ConfidantError("give one perturbation set per question")
    size = (
        len(questions)
        if batch_size is None
        else check_positive_int(batch_size, "batch size", 10**6)
    )
    rest = {k: v for k, v in options.items() if k not in ("temperature", "perturbed")}

    def measure(batch: Sequence[str], temperature: float) -> list[dict[str, float]]:
        values: list[dict[str, float]] = []
        for start in range(0, len(batch), size):
            runs = run_inv_entropy_batch(
                batch[start : start + size],
                lm,
                embed,
                nli,
                perturbed=perturbed[start : start + size],
                temperature=temperature,
                seed=seed,
                **rest,
            )
            values += [{k: v for k, v in measure_values(r).items() if v is not None} for r in runs]
        return values

    return temperature_sweep(
        questions,
        measure,
        temperatures,
        params={
            "perturbation": perturbed[0].method if perturbed else perturbation,
            "n": len(perturbed[0].perturbations) if perturbed else n,
            "seed": seed,
            "batch_size": size,
            "model": model_name_of(lm),
            "embedding_model": model_name_of(embed),
            **{k: v for k, v in rest.items() if isinstance(v, (int, float, str))},
        },
    )
