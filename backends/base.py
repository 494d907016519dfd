"""Records and the interface every language-model backend fills.

A backend turns prompts into :class:`Generation` records (every token with its log-probability
under the raw model distribution and under the sampling distribution, its entropy, varentropy
and top alternatives) and scores given continuations by teacher forcing. The maths in ``uq/``
and ``judge/`` reads these records; it never touches a model object.

What a backend can do beyond the protocol's minimum is declared in its ``capabilities``
(:class:`Capabilities`); callers read those fields through :func:`capabilities_of` and never
test a backend's class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.errors import ConfidantError

#: Seeds are 32-bit unsigned: what torch, numpy and OpenAI-compatible servers all accept.
MAX_SEED = 2**32 - 1


def check_seed(value: Any, name: str = "Seed") -> int:
    """``value`` as a seed in ``[0, MAX_SEED]``: an int, or a float or text holding a whole
    number (``"7"``, ``7.0``). Anything else raises a :class:`ConfidantError` whose message names
    the field (``name``, capitalised as the start of a sentence) and the range."""
    message = f"{name[:1].upper()}{name[1:]} must be a whole number from 0 to {MAX_SEED}"
    if isinstance(value, bool):
        raise ConfidantError(f"{message}, got {value!r}")
    try:
        number = value if isinstance(value, int) else _number(value)
        whole = int(number)
    except (TypeError, ValueError, OverflowError):
        raise ConfidantError(f"{message}, got {_short(value)}") from None
    if whole != number or not 0 <= whole <= MAX_SEED:
        raise ConfidantError(f"{message}, got {_short(value)}")
    return whole


def _number(value: Any) -> int | float:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    return float(value)


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class TokenRecord:
    """One generated token.

    ``logprob`` is under the raw model distribution (temperature 1, no truncation);
    ``sampling_logprob`` under the distribution actually sampled from (after temperature,
    top-k, top-p), ``None`` when unknown. ``entropy`` and ``varentropy`` (nats, nats²) are of the
    raw next-token distribution; ``truncated`` is true when they were computed from the top-k
    alternatives only (OpenAI-compatible servers), in which case they are lower bounds of a sort
    and must be labelled as such.
    """

    text: str
    logprob: float
    entropy: float
    varentropy: float
    top: list[tuple[str, float]] = field(default_factory=list)  # (token text, probability)
    sampling_logprob: float | None = None
    token_id: int | None = None
    truncated: bool = False

    @property
    def surprisal(self) -> float:
        """−log p(token) under the raw distribution, nats."""
        return -self.logprob

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


@dataclass
class Generation:
    """One answer with its per-token record.

    ``logprob_source`` names where ``TokenRecord.logprob`` comes from: ``"raw"`` (the model's
    own distribution at temperature 1) for local models; for HTTP servers whatever the server
    reports (``"server"``).
    """

    text: str
    tokens: list[TokenRecord]
    finish_reason: str = "length"  # "stop" (EOS or stop string) or "length"
    logprob_source: str = "raw"

    @property
    def total_logprob(self) -> float:
        """Σ log p(token): the sequence log-likelihood under the raw distribution."""
        return float(sum(t.logprob for t in self.tokens))

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-likelihood (mean token log-probability); 0 for no tokens."""
        return self.total_logprob / len(self.tokens) if self.tokens else 0.0

    @property
    def truncated(self) -> bool:
        return any(t.truncated for t in self.tokens)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_logprob"] = self.total_logprob
        d["mean_logprob"] = self.mean_logprob
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Generation:
        tokens = [
            TokenRecord(**{**t, "top": [tuple(x) for x in t.get("top", [])]})
            for t in d.get("tokens", [])
        ]
        return cls(
            text=d["text"],
            tokens=tokens,
            finish_reason=d.get("finish_reason", "length"),
            logprob_source=d.get("logprob_source", "raw"),
        )


@dataclass
class ContinuationScore:
    """Teacher-forced log-likelihood of one continuation given a prompt."""

    text: str
    token_logprobs: list[float]
    tokens: list[str] = field(default_factory=list)

    @property
    def total_logprob(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float:
        return self.total_logprob / len(self.token_logprobs) if self.token_logprobs else 0.0


@dataclass
class SamplingParams:
    """Sampling settings, validated at the boundary."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k truncation
    max_new_tokens: int = 64
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    def validate(self) -> SamplingParams:
        if not 1 <= self.n <= 256:
            raise ConfidantError(f"n must be between 1 and 256, got {self.n}")
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 5.0):
            raise ConfidantError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise ConfidantError(f"top-p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.top_k <= 100_000:
            raise ConfidantError(f"top-k must be 0 (off) or a positive count, got {self.top_k}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfidantError(
                f"max new tokens must be between 1 and 4096, got {self.max_new_tokens}"
            )
        if self.seed is not None:
            self.seed = check_seed(self.seed)
        self.stop = [s for s in (self.stop or []) if s]
        return self


@dataclass(frozen=True)
class Capabilities:
    """What a language-model backend can do beyond the :class:`LanguageModel` minimum.

    Every backend class declares one as its ``capabilities`` attribute, and callers choose
    their path from these fields (through :func:`capabilities_of`), never from the class.
    The defaults are what the protocol alone promises.

    - ``exact_scoring``: ``score``, ``score_tree`` and ``choice_probs`` return exact
      teacher-forced log-probabilities of the given text under the model's own distribution,
      with the chat template applied when asked. False for servers, which may not echo prompt
      log-probabilities and apply no chat template when scoring; such a backend offers
      ``sample_with_top`` and callers read distributions from the top-k log-probabilities of
      sampled text instead (the judge does).
    - ``per_row_temperature``: ``sample_batch`` takes ``temperatures=`` (one per prompt), so
      rows at different temperatures share one batched call.
    - ``streams``: ``sample_batch`` and ``greedy`` take a transformers ``streamer=`` that
      receives token ids as they are generated (decode them with ``lm.tokenizer``).
    - ``truncated_logprobs``: token entropies, varentropies and alternatives are computed from
      the top-k log-probabilities only (lower bounds; ``TokenRecord.truncated`` is set).
    - ``token_ids``: a local tokenizer is available as ``lm.tokenizer`` (its chat template,
      token ids).
    - ``concurrent_calls``: calls from many threads at once overlap (a server batches them),
      so the evaluation harness keeps several questions in flight; an in-process model runs
      one forward at a time and keeps its batches.
    - ``scoring``: how ``score`` is computed: ``"local"`` (teacher forcing in process); for a
      server (:mod:`backends.openai_scoring`) ``"server_echo"`` (echoed prompt
      log-probabilities on token ids: exact), ``"server_echo_text"`` (echo on raw text, no chat
      template) or ``"server_top_logprobs"`` (no echo), detected per server on first use.
      Results record it.
    """

    exact_scoring: bool = True
    per_row_temperature: bool = False
    streams: bool = False
    truncated_logprobs: bool = False
    token_ids: bool = False
    concurrent_calls: bool = False
    scoring: str = "local"


PROTOCOL_CAPABILITIES = Capabilities()


def capabilities_of(lm: Any) -> Capabilities:
    """``lm.capabilities``, or :data:`PROTOCOL_CAPABILITIES` (only what the protocol promises)
    for a duck-typed model that declares none."""
    caps = getattr(lm, "capabilities", None)
    if caps is None:
        return PROTOCOL_CAPABILITIES
    if not isinstance(caps, Capabilities):
        raise TypeError(
            f"{type(lm).__name__}.capabilities must be a backends.base.Capabilities, "
            f"got {type(caps).__name__}"
        )
    return caps


@runtime_checkable
class LanguageModel(Protocol):
    """What ``uq/`` and ``judge/`` pipelines need from a causal language model."""

    model_id: str
    capabilities: Capabilities

    def sample(self, prompt: str, params: SamplingParams, *, chat: bool = True) -> list[Generation]:
        """``params.n`` answers to ``prompt`` from one batched call."""
        ...

    def sample_batch(
        self, prompts: Sequence[str], params: SamplingParams, *, chat: bool = True
    ) -> list[list[Generation]]:
        """``params.n`` answers to each prompt, all prompts in batched calls."""
        ...

    def greedy(
        self, prompt: str, max_new_tokens: int = 64, *, stop: Sequence[str] = (), chat: bool = True
    ) -> Generation:
        """The greedy answer with the same per-token record."""
        ...

    def score(
        self, prompt: str, continuations: Sequence[str], *, chat: bool = True
    ) -> list[ContinuationScore]:
        """Teacher-forced log-likelihood of each continuation after ``prompt``."""
        ...

    def score_tree(
        self,
        prefix: str,
        suffixes: Sequence[str],
        continuations: Sequence[str],
        *,
        chat: bool = True,
    ) -> list[list[ContinuationScore]]:
        """Log-likelihood of each continuation after ``prefix + suffix``, for every suffix.

        ``prefix`` is encoded once and its cache shared by every (suffix, continuation) row.
        Returns ``[suffix index][continuation index]``.
        """
        ...

    def choice_probs(
        self, prompt: str, options: Sequence[str], *, chat: bool = True
    ) -> list[float]:
        """Probability of each option as the continuation, normalised over the options."""
        ...

    def format_prompt(self, prompt: str, *, chat: bool = True) -> str:
        """The text actually fed to the model (chat template applied when ``chat``)."""
        ...


def prompt_sent(lm: Any, prompt: str, *, chat: bool = True) -> str:
    """The exact text ``lm`` is sent for ``prompt``: ``lm.format_prompt`` (the chat template
    applied when ``chat``; for an OpenAI-compatible chat server the chat messages as JSON), or
    the prompt itself for a duck-typed model without ``format_prompt``. Results store it so a
    person sees what the log-probabilities are conditioned on."""
    fmt = getattr(lm, "format_prompt", None)
    return prompt if fmt is None else str(fmt(prompt, chat=chat))
