"""The result of a dataset evaluation: per-question rows, per-measure metrics with bootstrap
intervals, plot curves and the parameters that produced them; plain data, JSON-serialisable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from uq.evaluation.calibration import CALIBRATION_METRICS

METRIC_NAMES = (
    "auroc",
    "aurac",
    "rejection_accuracy_80",
    "rejection_accuracy_90",
    "rejection_accuracy_95",
    "prr",
    "prr_normalised",
)


@dataclass
class EvaluationResult:
    """Per-question rows, per-measure metrics with bootstrap intervals, curves, parameters."""

    params: dict[str, Any]
    dataset_hash: str
    rows: list[dict[str, Any]]
    metrics: dict[str, dict[str, dict[str, Any] | None]]
    curves: dict[str, dict[str, Any]]
    n_computed: int = 0
    n_cached: int = 0
    duration: float = 0.0
    # measure → method ("platt", "isotonic", "raw") → CalibrationReport.to_dict()
    calibration: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def measure_names(self) -> list[str]:
        """Every measure column, semantic-entropy family first, then each provider's."""
        return list(self.metrics)

    @property
    def accuracy(self) -> float:
        """The fraction of questions whose reference answer is correct (NaN without rows)."""
        return float(np.mean([r["correct"] for r in self.rows])) if self.rows else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``evaluation.json`` holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationResult:
        """The result back from :meth:`to_dict`'s output."""
        return cls(**d)

    def question_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows) of the per-question table: one column per measure."""
        columns = ["id", "question", "answer", "golds", "score", "correct", "seed"]
        columns += self.measure_names
        out = []
        for r in self.rows:
            row = {c: r.get(c) for c in columns[:7]}
            row["golds"] = " | ".join(r["golds"])
            row.update({m: r["measures"].get(m) for m in self.measure_names})
            out.append(row)
        return columns, out

    def calibration_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows): per measure and calibration method, the split and each calibration
        metric's estimate and interval on the held-out questions."""
        columns = ["measure", "method", "n_calibration", "n_test", "split_seed"]
        for m in CALIBRATION_METRICS:
            columns += [m, f"{m}_low", f"{m}_high"]
        out = []
        for measure, methods in self.calibration.items():
            for method, report in methods.items():
                row: dict[str, Any] = {
                    "measure": measure,
                    "method": method,
                    "n_calibration": report.get("n_calibration"),
                    "n_test": report.get("n_test"),
                    "split_seed": report.get("seed"),
                }
                for m in CALIBRATION_METRICS:
                    interval = (report.get("metrics") or {}).get(m)
                    row[m] = interval["estimate"] if interval else None
                    row[f"{m}_low"] = interval["low"] if interval else None
                    row[f"{m}_high"] = interval["high"] if interval else None
                out.append(row)
        return columns, out

    def metric_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows): per measure, each metric's estimate and interval."""
        columns = ["measure", "n"]
        for m in METRIC_NAMES:
            columns += [m, f"{m}_low", f"{m}_high"]
        out = []
        for measure, metrics in self.metrics.items():
            row: dict[str, Any] = {
                "measure": measure,
                "n": sum(r["measures"].get(measure) is not None for r in self.rows),
            }
            for m in METRIC_NAMES:
                interval = metrics.get(m)
                row[m] = interval["estimate"] if interval else None
                row[f"{m}_low"] = interval["low"] if interval else None
                row[f"{m}_high"] = interval["high"] if interval else None
            row["note"] = self.measure_note(measure) if not row["n"] else None
            out.append(row)
        return columns + ["note"], out

    def measure_note(self, measure: str) -> str | None:
        """Why a measure has no value on any question (e.g. "needs model internals (...)" for
        samples without log-probabilities), from the first row that says."""
        return next((r["notes"][measure] for r in self.rows if measure in r.get("notes", {})), None)
