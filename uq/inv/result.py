"""The result of one Inv-Entropy run (plain, JSON-serialisable) and its measure values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.base import Generation
from uq.inv.measures import (
    MEASURES,
    InvEntropyResult,
    InvStatistics,
    bootstrap_output_similarities,
    compute_inv_measures,
    inv_entropy_result,
    response_statistics,
)
from uq.inv.perturbation import Perturbation
from uq.inv.similarity import semantic_entropy_of_responses

# --------------------------------------------------------------------------- result


@dataclass
class InvEntropyRun:
    """Everything one question's Inv-Entropy run produced, and every parameter behind it.

    ``inputs[0]`` is the question, ``inputs[1:]`` its perturbations; ``responses[i][k]`` is
    replicate k for input i. ``sim_x`` is S_x; ``response_similarity`` is the one matrix over all
    responses (input-major); ``mean_sim_y`` and ``mean_p_x_given_y`` average S_y⁽ᵇ⁾ and
    p(x_i|y_j) (row j, column i) over the bootstraps. ``semantic_entropy`` holds semantic
    entropy of the same responses: over the r answers to the original question (``*_original``)
    and over all (n+1)·r answers (``*_all``), discrete and, with likelihoods, weighted.
    ``generations`` (the raw answers with token records) is kept out of :meth:`to_dict` unless
    asked for, since the store saves generations separately. ``prompt_sent[i]`` is the exact
    text input i was answered from (answer instruction and chat template included; None for
    answers supplied offline and for runs stored before it was recorded).
    """

    question: str
    inputs: list[str]
    responses: list[list[str]]
    sim_x: list[list[float]]
    response_similarity: list[list[float]]
    mean_sim_y: list[list[float]]
    mean_p_x_given_y: list[list[float]]
    measures: InvEntropyResult
    semantic_entropy: dict
    perturbation: Perturbation
    params: dict
    response_mean_logprobs: list[list[float]] | None = None
    generations: list[list[Generation]] | None = None
    prompt_sent: list[str] | None = None

    @property
    def similarity_to_original(self) -> list[float]:
        """S_x[0, i]: how close each input is to the original question."""
        return list(self.sim_x[0])

    def to_dict(self, with_generations: bool = False) -> dict:
        out = {
            "question": self.question,
            "inputs": self.inputs,
            "responses": self.responses,
            "sim_x": self.sim_x,
            "response_similarity": self.response_similarity,
            "mean_sim_y": self.mean_sim_y,
            "mean_p_x_given_y": self.mean_p_x_given_y,
            "measures": self.measures.to_dict(),
            "semantic_entropy": self.semantic_entropy,
            "perturbation": self.perturbation.to_dict(),
            "params": self.params,
            "response_mean_logprobs": self.response_mean_logprobs,
            "prompt_sent": self.prompt_sent,
        }
        if with_generations and self.generations is not None:
            out["generations"] = [[g.to_dict() for g in row] for row in self.generations]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> InvEntropyRun:
        generations = data.get("generations")
        return cls(
            question=data["question"],
            inputs=list(data["inputs"]),
            responses=[list(r) for r in data["responses"]],
            sim_x=data["sim_x"],
            response_similarity=data["response_similarity"],
            mean_sim_y=data["mean_sim_y"],
            mean_p_x_given_y=data["mean_p_x_given_y"],
            measures=InvEntropyResult.from_dict(data["measures"]),
            semantic_entropy=dict(data["semantic_entropy"]),
            perturbation=Perturbation.from_dict(data["perturbation"]),
            params=dict(data["params"]),
            response_mean_logprobs=data.get("response_mean_logprobs"),
            generations=(
                [[Generation.from_dict(g) for g in row] for row in generations]
                if generations
                else None
            ),
            prompt_sent=data.get("prompt_sent"),
        )


def stored_statistics(run: InvEntropyRun) -> InvStatistics:
    """The statistics a run keeps: the answers' meaning clusters and mean token
    log-probabilities (the walks are not kept; their measures are stored in ``run.measures``)."""
    replicates = len(run.responses[0]) if run.responses else 0
    flat = [v for row in run.response_mean_logprobs or [] for v in row] or None
    se = run.semantic_entropy
    return InvStatistics(
        n_inputs=len(run.inputs),
        cluster_ids_original=se.get("cluster_ids_original"),
        cluster_ids_all=se.get("cluster_ids_all"),
        mean_logprobs_original=flat[:replicates] if flat is not None else None,
        mean_logprobs_all=flat,
    )


def measure_values(run: InvEntropyRun) -> dict[str, float | None]:
    """Every measure of :data:`uq.inv.measures.MEASURES` for a run, by key and in table order:
    those of the walks as stored in ``run.measures``, the others (semantic entropy of the same
    answers) from :func:`stored_statistics`; None where a statistic is missing."""
    stored = run.measures.values
    rest = [m for m in MEASURES if m.key not in stored]
    computed = compute_inv_measures(stored_statistics(run), rest) if rest else {}
    return {m.key: stored[m.key] if m.key in stored else computed[m.key] for m in MEASURES}


def measure_run(
    question: str,
    perturbation: Perturbation,
    responses: list[list[str]],
    stats: dict[str, np.ndarray],
    *,
    bootstraps: int,
    seed: int,
    params: dict,
    mean_logprobs: list[list[float]] | None = None,
    generations: list[list[Generation]] | None = None,
    prompt_sent: list[str] | None = None,
) -> InvEntropyRun:
    inputs = [question] + list(perturbation.perturbations)
    replicates = len(responses[0])
    flat = [text for row in responses for text in row]
    flat_logprobs = [v for row in mean_logprobs for v in row] if mean_logprobs else None
    inv_stats, indices = response_statistics(
        stats["sim_x"], stats["response_similarity"], replicates, bootstraps, seed
    )
    measures = inv_entropy_result(inv_stats, indices, seed)
    return InvEntropyRun(
        question=question,
        inputs=inputs,
        responses=responses,
        sim_x=stats["sim_x"].tolist(),
        response_similarity=stats["response_similarity"].tolist(),
        mean_sim_y=np.mean(
            bootstrap_output_similarities(stats["response_similarity"], indices), axis=0
        ).tolist(),
        mean_p_x_given_y=np.mean([w.p_x_given_y for w in inv_stats.walks], axis=0).tolist(),
        measures=measures,
        semantic_entropy=semantic_entropy_of_responses(
            flat, stats["labels"], replicates, flat_logprobs
        ),
        perturbation=perturbation,
        params=params,
        response_mean_logprobs=mean_logprobs,
        generations=generations,
        prompt_sent=prompt_sent,
    )
