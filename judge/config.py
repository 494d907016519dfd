"""What a judge run needs: the judge prompt settings and the relation rules."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from backends.base import SamplingParams, check_seed
from core.errors import ConfidantError
from judge.prompts import (
    SCALES,
)

Progress = Callable[[float, str], None]
RELATION_RULES = ("baseline", "likelihood", "ppl")
NTR_SIZES = (3, 4, 5)


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass
class JudgeConfig:
    """How the judge is run. ``temperature`` is the rationale's decoding temperature (0 =
    greedy); ``seed`` seeds the rationale and the draw of the emitted score or verdict when
    sampling; ``trustjudge_temperature`` is T of the TrustJudge score; ``top_logprobs`` the k
    asked of an OpenAI-compatible server."""

    scale: int = 5
    direct: bool = False
    temperature: float = 0.0
    max_new_tokens: int = 256
    seed: int = 0
    trustjudge_temperature: float = 0.2
    top_logprobs: int = 20

    def validate(self) -> JudgeConfig:
        if self.scale not in SCALES:
            raise ConfidantError(f"the scale must be one of {SCALES} points, got {self.scale!r}")
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 5.0):
            raise ConfidantError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not 1 <= int(self.max_new_tokens) <= 4096:
            raise ConfidantError(
                f"max new tokens must be between 1 and 4096, got {self.max_new_tokens}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ConfidantError(f"the seed must be an integer, got {self.seed!r}")
        check_seed(self.seed)
        t = self.trustjudge_temperature
        if not (math.isfinite(t) and t > 0.0):
            raise ConfidantError(f"the TrustJudge temperature must be positive, got {t!r}")
        if not 1 <= int(self.top_logprobs) <= 20:
            raise ConfidantError(f"top log-probabilities must be 1..20, got {self.top_logprobs}")
        self.seed = int(self.seed)
        self.max_new_tokens = int(self.max_new_tokens)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JudgeConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def judge_sampling_params(config: JudgeConfig, marker: str) -> SamplingParams:
    return SamplingParams(
        n=1,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop=[marker],
    ).validate()
