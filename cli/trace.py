"""``python -m cli trace "question"``: one answer's token trace, as text or JSON.

    python -m cli trace "What is the capital of Australia?" --model tiny-random
    python -m cli trace "What is the capital of Australia?" --json > trace.json
"""

from __future__ import annotations

from backends.base import SamplingParams
from cli.common import add_model_arguments, backends_from_args, run_cli, seed_arg
from uq.trace import clean_question, run_trace


def main(argv: list[str] | None = None) -> int:
    """``python -m cli trace "question" [--model ...] [--json]``: one answer's token trace."""
    return run_cli(_trace, argv)


def _trace(argv: list[str] | None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m cli trace", description=main.__doc__)
    p.add_argument("question")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_model_arguments(p, embedding=False, nli=False)
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
