"""The per-token entropy trace of one answer: the pipeline behind the Generate tab."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from backends.base import ConfidantError, Generation, LanguageModel, SamplingParams
from uq.token_stats import TraceSummary, summarise

MAX_QUESTION_CHARS = 20_000


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "model": self.model,
            "params": self.params,
            "generation": self.generation.to_dict(),
            "summary": self.summary.to_dict(),
            "logprob_source": self.logprob_source,
            "notes": self.notes,
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
        )


def run_trace(lm: LanguageModel, question: str, params: SamplingParams, **kwargs) -> TraceResult:
    """Generate one answer (greedy when temperature is 0) with its token trace."""
    question = clean_question(question)
    params = SamplingParams(**{**asdict(params), "n": 1}).validate()
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
    )


def _main(argv: list[str] | None = None) -> int:
    """``python -m uq.trace "question" [--model ...] [--json]``: one answer's token trace."""
    import argparse
    import json

    from uq.cli import add_model_arguments, backends_from_args

    p = argparse.ArgumentParser(prog="python -m uq.trace", description=_main.__doc__)
    p.add_argument("question")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_model_arguments(p)
    args = p.parse_args(argv)
    params = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    ).validate()
    question = clean_question(args.question)
    result = run_trace(backends_from_args(args).generator(), question, params)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
        return 0
    print(result.generation.text)
    print(f"\n{'#':>4}  {'token':<16} {'p':>8} {'entropy':>8} {'surprisal':>9}  top alternatives")
    for i, t in enumerate(result.generation.tokens):
        alts = ", ".join(f"{a!r}:{q:.2f}" for a, q in t.top[:3])
        print(
            f"{i:>4}  {t.text!r:<16} {t.probability:>8.4f} {t.entropy:>8.3f} {t.surprisal:>9.3f}  {alts}"
        )
    s = result.summary
    print(
        f"\nmean entropy {s.mean_entropy:.3f} nats · max {s.max_entropy:.3f} · "
        f"perplexity {s.perplexity:.3f} · sequence probability {s.sequence_probability:.3g}"
    )
    for n in result.notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    import sys

    from uq.cli import run_cli

    sys.exit(run_cli(_main))
