"""The per-token entropy trace of one answer: the pipeline behind the Generate tab.

The question is sent as typed, with no instruction added, through the model's chat template
(:data:`PROMPT_NOTE`); the result records that exact text (``prompt_sent``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from backends.base import Generation, LanguageModel, SamplingParams, prompt_sent
from core.errors import ConfidantError
from uq.token_stats import TraceSummary, summarise

MAX_QUESTION_CHARS = 20_000

PROMPT_NOTE = (
    "The question exactly as typed, in the model's chat template; no instruction is added. "
    "The Semantic entropy tab puts a brief-answer instruction before the question, so the "
    "same answer has another log-probability there."
)


def clean_question(question: str | None, *, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question stripped of surrounding space and control characters, or a clear error."""
    if question is None or not str(question).strip():
        raise ConfidantError("Please type a question first.")
    text = str(question)
    if "\x00" in text:
        raise ConfidantError("The question contains a NUL character; remove it and try again.")
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()
    if not text:
        raise ConfidantError("The question has no printable text.")
    if len(text) > max_chars:
        raise ConfidantError(
            f"The question is {len(text):,} characters long; the limit is {max_chars:,}."
        )
    return text


@dataclass
class TraceResult:
    """One answer with its per-token record and summary, and what produced it."""

    question: str
    model: str
    params: dict[str, Any]
    generation: Generation
    summary: TraceSummary
    logprob_source: str = "raw"
    notes: list[str] = field(default_factory=list)
    prompt_sent: str | None = None  # the exact text sent (None in runs stored before it was)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "model": self.model,
            "params": self.params,
            "generation": self.generation.to_dict(),
            "summary": self.summary.to_dict(),
            "logprob_source": self.logprob_source,
            "notes": self.notes,
            "prompt_sent": self.prompt_sent,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceResult:
        return cls(
            question=d["question"],
            model=d["model"],
            params=d["params"],
            generation=Generation.from_dict(d["generation"]),
            summary=TraceSummary(**d["summary"]),
            logprob_source=d.get("logprob_source", "raw"),
            notes=list(d.get("notes", [])),
            prompt_sent=d.get("prompt_sent"),
        )


def run_trace(lm: LanguageModel, question: str, params: SamplingParams, **kwargs) -> TraceResult:
    """Generate one answer (greedy when temperature is 0) with its token trace; the question
    is the whole prompt (chat template applied unless ``chat=False`` is passed on)."""
    question = clean_question(question)
    params = SamplingParams(**{**asdict(params), "n": 1}).validate()
    sent = prompt_sent(lm, question, chat=kwargs.get("chat", True))
    gen = lm.sample_batch([question], params, **kwargs)[0][0]
    notes = []
    if gen.truncated:
        notes.append(
            "Entropies are computed over the server's top-k alternatives only (a lower bound)."
        )
    return TraceResult(
        question=question,
        model=lm.model_id,
        params=asdict(params),
        generation=gen,
        summary=summarise(gen),
        logprob_source=gen.logprob_source,
        notes=notes,
        prompt_sent=sent,
    )


def stored_measures(result: dict[str, Any]) -> dict[str, float | None]:
    """The summary statistics of a stored trace (``TraceResult.to_dict()``): token count,
    mean and max entropy, mean surprisal, perplexity, sequence log-probability and
    probability, and whether the answer was cut at the token limit (1/0)."""
    summary = TraceSummary(**result["summary"]).to_dict()
    return {k: float(v) if isinstance(v, bool) else v for k, v in summary.items()}
