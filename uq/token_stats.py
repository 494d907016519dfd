"""Per-token statistics of a next-token distribution, and summaries of a token trace.

All in nats. Entropy and varentropy are of the raw model distribution (temperature 1, no
truncation); surprisal is −log p of the token actually produced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from backends.base import Generation
from core.errors import ConfidantError

# Token log-probabilities reported by servers are sometimes a hair above zero after rounding:
# that is rounding error, not bad input.
LOGPROB_TOLERANCE = 1e-6


def _as_distribution(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise ConfidantError("a distribution must be a non-empty 1-D array of probabilities")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ConfidantError("probabilities must be finite and non-negative")
    total = p.sum()
    if total <= 0:
        raise ConfidantError("probabilities must not all be zero")
    return p / total


def entropy(probs: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy H(p) = −Σ_v p_v log p_v (nats); the input is renormalised."""
    p = _as_distribution(probs)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def varentropy(probs: Sequence[float] | np.ndarray) -> float:
    """Varentropy V(p) = Var_{v∼p}[−log p_v] = Σ p (log p)² − H², nats².

    The variance of the surprisal; zero for uniform or one-hot distributions."""
    p = _as_distribution(probs)
    nz = p[p > 0]
    logp = np.log(nz)
    h = -(nz * logp).sum()
    return float(max(0.0, (nz * logp * logp).sum() - h * h))


def surprisal(prob: float) -> float:
    """−log p (nats); infinite for p = 0."""
    if not (0.0 <= prob <= 1.0) or math.isnan(prob):
        raise ConfidantError(f"a probability must be in [0, 1], got {prob}")
    return math.inf if prob == 0.0 else -math.log(prob)


def perplexity(token_logprobs: Sequence[float] | np.ndarray) -> float:
    """Perplexity exp(−(1/L) Σ_t log p(y_t | y_<t, x)) of a token sequence; ≥ 1.

    The one implementation used by the trace summary, the semantic-entropy measures and the
    judge's perplexity rule. LM-Polygraph's "Perplexity" estimator reports the logarithm of
    this; rankings agree. Needs at least one finite log-probability, each ≤ 0.
    """
    lps = np.asarray(token_logprobs, dtype=float)
    if lps.ndim != 1 or lps.size == 0:
        raise ConfidantError(
            "a perplexity needs a non-empty 1-D sequence of token log-probabilities"
        )
    if not np.all(np.isfinite(lps)):
        raise ConfidantError("token log-probabilities must be finite (no NaN or infinity)")
    if np.any(lps > LOGPROB_TOLERANCE):
        raise ConfidantError("token log-probabilities must be ≤ 0")
    return float(np.exp(-np.minimum(lps, 0.0).mean()))


@dataclass
class TraceSummary:
    """Summary of one answer's token trace (raw distribution, nats)."""

    n_tokens: int
    mean_entropy: float
    max_entropy: float
    mean_surprisal: float
    perplexity: float
    sequence_logprob: float
    sequence_probability: float
    truncated: bool

    def to_dict(self) -> dict:
        return asdict(self)


def summarise(generation: Generation) -> TraceSummary:
    """Mean and max token entropy, perplexity exp(−mean log p), and the sequence probability
    Π p(token) = exp(Σ log p)."""
    toks = generation.tokens
    if not toks:
        return TraceSummary(0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, False)
    ents = [t.entropy for t in toks]
    lps = [t.logprob for t in toks]
    total = float(sum(lps))
    return TraceSummary(
        n_tokens=len(toks),
        mean_entropy=float(np.mean(ents)),
        max_entropy=float(np.max(ents)),
        mean_surprisal=float(-np.mean(lps)),
        perplexity=perplexity(lps),
        sequence_logprob=total,
        sequence_probability=float(math.exp(total)),
        truncated=generation.truncated,
    )
