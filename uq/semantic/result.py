"""The result of one semantic-entropy run: plain, JSON-serialisable data that the store saves
and the UI rebuilds every view from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.base import Generation
from uq.semantic.clustering import (
    EntailmentClustering,
)
from uq.semantic.estimators import (
    cluster_probabilities,
)

# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass
class SemanticEntropyResult:
    """One question's answers, clusters, label matrix and measures, with every parameter that
    produced them. Plain data: :meth:`to_dict` / :meth:`from_dict` round-trip through JSON."""

    question: str
    source: str  # "model" (sampled here) or "pasted"
    model: str | None
    params: dict[str, Any]
    texts: list[str]
    clustering: EntailmentClustering
    measures: dict[str, dict[str, Any]]
    samples: list[Generation] = field(default_factory=list)
    reference: Generation | None = None
    log_likelihoods: list[float] | None = None
    likelihood_source: str | None = None
    similarity: list[list[float]] | None = None
    p_true: float | None = None
    # The reference answer's similarity to each sample (CoCoA), in sample order.
    reference_similarity: list[float] | None = None
    # Verbalized confidence per stage: prompt, raw reply, confidence read (None: unreadable).
    verbalized: dict[str, dict[str, Any]] | None = None
    work: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The exact text the answers were sampled from (None for pasted answers and old runs).
    prompt_sent: str | None = None

    @property
    def n(self) -> int:
        return len(self.texts)

    def clusters(self) -> list[dict[str, Any]]:
        """Per cluster: id, member indices and texts, share of answers, and likelihood mass
        (normalised over the observed clusters; None without log-likelihoods)."""
        ids = self.clustering.cluster_ids
        share = cluster_probabilities(ids)
        mass = cluster_probabilities(ids, self.log_likelihoods) if self.log_likelihoods else None
        rows = []
        for c in sorted(share):
            members = [i for i, k in enumerate(ids) if k == c]
            rows.append(
                {
                    "cluster": c,
                    "members": members,
                    "texts": [self.texts[i] for i in members],
                    "share": share[c],
                    "likelihood_mass": mass[c] if mass else None,
                }
            )
        return rows

    def measure_value(self, key: str) -> float | None:
        entry = self.measures.get(key)
        return None if entry is None else entry.get("value")

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "source": self.source,
            "model": self.model,
            "params": self.params,
            "texts": self.texts,
            "clustering": self.clustering.to_dict(),
            "measures": self.measures,
            "samples": [g.to_dict() for g in self.samples],
            "reference": self.reference.to_dict() if self.reference else None,
            "log_likelihoods": self.log_likelihoods,
            "likelihood_source": self.likelihood_source,
            "similarity": self.similarity,
            "p_true": self.p_true,
            "reference_similarity": self.reference_similarity,
            "verbalized": self.verbalized,
            "work": self.work,
            "timings": self.timings,
            "notes": self.notes,
            "prompt_sent": self.prompt_sent,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SemanticEntropyResult:
        return cls(
            question=d["question"],
            source=d["source"],
            model=d.get("model"),
            params=dict(d.get("params", {})),
            texts=list(d["texts"]),
            clustering=EntailmentClustering(**d["clustering"]),
            measures={k: dict(v) for k, v in d["measures"].items()},
            samples=[Generation.from_dict(g) for g in d.get("samples", [])],
            reference=Generation.from_dict(d["reference"]) if d.get("reference") else None,
            log_likelihoods=d.get("log_likelihoods"),
            likelihood_source=d.get("likelihood_source"),
            similarity=d.get("similarity"),
            p_true=d.get("p_true"),
            reference_similarity=d.get("reference_similarity"),
            verbalized=d.get("verbalized"),
            work=dict(d.get("work", {})),
            timings=dict(d.get("timings", {})),
            notes=list(d.get("notes", [])),
            prompt_sent=d.get("prompt_sent"),
        )
