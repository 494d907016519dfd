"""``python -m cli serve``: serve a model over the OpenAI protocol (``backends.serve_openai``).

python -m cli serve --model tiny-random --port 8000
python -m cli serve --model Qwen/Qwen2.5-0.5B-Instruct --host 0.0.0.0 --api-key "$KEY"
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from cli.common import add_model_arguments, backends_from_args, run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cli serve",
        description="Serve a local model over the OpenAI protocol, log-probabilities included.",
    )
    p.add_argument("--served-model-name", default=None, help="the name clients ask for")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("CONFIDANT_SERVE_API_KEY"),
        help="require Authorization: Bearer <key> (env CONFIDANT_SERVE_API_KEY)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay every answer by this much without blocking the others (stands for a GPU "
        "server's queue and network in benchmarks; default 0)",
    )
    p.add_argument(
        "--no-echo",
        action="store_true",
        help="refuse echo on /v1/completions, as servers without prompt log-probabilities do "
        "(to try the client's top-20 fallback)",
    )
    add_model_arguments(p, server=False, embedding=False, nli=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _serve(_parser().parse_args(a)), argv)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backends.serve_openai import create_app

    lm = backends_from_args(args).generator()
    if not 0 <= args.latency_ms <= 60_000:
        from core.errors import ConfidantError

        raise ConfidantError(f"--latency-ms must be from 0 to 60000, got {args.latency_ms}")
    app = create_app(
        lm,
        model_name=args.served_model_name or args.model,
        api_key=args.api_key,
        latency_s=args.latency_ms / 1000,
        echo=not args.no_echo,
    )
    print(f"Serving {args.model} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
