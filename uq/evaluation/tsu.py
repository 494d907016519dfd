"""Temperature Sensitivity of Uncertainty (TSU): how often uncertainty rises with temperature.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy", arXiv 2506.09684, eq. 7. A measure that
tracks the generator's randomness should report more uncertainty at a higher sampling
temperature. For temperatures T_1 < … < T_m,

    TSU = 100 · (1/|D|) Σ_{S_x ∈ D} 1[ UQ(S_x, T_1) < UQ(S_x, T_2) < … < UQ(S_x, T_m) ]

in percent; it needs no correctness labels. The paper reports TSU(1.0, 1.4) and TSU(0.7, 1.4)
(two temperatures: the second exceeds the first) and TSU(0.3–1.4) (the whole grid must rise
strictly at every step, hence its much lower values).

Example::

    >>> values = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.6, 0.7]]
    >>> tsu(values)
    50.0
    >>> tsu(values, over=(0.7, 1.4))
    100.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import ConfidantError

DEFAULT_TSU_TEMPERATURES: tuple[float, ...] = (0.3, 0.7, 1.0, 1.4)


def _validated(
    uncertainty: np.ndarray | Sequence[Sequence[float]], temperatures: Sequence[float]
) -> tuple[np.ndarray, list[float]]:
    values = np.asarray(uncertainty, dtype=float)
    grid = [float(t) for t in temperatures]
    if len(grid) < 2:
        raise ConfidantError("TSU needs at least two temperatures")
    if any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
        raise ConfidantError(f"temperatures must be strictly increasing, got {grid}")
    if values.ndim != 2 or values.shape[0] == 0:
        raise ConfidantError(
            f"uncertainty must be a 2-D array (questions × temperatures), got shape {values.shape}"
        )
    if values.shape[1] != len(grid):
        raise ConfidantError(
            f"uncertainty has {values.shape[1]} columns but {len(grid)} temperatures were given"
        )
    if not np.all(np.isfinite(values)):
        raise ConfidantError("uncertainty contains NaN or infinite values")
    return values, grid


def _column(grid: list[float], temperature: float) -> int:
    for index, value in enumerate(grid):
        if np.isclose(value, temperature):
            return index
    raise ConfidantError(f"temperature {temperature} is not in the grid {grid}")


def tsu(
    uncertainty: np.ndarray | Sequence[Sequence[float]],
    temperatures: Sequence[float] = DEFAULT_TSU_TEMPERATURES,
    over: Sequence[float] | None = None,
) -> float:
    """TSU in percent: the share of questions whose uncertainty rises strictly along ``over``.

    TSU = 100 · mean_q 1[UQ(q, T_1) < … < UQ(q, T_m)] (Song et al. 2025, eq. 7).
    ``uncertainty[q, k]`` is a measure's value for question q at ``temperatures[k]``;
    ``over`` picks the temperatures of the chain (default: the whole grid), e.g. (1.0, 1.4)
    for the paper's TSU(1.0, 1.4). Ties count as not rising.
    """
    values, grid = _validated(uncertainty, temperatures)
    chain = grid if over is None else [float(t) for t in over]
    if len(chain) < 2:
        raise ConfidantError("a TSU chain needs at least two temperatures")
    if any(b <= a for a, b in zip(chain, chain[1:], strict=False)):
        raise ConfidantError(f"the TSU chain must be strictly increasing, got {chain}")
    columns = values[:, [_column(grid, t) for t in chain]]
    rising = np.all(np.diff(columns, axis=1) > 0, axis=1)
    return float(100.0 * rising.mean())


def tsu_summary(
    uncertainty: np.ndarray | Sequence[Sequence[float]],
    temperatures: Sequence[float] = DEFAULT_TSU_TEMPERATURES,
) -> dict[str, float]:
    """The paper's TSU columns for a grid: TSU(T_k, T_max) for every k, then the whole chain.

    With the default grid: ``TSU(0.3,1.4)``, ``TSU(0.7,1.4)``, ``TSU(1.0,1.4)`` (pairs) and
    ``TSU(0.3-1.4)`` (all four strictly increasing). Song et al. (2025), Table 2.
    """
    values, grid = _validated(uncertainty, temperatures)
    summary = {
        f"TSU({low},{grid[-1]})": tsu(values, grid, over=(low, grid[-1])) for low in grid[:-1]
    }
    if len(grid) > 2:
        summary[f"TSU({grid[0]}-{grid[-1]})"] = tsu(values, grid)
    return summary


@dataclass
class TsuSweep:
    """Every measure's value per question and temperature, and its TSU columns.

    ``values[measure][q][k]`` is the measure for ``questions[q]`` at ``temperatures[k]``;
    ``summary[measure]`` is :func:`tsu_summary` of that matrix (None marks a missing value). ``params`` records what produced
    the values (model, seeds, ...).
    """

    questions: list[str]
    temperatures: list[float]
    values: dict[str, list[list[float | None]]]
    summary: dict[str, dict[str, float]]
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TsuSweep:
        return cls(
            questions=list(data["questions"]),
            temperatures=[float(t) for t in data["temperatures"]],
            values={
                k: [[None if x is None else float(x) for x in row] for row in v]
                for k, v in data["values"].items()
            },
            summary={k: dict(v) for k, v in data["summary"].items()},
            params=dict(data.get("params", {})),
        )


def temperature_sweep(
    questions: Sequence[str],
    measure: Callable[[Sequence[str], float], Sequence[dict[str, float]]],
    temperatures: Sequence[float] = DEFAULT_TSU_TEMPERATURES,
    params: dict | None = None,
) -> TsuSweep:
    """Run any uncertainty measure over a temperature grid and report its TSU (no labels).

    ``measure(questions, temperature)`` returns one ``{measure name: value}`` dict per question
    (a pipeline answering all questions in one batch at that temperature); every name it
    returns gets a questions × temperatures matrix and the TSU columns of
    :func:`tsu_summary` (Song et al. 2025, eq. 7 and Table 2). A measure that is NaN or
    missing for some question is left out of the summary rather than guessed.
    """
    questions = list(questions)
    if not questions:
        raise ConfidantError("TSU needs at least one question")
    grid = [float(t) for t in temperatures]
    _validated(np.zeros((1, len(grid))), grid)
    per_temperature: list[Sequence[dict[str, float]]] = []
    for temperature in grid:
        rows = list(measure(questions, temperature))
        if len(rows) != len(questions):
            raise ConfidantError(
                f"the measure returned {len(rows)} results for {len(questions)} questions"
            )
        per_temperature.append(rows)
    names = list(dict.fromkeys(name for rows in per_temperature for row in rows for name in row))
    values: dict[str, list[list[float | None]]] = {}
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        matrix = np.array(
            [
                [float(per_temperature[k][q].get(name, np.nan)) for k in range(len(grid))]
                for q in range(len(questions))
            ]
        )
        values[name] = [[float(v) if np.isfinite(v) else None for v in row] for row in matrix]
        if np.all(np.isfinite(matrix)):
            summary[name] = tsu_summary(matrix, grid)
    return TsuSweep(
        questions=questions,
        temperatures=grid,
        values=values,
        summary=summary,
        params=dict(params or {}),
    )
